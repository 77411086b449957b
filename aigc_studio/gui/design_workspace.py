"""The Design workspace: the generation panel, the canvas with its layers, and the asset library.

A designer explores generated images on the left, composes on the canvas in the middle (images, icons,
emoji, text, shapes; undo for every change) and picks icons and emoji from the library on the right, then
exports the design as PNG or SVG or saves it as a project. Nothing here runs a model: the generation
panel's view-model talks to the image service in the model host's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMenu,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.core.project_schema import CANVAS_PRESETS, ProjectData
from aigc_studio.gui.canvas import EXPORT_SCALES, DesignCanvasView, LayersPanel, arrange, export_png, export_svg
from aigc_studio.gui.generation_panel import GenerationPanel
from aigc_studio.gui.library_panel import LibraryPanel
from aigc_studio.services.files import atomic_write
from aigc_studio.services.library_service import LibraryService
from aigc_studio.services.project import (
    ProjectError,
    make_project_autosave,
    open_project,
    pending_project_recoveries,
    save_project,
)
from aigc_studio.services.recovery import RecoveryStore
from aigc_studio.viewmodels.image import GenerationViewModel

log = logging.getLogger(__name__)

CASCADE = 7
"""Layers added in a row step along this many places of a diagonal through the paper's centre."""

FileChooser = Callable[[QWidget, str, str], str]
"""(parent, title, filter) -> a chosen path or "": a file dialog, replaced in tests."""


def _save_dialog(parent: QWidget, title: str, filters: str) -> str:
    return QFileDialog.getSaveFileName(parent, title, "", filters)[0]


def _open_dialog(parent: QWidget, title: str, filters: str) -> str:
    return QFileDialog.getOpenFileName(parent, title, "", filters)[0]


class DesignWorkspace(QWidget):
    """The Design tab. Its three parts are public (``generation``, ``canvas``, ``library``) so that the
    main window and tests can reach them; ``project_path`` is the open project's file or None."""

    message = Signal(str)
    """A line for the status bar: what was exported or saved, or why something failed."""

    def __init__(self, generation: GenerationViewModel, library: LibraryService, *,
                 project_store: RecoveryStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("designWorkspace")
        self.save_dialog: FileChooser = _save_dialog
        self.open_dialog: FileChooser = _open_dialog
        self.project_path: Path | None = None
        self.generation = GenerationPanel(generation)
        self.canvas = DesignCanvasView(512, 512)
        self.layers = LayersPanel(self.canvas)
        self.library = LibraryPanel(library)
        self._build()
        self.generation.add_to_canvas_requested.connect(self._on_add_image)
        self.library.add_requested.connect(self._on_add_svg)
        self.canvas.drop_failed.connect(self.message)
        self._store = project_store
        self.autosave = (make_project_autosave(project_store, self._snapshot, self._path_text, parent=self)
                         if project_store is not None else None)
        """Keeps the unsaved design in the recovery store (None without a store)."""
        self.canvas.undo_stack.indexChanged.connect(self._on_changed)

    # -- building ---------------------------------------------------------------------------------

    def _build(self) -> None:
        left = QScrollArea()
        left.setObjectName("generationScroll")
        left.setWidget(self.generation)
        left.setWidgetResizable(True)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right = QTabWidget()
        right.setObjectName("designSideTabs")
        right.addTab(self.library, "Library")
        right.addTab(self.layers, "Layers")
        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self._build_toolbar())
        column.addWidget(self.canvas, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("designSplitter")
        for widget, stretch in ((left, 0), (middle, 1), (right, 0)):
            splitter.addWidget(widget)
            splitter.setStretchFactor(splitter.indexOf(widget), stretch)
        splitter.setCollapsible(1, False)
        splitter.setSizes([340, 640, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar("Canvas")
        bar.setObjectName("canvasToolbar")
        self.size_combo = QComboBox()
        self.size_combo.setObjectName("canvasSize")
        for preset in CANVAS_PRESETS:
            self.size_combo.addItem(f"{preset.name} {preset.width}×{preset.height}", (preset.width, preset.height))
        self.size_combo.addItem("Custom size…", None)
        self.size_combo.activated.connect(self._on_size_chosen)
        bar.addWidget(QLabel(" Canvas "))
        bar.addWidget(self.size_combo)
        bar.addSeparator()
        self._tool(bar, "Text", lambda: self.canvas.add_text("Text"), "addText")
        self._tool(bar, "Rectangle", lambda: self.canvas.add_shape("rect"), "addRect")
        self._tool(bar, "Ellipse", lambda: self.canvas.add_shape("ellipse"), "addEllipse")
        bar.addSeparator()
        undo = self.canvas.undo_stack.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.canvas.undo_stack.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        for action in (undo, redo):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            bar.addAction(action)
        self._tool(bar, "Delete", lambda: self.canvas.remove(), "deleteLayers")
        arrange_button = QToolButton()
        arrange_button.setText("Arrange")
        arrange_button.setObjectName("arrangeButton")
        arrange_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        arrange_button.setMenu(self._arrange_menu(arrange_button))
        bar.addWidget(arrange_button)
        self._tool(bar, "Fit", self.canvas.fit, "zoomFit")
        bar.addSeparator()
        export = QToolButton()
        export.setText("Export")
        export.setObjectName("exportButton")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        for scale in EXPORT_SCALES:
            menu.addAction(f"PNG at {scale}×…", lambda s=scale: self.export_png_file(scale=s))
        menu.addAction("SVG…", lambda: self.export_svg_file())
        export.setMenu(menu)
        bar.addWidget(export)
        self._tool(bar, "Open…", lambda: self.open_project_file(), "openProject")
        self._tool(bar, "Save…", lambda: self.save_project_file(), "saveProject")
        return bar

    def _tool(self, bar: QToolBar, text: str, slot: Callable[[], object], name: str) -> QAction:
        action = bar.addAction(text, slot)
        action.setObjectName(name)
        return action

    # -- adding -----------------------------------------------------------------------------------

    def _spot(self) -> QPointF:
        """Where the next added layer goes: the paper's centre, moved along a diagonal for each layer
        added in a row, so that new layers do not hide each other."""
        width, height = self.canvas.canvas_size
        step = (len(self.canvas.layers()) % CASCADE) - CASCADE // 2
        return QPointF(width / 2 + step * width * 0.06, height / 2 + step * height * 0.06)

    def _on_add_image(self, png: bytes, record_json: str) -> None:
        try:
            self.canvas.add_image(png, record_json or None, name="generated", at=self._spot())
        except ValueError as error:
            self.message.emit(f"Could not add the image: {error}")

    def _on_add_svg(self, svg: str, name: str, recolourable: bool) -> None:
        try:
            self.canvas.add_svg(svg, name, recolourable, at=self._spot())
        except ValueError as error:
            self.message.emit(f"Could not add {name}: {error}")

    def add_text(self, text: str) -> str:
        """Place ``text`` (a phrase from the writing pane) on the canvas as a text layer."""
        return self.canvas.add_text(text, at=self._spot())

    def _arrange_menu(self, parent: QWidget) -> QMenu:
        """Arrange: order, align, distribute, group, scale and rotate the selected layers."""
        menu = QMenu(parent)
        canvas = self.canvas

        def on_selection(action: Callable[[DesignCanvasView, list[str]], object]) -> Callable[[], None]:
            def run() -> None:
                if ids := canvas.selected_ids():
                    action(canvas, ids)
                else:
                    self.message.emit("Select one or more layers first")
            return run

        for text, action in (
                ("Bring to Front", arrange.bring_to_front), ("Send to Back", arrange.send_to_back),
                ("Bring Forward", arrange.bring_forward), ("Send Backward", arrange.send_backward)):
            menu.addAction(text, on_selection(action))
        menu.addSeparator()
        for mode, text in (("left", "Left"), ("hcenter", "Centre"), ("right", "Right"), ("top", "Top"),
                           ("vcenter", "Middle"), ("bottom", "Bottom")):
            menu.addAction(f"Align {text}", on_selection(lambda c, ids, m=mode: arrange.align(c, ids, m)))
        menu.addAction("Distribute Horizontally",
                       on_selection(lambda c, ids: arrange.distribute(c, ids, "horizontal")))
        menu.addAction("Distribute Vertically", on_selection(lambda c, ids: arrange.distribute(c, ids, "vertical")))
        menu.addSeparator()
        menu.addAction("Group", on_selection(arrange.group))
        menu.addAction("Ungroup", on_selection(arrange.ungroup))
        menu.addSeparator()
        menu.addAction("Larger (125%)", on_selection(lambda c, ids: arrange.scale(c, ids, 1.25)))
        menu.addAction("Smaller (80%)", on_selection(lambda c, ids: arrange.scale(c, ids, 0.8)))
        menu.addAction("Rotate Left 15°", on_selection(lambda c, ids: arrange.rotate(c, ids, -15)))
        menu.addAction("Rotate Right 15°", on_selection(lambda c, ids: arrange.rotate(c, ids, 15)))
        return menu

    def _on_size_chosen(self, index: int) -> None:
        size = self.size_combo.itemData(index)
        if size is None:
            width, ok = QInputDialog.getInt(self, "Canvas size", "Width (px)", self.canvas.canvas_size[0], 16, 20000)
            if not ok:
                return
            height, ok = QInputDialog.getInt(self, "Canvas size", "Height (px)", self.canvas.canvas_size[1], 16, 20000)
            if not ok:
                return
            size = (width, height)
        self.canvas.set_canvas_size(*size)
        self.canvas.fit()
        self._sync_size_combo()

    def _sync_size_combo(self) -> None:
        """Show the canvas's size in the size list: its preset, or "Custom W×H"."""
        size = tuple(self.canvas.canvas_size)
        custom = self.size_combo.count() - 1
        for index in range(custom):
            if tuple(self.size_combo.itemData(index)) == size:
                self.size_combo.setCurrentIndex(index)
                self.size_combo.setItemText(custom, "Custom size…")
                return
        self.size_combo.setItemText(custom, f"Custom {size[0]}×{size[1]}…")
        self.size_combo.setCurrentIndex(custom)

    # -- files ------------------------------------------------------------------------------------

    def _write(self, path: str, data: bytes, what: str) -> bool:
        try:
            atomic_write(Path(path), lambda stream: stream.write(data))
        except OSError as error:
            self.message.emit(f"Could not write {what} to {path}: {error.strerror or error}")
            return False
        self.message.emit(f"Exported {what} to {path}")
        return True

    def export_png_file(self, path: str | None = None, scale: int = 1) -> bool:
        """Export the canvas as a transparent PNG at ``scale`` with the generation records."""
        path = path or self.save_dialog(self, f"Export PNG at {scale}×", "PNG images (*.png)")
        return bool(path) and self._write(path, export_png(self.canvas, scale), f"a PNG at {scale}×")

    def export_svg_file(self, path: str | None = None) -> bool:
        """Export the canvas as SVG: text stays text, icons and emoji stay vectors."""
        path = path or self.save_dialog(self, "Export SVG", "SVG images (*.svg)")
        return bool(path) and self._write(path, export_svg(self.canvas).encode("utf-8"), "an SVG")

    def save_project_file(self, path: str | None = None) -> bool:
        """Save the design as a project (a zip of project.json and its assets), atomically."""
        path = path or self.save_dialog(self, "Save design", "AIGC Studio designs (*.aigcd)")
        if not path:
            return False
        try:
            save_project(path, self.canvas.project())
        except (ProjectError, OSError) as error:
            self.message.emit(f"Could not save {path}: {error}")
            return False
        self.project_path = Path(path)
        self.canvas.undo_stack.setClean()
        if self.autosave is not None:
            self.autosave.clear()
        self.message.emit(f"Saved {path}")
        return True

    def open_project_file(self, path: str | None = None) -> bool:
        """Open a project; a damaged or hostile file is refused with a message and the open design kept."""
        path = path or self.open_dialog(self, "Open design", "AIGC Studio designs (*.aigcd)")
        if not path:
            return False
        try:
            project = open_project(path)
        except (ProjectError, OSError) as error:
            self.message.emit(str(error))
            return False
        self.canvas.load_project(project)
        self.project_path = Path(path)
        self.canvas.fit()
        self._sync_size_combo()
        self.message.emit(f"Opened {path}")
        return True

    # -- autosave and recovery --------------------------------------------------------------------

    def _on_changed(self, _index: int) -> None:
        if self.autosave is not None:
            self.autosave.document_changed()

    def _snapshot(self) -> ProjectData | None:
        return None if self.canvas.undo_stack.isClean() else self.canvas.project()

    def _path_text(self) -> str | None:
        return str(self.project_path) if self.project_path is not None else None

    def recover(self) -> int:
        """Restore the newest design a crash or a kill left unsaved (it stays unsaved); return how many
        were found. The others stay in the recovery folder for the next start."""
        if self._store is None:
            return 0
        found, problems = pending_project_recoveries(self._store)
        for problem in problems:
            log.warning("design recovery: %s", problem)
        if found:
            newest = found[0]
            self.canvas.load_project(newest.project)
            self.project_path = Path(newest.path) if newest.path else None
            self._store.discard(newest.entry)
            self.message.emit("Recovered the design that was not saved when AIGC Studio last stopped")
        return len(found)

    def shutdown(self) -> None:
        """Stop the autosave and the library panel and end the design recovery session."""
        self.library.shutdown()
        if self.autosave is not None:
            self.autosave.shutdown()
            self.autosave = None
        if self._store is not None:
            self._store.close()

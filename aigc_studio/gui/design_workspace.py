"""The Design workspace: the generation panel, the canvas with its layers, and the asset library.

A designer explores generated images on the left, composes on the canvas in the middle (images, icons,
emoji, text, shapes; undo for every change) and picks icons and emoji from the library on the right, then
exports the design as PNG or SVG or saves it as a project (with the generation history). Nothing here
runs a model: the generation panel's view-model talks to the image service in the model host's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QInputDialog,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.core.project_schema import MAX_HISTORY_CHARS, ProjectData, ProjectFormatError
from aigc_studio.gui.canvas import DesignCanvasView, LayersPanel, PropertiesPanel, export_png, export_svg
from aigc_studio.gui.design_toolbar import build_canvas_toolbar
from aigc_studio.gui.dialogs import ChoiceDialog
from aigc_studio.gui.generation_panel import GenerationPanel
from aigc_studio.gui.library_panel import LibraryPanel
from aigc_studio.services.files import atomic_write
from aigc_studio.services.library_service import LibraryService
from aigc_studio.services.project import (
    ProjectError,
    RecoveredProject,
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

UNTITLED = "Untitled design"
"""The title of a design that has no file yet."""

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
    title_changed = Signal(str)
    """The design's title changed: carries it ("Untitled design" or the file name, with a leading "*"
    while the design has unsaved changes)."""

    def __init__(self, generation: GenerationViewModel, library: LibraryService, *,
                 project_store: RecoveryStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("designWorkspace")
        self.save_dialog: FileChooser = _save_dialog
        self.open_dialog: FileChooser = _open_dialog
        self.project_path: Path | None = None
        self._vm = generation
        self._title = UNTITLED
        self.generation = GenerationPanel(generation)
        self.canvas = DesignCanvasView(512, 512)
        self.layers = LayersPanel(self.canvas)
        self.properties = PropertiesPanel(self.canvas)
        self.properties.restore_generation_requested.connect(generation.restore_from_record)
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
        self.canvas.undo_stack.cleanChanged.connect(self._update_title)
        generation.history_changed.connect(self._on_changed)  # journaled with the unsaved design

    @property
    def title(self) -> str:
        """The design's title: :data:`UNTITLED` or the file name, with a leading "*" for unsaved changes."""
        return self._title

    def _update_title(self, *_: object) -> None:
        name = self.project_path.name if self.project_path is not None else UNTITLED
        title = name if self.canvas.undo_stack.isClean() else f"*{name}"
        if title != self._title:
            self._title = title
            self.title_changed.emit(title)

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
        right.addTab(self.properties, "Properties")
        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(build_canvas_toolbar(self))
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

    def choose_size(self, index: int) -> None:
        """Resize the paper to the size list's entry ``index`` (asking for a custom size)."""
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
            save_project(path, self._project())
        except (ProjectFormatError, OSError) as error:
            self.message.emit(f"Could not save {path}: {error}")
            return False
        self.project_path = Path(path)
        self.canvas.undo_stack.setClean()
        self._update_title()
        if self.autosave is not None:
            self.autosave.clear()
        self.message.emit(f"Saved {path}")
        return True

    def open_project_file(self, path: str | None = None) -> bool:
        """Open a project and its generation history; a damaged or hostile file (its history included)
        is refused with a message, and the open design and history are kept. A file without a history
        (version 1) leaves the history as it is."""
        path = path or self.open_dialog(self, "Open design", "AIGC Studio designs (*.aigcd)")
        if not path:
            return False
        try:
            project = open_project(path)
        except (ProjectError, OSError) as error:
            self.message.emit(str(error))
            return False
        if project.history is not None and not self._vm.load_history_json(project.history):
            # the view-model keeps its history when the text is refused; so is the canvas
            self.message.emit(f"Cannot open {Path(path).name}: {self._vm.message}")
            return False
        self.project_path = Path(path)
        self.canvas.load_project(project)
        self._update_title()
        self.canvas.fit()
        self._sync_size_combo()
        self.message.emit(f"Opened {path}")
        return True

    # -- autosave and recovery --------------------------------------------------------------------

    def _on_changed(self, _index: int) -> None:
        if self.autosave is not None:
            self.autosave.document_changed()

    def _project(self) -> ProjectData:
        """The design as saved: the canvas's data and the generation history."""
        history: str | None = self._vm.history_json()
        if len(history or "") > MAX_HISTORY_CHARS:  # not expected (the view-model bounds its history)
            log.warning("the image history (%d characters) is too long to keep with the design", len(history or ""))
            history = None
        return replace(self.canvas.project(), history=history)

    def _snapshot(self) -> ProjectData | None:
        return None if self.canvas.undo_stack.isClean() else self._project()

    def _path_text(self) -> str | None:
        return str(self.project_path) if self.project_path is not None else None

    def exec_dialog(self, dialog: QDialog) -> int:
        """Run a modal dialog (tests patch ``QDialog.exec`` so nothing blocks)."""
        return dialog.exec()

    def _ask_recovery(self, found: RecoveredProject) -> str:
        """Recover / Discard / Later for one unsaved design: its name and when it was autosaved."""
        name = Path(found.path).name if found.path else UNTITLED
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.entry.saved_at))
        layers = len(found.project.layers)
        dialog = ChoiceDialog(
            "designRecoveryDialog", "Recover unsaved design",
            f"The design “{name}” ({layers} layer{'s' if layers != 1 else ''}, autosaved {when}) was "
            f"not saved when AIGC Studio last stopped.\n\nRecover it (it stays unsaved until you save it), "
            f"discard it for good, or decide at the next start?",
            [("recover", "Recover"), ("discard", "Discard"), ("later", "Later")], self)
        self.exec_dialog(dialog)
        return dialog.choice

    def recover(self) -> bool:
        """Offer the designs a crash or a kill left unsaved, newest first: Recover restores one (it stays
        unsaved) and stops, Discard removes it and offers the next, Later keeps it and the rest for the
        next start. True when a design was restored."""
        if self._store is None:
            return False
        found, problems = pending_project_recoveries(self._store)
        for problem in problems:
            log.warning("design recovery: %s", problem)
        for item in found:
            choice = self._ask_recovery(item)
            if choice == "discard":
                self._store.discard(item.entry)
                continue
            if choice == "recover":
                self._restore(item)
                return True
            break  # later: this one and the older ones wait for the next start
        return False

    def _restore(self, item: RecoveredProject) -> None:
        self.project_path = Path(item.path) if item.path else None
        self.canvas.load_project(item.project)
        self.canvas.undo_stack.resetClean()  # unsaved, as it was when it was lost
        self._update_title()
        self._sync_size_combo()
        if item.project.history is not None and not self._vm.load_history_json(item.project.history):
            log.warning("design recovery: the image history was not restored: %s", self._vm.message)
        if self._store is not None:
            self._store.discard(item.entry)
        if self.autosave is not None:
            self.autosave.document_changed()  # kept again, by this session
        self.message.emit(f"Recovered {self.project_path.name if self.project_path else UNTITLED}, which was not "
                          "saved when AIGC Studio last stopped")

    def shutdown(self) -> None:
        """Stop the autosave and the library panel and end the design recovery session."""
        self.library.shutdown()
        if self.autosave is not None:
            self.autosave.shutdown()
            self.autosave = None
        if self._store is not None:
            self._store.close()

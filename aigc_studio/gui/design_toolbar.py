"""The Design workspace's canvas toolbar and its Arrange menu."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QToolBar, QToolButton, QWidget

from aigc_studio.core.project_schema import CANVAS_PRESETS
from aigc_studio.gui.canvas import EXPORT_SCALES, DesignCanvasView, arrange

if TYPE_CHECKING:
    from aigc_studio.gui.design_workspace import DesignWorkspace


def build_canvas_toolbar(ws: DesignWorkspace) -> QToolBar:
    """The canvas toolbar of ``ws``: size, new layers, undo, arrange, zoom, export, project files. Its
    size list is kept as ``ws.size_combo``."""
    bar = QToolBar("Canvas")
    bar.setObjectName("canvasToolbar")
    ws.size_combo = QComboBox()
    ws.size_combo.setObjectName("canvasSize")
    for preset in CANVAS_PRESETS:
        ws.size_combo.addItem(f"{preset.name} {preset.width}×{preset.height}", (preset.width, preset.height))
    ws.size_combo.addItem("Custom size…", None)
    ws.size_combo.activated.connect(ws.choose_size)
    bar.addWidget(QLabel(" Canvas "))
    bar.addWidget(ws.size_combo)
    bar.addSeparator()
    _tool(bar, "Text", lambda: ws.canvas.add_text("Text"), "addText")
    _tool(bar, "Rectangle", lambda: ws.canvas.add_shape("rect"), "addRect")
    _tool(bar, "Ellipse", lambda: ws.canvas.add_shape("ellipse"), "addEllipse")
    bar.addSeparator()
    undo = ws.canvas.undo_stack.createUndoAction(bar, "Undo")
    redo = ws.canvas.undo_stack.createRedoAction(bar, "Redo")
    bar.addActions([undo, redo])  # Edit > Undo (Ctrl+Z) reaches the canvas too while designing
    _tool(bar, "Delete", lambda: ws.canvas.remove(), "deleteLayers")
    arrange_button = QToolButton()
    arrange_button.setText("Arrange")
    arrange_button.setObjectName("arrangeButton")
    arrange_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    arrange_button.setMenu(arrange_menu(ws.canvas, ws.message.emit, arrange_button))
    bar.addWidget(arrange_button)
    _tool(bar, "Fit", ws.canvas.fit, "zoomFit")
    bar.addSeparator()
    export = QToolButton()
    export.setText("Export")
    export.setObjectName("exportButton")
    export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(export)
    for scale in EXPORT_SCALES:
        menu.addAction(f"PNG at {scale}×…", lambda s=scale: ws.export_png_file(scale=s))
    menu.addAction("SVG…", lambda: ws.export_svg_file())
    export.setMenu(menu)
    bar.addWidget(export)
    _tool(bar, "Open…", lambda: ws.open_project_file(), "openProject")
    _tool(bar, "Save…", lambda: ws.save_project_file(), "saveProject")
    return bar

def _tool(bar: QToolBar, text: str, slot: Callable[[], object], name: str) -> QAction:
    action = bar.addAction(text, slot)
    action.setObjectName(name)
    return action



def arrange_menu(canvas: DesignCanvasView, message: Callable[[str], object], parent: QWidget) -> QMenu:
    """Arrange: order, align, distribute, group, scale and rotate the selected layers (``message``
    says when nothing is selected)."""
    menu = QMenu(parent)

    def on_selection(action: Callable[[DesignCanvasView, list[str]], object]) -> Callable[[], None]:
        def run() -> None:
            if ids := canvas.selected_ids():
                action(canvas, ids)
            else:
                message("Select one or more layers first")
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


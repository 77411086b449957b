"""The layers panel: the canvas's layers top to bottom; select, show/hide, lock, rename, reorder."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.gui.canvas import arrange
from aigc_studio.gui.canvas.view import DesignCanvasView

__all__ = ["LayersPanel"]

NAME, VISIBLE, LOCKED = 0, 1, 2
ID_ROLE = Qt.ItemDataRole.UserRole


class LayersPanel(QWidget):
    """A list of ``canvas``'s layers, topmost first, bound to the canvas both ways.

    Ticking "Shown" or "Locked", renaming (double-click the name) and the Raise/Lower buttons are
    undoable canvas changes; selecting rows selects the layers.
    """

    def __init__(self, canvas: DesignCanvasView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Layer", "Shown", "Locked"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.raise_button = QPushButton("Raise", self)
        self.lower_button = QPushButton("Lower", self)
        self.delete_button = QPushButton("Delete", self)
        buttons = QHBoxLayout()
        for button in (self.raise_button, self.lower_button, self.delete_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self.raise_button.clicked.connect(lambda: arrange.bring_forward(canvas, canvas.selected_ids()))
        self.lower_button.clicked.connect(lambda: arrange.send_backward(canvas, canvas.selected_ids()))
        self.delete_button.clicked.connect(lambda: canvas.remove())
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemSelectionChanged.connect(self._on_rows_selected)
        canvas.layers_changed.connect(self.refresh)
        canvas.selection_changed.connect(self._on_canvas_selection_changed)
        self.refresh()

    def row(self, layer_id: str) -> QTreeWidgetItem:
        """The row of a layer (``KeyError`` if it is not listed)."""
        for index in range(self.tree.topLevelItemCount()):
            row = self.tree.topLevelItem(index)
            if row.data(NAME, ID_ROLE) == layer_id:
                return row
        raise KeyError(layer_id)

    def refresh(self) -> None:
        """Show the canvas's layers (topmost first): rows are updated in place when the layers are
        the same ones in the same order (a row may be in the middle of reporting a change)."""
        layers = list(reversed(self.canvas.layers()))
        rows = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        blocker = QSignalBlocker(self.tree)
        if [row.data(NAME, ID_ROLE) for row in rows] != [layer.id for layer in layers]:
            self.tree.clear()
            rows = []
            for layer in layers:
                row = QTreeWidgetItem()
                row.setData(NAME, ID_ROLE, layer.id)
                row.setFlags(row.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
                self.tree.addTopLevelItem(row)
                rows.append(row)
        selected = set(self.canvas.selected_ids())
        for row, layer in zip(rows, layers):
            row.setText(NAME, layer.name or layer.kind)
            row.setCheckState(VISIBLE, Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
            row.setCheckState(LOCKED, Qt.CheckState.Checked if layer.locked else Qt.CheckState.Unchecked)
            row.setToolTip(NAME, f"{layer.kind}{' (generated)' if layer.record else ''}")
            row.setSelected(layer.id in selected)
        del blocker

    def _on_item_changed(self, row: QTreeWidgetItem, column: int) -> None:
        layer_id = row.data(NAME, ID_ROLE)
        layer = self.canvas.layer(layer_id)
        if column == VISIBLE:
            shown = row.checkState(VISIBLE) == Qt.CheckState.Checked
            if shown != layer.visible:
                self.canvas.set_visible(layer_id, shown)
        elif column == LOCKED:
            locked = row.checkState(LOCKED) == Qt.CheckState.Checked
            if locked != layer.locked:
                self.canvas.set_locked(layer_id, locked)
        elif column == NAME and row.text(NAME) != layer.name:
            self.canvas.rename(layer_id, row.text(NAME))

    def _on_rows_selected(self) -> None:
        self.canvas.select(row.data(NAME, ID_ROLE) for row in self.tree.selectedItems())

    def _on_canvas_selection_changed(self, ids: list[str]) -> None:
        blocker = QSignalBlocker(self.tree)
        wanted = set(ids)
        for index in range(self.tree.topLevelItemCount()):
            row = self.tree.topLevelItem(index)
            row.setSelected(row.data(NAME, ID_ROLE) in wanted)
        del blocker

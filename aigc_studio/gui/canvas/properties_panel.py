"""The properties panel: the selected layers' place, size, text, colours and generation record.

Every edit is one undo step on the canvas. A spin box commits when its value is entered (Enter, focus
out) and on each arrow step; arrow steps of one field in a row join one step (the canvas's
``merge_key``) until the box finishes editing, the selection changes or the layers change elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QColorDialog,
    QDoubleSpinBox,
    QFontComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.core.png_record import RecordError, record_from_json
from aigc_studio.core.project_schema import ALIGNMENTS, Layer
from aigc_studio.gui.canvas.view import SHAPE_KINDS, DesignCanvasView
from aigc_studio.gui.settings_form import guard_wheel

__all__ = ["ColourButton", "PropertiesPanel"]


def _spin(low: float, high: float, suffix: str, decimals: int = 1, step: float = 1.0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)  # typing "120" is one value, not 1, 12 and 120
    box.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
    guard_wheel(box)
    return box


def _set(widget: QWidget, setter: Callable[[Any], None], value: Any) -> None:
    """Show ``value`` in ``widget`` without reporting it as an edit."""
    blocker = QSignalBlocker(widget)
    setter(value)
    del blocker


class ColourButton(QWidget):
    """A colour swatch button (click: choose a colour) with an optional button that clears it."""

    colour_chosen = Signal(str)
    """The user chose a colour: carries ``#rrggbb`` (``#aarrggbb`` when translucent), "" for none."""

    def __init__(self, title: str, none_text: str = "none", clear_text: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.none_text = none_text      # shown for ""
        self.colour = ""
        self.button = QPushButton(self)
        self.clear_button = QToolButton(self)  # sets "" (hidden without ``clear_text``)
        self.clear_button.setText(clear_text)
        self.clear_button.setVisible(bool(clear_text))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button, 1)
        layout.addWidget(self.clear_button)
        self.button.clicked.connect(self._on_clicked)
        self.clear_button.clicked.connect(lambda: self.colour_chosen.emit(""))

    def set_colour(self, colour: str) -> None:
        """Show ``colour`` ("" shows the "none" text); emits nothing."""
        self.colour = colour
        swatch = QPixmap(16, 16)
        swatch.fill(QColor(colour) if colour else QColor(Qt.GlobalColor.transparent))
        self.button.setIcon(QIcon(swatch))
        self.button.setText(colour or self.none_text)

    def _on_clicked(self) -> None:
        initial = QColor(self.colour) if self.colour else QColor(Qt.GlobalColor.black)
        chosen = QColorDialog.getColor(initial, self, self.title,
                                       QColorDialog.ColorDialogOption.ShowAlphaChannel)
        if chosen.isValid():
            fmt = QColor.NameFormat.HexRgb if chosen.alpha() == 255 else QColor.NameFormat.HexArgb
            self.colour_chosen.emit(chosen.name(fmt))


class PropertiesPanel(QWidget):
    """The properties of ``canvas``'s selected layers, edited as undoable canvas changes.

    One layer: its name, position, scale, rotation and the fields of its kind. Several: scale and
    rotation (and a kind's fields when all are of that kind), applied to all. None: a hint.
    """

    restore_generation_requested = Signal(str)
    """"Open in Generate" was pressed on a generated image: carries its generation record's JSON."""

    def __init__(self, canvas: DesignCanvasView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self._ids: list[str] = []
        self._record = ""
        self._session = 0        # arrow steps merge within one session of one field
        self._editing = False    # our own change is being applied
        self.hint = QLabel("Select a layer", self)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        for group in (self._build_layout_group(), self._build_text_group(), self._build_shape_group(),
                      self._build_icon_group(), self._build_record_group()):
            layout.addWidget(group)
        layout.addStretch(1)
        canvas.selection_changed.connect(self._on_selection_changed)
        canvas.layers_changed.connect(self._on_layers_changed)
        self.refresh()

    # ------------------------------------------------------------------------------------------ building

    def _build_layout_group(self) -> QGroupBox:
        self.layout_group = QGroupBox("Layer", self)
        self.name_edit = QLineEdit()
        self.x_spin = _spin(-80000, 80000, " px")
        self.y_spin = _spin(-80000, 80000, " px")
        self.scale_spin = _spin(1, 10000, " %", step=5)
        self.rotation_spin = _spin(-3600, 3600, "°", step=5)
        self.layout_form = QFormLayout(self.layout_group)
        for title, widget in (("Name", self.name_edit), ("X", self.x_spin), ("Y", self.y_spin),
                              ("Scale", self.scale_spin), ("Rotation", self.rotation_spin)):
            self.layout_form.addRow(title, widget)
        self.name_edit.editingFinished.connect(self._on_name_changed)
        self._bind_spin(self.x_spin, "x", "Move", 1.0)
        self._bind_spin(self.y_spin, "y", "Move", 1.0)
        self._bind_spin(self.scale_spin, "scale", "Scale", 0.01)
        self._bind_spin(self.rotation_spin, "rotation", "Rotate", 1.0)
        return self.layout_group

    def _build_text_group(self) -> QGroupBox:
        self.text_group = QGroupBox("Text", self)
        self.font_combo = guard_wheel(QFontComboBox())
        self.font_size_spin = _spin(1, 2000, " px")
        self.colour_button = ColourButton("Text colour")
        self.align_buttons = QButtonGroup(self)
        row = QHBoxLayout()
        for index, (align, label) in enumerate(zip(ALIGNMENTS, ("Left", "Center", "Right"), strict=True)):
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setToolTip(f"Align {align}")
            self.align_buttons.addButton(button, index)
            row.addWidget(button)
        form = QFormLayout(self.text_group)
        form.addRow("Font", self.font_combo)
        form.addRow("Size", self.font_size_spin)
        form.addRow("Colour", self.colour_button)
        form.addRow("Align", row)
        self.font_combo.currentFontChanged.connect(
            lambda font: self._commit({"font_family": font.family()}, "Change font"))
        self._bind_spin(self.font_size_spin, "font_size", "Change text size", 1.0)
        self.colour_button.colour_chosen.connect(lambda c: self._commit({"color": c}, "Change text colour"))
        self.align_buttons.idClicked.connect(
            lambda index: self._commit({"align": ALIGNMENTS[index]}, "Align text"))
        return self.text_group

    def _build_shape_group(self) -> QGroupBox:
        self.shape_group = QGroupBox("Fill and outline", self)
        self.fill_button = ColourButton("Fill colour", "none", "No fill")
        self.outline_button = ColourButton("Outline colour", "none", "No outline")
        self.outline_width_spin = _spin(0, 500, " px")
        form = QFormLayout(self.shape_group)
        form.addRow("Fill", self.fill_button)
        form.addRow("Outline", self.outline_button)
        form.addRow("Outline width", self.outline_width_spin)
        self.fill_button.colour_chosen.connect(lambda c: self._commit({"fill": c}, "Change fill"))
        self.outline_button.colour_chosen.connect(lambda c: self._commit({"outline": c}, "Change outline"))
        self._bind_spin(self.outline_width_spin, "outline_width", "Change outline width", 1.0)
        return self.shape_group

    def _build_icon_group(self) -> QGroupBox:
        self.icon_group = QGroupBox("Stroke", self)
        self.stroke_button = ColourButton("Stroke colour", "as drawn", "Reset")
        self.stroke_width_spin = _spin(0, 500, " px", step=0.5)
        self.stroke_width_spin.setSpecialValueText("as drawn")
        form = QFormLayout(self.icon_group)
        form.addRow("Colour", self.stroke_button)
        form.addRow("Width", self.stroke_width_spin)
        self.stroke_button.colour_chosen.connect(lambda c: self._commit({"stroke": c}, "Recolour icon"))
        self._bind_spin(self.stroke_width_spin, "stroke_width", "Recolour icon", 1.0)
        return self.icon_group

    def _build_record_group(self) -> QGroupBox:
        self.record_group = QGroupBox("Generation", self)
        self.record_label = QLabel()
        self.record_label.setWordWrap(True)
        self.record_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open in Generate")
        self.open_button.setToolTip("Load this image's model, seed and settings into the Generate panel")
        layout = QVBoxLayout(self.record_group)
        layout.addWidget(self.record_label)
        layout.addWidget(self.open_button)
        self.open_button.clicked.connect(lambda: self.restore_generation_requested.emit(self._record))
        return self.record_group

    def _bind_spin(self, box: QDoubleSpinBox, name: str, text: str, factor: float) -> None:
        """Commit ``box``'s value times ``factor`` as field ``name``; arrow steps merge."""
        box.valueChanged.connect(lambda value: self._commit({name: value * factor}, text, merge=name))
        box.editingFinished.connect(self._end_session)

    # ------------------------------------------------------------------------------------------ editing

    def _commit(self, fields: dict[str, Any], text: str, merge: str = "") -> None:
        """Set ``fields`` on every shown layer as one undo step (joined to the last with ``merge``)."""
        if not self._ids:
            return
        key = f"properties:{self._session}:{merge}" if merge else ""
        if not merge:
            self._end_session()
        self._editing = True
        try:
            self.canvas.change({layer_id: dict(fields) for layer_id in self._ids}, text, merge_key=key)
        finally:
            self._editing = False
        self.refresh()

    def _end_session(self) -> None:
        self._session += 1

    def _on_name_changed(self) -> None:
        if len(self._ids) == 1 and self.name_edit.text() != self.canvas.layer(self._ids[0]).name:
            self._commit({"name": self.name_edit.text()}, "Rename layer")

    def _on_selection_changed(self, ids: list[str]) -> None:
        self._end_session()
        self.refresh()

    def _on_layers_changed(self) -> None:
        if not self._editing:  # undo, redo, a drag: later arrow steps are a new step
            self._end_session()
            self.refresh()

    # ------------------------------------------------------------------------------------------ showing

    def refresh(self) -> None:
        """Show the selected layers' properties (the controls report nothing while being filled)."""
        self._ids = self.canvas.selected_ids()
        layers = [self.canvas.layer(i) for i in self._ids]
        kinds = {layer.kind for layer in layers}
        single = len(layers) == 1
        self.hint.setVisible(not layers)
        self.layout_group.setVisible(bool(layers))
        self.text_group.setVisible(kinds == {"text"})
        self.shape_group.setVisible(bool(kinds) and kinds <= set(SHAPE_KINDS))
        self.icon_group.setVisible(kinds == {"svg"} and all(layer.recolourable for layer in layers))
        self.record_group.setVisible(single and layers[0].kind == "image" and layers[0].record is not None)
        if not layers:
            return
        first = layers[0]
        self.layout_group.setTitle(f"{_kind_title(first)} layer" if single else f"{len(layers)} layers")
        for widget in (self.name_edit, self.x_spin, self.y_spin):
            self.layout_form.setRowVisible(widget, single)
        _set(self.name_edit, self.name_edit.setText, first.name)
        _set(self.x_spin, self.x_spin.setValue, first.x)
        _set(self.y_spin, self.y_spin.setValue, first.y)
        _set(self.scale_spin, self.scale_spin.setValue, first.scale * 100)
        _set(self.rotation_spin, self.rotation_spin.setValue, first.rotation)
        self._fill_kind(first)

    def _fill_kind(self, layer: Layer) -> None:
        """Fill the controls of ``layer``'s kind (several layers show the first one's values)."""
        if not self.text_group.isHidden():
            _set(self.font_combo, self.font_combo.setCurrentFont, QFont(layer.font_family))
            _set(self.font_size_spin, self.font_size_spin.setValue, layer.font_size)
            self.colour_button.set_colour(layer.color)
            button = self.align_buttons.button(ALIGNMENTS.index(layer.align))
            _set(button, button.setChecked, True)
        if not self.shape_group.isHidden():
            self.fill_button.set_colour(layer.fill)
            self.outline_button.set_colour(layer.outline)
            _set(self.outline_width_spin, self.outline_width_spin.setValue, layer.outline_width)
        if not self.icon_group.isHidden():
            self.stroke_button.set_colour(layer.stroke)
            _set(self.stroke_width_spin, self.stroke_width_spin.setValue, layer.stroke_width)
        if not self.record_group.isHidden():
            self._record = layer.record or ""
            summary, readable = _record_summary(self._record)
            self.record_label.setText(summary)
            self.open_button.setEnabled(readable)

    def alignment(self) -> str:
        """The alignment the buttons show (for tests and the status bar)."""
        return ALIGNMENTS[max(0, self.align_buttons.checkedId())]


def _kind_title(layer: Layer) -> str:
    if layer.kind == "svg":
        return "Icon" if layer.recolourable else "Emoji"
    return {"image": "Generated image" if layer.record else "Image", "text": "Text", "rect": "Rectangle",
            "ellipse": "Ellipse"}.get(layer.kind, layer.kind)


def _record_summary(record_json: str) -> tuple[str, bool]:
    """Model, seed and ψ of a generation record and True, or why it cannot be read and False."""
    try:
        record = record_from_json(record_json, allow_edited=True)
    except RecordError as error:
        return f"The generation record cannot be read: {error}", False
    lines = [f"Model: {record.model}", f"Seed: {record.seed}", f"Truncation ψ: {record.psi:g}"]
    if record.mix_seed is not None:
        lines.append(f"Mixed with seed {record.mix_seed} ({record.mix_layers})")
    if record.text:
        lines.append(f"Description: {record.text}")
    return "\n".join(lines), True

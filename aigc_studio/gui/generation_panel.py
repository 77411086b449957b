"""The Design workspace's generation panel: the controls of an image model bound to a
:class:`~aigc_studio.viewmodels.image.GenerationViewModel`.

Every control asks for a new preview per value change (while a slider is dragged too); the image
service coalesces the requests, so the preview keeps up. The view-model's ``settings_changed`` sets
the controls back under signal blockers, so nothing loops. Wheel events change a control only when it
has the focus (:func:`~aigc_studio.gui.settings_form.guard_wheel`).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.services.image_models import ImageModelSpec, ImageSettings
from aigc_studio.services.image_service import GeneratedImage
from aigc_studio.viewmodels.image import (
    DEFAULT_FRAMES,
    DIRECTION_RANGE,
    MAX_FRAMES,
    MIN_FRAMES,
    GenerationViewModel,
    HistoryEntry,
)

from .image_preview import IMAGE_MIME, ImagePreviewWidget, rgba_pixmap
from .settings_form import guard_wheel

__all__ = ["GenerationPanel"]

SEED_LIMIT = 2**32 - 1
THUMB = 48


def _slider(lo: int, hi: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(lo, hi)
    guard_wheel(slider)
    return slider


def _seed_box() -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(0)
    box.setRange(0, SEED_LIMIT)
    box.setKeyboardTracking(False)
    guard_wheel(box)
    return box


def _icon_list(wrap: bool) -> QListWidget:
    view = QListWidget()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setIconSize(QSize(THUMB, THUMB))
    view.setMovement(QListView.Movement.Static)
    view.setWrapping(wrap)
    view.setFlow(QListView.Flow.LeftToRight)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setGridSize(QSize(THUMB + 8, THUMB + 8))
    return view


class GenerationPanel(QWidget):
    """Model, description, seed, ψ, mixing, directions, preview, variations and history of the image
    model, bound to ``view_model``."""

    add_to_canvas_requested = Signal(bytes, str)
    """The user asked to put the image on show onto the canvas: carries its PNG bytes (with the
    record) and the record's JSON."""

    def __init__(self, view_model: GenerationViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = view_model
        self.setAcceptDrops(True)
        self._build()
        self._connect()
        self._on_models_changed(view_model.models)
        self._on_spec_changed(view_model.spec)
        self._on_settings_changed(view_model.settings)

    # -- layout -----------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_combo = guard_wheel(QComboBox())
        self.refresh_button = QPushButton("Refresh")
        self.preview = ImagePreviewWidget()
        self.smooth_box = QCheckBox("Smooth scaling")
        self.add_button = QPushButton("Add to canvas")
        self.describe_edit = QLineEdit()
        self.describe_edit.setPlaceholderText("Describe: e.g. red heart")
        self.describe_label = QLabel()
        self.describe_label.setWordWrap(True)
        self.seed_box = _seed_box()
        self.random_button = QPushButton("Random")
        self.psi_slider = _slider(-100, 200)
        self.psi_label = QLabel()
        self.mix_box = QCheckBox("Mix styles from seed")
        self.mix_seed_box = _seed_box()
        self.mix_layers_combo = guard_wheel(QComboBox())
        self.mix_layers_combo.setEditable(True)
        self.mix_layers_combo.setToolTip("coarse, middle, fine, or a range of layers A:B")
        self.direction_form = QFormLayout()
        self.direction_sliders: list[QSlider] = []
        self.variations_button = QPushButton("Variations")
        self.variations_view = _icon_list(wrap=True)
        self.variations_view.setFixedSize(4 * (THUMB + 8) + 8, 4 * (THUMB + 8) + 8)
        self.history_view = _icon_list(wrap=False)
        self.history_view.setFixedHeight(THUMB + 28)
        self.history_view.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.interpolate_button = QPushButton("Interpolate… (export animation)")
        self.frames_box = QSpinBox()
        guard_wheel(self.frames_box)
        self.frames_box.setObjectName("interpolationFrames")
        self.frames_box.setRange(MIN_FRAMES, MAX_FRAMES)
        self.frames_box.setValue(DEFAULT_FRAMES)
        self.frames_box.setSuffix(" frames")
        self.frames_box.setToolTip(f"How many images the animation has ({MIN_FRAMES} to {MAX_FRAMES}), both "
                                   "picks included")
        self.breed_button = QPushButton("Breed")
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self._lay_out()

    def _row(self, *widgets: QWidget) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        return row

    def _lay_out(self) -> None:
        """One column, so that the panel fits the Design workspace's side bar: the image on top, then
        its controls, the variations and the history."""
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Model", self._row(self.model_combo, self.refresh_button))
        form.addRow("Describe", self.describe_edit)
        form.addRow("", self.describe_label)
        form.addRow("Seed", self._row(self.seed_box, self.random_button))
        form.addRow("Truncation ψ", self._row(self.psi_slider, self.psi_label))
        form.addRow(self.mix_box)
        form.addRow("", self._row(self.mix_seed_box, self.mix_layers_combo))
        self.preview.setMinimumHeight(220)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self._row(self.smooth_box, self.add_button))
        layout.addLayout(form)
        layout.addLayout(self.direction_form)
        layout.addWidget(self._row(self.variations_button))
        layout.addWidget(self.variations_view)
        layout.addWidget(QLabel("History (select two to interpolate or breed)"))
        layout.addWidget(self.history_view)
        layout.addWidget(self._row(self.interpolate_button, self.frames_box))
        layout.addWidget(self._row(self.breed_button))
        layout.addWidget(self.message_label)

    def _connect(self) -> None:
        vm = self.vm
        vm.models_changed.connect(self._on_models_changed)
        vm.model_changed.connect(self._on_model_changed)
        vm.spec_changed.connect(self._on_spec_changed)
        vm.settings_changed.connect(self._on_settings_changed)
        vm.describe_message_changed.connect(self.describe_label.setText)
        vm.smooth_changed.connect(self.preview.set_smooth)
        vm.image_changed.connect(self.preview.set_image)
        vm.variations_changed.connect(self._on_variations_changed)
        vm.history_changed.connect(self._on_history_changed)
        vm.message_changed.connect(self.message_label.setText)
        self.model_combo.currentTextChanged.connect(self._on_model_chosen)
        self.refresh_button.clicked.connect(vm.refresh_models)
        self.smooth_box.toggled.connect(vm.set_smooth)
        self.add_button.clicked.connect(self._on_add_clicked)
        self.describe_edit.textChanged.connect(vm.set_text)
        self.seed_box.valueChanged.connect(lambda v: vm.set_seed(int(v)))
        self.random_button.clicked.connect(vm.randomize_seed)
        self.psi_slider.valueChanged.connect(lambda v: vm.set_psi(v / 100))
        self.mix_box.toggled.connect(self._on_mixing_edited)
        self.mix_seed_box.valueChanged.connect(self._on_mixing_edited)
        self.mix_layers_combo.currentTextChanged.connect(self._on_mixing_edited)
        self.variations_button.clicked.connect(vm.request_variations)
        self.variations_view.itemClicked.connect(
            lambda item: vm.pick_variation(self.variations_view.row(item)))
        self.history_view.itemClicked.connect(lambda item: vm.restore(int(item.data(Qt.ItemDataRole.UserRole))))
        self.interpolate_button.clicked.connect(self._on_interpolate_clicked)
        self.breed_button.clicked.connect(self._on_breed_clicked)

    # -- from the view-model ----------------------------------------------------------------------

    def _on_models_changed(self, names: list[str]) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(names)
        self.model_combo.setCurrentText(self.vm.model)
        self.model_combo.blockSignals(False)

    def _on_model_changed(self, name: str) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.setCurrentText(name)
        self.model_combo.blockSignals(False)

    def _on_spec_changed(self, spec: ImageModelSpec | None) -> None:
        while self.direction_form.rowCount():
            self.direction_form.removeRow(0)
        self.direction_sliders = []
        step = int(DIRECTION_RANGE * 100)
        for index in range(self.vm.direction_count()):
            slider = _slider(-step, step)
            slider.valueChanged.connect(lambda v, i=index: self.vm.set_direction(i, v / 100))
            self.direction_sliders.append(slider)
            self.direction_form.addRow(f"Direction {index}", slider)
        self.mix_layers_combo.blockSignals(True)
        self.mix_layers_combo.clear()
        self.mix_layers_combo.addItems(self.vm.mix_choices())
        self.mix_layers_combo.blockSignals(False)
        styled = spec is not None and spec.style_based
        for widget in (self.psi_slider, self.mix_box, self.mix_seed_box, self.mix_layers_combo,
                       self.breed_button):
            widget.setEnabled(styled)
        self.describe_edit.setEnabled(spec is None or spec.conditional)
        self._on_settings_changed(self.vm.settings)

    def _on_settings_changed(self, settings: ImageSettings) -> None:
        widgets = [self.describe_edit, self.seed_box, self.psi_slider, self.mix_box, self.mix_seed_box,
                   self.mix_layers_combo, *self.direction_sliders]
        for widget in widgets:
            widget.blockSignals(True)
        if self.describe_edit.text() != settings.text:
            self.describe_edit.setText(settings.text)
        self.seed_box.setValue(settings.seed)
        self.psi_slider.setValue(round(settings.psi * 100))
        self.psi_label.setText(f"{settings.psi:.2f}")
        self.mix_box.setChecked(settings.mixing)
        if settings.mixing:
            self.mix_seed_box.setValue(settings.mix_seed or 0)
            self.mix_layers_combo.setCurrentText(settings.mix_layers or "")
        offsets = dict(settings.directions)
        for index, slider in enumerate(self.direction_sliders):
            slider.setValue(round(offsets.get(index, 0.0) * 100))
        for widget in widgets:
            widget.blockSignals(False)

    def _on_variations_changed(self, images: list[GeneratedImage]) -> None:
        self.variations_view.clear()
        for image in images:
            item = QListWidgetItem(QIcon(rgba_pixmap(image)), "")
            item.setToolTip(f"seed {image.settings.seed}")
            self.variations_view.addItem(item)

    def _on_history_changed(self, entries: list[HistoryEntry]) -> None:
        self.history_view.clear()
        for entry in entries:
            icon = QIcon(rgba_pixmap(entry.image)) if entry.image is not None else QIcon()
            item = QListWidgetItem(icon, "" if entry.image is not None else str(entry.settings.seed))
            item.setData(Qt.ItemDataRole.UserRole, entry.entry_id)
            lineage = f", bred from {entry.parents[0]} and {entry.parents[1]}" if len(entry.parents) == 2 else ""
            item.setToolTip(f"#{entry.entry_id}: seed {entry.settings.seed}{lineage}")
            self.history_view.addItem(item)
        self.history_view.scrollToBottom()

    # -- to the view-model ------------------------------------------------------------------------

    def _on_model_chosen(self, name: str) -> None:
        if name:
            self.vm.set_model(name)

    def _on_mixing_edited(self, *_: object) -> None:
        if not self.mix_box.isChecked():
            self.vm.set_mixing(None, None)
            return
        layers = self.mix_layers_combo.currentText().strip() or (self.vm.mix_choices() or ["0:1"])[0]
        self.vm.set_mixing(int(self.mix_seed_box.value()), layers)

    def _on_add_clicked(self) -> None:
        image = self.vm.current
        if image is not None:
            self.vm.keep()
            self.add_to_canvas_requested.emit(image.png, image.record.to_json())

    def selected_entries(self) -> list[int]:
        """The ids of the selected history entries, in history order."""
        rows = sorted(self.history_view.row(item) for item in self.history_view.selectedItems())
        return [int(self.history_view.item(row).data(Qt.ItemDataRole.UserRole)) for row in rows]

    def _two_picks(self) -> tuple[int, int] | None:
        picks = self.selected_entries()
        if len(picks) != 2:
            self.message_label.setText("Select two images of the history (Ctrl+click).")
            return None
        return picks[0], picks[1]

    def _on_interpolate_clicked(self) -> None:
        picks = self._two_picks()
        if picks is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export animation", "interpolation.gif",
                                              "Animated GIF (*.gif);;Animated WebP (*.webp)")
        if path:
            self.vm.export_animation(path, *picks, frames=self.frames_box.value())

    def _on_breed_clicked(self) -> None:
        picks = self._two_picks()
        if picks is not None:
            self.vm.breed(*picks)

    # -- PNG drop ---------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasFormat(IMAGE_MIME) or mime.hasFormat("image/png") or any(
                url.toLocalFile().lower().endswith(".png") for url in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        if mime.hasFormat(IMAGE_MIME) or mime.hasFormat("image/png"):
            key = IMAGE_MIME if mime.hasFormat(IMAGE_MIME) else "image/png"
            self.vm.restore_from_png(bytes(mime.data(key).data()))
        else:
            paths = [url.toLocalFile() for url in mime.urls() if isinstance(url, QUrl) and url.isLocalFile()]
            if paths:
                self.vm.restore_from_png_file(paths[0])
        event.acceptProposedAction()

"""The sampling panel (a dock): model, device and threads, preset, strategy and its settings, seed.

Built from the setting declarations; the settings that the chosen strategy does not use are greyed
out. When the GPU cannot be used, the panel says why (the runtime's device note).
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Slot
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.core.sampling import FIELDS
from aigc_studio.services.models import ModelInfo, ModelStatus
from aigc_studio.services.settings import OPTIONS, Settings, sampling_key
from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel

from .settings_form import SettingsForm

__all__ = ["SamplingPanel"]

# Which decoding settings each strategy uses (the others are greyed out).
_USED_BY: dict[str, frozenset[str]] = {
    "greedy": frozenset({"repetition_penalty", "repetition_window", "max_new_tokens", "stop"}),
    "sample": frozenset({"temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                         "repetition_window", "num_return", "max_new_tokens", "seed", "stop"}),
    "beam": frozenset({"num_beams", "length_penalty", "num_return", "repetition_penalty",
                       "repetition_window", "max_new_tokens", "stop"}),
}
_USED_BY["top-k"] = _USED_BY["sample"]
_USED_BY["top-p"] = _USED_BY["sample"]

_SAMPLING_ORDER = ("temperature", "top_k", "top_p", "min_p", "num_beams", "length_penalty",
                   "repetition_penalty", "repetition_window", "num_return", "max_new_tokens",
                   "seed", "stop")


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


class SamplingPanel(QWidget):
    """The contents of the "Sampling" dock."""

    def __init__(self, settings: Settings, model: ModelViewModel, sampling: SamplingViewModel,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("samplingPanel")
        self._settings = settings
        self._model = model
        self._sampling = sampling

        # Model: which package, where it runs, with how many threads.
        model_box = QGroupBox("Model", self)
        model_form = QFormLayout(model_box)
        self.model_combo = QComboBox(model_box)
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setToolTip(OPTIONS["model/name"].help)
        self.model_combo.currentIndexChanged.connect(self._on_model_combo_changed)
        reload_button = QPushButton("Reload", model_box)
        reload_button.setToolTip("Load the model again (for example after installing a package)")
        reload_button.clicked.connect(model.load)
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(reload_button)
        model_form.addRow("Model", row)
        device_form = SettingsForm(settings, ["model/device", "model/threads", "model/spin"], model_box)
        self.device_combo: QComboBox = device_form.editors["model/device"]  # type: ignore[assignment]
        threads = device_form.editors["model/threads"]
        threads.setSpecialValueText("Auto")  # type: ignore[attr-defined]
        model_form.addRow(device_form)
        self.gpu_note = QLabel(model_box)
        self.gpu_note.setObjectName("gpuNote")
        self.gpu_note.setWordWrap(True)
        self.gpu_note.hide()
        model_form.addRow(self.gpu_note)
        self.status_label = QLabel(model_box)
        self.status_label.setObjectName("modelStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        model_form.addRow(self.status_label)

        # Decoding: preset, strategy, then the strategy's settings.
        decoding_box = QGroupBox("Decoding", self)
        decoding_layout = QVBoxLayout(decoding_box)
        preset_row = QFormLayout()
        self.preset_combo = QComboBox(decoding_box)
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.addItem("Custom", "")
        for name in sampling.presets:
            self.preset_combo.addItem(name, name)
        self.preset_combo.setToolTip("Starting points for the settings below; the seed, the length "
                                     "and the stop mode stay as they are")
        self.preset_combo.activated.connect(self._on_preset_activated)
        preset_row.addRow("Preset", self.preset_combo)
        decoding_layout.addLayout(preset_row)
        self.form = SettingsForm(settings, [sampling_key("strategy")]
                                 + [sampling_key(name) for name in _SAMPLING_ORDER
                                    if name in FIELDS], decoding_box)
        decoding_layout.addWidget(self.form)

        suggestion_box = QGroupBox("Suggestions", self)
        suggestion_layout = QVBoxLayout(suggestion_box)
        suggestion_layout.addWidget(SettingsForm(
            settings, ["completion/enabled", "completion/max_words", "completion/debounce_ms",
                       "continue/max_new_tokens", "continue/style", "continue/stop"], suggestion_box))

        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.addWidget(model_box)
        layout.addWidget(decoding_box)
        layout.addWidget(suggestion_box)
        layout.addStretch(1)
        content.setMinimumWidth(content.sizeHint().width())
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        model.models_changed.connect(self._on_models_changed)
        model.status_changed.connect(self._on_status_changed)
        model.gpu_changed.connect(self._update_gpu_item)
        sampling.preset_changed.connect(self._on_preset_changed)
        settings.changed.connect(self._on_setting_changed)
        self._on_models_changed(model.models)
        self._on_status_changed(model.status)
        self._on_preset_changed(sampling.preset)
        self._update_enabled()

    # -- model ------------------------------------------------------------------------------------

    @Slot(list)
    def _on_models_changed(self, models: list[ModelInfo]) -> None:
        blocker = QSignalBlocker(self.model_combo)
        self.model_combo.clear()
        self.model_combo.addItem("Default", "")
        for info in models:
            self.model_combo.addItem(f"{info.name} ({_size(info.size_bytes)})", info.name)
            index = self.model_combo.count() - 1
            tip = "\n".join(x for x in (info.path, info.licence and f"Licence: {info.licence}",
                                        info.source and f"Source: {info.source}") if x)
            self.model_combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        chosen = str(self._settings.value("model/name"))
        index = self.model_combo.findData(chosen)
        if index < 0 and chosen:
            self.model_combo.addItem(f"{chosen} (not installed)", chosen)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(max(index, 0))
        blocker.unblock()

    @Slot(int)
    def _on_model_combo_changed(self, index: int) -> None:
        self._settings.set_value("model/name", str(self.model_combo.itemData(index) or ""))

    @Slot(object)
    def _on_status_changed(self, status: ModelStatus) -> None:
        if status.state == "ready":
            text = f"Ready: {status.name} on {status.device or 'CPU'}"
            if status.context_length:
                text += f", {status.context_length} tokens of context"
        elif status.state == "loading":
            text = f"Loading {status.name or 'the model'}\u2026"
        elif status.state == "failed":
            text = f"<b>Not loaded</b>: {status.error}"
        else:
            text = "No model loaded yet"
        gpu = self._model.gpu
        known = gpu is not None and not gpu[0] and gpu[1] == status.device_note
        if status.device_note and status.state == "ready" and not known:
            text += f"<br><i>GPU not used: {status.device_note}</i>"
        self.status_label.setText(text)
        self._update_gpu_item()

    @Slot()
    def _update_gpu_item(self) -> None:
        """The GPU entry of the device list says whether, and why not, the GPU can be used."""
        gpu = self._model.gpu
        items = self.device_combo.model()
        index = self.device_combo.findData("gpu")
        if not isinstance(items, QStandardItemModel) or index < 0:
            return
        item = items.item(index)
        if gpu is not None and not gpu[0]:
            item.setText("GPU (not available)")
            item.setToolTip(f"The GPU cannot be used: {gpu[1]}")
            self.gpu_note.setText(f"GPU not available: {gpu[1]}")
            self.gpu_note.show()
        else:
            item.setText("GPU")
            item.setToolTip("Run the model on the GPU (CUDA)")
            self.gpu_note.hide()

    # -- decoding ---------------------------------------------------------------------------------

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self._sampling.apply_preset(name)

    @Slot(str)
    def _on_preset_changed(self, name: str) -> None:
        blocker = QSignalBlocker(self.preset_combo)
        self.preset_combo.setCurrentIndex(max(self.preset_combo.findData(name), 0))
        blocker.unblock()

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key == sampling_key("strategy"):
            self._update_enabled()
        elif key == "model/name":
            index = self.model_combo.findData(value)
            if index >= 0:
                blocker = QSignalBlocker(self.model_combo)
                self.model_combo.setCurrentIndex(index)
                blocker.unblock()

    def _update_enabled(self) -> None:
        strategy = str(self._settings.value(sampling_key("strategy")))
        used = _USED_BY.get(strategy, frozenset(FIELDS))
        for key, editor in self.form.editors.items():
            name = key.split("/", 1)[1]
            if name == "strategy":
                continue
            enabled = name in used
            editor.setEnabled(enabled)
            label = self.form.layout_.labelForField(editor)
            if label is not None:
                label.setEnabled(enabled)

"""The sampling panel (a dock): the preset and the suggestions first, then the model, then, behind
"Advanced" (folded by default, remembered in the settings), the decoding strategy and its settings,
the pause before a suggestion, threads and busy-waiting.

Built from the setting declarations; the settings that the chosen strategy does not use are greyed
out. A note under the preset says what the choice costs. The GPU's unavailability is said only where
it matters: on the device list's GPU entry, and under it when the GPU was chosen.
"""

from __future__ import annotations

import re

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
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.core.sampling import FIELDS, PRESETS, SamplingConfig
from aigc_studio.services.models import ModelInfo, ModelState, ModelStatus
from aigc_studio.services.settings import (
    CONTINUE_STOP,
    CONTINUE_STYLE,
    CONTINUE_TOKENS,
    DEBOUNCE_DELAY,
    INLINE_SUGGESTIONS,
    MAX_WORDS,
    MODEL_DEVICE,
    MODEL_NAME,
    MODEL_SPIN,
    MODEL_THREADS,
    PANEL_ADVANCED,
    SAMPLING,
    Settings,
)
from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel

from .settings_form import SettingsForm, guard_wheel

__all__ = ["SamplingPanel", "cost_note", "plain_gpu_reason"]

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

_BEAM_TIP = ("Beam search follows several candidate continuations at once: several times the work of "
             "greedy decoding, a second or more per suggestion on a CPU. Suggestions as you type "
             "therefore stay greedy; the beams give the alternatives (Alt+]).")


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


def _compact(form: QFormLayout) -> QFormLayout:
    """A form in a narrow panel: no margins of its own inside a group, and fields go under their
    labels when the panel is too narrow for both on one line."""
    form.setContentsMargins(0, 0, 0, 0)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


def cost_note(config: SamplingConfig) -> str:
    """What decoding with ``config`` gives and costs, in a writer's words."""
    if config.is_beam:
        return (f"Suggestions as you type: greedy (the most likely words), to keep up with your "
                f"typing. Alternatives (Alt+]): beam search over {config.num_beams} candidates, "
                f"several times the work: they can take a second or more on a CPU.")
    if config.is_greedy:
        return "The most likely words: the quickest suggestions, the same each time."
    return f"More varied words ({config.describe()}), as quick as Fast; different each time."


def plain_gpu_reason(reason: str) -> str:
    """The runtime's reason for not using the GPU without onnxruntime's provider list."""
    text = reason.split("; available:", 1)[0]
    text = re.sub(r"\s*\b\w+ExecutionProvider\b,?", "", text).strip().rstrip(";,")
    return text or "no usable GPU was found"


class SamplingPanel(QWidget):
    """The contents of the "Sampling" dock."""

    def __init__(self, settings: Settings, model: ModelViewModel, sampling: SamplingViewModel,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("samplingPanel")
        self._settings = settings
        self._model = model
        self._sampling = sampling
        suggestion_box = self._build_suggestions(settings, sampling)
        model_box = self._build_model_section(settings, model)
        self._build_advanced(settings)
        self._build_scroll(suggestion_box, model_box)
        self._connect(settings, model, sampling)

    # -- building ---------------------------------------------------------------------------------

    def _build_suggestions(self, settings: Settings, sampling: SamplingViewModel) -> QGroupBox:
        """Suggestions: the preset first, what it costs, then length and Continue."""
        suggestion_box = QGroupBox("Suggestions", self)
        suggestion_layout = QVBoxLayout(suggestion_box)
        preset_row = _compact(QFormLayout())
        self.preset_combo = guard_wheel(QComboBox(suggestion_box))
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.addItem("Custom", "")
        for name in sampling.presets:
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, cost_note(PRESETS[name]),
                                          Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setToolTip("How the model picks its words (the settings under Advanced); "
                                     "the seed, the length and the stop mode stay as they are")
        self.preset_combo.activated.connect(self._on_preset_activated)
        preset_row.addRow("Preset", self.preset_combo)
        suggestion_layout.addLayout(preset_row)
        self.preset_note = QLabel(suggestion_box)
        self.preset_note.setObjectName("presetNote")
        self.preset_note.setWordWrap(True)
        self.preset_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        suggestion_layout.addWidget(self.preset_note)
        suggestion_form = SettingsForm(
            settings, [INLINE_SUGGESTIONS, MAX_WORDS, CONTINUE_TOKENS, CONTINUE_STYLE, CONTINUE_STOP],
            suggestion_box)
        _compact(suggestion_form.layout_)
        suggestion_layout.addWidget(suggestion_form)
        return suggestion_box

    def _build_model_section(self, settings: Settings, model: ModelViewModel) -> QGroupBox:
        """Model: which package and where it runs."""
        model_box = QGroupBox("Model", self)
        model_form = QFormLayout(model_box)
        model_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.model_combo = guard_wheel(QComboBox(model_box))
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setToolTip(MODEL_NAME.help)
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(8)
        self.model_combo.currentIndexChanged.connect(self._on_model_combo_changed)
        reload_button = QPushButton("Reload", model_box)
        reload_button.setToolTip("Load the model again (for example after installing a package)")
        reload_button.clicked.connect(model.load)
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(reload_button)
        model_form.addRow("Model", row)
        device_form = SettingsForm(settings, [MODEL_DEVICE], model_box)
        _compact(device_form.layout_)
        self.device_combo: QComboBox = device_form.editors[MODEL_DEVICE.key]  # type: ignore[assignment]
        model_form.addRow(device_form)
        self.gpu_note = QLabel(model_box)
        self.gpu_note.setObjectName("gpuNote")
        self.gpu_note.setWordWrap(True)
        self.gpu_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.gpu_note.hide()
        model_form.addRow(self.gpu_note)
        self.status_label = QLabel(model_box)
        self.status_label.setObjectName("modelStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        model_form.addRow(self.status_label)
        return model_box

    def _build_advanced(self, settings: Settings) -> None:
        """Advanced, folded by default: the strategy and its settings, timing, threads."""
        self.advanced_button = QToolButton(self)
        self.advanced_button.setObjectName("advancedButton")
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setStyleSheet("QToolButton { border: none; }")  # a disclosure, not a button
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setToolTip(PANEL_ADVANCED.help)
        self.advanced = QWidget(self)
        self.advanced.setObjectName("advancedSettings")
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        decoding_box = QGroupBox("Decoding", self.advanced)
        decoding_layout = QVBoxLayout(decoding_box)
        self.form = SettingsForm(settings, [SAMPLING["strategy"]]
                                 + [SAMPLING[name] for name in _SAMPLING_ORDER if name in SAMPLING],
                                 decoding_box)
        _compact(self.form.layout_)
        decoding_layout.addWidget(self.form)
        strategy = self.form.editors[SAMPLING["strategy"].key]
        if isinstance(strategy, QComboBox) and strategy.findData("beam") >= 0:
            strategy.setItemData(strategy.findData("beam"), _BEAM_TIP, Qt.ItemDataRole.ToolTipRole)
        timing_box = QGroupBox("Timing and threads", self.advanced)
        timing_layout = QVBoxLayout(timing_box)
        timing_form = SettingsForm(settings, [DEBOUNCE_DELAY, MODEL_THREADS, MODEL_SPIN], timing_box)
        timing_form.editors[MODEL_THREADS.key].setSpecialValueText("Auto")  # type: ignore[attr-defined]
        _compact(timing_form.layout_)
        timing_layout.addWidget(timing_form)
        advanced_layout.addWidget(decoding_box)
        advanced_layout.addWidget(timing_box)

    def _build_scroll(self, suggestion_box: QGroupBox, model_box: QGroupBox) -> None:
        """The sections one under another in a frameless scroll area that fills the panel."""
        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.addWidget(suggestion_box)
        layout.addWidget(model_box)
        layout.addWidget(self.advanced_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setObjectName("samplingScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        self.scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _connect(self, settings: Settings, model: ModelViewModel, sampling: SamplingViewModel) -> None:
        """Bind to the view-models and the settings, then show their current state."""
        self.advanced_button.toggled.connect(self._on_advanced_toggled)
        model.models_changed.connect(self._on_models_changed)
        model.status_changed.connect(self._on_status_changed)
        model.gpu_changed.connect(self._update_gpu_item)
        sampling.preset_changed.connect(self._on_preset_changed)
        settings.changed.connect(self._on_setting_changed)
        self._on_models_changed(model.models)
        self._on_status_changed(model.status)
        self._on_preset_changed(sampling.preset)
        self._show_advanced(settings.get(PANEL_ADVANCED))
        self._update_enabled()

    # -- advanced ---------------------------------------------------------------------------------

    def _show_advanced(self, shown: bool) -> None:
        blocker = QSignalBlocker(self.advanced_button)
        self.advanced_button.setChecked(shown)
        blocker.unblock()
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)
        self.advanced.setVisible(shown)

    @Slot(bool)
    def _on_advanced_toggled(self, shown: bool) -> None:
        self._settings.set(PANEL_ADVANCED, shown)

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
        chosen = self._settings.get(MODEL_NAME)
        index = self.model_combo.findData(chosen)
        if index < 0 and chosen:
            self.model_combo.addItem(f"{chosen} (not installed)", chosen)
            index = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(max(index, 0))
        blocker.unblock()

    @Slot(int)
    def _on_model_combo_changed(self, index: int) -> None:
        self._settings.set(MODEL_NAME, str(self.model_combo.itemData(index) or ""))

    @Slot(object)
    def _on_status_changed(self, status: ModelStatus) -> None:
        if status.state is ModelState.READY:
            text = f"Ready: {status.name} on {status.device or 'CPU'}"
            if status.context_length:
                text += f", {status.context_length} tokens of context"
        elif status.state is ModelState.LOADING:
            text = f"Loading {status.name or 'the model'}\u2026"
        elif status.state is ModelState.FAILED:
            text = f"<b>Not loaded</b>: {status.error}"
        else:
            text = "No model loaded yet"
        gpu = self._model.gpu
        known = gpu is not None and not gpu[0] and gpu[1] == status.device_note  # the note says it
        if (status.device_note and status.state is ModelState.READY and not known
                and self._settings.get(MODEL_DEVICE) == "gpu"):
            text += f"<br><i>The GPU is not used: {plain_gpu_reason(status.device_note)}</i>"
        self.status_label.setText(text)
        self._update_gpu_item()

    @Slot()
    def _update_gpu_item(self) -> None:
        """The GPU entry of the device list says whether, and why not, the GPU can be used; the note
        under the list says it only when the GPU was chosen."""
        gpu = self._model.gpu
        items = self.device_combo.model()
        index = self.device_combo.findData("gpu")
        if not isinstance(items, QStandardItemModel) or index < 0:
            return
        item = items.item(index)
        if gpu is not None and not gpu[0]:
            why = plain_gpu_reason(gpu[1])
            item.setText("GPU (not available)")
            item.setToolTip(f"The GPU cannot be used here: {why}")
            self.device_combo.setToolTip(f"{MODEL_DEVICE.help}\n\nThe GPU cannot be "
                                         f"used here: {why}.")
            self.gpu_note.setText(f"The GPU cannot be used here, so the model runs on the CPU: "
                                  f"{why}.")
            self.gpu_note.setVisible(self._settings.get(MODEL_DEVICE) == "gpu")
        else:
            item.setText("GPU")
            item.setToolTip("Run the model on the GPU (CUDA)")
            self.device_combo.setToolTip(MODEL_DEVICE.help)
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
        self._update_preset_note()

    def _update_preset_note(self) -> None:
        self.preset_note.setText(cost_note(self._settings.sampling_config()))

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key.startswith("sampling/"):
            self._update_preset_note()
        if key == SAMPLING["strategy"].key:
            self._update_enabled()
        elif key == PANEL_ADVANCED.key:
            self._show_advanced(self._settings.get(PANEL_ADVANCED))
        elif key == MODEL_DEVICE.key:
            self._on_status_changed(self._model.status)
        elif key == MODEL_NAME.key:
            index = self.model_combo.findData(value)
            if index >= 0:
                blocker = QSignalBlocker(self.model_combo)
                self.model_combo.setCurrentIndex(index)
                blocker.unblock()

    def _update_enabled(self) -> None:
        strategy: str = self._settings.get(SAMPLING["strategy"])
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

"""The model's state (loading, ready, failed), the installed models, and the decoding settings."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_studio.core.sampling import PRESETS
from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelChoice, ModelInfo, ModelState, ModelStatus
from aigc_studio.services.settings import (
    MODEL_DEVICE,
    MODEL_NAME,
    MODEL_SETTINGS,
    MODEL_SPIN,
    MODEL_THREADS,
    Settings,
)

__all__ = ["ModelViewModel", "SamplingViewModel"]

RELOAD_DELAY_MS = 400  # coalesce a burst of model/device/thread changes into one reload


class ModelViewModel(QObject):
    """What the status bar and the sampling panel show about the model.

    Loads the model chosen in the settings through ``host``, in the background, and again (once)
    after the model, device or thread settings change. ``completion`` reports how long suggestions
    take.
    """

    status_changed = Signal(object)
    """The loading state changed: carries a :class:`ModelStatus`."""

    summary_changed = Signal(str)
    """The one-line description for the status bar changed: carries it."""

    models_changed = Signal(list)
    """The installed models changed: carries a list of :class:`ModelInfo`."""

    latency_changed = Signal(float)
    """A suggestion arrived: carries the seconds the model took to produce its first words."""

    gpu_changed = Signal(bool, str)
    """Whether a GPU can be used is known: carries the answer and, if not, why."""

    def __init__(self, host: ModelHost, completion: CompletionService, settings: Settings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._host = host
        self._settings = settings
        self._status = host.status
        self._models: list[ModelInfo] = host.models
        self._latency_s: float | None = None
        self._summary = self._describe(self._status)
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.load)
        host.status_changed.connect(self._on_status_changed)
        host.models_changed.connect(self._on_models_changed)
        host.gpu_changed.connect(self.gpu_changed)
        completion.latency_measured.connect(self._on_latency)
        settings.changed.connect(self._on_setting_changed)

    @property
    def status(self) -> ModelStatus:
        """The model's loading state."""
        return self._status

    @property
    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self._status.state is ModelState.READY

    @property
    def summary(self) -> str:
        """One line for the status bar, e.g. "fake-lm · CPU" or "Model failed to load"."""
        return self._summary

    @property
    def models(self) -> list[ModelInfo]:
        """The installed text models."""
        return list(self._models)

    @property
    def gpu(self) -> tuple[bool, str] | None:
        """(usable, why not) for the GPU, or None before it was checked."""
        return self._host.gpu

    @property
    def latency_s(self) -> float | None:
        """Seconds from sending the last suggestion request to its first words (None: none yet)."""
        return self._latency_s

    @property
    def choice(self) -> ModelChoice:
        """The model, device and threads chosen in the settings."""
        return ModelChoice(name=self._settings.get(MODEL_NAME),
                           device=self._settings.get(MODEL_DEVICE),
                           threads=self._settings.get(MODEL_THREADS),
                           spin=self._settings.get(MODEL_SPIN))

    def load(self) -> None:
        """Load the chosen model in the background."""
        self._reload_timer.stop()
        self._host.load(self.choice)

    def shutdown(self) -> None:
        """Stop the pending reload."""
        self._reload_timer.stop()

    @staticmethod
    def _describe(status: ModelStatus) -> str:
        name = status.name or "the model"
        if status.state is ModelState.LOADING:
            return f"Loading {name}\u2026"
        if status.state is ModelState.READY:
            return f"{name} \u00b7 {status.device or 'CPU'}"
        if status.state is ModelState.FAILED:
            return f"{status.name or 'Model'}: failed to load"
        return "No model"

    @Slot(object)
    def _on_status_changed(self, status: ModelStatus) -> None:
        if status == self._status:
            return
        self._status = status
        self.status_changed.emit(status)
        summary = self._describe(status)
        if summary != self._summary:
            self._summary = summary
            self.summary_changed.emit(summary)

    @Slot(list)
    def _on_models_changed(self, models: list[ModelInfo]) -> None:
        if models != self._models:
            self._models = list(models)
            self.models_changed.emit(self.models)

    @Slot(float)
    def _on_latency(self, seconds: float) -> None:
        self._latency_s = seconds
        self.latency_changed.emit(seconds)

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key in {setting.key for setting in MODEL_SETTINGS}:
            self._reload_timer.start()


class SamplingViewModel(QObject):
    """The decoding settings as the sampling panel edits them, with the matching preset."""

    value_changed = Signal(str, object)
    """A setting changed: carries its key and value (from the panel or from elsewhere)."""

    preset_changed = Signal(str)
    """The preset the settings match changed: carries its name, or "" for custom settings."""

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._preset = settings.matching_preset()
        self._applying = False
        settings.changed.connect(self._on_setting_changed)

    @property
    def presets(self) -> list[str]:
        """The preset names, in order."""
        return list(PRESETS)

    @property
    def preset(self) -> str:
        """The preset the current settings equal, or ""."""
        return self._preset

    def value(self, key: str) -> object:
        """The current value of a setting."""
        return self._settings.value(key)

    def set_value(self, key: str, value: object) -> bool:
        """Change a setting (a bad value raises ``ValueError``); return whether it changed."""
        return self._settings.set_value(key, value)

    def apply_preset(self, name: str) -> None:
        """Set the decoding settings of a preset (one preset_changed, with its name, at the end)."""
        self._applying = True
        try:
            self._settings.apply_preset(name)
        finally:
            self._applying = False
        self._update_preset()

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        self.value_changed.emit(key, value)
        if not self._applying:  # halfway through a preset the settings match none
            self._update_preset()

    def _update_preset(self) -> None:
        preset = self._settings.matching_preset()
        if preset != self._preset:
            self._preset = preset
            self.preset_changed.emit(preset)

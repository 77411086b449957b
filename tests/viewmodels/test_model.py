"""The model and sampling view-models."""

from __future__ import annotations

from pathlib import Path

from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelChoice, ModelState
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel
from tests.services.fakes import FakeBackend, Recorder


def test_status_summary_and_latency(qtbot, service: CompletionService, host: ModelHost,
                                    settings: Settings) -> None:
    model = ModelViewModel(host, service, settings)
    assert model.summary == "fake-lm \u00b7 CPU"
    assert model.status.device_note == "no GPU in the tests"
    with qtbot.waitSignal(model.latency_changed, timeout=5000):
        service.request("The", settings.sampling_config(), immediate=True)
    assert model.latency_s is not None and model.latency_s > 0
    model.shutdown()


def test_settings_changes_reload_the_model_once(qtbot, service: CompletionService, host: ModelHost,
                                                backend: FakeBackend, settings: Settings) -> None:
    model = ModelViewModel(host, service, settings)
    states = Recorder()
    model.status_changed.connect(states)
    settings.set_value("model/device", "cpu")
    settings.set_value("model/threads", 2)
    settings.set_value("model/spin", False)
    settings.set_value("model/name", "fake-lm-large")
    qtbot.waitUntil(lambda: model.status.state is ModelState.READY and len(states.items) >= 2,
                    timeout=5000)
    assert [s.state for s in states.items] == [ModelState.LOADING, ModelState.READY]
    assert backend.choices[-1] == ModelChoice("fake-lm-large", "cpu", 2, spin=False)
    model.shutdown()


def test_failed_model_has_a_reason(qtbot, tmp_path: Path) -> None:
    settings = Settings(tmp_path / "s.ini")
    host = ModelHost(FakeBackend(error=ValueError("weights.onnx: sha256 mismatch")))
    service = CompletionService(host)
    host.start()
    try:
        model = ModelViewModel(host, service, settings)
        summaries = Recorder()
        model.summary_changed.connect(summaries)
        with qtbot.waitSignal(model.status_changed, timeout=5000,
                              check_params_cb=lambda s: s.state is ModelState.FAILED):
            model.load()
        assert "sha256 mismatch" in model.status.error
        assert summaries.items[-1] == ": failed to load" or summaries.items[-1].endswith(
            "failed to load")
        model.shutdown()
    finally:
        service.shutdown()
        host.shutdown()


def test_sampling_presets(qtbot, settings: Settings) -> None:
    sampling = SamplingViewModel(settings)
    assert sampling.preset == "Fast"  # the default settings are the Fast preset
    with qtbot.waitSignal(sampling.preset_changed) as blocker:
        sampling.apply_preset("Balanced")
    assert blocker.args == ["Balanced"]
    with qtbot.assertNotEmitted(sampling.preset_changed):
        sampling.set_value("sampling/seed", 42)  # not part of a preset
    with qtbot.waitSignal(sampling.preset_changed) as blocker:
        sampling.set_value("sampling/temperature", 0.31)
    assert blocker.args == [""]

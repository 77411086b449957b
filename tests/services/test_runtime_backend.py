"""The completion service with the real runtime: a tiny trained model in a package folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.services.completion_service import CompletionService, Suggestion
from aigc_studio.services.models import ModelChoice, RuntimeBackend


@pytest.fixture
def service(qtbot, tiny_text_package: Path):
    service = CompletionService(RuntimeBackend([tiny_text_package.parent]), debounce_ms=0)
    service.start()
    yield service
    service.shutdown()


def test_lists_and_loads_the_package(qtbot, service: CompletionService,
                                     tiny_text_package: Path) -> None:
    qtbot.waitUntil(lambda: bool(service.models), timeout=10000)
    assert [m.name for m in service.models] == [tiny_text_package.name]
    with qtbot.waitSignal(service.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state != "loading"):
        service.load_model(ModelChoice("", "cpu", 1))
    assert service.status.state == "ready", service.status.error
    assert service.status.provider == "CPUExecutionProvider"
    assert service.gpu is not None


def test_suggestions_reuse_the_kv_cache(qtbot, service: CompletionService) -> None:
    with qtbot.waitSignal(service.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state != "loading"):
        service.load_model(ModelChoice("", "cpu", 1))
    config = SamplingConfig(max_new_tokens=12)
    def ask(context: str) -> Suggestion:
        with qtbot.waitSignal(service.suggestion_ready, timeout=30000,
                              check_params_cb=lambda s: s.final) as blocker:
            service.request(context, config, immediate=True)
        return blocker.args[0]

    first = ask("The quick brown")
    assert first.alternatives and first.alternatives[0].startswith(" fox")
    second = ask("The quick brown cat sat on")
    assert second.stats.reused_tokens > 0  # the unchanged prefix came from the cache
    assert second.stats.prompt_tokens > second.stats.reused_tokens
    # Accepting the suggestion: the new text is what the model generated, all of it cached.
    third = ask("The quick brown cat sat on" + second.alternatives[0])
    assert third.stats.reused_tokens == third.stats.prompt_tokens > second.stats.prompt_tokens


def test_alternatives_start_differently(qtbot, service: CompletionService) -> None:
    """Alt+] with greedy settings: suggestions that differ in what they show, greedy's first."""
    with qtbot.waitSignal(service.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state != "loading"):
        service.load_model(ModelChoice("", "cpu", 1))
    config = SamplingConfig(max_new_tokens=12)
    context = "A stitch in time saves nine. The quick brown "
    with qtbot.waitSignal(service.suggestion_ready, timeout=30000,
                          check_params_cb=lambda s: s.final) as blocker:
        service.request(context, config, immediate=True)
    shown = blocker.args[0].alternatives[0]
    with qtbot.waitSignal(service.suggestion_ready, timeout=30000,
                          check_params_cb=lambda s: s.final) as blocker:
        service.request(context, config, alternatives=3, immediate=True)
    alternatives = blocker.args[0].alternatives
    assert alternatives[0] == shown
    assert len(alternatives) == 3 and len(set(alternatives)) == 3
    assert len({a.split()[0] for a in alternatives}) == 3  # they differ from the first word


def test_a_corrupt_package_fails_with_its_reason(qtbot, tiny_text_package: Path,
                                                 tmp_path: Path) -> None:
    broken = tmp_path / "models" / tiny_text_package.name
    shutil.copytree(tiny_text_package, broken)
    graph = next(broken.glob("*.onnx"))
    graph.write_bytes(graph.read_bytes()[:100])
    service = CompletionService(RuntimeBackend([broken.parent]))
    service.start()
    try:
        with qtbot.waitSignal(service.status_changed, timeout=30000,
                              check_params_cb=lambda s: s.state == "failed"):
            service.load_model(ModelChoice(tiny_text_package.name))
        assert graph.name in service.status.error or "sha256" in service.status.error
    finally:
        service.shutdown()

"""The completion service with the real runtime: a tiny trained model in a package folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.services.completion_service import CompletionService, Suggestion
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelChoice, ModelState, RuntimeBackend


@pytest.fixture
def host(qtbot, tiny_text_package: Path) -> Iterator[ModelHost]:
    host = ModelHost(RuntimeBackend([tiny_text_package.parent]))
    host.start()
    yield host
    host.shutdown()


@pytest.fixture
def service(host: ModelHost) -> Iterator[CompletionService]:
    service = CompletionService(host, debounce_ms=0)
    yield service
    service.shutdown()


def test_lists_and_loads_the_package(qtbot, service: CompletionService, host: ModelHost,
                                     tiny_text_package: Path) -> None:
    qtbot.waitUntil(lambda: bool(host.models), timeout=10000)
    assert [m.name for m in host.models] == [tiny_text_package.name]
    with qtbot.waitSignal(host.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state is not ModelState.LOADING):
        host.load(ModelChoice("", "cpu", 1))
    assert host.status.state is ModelState.READY, host.status.error
    assert host.status.provider == "CPUExecutionProvider"
    assert host.gpu is not None


def test_suggestions_reuse_the_kv_cache(qtbot, service: CompletionService, host: ModelHost) -> None:
    with qtbot.waitSignal(host.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state is not ModelState.LOADING):
        host.load(ModelChoice("", "cpu", 1))
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


def test_alternatives_start_differently(qtbot, service: CompletionService, host: ModelHost) -> None:
    """Alt+] with greedy settings: suggestions that differ in what they show, greedy's first."""
    with qtbot.waitSignal(host.status_changed, timeout=30000,
                          check_params_cb=lambda s: s.state is not ModelState.LOADING):
        host.load(ModelChoice("", "cpu", 1))
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
    host = ModelHost(RuntimeBackend([broken.parent]))
    host.start()
    try:
        with qtbot.waitSignal(host.status_changed, timeout=30000,
                              check_params_cb=lambda s: s.state is ModelState.FAILED):
            host.load(ModelChoice(tiny_text_package.name))
        assert graph.name in host.status.error or "sha256" in host.status.error
    finally:
        host.shutdown()

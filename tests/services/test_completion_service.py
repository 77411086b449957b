"""The completion service: debounce, latest request wins, cancellation, errors as data, Continue."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt, QTimer

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.services.completion_service import CompletionService, Suggestion
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelChoice, ModelState, ModelStatus

from .fakes import FakeBackend, FakeGenerator, Recorder

CONFIG = SamplingConfig()
LONG_TEXT = " ".join(f"word{i}" for i in range(200))

MakeService = Callable[..., tuple[CompletionService, FakeBackend, ModelHost]]


@pytest.fixture
def make_service(qtbot) -> Iterator[MakeService]:
    made: list[tuple[CompletionService, ModelHost]] = []

    def make(generator: FakeGenerator | None = None, *, backend: FakeBackend | None = None,
             debounce_ms: int = 40,
             load: bool = True) -> tuple[CompletionService, FakeBackend, ModelHost]:
        backend = backend or FakeBackend(generator)
        host = ModelHost(backend)
        service = CompletionService(host, debounce_ms=debounce_ms)
        made.append((service, host))
        host.start()
        if load:
            with qtbot.waitSignal(host.status_changed, timeout=5000,
                                  check_params_cb=lambda s: s.state is not ModelState.LOADING):
                host.load(ModelChoice("fake-lm"))
        return service, backend, host

    yield make
    for service, host in made:
        service.shutdown()
        host.shutdown()


def test_typing_sends_one_request_after_the_pause(qtbot, make_service: MakeService) -> None:
    service, backend, _host = make_service(debounce_ms=80)
    sent = Recorder()
    service.request_sent.connect(sent)
    ids = [service.request("The" + " quick"[:i], CONFIG) for i in range(7)]
    assert sent.items == []  # nothing before the pause
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000,
                          check_params_cb=lambda s: s.final):
        pass
    assert sent.items == [ids[-1]]
    assert [call.prompt for call in backend.generator.calls] == ["The quick"]


def test_debounce_is_clamped(make_service: MakeService) -> None:
    service, _, _host = make_service(load=False)
    service.debounce_ms = 5000
    assert service.debounce_ms == 1000
    service.debounce_ms = -5
    assert service.debounce_ms == 0


def test_suggestion_is_trimmed_and_streamed(qtbot, make_service: MakeService) -> None:
    service, backend, _host = make_service()
    results = Recorder()
    service.suggestion_ready.connect(results)
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000,
                          check_params_cb=lambda s: s.final):
        request_id = service.request("The", CONFIG, max_words=4, immediate=True)
    final = results.items[-1]
    assert isinstance(final, Suggestion)
    assert final.request_id == request_id
    assert final.alternatives == (" quick brown fox jumps",)
    # It stopped generating once the suggestion was settled: far fewer steps than the script.
    assert backend.generator.calls[0].steps <= 6
    # Partial results grew towards the final one.
    partial = [s.alternatives[0] for s in results.items if not s.final]
    assert partial and all(final.alternatives[0].startswith(p) for p in partial)
    assert backend.generator.thread is not threading.main_thread()


def test_stale_results_are_dropped(qtbot, make_service: MakeService) -> None:
    service, _, _host = make_service()
    computed = threading.Event()
    # Note (in the worker thread) when the first result has been computed and queued for the UI.
    def note(suggestion: Suggestion) -> None:
        if suggestion.final:
            computed.set()

    service.worker.suggestion.connect(note, Qt.ConnectionType.DirectConnection)
    first = service.request("A", CONFIG, immediate=True)
    assert computed.wait(5)  # the result waits in the event queue...
    results = Recorder()
    service.suggestion_ready.connect(results)
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000,
                          check_params_cb=lambda s: s.final):
        second = service.request("B", CONFIG, immediate=True)  # ...when a newer request is made
    assert first != second
    assert {s.request_id for s in results.items} == {second}
    assert service.stale_dropped >= 1


def test_a_stubborn_model_cannot_deliver_stale_results(qtbot, make_service: MakeService) -> None:
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.01, ignore_cancel=True)
    service, _, _host = make_service(generator)
    service.request("A", CONFIG, max_words=300, immediate=True)
    qtbot.waitUntil(lambda: bool(generator.calls) and generator.calls[0].steps >= 2, timeout=5000)
    results = Recorder()
    service.suggestion_ready.connect(results)
    with qtbot.waitSignal(service.suggestion_ready, timeout=10000,
                          check_params_cb=lambda s: s.final):
        second = service.request("B", CONFIG, max_words=300, immediate=True)
    assert results.items and {s.request_id for s in results.items} == {second}
    assert generator.calls[0].cancelled_at is None  # it ran to its end; none of it was shown


def test_a_new_request_cancels_the_running_one_within_one_token(qtbot,
                                                                 make_service: MakeService) -> None:
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.02)
    service, _, _host = make_service(generator)
    service.request("A", CONFIG, max_words=300, immediate=True)
    qtbot.waitUntil(lambda: bool(generator.calls) and generator.calls[0].steps >= 3, timeout=5000)
    steps_when_replaced = generator.calls[0].steps
    service.request("B", CONFIG, max_words=300, immediate=True)
    qtbot.waitUntil(lambda: generator.calls[0].done, timeout=5000)
    first = generator.calls[0]
    assert first.cancelled_at is not None
    assert first.steps <= steps_when_replaced + 1
    service.cancel()
    qtbot.waitUntil(lambda: len(generator.calls) == 2 and generator.calls[1].done, timeout=5000)


def test_errors_are_reported_as_data(qtbot, make_service: MakeService) -> None:
    service, _, _host = make_service(FakeGenerator(fail=RuntimeError("the model broke")))
    with qtbot.waitSignal(service.request_failed, timeout=5000) as blocker:
        request_id = service.request("The", CONFIG, immediate=True)
    assert blocker.args[0] == request_id
    assert "the model broke" in blocker.args[1]


def test_request_without_a_model_fails_quietly(qtbot, make_service: MakeService) -> None:
    service, _, _host = make_service(load=False)
    with qtbot.waitSignal(service.request_failed, timeout=5000) as blocker:
        service.request("The", CONFIG, immediate=True)
    assert "no model" in blocker.args[1]


def test_model_load_failure_is_a_status(qtbot, make_service: MakeService) -> None:
    backend = FakeBackend(error=ValueError("manifest.json: unknown format version 9"))
    _service, _, host = make_service(backend=backend, load=False)
    states = Recorder()
    host.status_changed.connect(states)
    with qtbot.waitSignal(host.status_changed, timeout=5000,
                          check_params_cb=lambda s: s.state is ModelState.FAILED):
        host.load(ModelChoice("broken"))
    assert [s.state for s in states.items] == [ModelState.LOADING, ModelState.LOADING,
                                             ModelState.FAILED]
    status: ModelStatus = host.status
    assert "unknown format version 9" in status.error


def test_models_are_listed_in_the_background(qtbot, make_service: MakeService) -> None:
    _service, _, host = make_service(load=False)
    qtbot.waitUntil(lambda: [m.name for m in host.models] == ["fake-lm", "fake-lm-large"],
                    timeout=5000)


def test_alternatives_come_from_branches(qtbot, make_service: MakeService) -> None:
    """Alternatives to a greedy suggestion are continuations that start differently (the
    generator's ``branches``), not beam search's n-best list, which mostly shares its first words."""
    service, backend, _host = make_service()
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000) as blocker:
        service.request("The", CONFIG, alternatives=3, immediate=True)
    suggestion: Suggestion = blocker.args[0]
    assert len(suggestion.alternatives) == 3
    call = backend.generator.calls[-1]
    assert (call.method, call.n) == ("branches", 3)


def test_continue_streams_and_stops(qtbot, make_service: MakeService) -> None:
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.01)
    service, _, _host = make_service(generator)
    pieces = Recorder()
    service.continue_piece.connect(pieces)
    request_id = service.start_continue("Once upon a time ", CONFIG.with_(max_new_tokens=500))
    assert service.continuing
    qtbot.waitUntil(lambda: len(pieces.items) >= 3, timeout=5000)
    with qtbot.waitSignal(service.continue_finished, timeout=5000) as blocker:
        service.stop_continue()
    assert blocker.args == [request_id, "stopped"]
    assert not service.continuing
    assert pieces.items[0] == (request_id, "word0")  # the leading space is typed already
    assert len(pieces.items) < 100


def test_continue_finishes_by_itself(qtbot, make_service: MakeService) -> None:
    service, _, _host = make_service(FakeGenerator(lambda prompt: " and they lived happily."))
    text = []
    service.continue_piece.connect(lambda _id, piece: text.append(piece))
    with qtbot.waitSignal(service.continue_finished, timeout=5000) as blocker:
        service.start_continue("So", CONFIG)
    assert blocker.args[1] == "finished"
    assert "".join(text) == " and they lived happily."


def test_ui_thread_keeps_ticking_while_the_model_works(qtbot, make_service: MakeService) -> None:
    """The model runs on the worker thread: the UI thread's timer fires while a model step is under way."""
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.005)
    service, _, _host = make_service(generator)
    ticks: list[bool] = []  # per timer tick: was the model inside a step?
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(generator.in_step))
    timer.start()
    try:
        with qtbot.waitSignal(service.continue_finished, timeout=10000):
            service.start_continue("Go", CONFIG.with_(max_new_tokens=150))
        for i in range(20):  # and a burst of keystrokes' worth of requests
            service.request(f"Go{i}", CONFIG, max_words=50)
        with qtbot.waitSignal(service.suggestion_ready, timeout=10000,
                              check_params_cb=lambda s: s.final):
            pass
    finally:
        timer.stop()
    assert generator.thread is not None and generator.thread is not threading.main_thread()
    assert sum(ticks) >= 5, f"{sum(ticks)} of {len(ticks)} UI ticks came during a model step"


def test_shutdown_stops_a_busy_worker(qtbot, make_service: MakeService) -> None:
    generator = FakeGenerator(lambda prompt: LONG_TEXT, delay_s=0.02)
    service, _, host = make_service(generator)
    service.start_continue("Go", CONFIG.with_(max_new_tokens=500))
    qtbot.waitUntil(lambda: bool(generator.calls) and generator.calls[0].steps >= 1, timeout=5000)
    service.shutdown()
    host.shutdown()
    assert not host.running
    call = generator.calls[0]
    assert call.done and call.cancelled_at is not None and call.steps < 500  # stopped, not run out


def test_priming_reads_the_context_after_the_cursor_rests(qtbot, make_service: MakeService) -> None:
    service, backend, _host = make_service()
    primed = Recorder()
    service.primed.connect(primed)
    first = service.prime("It was a dark", CONFIG)
    second = service.prime("It was a dark and stormy night.", CONFIG)  # the cursor moved on
    with qtbot.waitSignal(service.primed, timeout=5000):
        pass
    assert backend.generator.primes == ["It was a dark and stormy night."]
    assert primed.items == [(second, len("It was a dark and stormy night.") // 4)]
    assert first != second
    assert backend.generator.calls == []  # no suggestion was made


def test_a_keystroke_replaces_a_pending_priming(qtbot, make_service: MakeService) -> None:
    service, backend, _host = make_service()
    service.prime("It was a dark", CONFIG)
    service.request("It was a dark ", CONFIG)
    assert not service.priming_pending  # the priming will not be sent
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000, check_params_cb=lambda s: s.final):
        pass
    assert backend.generator.primes == []
    assert [call.prompt for call in backend.generator.calls] == ["It was a dark "]

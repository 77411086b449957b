"""Fault tests of the Qt services (issue #16, finding 10)."""

from __future__ import annotations

from collections.abc import Sized

from aigc_studio.core.sampling import SamplingConfig
from tests.services.fakes import Recorder
from tests.services.test_completion_service import MakeService, make_service  # noqa: F401 (fixture)


def test_superseded_requests_leave_no_bookkeeping(qtbot, make_service: MakeService) -> None:  # noqa: F811
    """Finding 10: `CompletionService._sent_at` grew by one entry per superseded request (a writer's
    day of typing is tens of thousands). After 300 requests sent and superseded, no container the
    service holds has more than a couple of entries, and the latest request's latency is measured."""
    service, _, _host = make_service()
    latencies = Recorder()
    service.latency_measured.connect(latencies)
    for i in range(300):
        service.request("The" + "x" * (i % 7), SamplingConfig(), immediate=True)
    with qtbot.waitSignal(service.suggestion_ready, timeout=5000, check_params_cb=lambda s: s.final):
        service.request("The cat", SamplingConfig(), immediate=True)
    qtbot.waitUntil(lambda: len(latencies.items) >= 1, timeout=5000)
    grown = {name: len(value) for name, value in vars(service).items()
             if isinstance(value, Sized) and not isinstance(value, (str, bytes)) and len(value) > 2}
    assert grown == {}

"""Inline suggestions and Continue, computed in the model host's worker thread.

:class:`CompletionService` lives in the UI thread. It debounces requests, numbers them and hands an
immutable snapshot (:class:`CompletionRequest`: the text before the cursor and a request number) to a
:class:`CompletionWorker` that runs in the :class:`~aigc_studio.services.model_host.ModelHost`'s
worker thread, on the generator the host has loaded. The latest request wins: a new request (or
:meth:`CompletionService.cancel`, or loading another model) makes the running one stop before its
next token, and results that arrive for an older request are dropped. Errors come back as data (a
signal with a message); nothing raises into the event loop.

The generator keeps the KV cache of its last prompt, and the prompt is the stable context window of
:mod:`aigc_studio.core.completion`, so a keystroke costs only the new tokens.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_studio.core.sampling import SamplingConfig

from .completion_worker import (
    CompletionRequest,
    CompletionWorker,
    ContinueRequest,
    Suggestion,
)
from .model_host import ModelHost
from .models import ModelState, ModelStatus

__all__ = [
    "DEBOUNCE_MS",
    "PRIME_DELAY_MS",
    "CompletionRequest",
    "CompletionService",
    "CompletionWorker",
    "ContinueRequest",
    "Suggestion",
]

PRIME_DELAY_MS = 250
"""How long the cursor rests at a new place before the model reads the text before it (see
:meth:`CompletionService.prime`); arrow keys held down do not start a prefill at every character."""
DEBOUNCE_MS = 30
"""The default pause after a keystroke before a suggestion is asked for. Short, because a keystroke
costs the model only its new tokens (the KV cache of the window is reused) and a newer keystroke stops
the running request within a token (measured against 0, 10 and 150 ms: docs/design.md, "Completion
flow")."""


class CompletionService(QObject):
    """Debounced, cancellable suggestions and Continue, on the model that ``host`` loaded.

    The worker runs in ``host.worker_thread`` (the host starts and stops it). Loading a model cancels
    whatever request runs. Call :meth:`shutdown` before the host's.
    """

    suggestion_ready = Signal(object)
    """A suggestion for the latest request: carries a :class:`Suggestion` (partial or final)."""

    request_sent = Signal(int)
    """A request left the debounce for the worker: carries its number."""

    request_failed = Signal(int, str)
    """The latest request failed: carries its number and the error message."""

    continue_piece = Signal(int, str)
    """Continue produced text: carries the Continue request number and the text to insert."""

    continue_finished = Signal(int, str)
    """Continue ended: carries its number and "finished", "stopped" or an error message."""

    latency_measured = Signal(float)
    """The first result of a request arrived: carries the seconds since it was sent."""

    primed = Signal(int, int)
    """A priming finished: carries its number and the prompt tokens the model's cache holds."""

    _send_complete = Signal(object)
    _send_prime = Signal(object)
    _send_continue = Signal(object)

    def __init__(self, host: ModelHost, *, debounce_ms: int = DEBOUNCE_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = CompletionWorker(host.worker)
        """The worker, in the host's thread (tests connect to its signals directly)."""
        self.worker.moveToThread(host.worker_thread)
        self._send_complete.connect(self.worker.complete)
        self._send_prime.connect(self.worker.prime)
        self._send_continue.connect(self.worker.continue_)
        self.worker.primed.connect(self.primed)
        self.worker.suggestion.connect(self._on_worker_suggestion)
        self.worker.request_failed.connect(self._on_worker_request_failed)
        self.worker.continue_piece.connect(self._on_worker_continue_piece)
        self.worker.continue_finished.connect(self._on_worker_continue_finished)
        host.status_changed.connect(self._on_model_status_changed)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._send_pending)
        self.debounce_ms = debounce_ms
        self._prime_timer = QTimer(self)
        self._prime_timer.setSingleShot(True)
        self._prime_timer.setInterval(PRIME_DELAY_MS)
        self._prime_timer.timeout.connect(self._send_prime_pending)
        self._prime_pending: CompletionRequest | None = None

        self._last_id = 0
        self._pending: CompletionRequest | None = None
        self._sent_at: tuple[int, float] | None = None  # the latest sent request and when: the only one
        # whose result is shown, so the only one whose latency is measured
        self._continue_id = 0
        self._model_loading = False
        self.stale_dropped = 0
        """How many results arrived for a request that was no longer the latest (for tests)."""

    # -- lifecycle --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Forget pending requests and cancel the running one (idempotent); the host then stops the
        thread."""
        self._timer.stop()
        self._pending = None
        self._prime_timer.stop()
        self._prime_pending = None
        self._next_id()  # cancels whatever runs

    @Slot(object)
    def _on_model_status_changed(self, status: ModelStatus) -> None:
        loading = status.state is ModelState.LOADING
        if loading and not self._model_loading:  # the host's own report, not the worker's echo
            self._next_id()  # the running request stops, so the load starts sooner
        self._model_loading = loading

    # -- suggestions ------------------------------------------------------------------------------

    @property
    def debounce_ms(self) -> int:
        """The pause after the last request before it is sent, in milliseconds (0 to 1000)."""
        return self._timer.interval()

    @debounce_ms.setter
    def debounce_ms(self, value: int) -> None:
        self._timer.setInterval(max(0, min(int(value), 1000)))

    def _next_id(self) -> int:
        self._last_id += 1
        self.worker.latest = self._last_id  # the running request stops at its next token
        return self._last_id

    @property
    def latest_id(self) -> int:
        """The number of the newest request (results for any other are dropped)."""
        return self._last_id

    def request(self, context: str, config: SamplingConfig, *, max_words: int = 4,
                long: bool = False, alternatives: int = 1, immediate: bool = False) -> int:
        """Ask for a suggestion after ``context``; return the request's number.

        The request replaces any pending or running one. It is sent after the debounce pause, or at
        once if ``immediate``.
        """
        request_id = self._next_id()
        self._prime_timer.stop()
        self._prime_pending = None
        self._pending = CompletionRequest(request_id, context, config, max_words, long,
                                          alternatives)
        if immediate or self.debounce_ms == 0:
            self._timer.stop()
            self._send_pending()
        else:
            self._timer.start()
        return request_id

    def prime(self, context: str, config: SamplingConfig) -> int:
        """Have the model read ``context`` (the window before a cursor that came to rest) into its KV
        cache, after :data:`PRIME_DELAY_MS`, without a suggestion; return the request's number. The
        first keystroke there then costs the model only its own tokens instead of a prefill of the
        whole window (for the writer and a 1,400-token window: 30 ms to the first token instead of
        3 s). Any request, :meth:`cancel` or a newer priming replaces it."""
        request_id = self._next_id()
        self._timer.stop()
        self._pending = None
        self._prime_pending = CompletionRequest(request_id, context, config)
        self._prime_timer.start()
        return request_id

    @property
    def priming_pending(self) -> bool:
        """Whether a priming waits for the cursor to rest (it is sent after :data:`PRIME_DELAY_MS`)."""
        return self._prime_timer.isActive()

    @Slot()
    def _send_prime_pending(self) -> None:
        request, self._prime_pending = self._prime_pending, None
        if request is not None and request.request_id == self._last_id:
            self._send_prime.emit(request)

    def cancel(self) -> None:
        """Forget the pending request and stop the running one (a dismissed suggestion)."""
        self._timer.stop()
        self._pending = None
        self._prime_timer.stop()
        self._prime_pending = None
        if self._continue_id != self._last_id:
            self._next_id()

    @Slot()
    def _send_pending(self) -> None:
        request, self._pending = self._pending, None
        if request is None or request.request_id != self._last_id:
            return
        self._sent_at = (request.request_id, time.perf_counter())
        self.request_sent.emit(request.request_id)
        self._send_complete.emit(request)

    @Slot(object)
    def _on_worker_suggestion(self, suggestion: Suggestion) -> None:
        if suggestion.request_id != self._last_id:
            self.stale_dropped += 1
            return
        if self._sent_at is not None and self._sent_at[0] == suggestion.request_id:
            sent, self._sent_at = self._sent_at[1], None
            self.latency_measured.emit(time.perf_counter() - sent)
        self.suggestion_ready.emit(suggestion)

    @Slot(int, str)
    def _on_worker_request_failed(self, request_id: int, message: str) -> None:
        if request_id == self._last_id:
            self.request_failed.emit(request_id, message)

    # -- continue ---------------------------------------------------------------------------------

    def start_continue(self, context: str, config: SamplingConfig) -> int:
        """Stream a passage after ``context`` (replacing any request); return its number."""
        self._timer.stop()
        self._pending = None
        request_id = self._next_id()
        self._continue_id = request_id
        self._send_continue.emit(ContinueRequest(request_id, context, config))
        return request_id

    def stop_continue(self) -> None:
        """Stop a running Continue before its next token."""
        if self._continue_id and self._continue_id == self._last_id:
            self._next_id()

    @property
    def continuing(self) -> bool:
        """Whether a Continue is running."""
        return bool(self._continue_id)

    @Slot(int, str)
    def _on_worker_continue_piece(self, request_id: int, text: str) -> None:
        if request_id == self._continue_id and request_id == self._last_id:
            self.continue_piece.emit(request_id, text)

    @Slot(int, str)
    def _on_worker_continue_finished(self, request_id: int, reason: str) -> None:
        if request_id == self._continue_id:
            self._continue_id = 0
            self.continue_finished.emit(request_id, reason)

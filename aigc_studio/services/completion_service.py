"""Inline suggestions and Continue, computed in a worker thread.

:class:`CompletionService` lives in the UI thread. It debounces requests, numbers them and hands an
immutable snapshot (:class:`CompletionRequest`: the text before the cursor and a request number) to a
:class:`CompletionWorker` that owns the text generator in its own ``QThread``. The latest request wins:
a new request (or :meth:`CompletionService.cancel`) makes the running one stop before its next token,
and results that arrive for an older request are dropped. Errors come back as data (a signal with a
message); nothing raises into the event loop.

The generator keeps the KV cache of its last prompt, and the prompt is the stable context window of
:mod:`aigc_studio.core.completion`, so a keystroke costs only the new tokens.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from aigc_studio.core.completion import is_settled, trim_suggestion
from aigc_studio.core.sampling import SamplingConfig

from .models import GeneratorLike, ModelBackend, ModelChoice, ModelInfo, ModelStatus

__all__ = [
    "CompletionRequest",
    "CompletionService",
    "CompletionWorker",
    "ContinueRequest",
    "Suggestion",
]

log = logging.getLogger(__name__)

LONG_TOKENS = 96  # the token budget of a long suggestion
PRIME_DELAY_MS = 250
"""How long the cursor rests at a new place before the model reads the text before it (see
:meth:`CompletionService.prime`); arrow keys held down do not start a prefill at every character."""
DEBOUNCE_MS = 30
"""The default pause after a keystroke before a suggestion is asked for. Short, because a keystroke
costs the model only its new tokens (the KV cache of the window is reused) and a newer keystroke stops
the running request within a token: typing into a 1,100-token document with the 135M writer, a
suggestion was on screen 71 ms after the keystroke (p50) with 30 ms, 195 ms with 150 ms, and a writer
who pauses between words saw one in time after 125 keystrokes rather than 47 (bench/ui_latency.py)."""


@dataclass(frozen=True)
class CompletionRequest:
    """An immutable snapshot for one suggestion.

    ``context`` is the text before the cursor that the model reads (a stable window of the document,
    see :func:`aigc_studio.core.completion.context_window`). ``alternatives`` > 1 asks for several
    different suggestions at once (beam search's n-best list, or several samples).
    """

    request_id: int
    context: str
    config: SamplingConfig
    max_words: int = 4
    long: bool = False
    alternatives: int = 1


@dataclass(frozen=True)
class ContinueRequest:
    """An immutable snapshot for Continue: stream a longer passage after ``context``."""

    request_id: int
    context: str
    config: SamplingConfig


@dataclass(frozen=True)
class Suggestion:
    """A result for request ``request_id``.

    ``alternatives`` are distinct, trimmed at a natural boundary and non-empty (the tuple may be
    empty: nothing worth showing). ``final`` is False for the growing partial result of a streamed
    suggestion. ``model_s`` is the time from the worker picking up the request to this result.
    """

    request_id: int
    alternatives: tuple[str, ...]
    final: bool = True
    model_s: float = 0.0
    stats: Any = None
    request: CompletionRequest | None = field(default=None, compare=False)


def _distinct(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text for text in texts if text))


class CompletionWorker(QObject):
    """Owns one text generator; runs in the service's worker thread.

    ``latest`` is written by the UI thread: the number of the newest request. The running request
    stops before its next token when it is no longer the latest (the generator checks ``cancel``
    before every model step).
    """

    suggestion = Signal(object)
    """A suggestion (partial or final) was computed: carries a :class:`Suggestion`."""

    failed = Signal(int, str)
    """A request failed: carries the request number and the error message."""

    status_changed = Signal(object)
    """The model's loading state changed: carries a :class:`ModelStatus`."""

    models_listed = Signal(list)
    """The installed models were listed: carries a list of :class:`ModelInfo`."""

    gpu_checked = Signal(bool, str)
    """Whether a GPU can be used: carries the answer and, if not, why."""

    piece = Signal(int, str)
    """Continue produced text: carries the request number and the piece of text."""

    continue_finished = Signal(int, str)
    """Continue ended: carries the request number and "finished", "stopped" or an error message."""

    primed = Signal(int, int)
    """A priming ran (or was cut short by a newer request): carries its number and the prompt tokens
    the model's cache now holds."""

    def __init__(self, backend: ModelBackend) -> None:
        super().__init__()
        self.latest = 0
        self._backend = backend
        self._generator: GeneratorLike | None = None

    # -- model ------------------------------------------------------------------------------------

    @Slot()
    def list_models(self) -> None:
        """List the installed models (emits :attr:`models_listed`)."""
        try:
            models = list(self._backend.list_models())
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("listing the models failed: %s", error)
            models = []
        self.models_listed.emit(models)
        try:
            usable, why = self._backend.gpu_status()
        except Exception as error:  # noqa: BLE001 - errors are data
            usable, why = False, f"cannot check for a GPU: {error}"
        self.gpu_checked.emit(bool(usable), str(why))

    @Slot(object)
    def load(self, choice: ModelChoice) -> None:
        """Drop the current generator and load ``choice`` (emits :attr:`status_changed`)."""
        self._generator = None
        self.status_changed.emit(ModelStatus("loading", name=choice.name))
        try:
            generator = self._backend.create(choice)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("loading model %r failed: %s", choice.name, error)
            message = str(error) or type(error).__name__
            self.status_changed.emit(ModelStatus("failed", name=choice.name, error=message))
            return
        self._generator = generator
        self.status_changed.emit(ModelStatus(
            "ready", name=str(getattr(generator, "name", choice.name)),
            provider=str(getattr(generator, "provider", "")),
            device_note=str(getattr(generator, "device_note", "")),
            context_length=int(getattr(generator, "context_length", 0) or 0)))

    @Slot()
    def unload(self) -> None:
        """Drop the generator (it is freed in this thread)."""
        self._generator = None

    # -- suggestions ------------------------------------------------------------------------------

    def _cancelled(self, request_id: int) -> bool:
        return self.latest != request_id

    @Slot(object)
    def complete(self, request: CompletionRequest) -> None:
        """Compute a suggestion for ``request`` unless a newer request replaced it already."""
        if self._cancelled(request.request_id):
            return  # stale before it started
        generator = self._generator
        if generator is None:
            self.failed.emit(request.request_id, "no model is loaded")
            return
        started = time.perf_counter()
        try:
            self._complete(generator, request, started)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("suggestion failed:\n%s", traceback.format_exc())
            self.failed.emit(request.request_id, f"{type(error).__name__}: {error}")

    def _config(self, request: CompletionRequest) -> SamplingConfig:
        config = request.config
        if request.long:
            config = config.with_(max_new_tokens=max(config.max_new_tokens, LONG_TOKENS))
        if request.alternatives > 1:
            count = request.alternatives
            if config.is_beam or config.is_greedy:
                config = config.with_(strategy="beam", num_beams=max(config.num_beams, count),
                                      num_return=count)
            else:
                config = config.with_(num_return=count)
        return config

    def _complete(self, generator: GeneratorLike, request: CompletionRequest,
                  started: float) -> None:
        config = self._config(request)
        words = request.max_words
        context = request.context
        branches = getattr(generator, "branches", None)
        cancel = lambda: self._cancelled(request.request_id)  # noqa: E731
        if request.alternatives > 1 and config.is_beam and branches is not None:
            # Alternatives to a greedy or beam suggestion: continuations that start differently, as
            # a beam's n-best list mostly agrees on the first words, all that a suggestion shows.
            results = branches(context, request.config, request.alternatives, cancel,
                               done=lambda raw: is_settled(raw, context, words))
            limit = request.config.max_new_tokens
            # A row that stopped early because its text settled did not finish by itself.
            ended = lambda item: (len(item.token_ids) < limit  # noqa: E731
                                  and not is_settled(item.text, context, words))
        elif config.is_beam or config.num_return > 1:
            results = generator.complete(context, config, cancel)
            ended = lambda item: (len(getattr(item, "token_ids", ()))  # noqa: E731
                                  < config.max_new_tokens)
        else:
            results = None
        if results is not None:
            if self._cancelled(request.request_id):
                return
            texts = [trim_suggestion(str(getattr(item, "text", item)), context, words,
                                     finished=ended(item)) for item in results]
            self.suggestion.emit(Suggestion(request.request_id, _distinct(texts), True,
                                            time.perf_counter() - started,
                                            getattr(generator, "last_stats", None), request))
            return
        raw, shown, settled = "", "", False

        def cancel() -> bool:
            return settled or self._cancelled(request.request_id)

        for text in generator.stream(context, config, cancel):
            raw += text
            if is_settled(raw, context, words):
                settled = True  # the generator stops before its next step
                continue
            partial = trim_suggestion(raw, context, words)
            if partial and partial != shown and not self._cancelled(request.request_id):
                shown = partial
                self.suggestion.emit(Suggestion(request.request_id, (partial,), False,
                                                time.perf_counter() - started, None, request))
        if self._cancelled(request.request_id):
            return
        stats = getattr(generator, "last_stats", None)
        new_tokens = getattr(stats, "new_tokens", None)
        finished = not settled and new_tokens is not None and new_tokens < config.max_new_tokens
        final = trim_suggestion(raw, context, words, finished=finished)
        self.suggestion.emit(Suggestion(request.request_id, _distinct([final]), True,
                                        time.perf_counter() - started, stats, request))

    @Slot(object)
    def prime(self, request: CompletionRequest) -> None:
        """Read ``request.context`` into the generator's KV cache without suggesting anything (a
        generator without ``prime`` skips it). A newer request cuts it short between two model runs."""
        generator = self._generator
        prime = getattr(generator, "prime", None)
        if prime is None or self._cancelled(request.request_id):
            return
        try:
            tokens = prime(request.context, self._config(request),
                           lambda: self._cancelled(request.request_id))
        except Exception as error:  # noqa: BLE001 - errors are data; the next request reports its own
            log.debug("priming failed: %s", error)
            return
        self.primed.emit(request.request_id, int(tokens))

    # -- continue ---------------------------------------------------------------------------------

    @Slot(object)
    def continue_(self, request: ContinueRequest) -> None:
        """Stream a passage for ``request``, one :attr:`piece` per decoded piece of text."""
        if self._cancelled(request.request_id):
            self.continue_finished.emit(request.request_id, "stopped")
            return
        generator = self._generator
        if generator is None:
            self.continue_finished.emit(request.request_id, "no model is loaded")
            return
        strip = not request.context or request.context[-1].isspace()
        try:
            for text in generator.stream(request.context, request.config,
                                         lambda: self._cancelled(request.request_id)):
                if strip:
                    text = text.lstrip(" \t")
                    strip = not text
                if text and not self._cancelled(request.request_id):
                    self.piece.emit(request.request_id, text)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("continue failed:\n%s", traceback.format_exc())
            self.continue_finished.emit(request.request_id, f"{type(error).__name__}: {error}")
            return
        reason = "stopped" if self._cancelled(request.request_id) else "finished"
        self.continue_finished.emit(request.request_id, reason)


class CompletionService(QObject):
    """Debounced, cancellable suggestions and Continue, with the model in a worker thread.

    ``backend`` lists and creates generators (called in the worker thread). Call :meth:`start` once,
    and :meth:`shutdown` before the application quits (it stops the thread).
    """

    suggestion_ready = Signal(object)
    """A suggestion for the latest request: carries a :class:`Suggestion` (partial or final)."""

    request_sent = Signal(int)
    """A request left the debounce for the worker: carries its number."""

    request_failed = Signal(int, str)
    """The latest request failed: carries its number and the error message."""

    status_changed = Signal(object)
    """The model's state changed: carries a :class:`ModelStatus`."""

    models_changed = Signal(list)
    """The installed models were listed: carries a list of :class:`ModelInfo`."""

    continue_piece = Signal(int, str)
    """Continue produced text: carries the Continue request number and the text to insert."""

    continue_finished = Signal(int, str)
    """Continue ended: carries its number and "finished", "stopped" or an error message."""

    latency_measured = Signal(float)
    """The first result of a request arrived: carries the seconds since it was sent."""

    gpu_changed = Signal(bool, str)
    """Whether a GPU can be used was checked: carries the answer and, if not, why."""

    primed = Signal(int, int)
    """A priming finished: carries its number and the prompt tokens the model's cache holds."""

    _send_complete = Signal(object)
    _send_prime = Signal(object)
    _send_continue = Signal(object)
    _send_load = Signal(object)
    _send_list = Signal()
    _send_unload = Signal()

    def __init__(self, backend: ModelBackend, *, debounce_ms: int = DEBOUNCE_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker = CompletionWorker(backend)
        self._thread = QThread(self)
        self._thread.setObjectName("completion-worker")
        self._worker.moveToThread(self._thread)
        self._send_complete.connect(self._worker.complete)
        self._send_prime.connect(self._worker.prime)
        self._worker.primed.connect(self.primed)
        self._send_continue.connect(self._worker.continue_)
        self._send_load.connect(self._worker.load)
        self._send_list.connect(self._worker.list_models)
        self._send_unload.connect(self._worker.unload)
        self._worker.suggestion.connect(self._on_worker_suggestion)
        self._worker.failed.connect(self._on_worker_failed)
        self._worker.status_changed.connect(self._on_worker_status)
        self._worker.models_listed.connect(self._on_worker_models)
        self._worker.gpu_checked.connect(self._on_worker_gpu)
        self._worker.piece.connect(self._on_worker_piece)
        self._worker.continue_finished.connect(self._on_worker_continue_finished)

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
        self._status = ModelStatus()
        self._models: list[ModelInfo] = []
        self._gpu: tuple[bool, str] | None = None
        self.stale_dropped = 0
        """How many results arrived for a request that was no longer the latest (for tests)."""

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread and list the installed models."""
        if not self._thread.isRunning():
            self._thread.start()
        self._send_list.emit()

    def shutdown(self) -> None:
        """Cancel everything, stop the worker thread and wait for it (idempotent)."""
        self._timer.stop()
        self._pending = None
        self._prime_timer.stop()
        self._prime_pending = None
        self._next_id()  # cancels whatever runs
        if self._thread.isRunning():
            self._send_unload.emit()
            self._thread.quit()
            self._thread.wait()

    @property
    def running(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread.isRunning()

    # -- model ------------------------------------------------------------------------------------

    def load_model(self, choice: ModelChoice) -> None:
        """Load a model in the background; :attr:`status_changed` reports loading, ready or failed."""
        self._status = ModelStatus("loading", name=choice.name)
        self.status_changed.emit(self._status)
        self._next_id()
        self._send_load.emit(choice)

    def refresh_models(self) -> None:
        """List the installed models again (:attr:`models_changed`)."""
        self._send_list.emit()

    @property
    def status(self) -> ModelStatus:
        """The model's state as last reported."""
        return self._status

    @property
    def models(self) -> list[ModelInfo]:
        """The installed models as last listed."""
        return list(self._models)

    @property
    def gpu(self) -> tuple[bool, str] | None:
        """(usable, why not) as last checked, or None before the check."""
        return self._gpu

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
        self._worker.latest = self._last_id  # the running request stops at its next token
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
    def _on_worker_failed(self, request_id: int, message: str) -> None:
        if request_id == self._last_id:
            self.request_failed.emit(request_id, message)

    @Slot(object)
    def _on_worker_status(self, status: ModelStatus) -> None:
        self._status = status
        self.status_changed.emit(status)

    @Slot(list)
    def _on_worker_models(self, models: list[ModelInfo]) -> None:
        self._models = list(models)
        self.models_changed.emit(self.models)

    @Slot(bool, str)
    def _on_worker_gpu(self, usable: bool, why: str) -> None:
        self._gpu = (usable, why)
        self.gpu_changed.emit(usable, why)

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
    def _on_worker_piece(self, request_id: int, text: str) -> None:
        if request_id == self._continue_id and request_id == self._last_id:
            self.continue_piece.emit(request_id, text)

    @Slot(int, str)
    def _on_worker_continue_finished(self, request_id: int, reason: str) -> None:
        if request_id == self._continue_id:
            self._continue_id = 0
            self.continue_finished.emit(request_id, reason)

"""The completion worker: suggestions, Continue and priming, in the model host's worker thread.

:class:`CompletionWorker` gets immutable snapshots (:class:`CompletionRequest`,
:class:`ContinueRequest`) from :class:`~aigc_studio.services.completion_service.CompletionService`
and runs them on the generator that the :class:`~aigc_studio.services.model_host.ModelHostWorker`
in the same thread has loaded. Every yielded token is a cancellation point: a request that is no
longer the latest stops before its next model step. Errors come back as signals with a message.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from aigc_studio.core.completion import is_settled, trim_suggestion
from aigc_studio.core.sampling import SamplingConfig

from .model_host import ModelHostWorker
from .models import CompletionLike, GenerationStatsLike, GeneratorLike

__all__ = [
    "LONG_TOKENS",
    "CompletionRequest",
    "CompletionWorker",
    "ContinueRequest",
    "Suggestion",
]

log = logging.getLogger(__name__)

LONG_TOKENS = 96  # the token budget of a long suggestion


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
    stats: GenerationStatsLike | None = None
    request: CompletionRequest | None = field(default=None, compare=False)


def _distinct(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text for text in texts if text))


class CompletionWorker(QObject):
    """Runs suggestions, priming and Continue on the generator of ``host`` (a
    :class:`ModelHostWorker`); lives in the same thread as ``host``.

    ``latest`` is written by the UI thread: the number of the newest request. The running request
    stops before its next token when it is no longer the latest (the generator checks ``cancel``
    before every model step).
    """

    suggestion = Signal(object)
    """A suggestion (partial or final) was computed: carries a :class:`Suggestion`."""

    request_failed = Signal(int, str)
    """A request failed: carries the request number and the error message."""

    continue_piece = Signal(int, str)
    """Continue produced text: carries the request number and the piece of text."""

    continue_finished = Signal(int, str)
    """Continue ended: carries the request number and "finished", "stopped" or an error message."""

    primed = Signal(int, int)
    """A priming ran (or was cut short by a newer request): carries its number and the prompt tokens
    the model's cache now holds."""

    def __init__(self, host: ModelHostWorker) -> None:
        super().__init__()
        self.latest = 0
        self._host = host

    # -- suggestions ------------------------------------------------------------------------------

    def _cancelled(self, request_id: int) -> bool:
        return self.latest != request_id

    @Slot(object)
    def complete(self, request: CompletionRequest) -> None:
        """Compute a suggestion for ``request`` unless a newer request replaced it already."""
        if self._cancelled(request.request_id):
            return  # stale before it started
        generator = self._host.generator
        if generator is None:
            self.request_failed.emit(request.request_id, "no model is loaded")
            return
        started = time.perf_counter()
        try:
            self._complete(generator, request, started)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("suggestion failed:\n%s", traceback.format_exc())
            self.request_failed.emit(request.request_id, f"{type(error).__name__}: {error}")
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
        if config.is_beam or config.num_return > 1:
            self._complete_all(generator, request, config, started)
        else:
            self._complete_streamed(generator, request, config, started)

    def _complete_all(self, generator: GeneratorLike, request: CompletionRequest,
                      config: SamplingConfig, started: float) -> None:
        """Several suggestions at once (alternatives, beam search, several samples)."""
        words = request.max_words
        context = request.context
        def cancel() -> bool:
            return self._cancelled(request.request_id)

        results: Sequence[CompletionLike]
        branched = request.alternatives > 1 and config.is_beam
        if branched:
            # Alternatives to a greedy or beam suggestion: continuations that start differently, as
            # a beam's n-best list mostly agrees on the first words, all that a suggestion shows.
            results = generator.branches(context, request.config, request.alternatives, cancel,
                                         done=lambda raw: is_settled(raw, context, words))
        else:
            results = generator.complete(context, config, cancel)

        def ended(item: CompletionLike) -> bool:
            """Whether the model finished the item by itself (not cut at the length limit, and, for a
            branch, not stopped early because its text settled)."""
            if branched:
                return (len(item.token_ids) < request.config.max_new_tokens
                        and not is_settled(item.text, context, words))
            return len(item.token_ids) < config.max_new_tokens
        if self._cancelled(request.request_id):
            return
        texts = [trim_suggestion(item.text, context, words, finished=ended(item))
                 for item in results]
        self.suggestion.emit(Suggestion(request.request_id, _distinct(texts), True,
                                        time.perf_counter() - started, generator.last_stats,
                                        request))

    def _complete_streamed(self, generator: GeneratorLike, request: CompletionRequest,
                           config: SamplingConfig, started: float) -> None:
        """One suggestion, shown as it grows, cut short once its text is settled."""
        words = request.max_words
        context = request.context
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
        stats = generator.last_stats
        finished = not settled and stats.new_tokens < config.max_new_tokens
        final = trim_suggestion(raw, context, words, finished=finished)
        self.suggestion.emit(Suggestion(request.request_id, _distinct([final]), True,
                                        time.perf_counter() - started, stats, request))

    @Slot(object)
    def prime(self, request: CompletionRequest) -> None:
        """Read ``request.context`` into the generator's KV cache without suggesting anything. A
        newer request cuts it short between two model runs."""
        generator = self._host.generator
        if generator is None or self._cancelled(request.request_id):
            return
        try:
            tokens = generator.prime(request.context, self._config(request),
                                     lambda: self._cancelled(request.request_id))
        except Exception as error:  # noqa: BLE001 - errors are data; the next request reports its own
            log.debug("priming failed: %s", error)
            return
        self.primed.emit(request.request_id, int(tokens))

    # -- continue ---------------------------------------------------------------------------------

    @Slot(object)
    def continue_(self, request: ContinueRequest) -> None:
        """Stream a passage for ``request``, one :attr:`continue_piece` per decoded piece of text."""
        if self._cancelled(request.request_id):
            self.continue_finished.emit(request.request_id, "stopped")
            return
        generator = self._host.generator
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
                    self.continue_piece.emit(request.request_id, text)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("continue failed:\n%s", traceback.format_exc())
            self.continue_finished.emit(request.request_id, f"{type(error).__name__}: {error}")
            return
        reason = "stopped" if self._cancelled(request.request_id) else "finished"
        self.continue_finished.emit(request.request_id, reason)



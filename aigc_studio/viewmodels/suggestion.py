"""The state of the inline suggestion and of Continue, for the writing editor.

:class:`SuggestionViewModel` decides, from edits and cursor moves that the editor reports, when to ask
the :class:`~aigc_studio.services.completion_service.CompletionService` for a suggestion, keeps the
ghost text (its alternatives, the one shown and where it is anchored), handles typing through it,
and turns the service's Continue stream into text for the editor to insert. It knows the document
only through a :class:`TextSource`, so it is tested without widgets. Positions are the editor's
(QTextDocument positions, UTF-16 code units).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from aigc_studio.core.completion import (
    TOP_UP_WORDS,
    CompletionPolicy,
    Site,
    context_start,
    next_word,
    suggestion_site,
    top_up,
    trim_context_start,
    type_through,
    wants_top_up,
)
from aigc_studio.core.sampling import PRESETS, SamplingConfig
from aigc_studio.services.completion_service import CompletionService, Suggestion
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelState, ModelStatus
from aigc_studio.services.settings import (
    CONTEXT_CHARS,
    CONTINUE_STOP,
    CONTINUE_STYLE,
    CONTINUE_TOKENS,
    DEBOUNCE_DELAY,
    INLINE_SUGGESTIONS,
    LONG_WORDS,
    MAX_WORDS,
    Settings,
)
from aigc_studio.viewmodels.text_source import StringSource, TextSource, utf16_len

__all__ = ["StringSource", "SuggestionViewModel", "TextSource", "utf16_len"]  # the sources: re-exported

log = logging.getLogger(__name__)

ALTERNATIVES = 4  # how many suggestions Alt+] asks for when only one is known


@dataclass(frozen=True)
class _Pending:
    request_id: int
    position: int
    kind: str  # "suggest" | "long" | "alternatives" | "extend" (a top-up of the visible suggestion)


class SuggestionViewModel(QObject):
    """The ghost text after the cursor: its alternatives, the one shown, and where it is anchored.

    The editor reports edits (:meth:`on_contents_changed`) and cursor moves (:meth:`on_cursor_moved`)
    and paints :attr:`ghost` at :attr:`anchor` while :attr:`visible`. Accepting means inserting
    :meth:`accept_all` or :meth:`accept_word` into the document: the edit then types through the
    suggestion like any other keystroke.
    """

    changed = Signal()
    """The ghost text, its anchor or the alternatives changed (the editor repaints)."""

    continuing_changed = Signal(bool)
    """Continue started (True) or ended (False)."""

    continue_piece = Signal(str)
    """Continue produced text: carries the text to insert at the Continue position."""

    continue_finished = Signal(str)
    """Continue ended: carries "finished", "stopped" or an error message."""

    error = Signal(str)
    """A suggestion failed: carries the message (shown in the status bar)."""

    def __init__(self, service: CompletionService, host: ModelHost, settings: Settings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._host = host
        self._settings = settings
        self._source: TextSource | None = None
        self._alternatives: tuple[str, ...] = ()
        self._index = 0
        self._anchor = -1
        self._pending: _Pending | None = None
        self._continue_id = 0
        self._suspended = 0
        service.suggestion_ready.connect(self._on_suggestion)
        service.request_failed.connect(self._on_failed)
        service.continue_piece.connect(self._on_continue_piece)
        service.continue_finished.connect(self._on_continue_finished)
        settings.changed.connect(self._on_setting_changed)
        host.status_changed.connect(self._on_model_status_changed)
        service.debounce_ms = settings.get(DEBOUNCE_DELAY)

    def attach(self, source: TextSource | None) -> None:
        """Read the document through ``source`` (the editor)."""
        self._source = source
        self.dismiss()

    # -- state ------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether inline suggestions are on (the "completion/enabled" setting)."""
        return self._settings.get(INLINE_SUGGESTIONS)

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The suggestions to choose from (what is left of them after typing through)."""
        return self._alternatives

    @property
    def index(self) -> int:
        """Which alternative is shown."""
        return self._index

    @property
    def ghost(self) -> str:
        """The suggestion shown after the cursor, or ``""``."""
        return self._alternatives[self._index] if self._alternatives else ""

    @property
    def anchor(self) -> int:
        """The position the ghost text follows (-1 when none is shown)."""
        return self._anchor

    @property
    def visible(self) -> bool:
        """Whether a suggestion is shown."""
        return bool(self._alternatives)

    @property
    def waiting(self) -> bool:
        """Whether a request is pending or running."""
        return self._pending is not None

    @property
    def finding_alternatives(self) -> bool:
        """Whether Alt+] asked for alternatives that have not come yet."""
        return self._pending is not None and self._pending.kind == "alternatives"

    @property
    def continuing(self) -> bool:
        """Whether Continue is streaming text into the document."""
        return bool(self._continue_id)

    def _show(self, alternatives: tuple[str, ...], index: int, anchor: int) -> None:
        if (alternatives, index, anchor) == (self._alternatives, self._index, self._anchor):
            return
        self._alternatives, self._index = alternatives, index
        self._anchor = anchor if alternatives else -1
        self.changed.emit()

    def _policy(self) -> CompletionPolicy:
        chars = self._settings.get(CONTEXT_CHARS)
        context_length = self._host.status.context_length
        if context_length:
            budget = context_length - self._settings.sampling_config().max_new_tokens - 8
            chars = min(chars, max(256, budget * 3))  # about three characters per token or more
        return CompletionPolicy(context_chars=max(chars, 256), context_block=256,
                                max_words=self._settings.get(MAX_WORDS), long_words=self._settings.get(LONG_WORDS))

    def _context(self, position: int, policy: CompletionPolicy) -> str:
        assert self._source is not None
        start = context_start(position, policy)
        return trim_context_start(self._source.text_range(start, position), start)

    # -- what the editor reports ------------------------------------------------------------------

    @contextmanager
    def suspend(self) -> Iterator[None]:
        """A context manager that ignores edits (loading a file, inserting Continue text)."""
        self._suspended += 1
        try:
            yield
        finally:
            self._suspended -= 1

    def on_contents_changed(self, position: int, removed: int, added: int) -> None:
        """The document changed at ``position``: ``removed`` units went, ``added`` came."""
        if self._suspended or self.continuing or self._source is None:
            return
        ghost = self.ghost
        if ghost and removed == 0 and position == self._anchor and 0 < added <= utf16_len(ghost):
            typed = self._source.text_range(position, position + added)
            rest = type_through(ghost, typed)
            if rest:
                alternatives = tuple(r for r in (type_through(a, typed) for a in self._alternatives) if r)
                self._service.cancel()  # a streamed suggestion stays as it is now
                self._pending = None
                self._show(alternatives, alternatives.index(rest), position + added)
                if len(alternatives) == 1 and wants_top_up(rest) and self.enabled:
                    self._schedule("extend")  # down to its last word: ask for more in the background
                return
        self.dismiss()
        if self.enabled:
            self._schedule("suggest")

    def on_cursor_moved(self, position: int) -> None:
        """The cursor moved: a suggestion anchored elsewhere goes away, and where a suggestion could
        come, the model reads the text before the new position in the background (see :meth:`prime`)."""
        if self.continuing:
            return
        if self.visible and position != self._anchor:
            self.dismiss()
        elif self._pending is not None and position != self._pending.position:
            self._service.cancel()
            self._pending = None
        if not self.visible and self._pending is None:
            self.prime()

    def prime(self) -> None:
        """Let the model read the window before the cursor into its KV cache (after a short rest of the
        cursor, without a suggestion), so that the first keystroke at a new place is answered as fast as
        the next ones: only where a suggestion could appear, with suggestions on and a model ready."""
        source = self._source
        if source is None or self._suspended or not self.enabled or source.has_selection() or not self._host.ready:
            return
        position = source.cursor_position()
        context = self._context(position, self._policy())
        if suggestion_site(context, source.block_tail(position)) is not Site.NONE:
            self._service.prime(context, self.inline_config())

    # -- user actions -----------------------------------------------------------------------------

    def request_now(self) -> None:
        """Alt+\\: ask at once; while a suggestion is shown, ask for a longer one."""
        if self._source is None or self.continuing:
            return
        self._schedule("long" if self.visible else "suggest", immediate=True)

    def cycle(self, step: int) -> None:
        """Alt+] (``step`` 1) / Alt+[ (-1): show the next or previous alternative. With a single
        suggestion shown, alternatives are asked for (beam search's n-best list or several samples) and
        the next one is shown when they arrive."""
        if self.continuing:
            return
        if len(self._alternatives) > 1:
            self._show(self._alternatives, (self._index + step) % len(self._alternatives), self._anchor)
        elif self.visible:
            self._schedule("alternatives", immediate=True)
        else:
            self.request_now()

    def dismiss(self) -> None:
        """Esc: hide the suggestion and stop asking for one."""
        if self._pending is not None:
            self._service.cancel()
            self._pending = None
        self._show((), 0, -1)

    def accept_all(self) -> str:
        """Tab: the text to insert at the cursor (the whole suggestion), or ``""``."""
        return self.ghost

    def accept_word(self) -> str:
        """Ctrl+Right: the text to insert at the cursor (the suggestion's next word), or ``""``."""
        return next_word(self.ghost) if self.ghost else ""

    # -- requests ---------------------------------------------------------------------------------

    def inline_config(self) -> SamplingConfig:
        """The decoding settings of the suggestions shown as you type (and of priming the model): the Sampling
        panel's, except that beam search becomes greedy decoding. Beam search runs every beam through the model
        at each step and returns nothing until it ends, too slow on a CPU to answer a keystroke before the next
        one; the panel's beams serve the alternatives (Alt+]), which the writer asks for and waits for."""
        config = self._settings.sampling_config()
        if config.is_beam:
            config = config.with_(strategy="greedy", num_return=1)
        return config

    def _schedule(self, kind: str, *, immediate: bool = False) -> None:
        source = self._source
        if source is None or not self._host.ready:
            return
        if source.has_selection():
            self.dismiss()
            return
        position = source.cursor_position()
        policy = self._policy()
        context = self._context(position, policy)
        if suggestion_site(context, source.block_tail(position)) is Site.NONE:
            if self._pending is not None:
                self._service.cancel()
                self._pending = None
            return
        long = kind == "long"
        config = self._settings.sampling_config() if kind == "alternatives" else self.inline_config()
        request_id = self._service.request(
            context, config, max_words=policy.words(long) + (TOP_UP_WORDS if kind == "extend" else 0), long=long,
            alternatives=ALTERNATIVES if kind == "alternatives" else 1, immediate=immediate)
        self._pending = _Pending(request_id, position, kind)
        if kind == "alternatives":
            self.changed.emit()  # the view can say that other suggestions are on their way

    @Slot(object)
    def _on_suggestion(self, suggestion: Suggestion) -> None:
        pending = self._pending
        if (pending is None or suggestion.request_id != pending.request_id or self._source is None
                or self._source.cursor_position() != pending.position):
            return
        if suggestion.final:
            self._pending = None
        if pending.kind == "extend":  # only an answer that goes on from the visible rest is shown
            longer = top_up(self.ghost, suggestion.alternatives) if len(self._alternatives) == 1 else None
            if longer:
                self._show((longer,), 0, pending.position)
            return
        if pending.kind == "alternatives":
            current = self.ghost
            found = tuple(a for a in suggestion.alternatives if a != current)
            alternatives = ((current,) if current else ()) + found
            index = 1 if current and found else 0
            if suggestion.final and alternatives == self._alternatives:
                self.changed.emit()  # nothing new: no longer finding alternatives either
        else:
            alternatives, index = suggestion.alternatives, 0
        if not alternatives:
            if suggestion.final and pending.kind == "suggest":
                self._show((), 0, -1)
            return
        self._show(alternatives, index, pending.position)

    @Slot(object)
    def _on_model_status_changed(self, status: ModelStatus) -> None:
        if status.state is ModelState.READY and not self.visible and self._pending is None:
            self.prime()  # a model loaded after the document: read the text at the cursor now

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        if self._pending is not None and request_id == self._pending.request_id:
            self._pending = None
            self.error.emit(f"Suggestion failed: {message}")

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key == DEBOUNCE_DELAY.key:
            self._service.debounce_ms = self._settings.get(DEBOUNCE_DELAY)
        elif key == INLINE_SUGGESTIONS.key and not value:
            self.dismiss()

    # -- continue ---------------------------------------------------------------------------------

    def start_continue(self) -> bool:
        """Ctrl+Enter: stream a longer passage at the cursor; False if it cannot start now."""
        source = self._source
        if source is None or self.continuing or not self._host.ready:
            return False
        self.dismiss()
        context = self._context(source.cursor_position(), self._policy())
        self._continue_id = self._service.start_continue(context, self.continue_config())
        self.continuing_changed.emit(True)
        return True

    def continue_config(self) -> SamplingConfig:
        """The decoding settings of Continue: the style chosen in the settings ("continue/style", a
        preset by default, since greedy decoding loops over a long passage) or the Sampling panel's,
        with the panel's seed, Continue's length and stop, and one sequence streamed token by token."""
        panel = self._settings.sampling_config()
        style = self._settings.get(CONTINUE_STYLE)
        config = PRESETS[style].with_(seed=panel.seed) if style in PRESETS else panel
        config = config.with_(max_new_tokens=self._settings.get(CONTINUE_TOKENS),
                              stop=self._settings.get(CONTINUE_STOP), num_return=1)
        if config.is_beam:
            config = config.with_(strategy="greedy")  # streaming is token by token
        return config

    def stop_continue(self) -> None:
        """Stop Continue before its next token (Esc or the Stop button)."""
        if self.continuing:
            self._service.stop_continue()

    @Slot(int, str)
    def _on_continue_piece(self, request_id: int, text: str) -> None:
        if request_id == self._continue_id:
            self.continue_piece.emit(text)

    @Slot(int, str)
    def _on_continue_finished(self, request_id: int, reason: str) -> None:
        if request_id != self._continue_id:
            return
        self._continue_id = 0
        self.continuing_changed.emit(False)
        self.continue_finished.emit(reason)
        if reason not in ("finished", "stopped"):
            self.error.emit(f"Continue failed: {reason}")


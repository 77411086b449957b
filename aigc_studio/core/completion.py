"""The completion policy: where an inline suggestion makes sense, what the model sees, where it ends.

Pure functions over ``str`` (numpy only to count words in very long texts), shared by the writing
editor, the completion service and the keystroke evaluation (:func:`simulate_typing`):

- :func:`suggestion_site`: should a suggestion be asked for at this cursor position, and is it the
  next words or the completion of the word being typed?
- :func:`context_start` / :func:`context_window`: the stable window of text before the cursor that
  the model is given. Its start moves in whole blocks, so from one keystroke to the next the prompt
  keeps the same beginning and the runtime can reuse the KV cache of that prefix.
- :func:`trim_suggestion`: cut what the model generated at a natural boundary (end of a word, a
  clause or a sentence; never half a word), short by default.
- :func:`type_through` and :func:`next_word`: typing the suggestion's first letters keeps the rest
  visible; Ctrl+Right accepts one word.
- :func:`wants_top_up` and :func:`top_up`: once typing through has left a single word of the
  suggestion, a new one is asked for and, if it begins with that rest, lengthens the ghost text
  (never replacing what the writer is reading).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from aigc_studio.core.text import stop_index

__all__ = [
    "CompletionPolicy",
    "KeystrokeReport",
    "Site",
    "TOP_UP_WORDS",
    "context_start",
    "context_window",
    "count_words",
    "is_settled",
    "next_word",
    "simulate_typing",
    "suggestion_site",
    "top_up",
    "trim_context_start",
    "trim_suggestion",
    "type_through",
    "wants_top_up",
]

_LINE_BREAKS = "\n\r\u2028\u2029"
_CLAUSE_END = re.compile(r"""[,;:\u2014\u2013]["'\u201d\u2019)\]]*$""")
_CHUNK = re.compile(r"(\s*)(\S+)")
# Words a short suggestion should not end on: it would leave the phrase hanging.
_HANGING = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "of", "to", "in", "into", "on", "at", "by", "for",
    "from", "with", "as", "that", "than", "his", "her", "its", "my", "your", "our", "their", "this",
    "these", "those", "is", "was", "were", "be", "been", "are", "very", "so", "if", "when", "which",
    "who", "whose", "whom", "where", "while", "had", "has", "have", "not", "no", "some", "every",
})
_SNAP_LIMIT = 64  # how far the context start may move forward to the next whitespace


@dataclass(frozen=True)
class CompletionPolicy:
    """How inline suggestions are asked for and cut; every size is in characters or words."""

    context_chars: int = 1600       # the most text before the cursor the model is shown
    context_block: int = 256        # the window's start moves in steps of this many characters
    max_words: int = 4              # a short suggestion: at most this many words
    long_words: int = 30            # a suggestion asked for at length (Alt+\ while one is shown)

    def __post_init__(self) -> None:
        if self.context_block < 1 or self.context_chars < self.context_block:
            raise ValueError(f"context_chars={self.context_chars} must be at least "
                             f"context_block={self.context_block}, which must be positive")
        if self.max_words < 1 or self.long_words < 1:
            raise ValueError("max_words and long_words must be positive")

    def words(self, long: bool = False) -> int:
        """The word limit of a suggestion, short or long."""
        return self.long_words if long else self.max_words


class Site(enum.Enum):
    """What kind of suggestion fits at a cursor position."""

    NONE = "none"   # no suggestion here
    NEXT = "next"   # after a space, punctuation or a line break: the next words
    WORD = "word"   # right after letters: the rest of this word (if it is unfinished), then more


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def suggestion_site(before: str, after: str = "") -> Site:
    """Whether a suggestion makes sense with ``before`` the cursor and ``after`` it.

    No suggestion in an empty document, or when the paragraph goes on after the cursor (letters or
    punctuation follow on the same line: the ghost text would cover them, and in the middle of a word
    there is nothing to complete). After letters the suggestion continues the word being typed;
    after a space, punctuation or a line break it offers the next words.
    """
    if not before.strip():
        return Site.NONE
    line_after = re.split(r"[\n\r\u2028\u2029]", after, maxsplit=1)[0]
    if line_after.strip():
        return Site.NONE
    return Site.WORD if _is_word_char(before[-1]) else Site.NEXT


# --------------------------------------------------------------------------------------------------
# The context the model sees
# --------------------------------------------------------------------------------------------------


def context_start(cursor: int, policy: CompletionPolicy) -> int:
    """Where the model's window starts for a cursor at ``cursor`` (an index into the document).

    The smallest multiple of ``policy.context_block`` that keeps at most ``policy.context_chars``
    characters before the cursor. It only moves when the cursor crosses a block boundary, so typing
    keeps the start (and so the token prefix, and the runtime's KV cache) unchanged.
    """
    excess = cursor - policy.context_chars
    if excess <= 0:
        return 0
    block = policy.context_block
    return -(-excess // block) * block


def trim_context_start(window: str, start: int) -> str:
    """Drop the partial word a window starting at ``start`` (> 0) may begin with.

    The cut moves forward to just after the first whitespace within a few dozen characters, so the
    prompt starts with a whole word; this depends only on the text at the start, which typing at the
    end does not change. A window that starts the document is returned as it is.
    """
    if start <= 0 or not window:
        return window
    match = re.search(r"\s", window[:_SNAP_LIMIT])
    if match is None:
        return window
    return window[match.end():]


def context_window(before: str, policy: CompletionPolicy) -> str:
    """The part of ``before`` (all the text before the cursor) that the model is given."""
    start = context_start(len(before), policy)
    return trim_context_start(before[start:], start)


# --------------------------------------------------------------------------------------------------
# Cutting a suggestion
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cut:
    text: str
    settled: bool  # more generated text would not change ``text``


def _cut(raw: str, before: str, max_words: int, finished: bool) -> _Cut:
    text = raw
    if not before or before[-1].isspace():
        text = text.lstrip(" \t")  # the space is typed already
    if text[:1] and text[0] in _LINE_BREAKS:
        return _Cut("", True)  # a suggestion does not start a new paragraph
    broken = re.search(r"[\n\r\u2028\u2029]", text)
    if broken:
        text = text[:broken.start()]
        finished = True
    sentence = stop_index(text, "sentence", context=before)
    if sentence is not None:
        text = text[:sentence]
        finished = True
    chunks = list(_CHUNK.finditer(text))
    if not chunks:
        return _Cut("", finished)
    # The last chunk may be a word cut off by the token limit, unless the text visibly goes on after
    # it (whitespace) or it ends with punctuation.
    last = chunks[-1]
    dangling = (not finished and last.end() == len(text) and _is_word_char(last.group(2)[-1]))
    if len(chunks) > max_words:  # the last word kept is followed by another: it is whole
        keep = chunks[:max_words]
        reason = "limit"
    else:
        keep = chunks[:-1] if dangling else chunks
        reason = "end" if finished else "open"
    clause = False
    if reason == "limit":  # prefer a clause boundary in the second half of the words kept
        for index in range(len(keep) - 1, max(len(keep) // 2, 1) - 1, -1):
            if _CLAUSE_END.search(keep[index].group(2)):
                keep, clause = keep[:index + 1], True
                break
    if not clause:
        while len(keep) > 1 and keep[-1].group(2).lower() in _HANGING:
            keep = keep[:-1]
    settled = reason in ("limit", "end")
    if not keep:
        return _Cut("", settled)
    result = text[:keep[-1].end()]
    if not any(_is_word_char(char) for char in result):
        return _Cut("", settled)  # punctuation alone saves nothing
    return _Cut(result, settled)


def trim_suggestion(raw: str, before: str, max_words: int = 4, *, finished: bool = False) -> str:
    """Cut generated text ``raw`` that follows ``before`` at a natural boundary.

    The result ends at the end of a word, a clause (``,;:`` or a dash, when that keeps at least half
    the words) or the first sentence, has at most ``max_words`` words (the completion of a word being
    typed counts as one), does not cross a line break and does not end on a word like "the" that
    leaves the phrase hanging. Unless ``finished`` (the model stopped by itself, not at the token
    limit), a last word with nothing after it may be cut off and is dropped. A leading space is
    dropped when ``before`` already ends with one. Returns ``""`` when nothing useful is left.
    """
    return _cut(raw, before, max_words, finished).text


def is_settled(raw: str, before: str, max_words: int = 4) -> bool:
    """Whether more generated text after ``raw`` could no longer change :func:`trim_suggestion`.

    A streaming worker stops generating once this is true: the word limit is passed, or a sentence
    or the line has ended.
    """
    return _cut(raw, before, max_words, False).settled


def type_through(suggestion: str, typed: str) -> str | None:
    """What is left of ``suggestion`` after the user typed ``typed``, or ``None`` if it does not match.

    ``""`` means the suggestion was typed in full.
    """
    if typed and suggestion.startswith(typed):
        return suggestion[len(typed):]
    return None


TOP_UP_WORDS = 1  # a top-up asks for this many words more than a suggestion: the rest it goes on from


def wants_top_up(rest: str) -> bool:
    """Whether the part of a suggestion left after typing through it is short enough (one word, or
    the end of one) that a longer suggestion should be asked for in the background."""
    return bool(rest.strip()) and len(rest.split()) <= 1


def top_up(rest: str, candidates: Sequence[str]) -> str | None:
    """The first candidate that continues the visible ``rest`` with more words, or ``None``: a new
    suggestion lengthens the ghost text only where it agrees with what is already shown."""
    for candidate in candidates:
        if len(candidate) > len(rest) and candidate.startswith(rest) and candidate[len(rest):].strip():
            return candidate
    return None


def next_word(suggestion: str) -> str:
    """The part of ``suggestion`` that Ctrl+Right accepts: leading spaces and the next word."""
    match = re.match(r"\s*\S+", suggestion)
    return match.group(0) if match else suggestion


# --------------------------------------------------------------------------------------------------
# Statistics and evaluation
# --------------------------------------------------------------------------------------------------

_SPACE_CODES = np.array([0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000], dtype=np.uint32)


def count_words(text: str) -> int:
    """The number of whitespace-separated words, as ``len(text.split())``, fast for long texts."""
    if len(text) < 200_000:
        return len(text.split())
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    space = ((codes >= 9) & (codes <= 13)) | ((codes >= 0x1C) & (codes <= 0x20))
    space |= (codes >= 0x2000) & (codes <= 0x200A)
    space |= np.isin(codes, _SPACE_CODES)
    starts = ~space
    starts[1:] &= space[:-1]
    return int(np.count_nonzero(starts))


@dataclass(frozen=True)
class KeystrokeReport:
    """What inline suggestions saved a simulated writer (see :func:`simulate_typing`)."""

    chars: int              # characters in the text
    keystrokes: int         # keys pressed to produce it: letters typed, Tab, Ctrl+Right, Alt+]
    shown: int              # suggestions shown
    accepted: int           # acceptances (a Tab, or a run of Ctrl+Right)
    accepted_chars: int     # characters that came from accepted suggestions
    requests: int           # times the model was asked (top-ups included)
    top_ups: int = 0        # of them, asked to lengthen a suggestion typed down to its last word
    extended: int = 0       # suggestions a top-up lengthened

    @property
    def keystrokes_saved(self) -> int:
        """Characters minus keystrokes (what the writer did not have to type)."""
        return self.chars - self.keystrokes

    @property
    def saved_fraction(self) -> float:
        """The share of keystrokes saved, 0 for an empty text."""
        return self.keystrokes_saved / self.chars if self.chars else 0.0


def _best_acceptance(text: str, at: int, alternatives: Sequence[str]) -> tuple[int, int, str]:
    """(keys, gain, accepted text) of the cheapest way to accept a correct prefix of a suggestion."""
    best = (0, 0, "")
    for cycle, alternative in enumerate(alternatives):
        if text.startswith(alternative, at):
            keys, accepted = cycle + 1, alternative  # Alt+] presses, then Tab
        else:
            accepted, words = "", 0
            while True:
                word = next_word(alternative[len(accepted):])
                if not word or not text.startswith(accepted + word, at):
                    break
                accepted, words = accepted + word, words + 1
            keys = cycle + words  # Alt+] presses, then Ctrl+Right per word
        gain = len(accepted) - keys
        if accepted and gain > best[1]:
            best = (keys, gain, accepted)
    return best


def simulate_typing(text: str, suggest: Callable[[str], Sequence[str]],
                    policy: CompletionPolicy | None = None, *, top_ups: bool = True) -> KeystrokeReport:
    """Type ``text`` from start to end as a writer who uses inline suggestions would.

    Wherever :func:`suggestion_site` allows, ``suggest`` gets the model's context
    (:func:`context_window` of the text typed so far) and returns raw generated continuations
    (the first is shown; the others are reached with Alt+]); they are cut with
    :func:`trim_suggestion`. The writer accepts a suggestion only when it matches the text to come:
    all of it with Tab, or its first words with Ctrl+Right each, whichever saves more keys. Typing a
    character that matches a visible suggestion keeps the rest of it; any other character dismisses
    it, and the next position asks again. As in the editor, a single suggestion typed (or accepted)
    down to its last word asks again in the background and is lengthened by an answer that begins
    with that rest (:func:`wants_top_up`, :func:`top_up`); ``top_ups=False`` leaves that out.
    """
    policy = policy or CompletionPolicy()
    index = keystrokes = shown = accepted = accepted_chars = requests = asked_top_up = extended = 0
    ghost: list[str] = []
    asked_at = -1

    def ask(before: str, extra_words: int = 0) -> list[str]:
        raws = suggest(context_window(before, policy))
        cut = (trim_suggestion(raw, before, policy.max_words + extra_words) for raw in raws)
        return list(dict.fromkeys(item for item in cut if item))

    while index < len(text):
        if asked_at != index and (not ghost or (top_ups and len(ghost) == 1 and wants_top_up(ghost[0]))):
            asked_at = index
            before = text[:index]
            if suggestion_site(before) is not Site.NONE:
                requests += 1
                if not ghost:
                    ghost = ask(before)
                    shown += bool(ghost)
                else:  # the visible word plus a whole suggestion's worth after it
                    asked_top_up += 1
                    longer = top_up(ghost[0], ask(before, TOP_UP_WORDS))
                    if longer:
                        ghost, extended = [longer], extended + 1
        if ghost:
            keys, gain, taken = _best_acceptance(text, index, ghost)
            if gain > 0:
                keystrokes += keys
                accepted += 1
                accepted_chars += len(taken)
                index += len(taken)
                chosen = next(item for item in ghost if item.startswith(taken))
                rest = chosen[len(taken):]
                ghost = [rest] if rest else []
                continue
        typed = text[index]
        keystrokes += 1
        index += 1
        ghost = [rest for rest in (type_through(item, typed) for item in ghost) if rest]
    return KeystrokeReport(chars=len(text), keystrokes=keystrokes, shown=shown, accepted=accepted,
                           accepted_chars=accepted_chars, requests=requests, top_ups=asked_top_up,
                           extended=extended)

"""Small text helpers for the runtime: where a streamed suggestion should be cut."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ABBREVIATIONS", "Passage", "distinct_ngrams", "passages", "repeated_ngrams", "stop_index"]

ABBREVIATIONS: frozenset[str] = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "st", "prof", "sr", "jr", "mt", "rev", "fr", "gen", "col", "capt",
    "lt", "sgt", "gov", "sen", "rep", "hon", "vs", "cf", "e.g", "i.e", "approx", "no", "vol", "fig",
})
"""Words (lower case, without the final period) whose period does not end a sentence."""

# One or more end marks, optional closing quotes or brackets, then whitespace or the end of the text.
_SENTENCE_END = re.compile(r"""[.!?\u2026]+["'\u201d\u2019\u00bb)\]}]*(?=\s|$)""")
# The word just before a period: letters and inner periods, as in "e.g" or "U.S".
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_CLOSERS = "\"'\u201d\u2019\u00bb)]}"
_MARKS = ".!?\u2026"
_LOOK_BACK = 32  # characters searched for the word before a period


def _is_sentence_end(full: str, start: int, marks: str) -> bool:
    """Whether the end marks ``marks`` found at ``full[start:]`` end a sentence."""
    if "\u2026" in marks or ".." in marks:
        return False  # an ellipsis trails off; the sentence goes on
    if marks != ".":
        return True  # "!", "?", "?!", "!." ...
    match = _WORD_BEFORE.search(full, max(start - _LOOK_BACK, 0), start)
    if match is None:
        return True  # "3." or a period after a quote or at the start
    word = match.group(1)
    if word.lower() in ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isupper():
        return False  # an initial, as in "J. R. R. Tolkien"
    return True


def stop_index(text: str, mode: str, *, context: str = "") -> int | None:
    """Where generated ``text`` should be cut for stop ``mode``, or ``None`` if it should go on.

    - ``"none"``: never cut.
    - ``"newline"``: cut before the first line break (the index of the ``"\\n"`` or ``"\\r"``).
    - ``"sentence"``: cut after the first sentence end: ``.``, ``!`` or ``?`` (possibly repeated, as in
      ``"?!"``), then any closing quotes or brackets, followed by whitespace or the end of the text.
      A period after a known abbreviation (``Mr.``, ``Dr.``, ``St.``, ``e.g.``...) or after a single
      capital initial does not end a sentence, and neither does an ellipsis (``...`` or ``…``).

    ``context`` is the text just before ``text`` (the end of the prompt); it is only looked at to
    recognise a word that the generated text ends with a period, as in ``"Mr"`` + ``". Smith"``.
    The returned index is into ``text``.
    """
    if mode == "none":
        return None
    if mode == "newline":
        cuts = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
        return min(cuts) if cuts else None
    if mode != "sentence":
        raise ValueError(f"unknown stop mode {mode!r}: expected 'none', 'newline' or 'sentence'")
    context = context[-_LOOK_BACK:]
    offset = len(context)
    full = context + text
    # Scan from the start of any run of end marks the prompt ends with, so "..." split between the
    # prompt and the text is still seen as one ellipsis.
    begin = offset
    while begin > 0 and full[begin - 1] in _MARKS + _CLOSERS:
        begin -= 1
    for match in _SENTENCE_END.finditer(full, begin):
        if match.end() <= offset:
            continue  # the sentence ended in the prompt already
        marks = match.group(0).rstrip(_CLOSERS)
        if _is_sentence_end(full, match.start(), marks):
            return match.end() - offset
    return None


@dataclass(frozen=True)
class Passage:
    """A held-out passage cut in two: the model continues `prompt` and is scored against `reference`."""

    start: int        # index of the passage's first word in the text
    prompt: str       # the first half as written, with the whitespace after its last word
    reference: str    # the second half, words joined by single spaces


def passages(text: str, words: int = 64, count: int = 50) -> list[Passage]:
    """`count` passages of `words` words spread evenly over `text` (fewer if the text is short), each
    split into a first half (the prompt) and a second half (the reference continuation)."""
    if words < 2 or count < 1:
        raise ValueError("a passage needs at least 2 words, and at least one passage is needed")
    tokens = re.findall(r"\S+\s*", text)
    if len(tokens) < words:
        raise ValueError(f"the text has {len(tokens)} words; a passage needs {words}")
    count = min(count, len(tokens) // words)
    span = len(tokens) - words
    half = words // 2
    out = []
    for i in range(count):
        start = span * i // max(1, count - 1) if count > 1 else 0
        prompt = "".join(tokens[start:start + half])  # with its trailing space: the last word is complete
        reference = " ".join(t.strip() for t in tokens[start + half:start + words])
        out.append(Passage(start, prompt, reference))
    return out


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError("n must be at least 1")
    words = text.split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def repeated_ngrams(text: str, n: int = 4) -> float:
    """The share of the word n-grams of `text` that repeat an earlier one (0 for fewer than n words):
    degenerate loops ("and had been watching the stars again, and had been watching ...") score near 1,
    ordinary prose near 0."""
    grams = _ngrams(text, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_ngrams(texts: list[str], n: int = 2) -> float:
    """distinct-n (Li et al. 2016): distinct word n-grams over all n-grams of `texts` together."""
    grams = [g for t in texts for g in _ngrams(t, n)]
    return len(set(grams)) / len(grams) if grams else 0.0

"""Small text helpers for the runtime: where a streamed suggestion should be cut."""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "stop_index"]

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

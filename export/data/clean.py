"""Text cleaning shared by the corpus builders of export.data: invisible characters, rules, reflowed
paragraphs, Project Gutenberg boilerplate, word counts and slugs.
"""

from __future__ import annotations

import re
import unicodedata

# --- text cleaning ---------------------------------------------------------------------------

# Format characters that only get in the way in plain text (BOM, zero-width spaces and joiners).
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)


# A line that is only a typographic rule ("______", "-----", "=====").
_RULE_LINE = re.compile(r"^\s*([_=~-])\1{4,}\s*$")


def clean_text(text: str) -> str:
    """Normalise a whole text: NFC, ``\\n`` line ends, no control characters, no trailing spaces,
    no rule lines, paragraphs separated by exactly one blank line, one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\t", "    ").replace("\u00a0", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")
    lines = ["" if _RULE_LINE.match(line) else line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph into one line (for prose)."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def word_count(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def slug(name: str) -> str:
    """A file-name-safe lower-case id: ``"1 John"`` -> ``"1_john"``, ``"Daniel (Greek)"`` ->
    ``"daniel_greek"``."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "work"


# Project Gutenberg boilerplate, in its modern and its 1990s forms.
_GUTENBERG_START = re.compile(
    r"^\s*(\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*|\*END\*THE SMALL PRINT.*)$",
    re.IGNORECASE | re.MULTILINE)
_GUTENBERG_END = re.compile(
    r"^\s*(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*|End of (the )?Project Gutenberg.*"
    r"|End of this Project Gutenberg.*)$",
    re.IGNORECASE | re.MULTILINE)
# The World Library notice repeated through the 1990s Gutenberg Shakespeare texts.
_WORLD_LIBRARY_NOTICE = re.compile(r"<<THIS ELECTRONIC VERSION.*?>>", re.DOTALL | re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """Remove the Project Gutenberg header, footer and licence text, if present.

    Everything up to the last start marker (``*** START OF THE PROJECT GUTENBERG EBOOK ...`` or the old
    ``*END*THE SMALL PRINT!...``) and everything from the first end marker on is dropped, as are the
    ``<<THIS ELECTRONIC VERSION ...>>`` notices. Text without markers comes back unchanged.
    """
    starts = list(_GUTENBERG_START.finditer(text))
    if starts:
        text = text[starts[-1].end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    return _WORLD_LIBRARY_NOTICE.sub("", text)


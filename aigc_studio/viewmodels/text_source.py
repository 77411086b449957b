"""How the suggestion view-model reads the document: a :class:`TextSource` (the editor, or a string).

Positions are the editor's (QTextDocument positions, UTF-16 code units).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["StringSource", "TextSource", "utf16_len"]


def utf16_len(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (how QTextDocument counts positions)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


class TextSource(Protocol):
    """What the view-model reads from the editor."""

    def cursor_position(self) -> int:
        """The cursor's position."""

    def has_selection(self) -> bool:
        """Whether text is selected."""

    def text_range(self, start: int, end: int) -> str:
        """The text between two positions (line breaks as ``"\\n"``)."""

    def block_tail(self, position: int) -> str:
        """The rest of the paragraph after ``position``."""


class StringSource:
    """A :class:`TextSource` over a Python string (for tests and tools); positions are indices."""

    def __init__(self, text: str = "", cursor: int | None = None) -> None:
        self.text = text
        self.cursor = len(text) if cursor is None else cursor
        self.selection = False

    def cursor_position(self) -> int:
        return self.cursor

    def has_selection(self) -> bool:
        return self.selection

    def text_range(self, start: int, end: int) -> str:
        return self.text[start:end]

    def block_tail(self, position: int) -> str:
        return self.text[position:].split("\n", 1)[0]

"""A reader for SWORD zText Bible modules (such as the World English Bible in ``sword-text-web``).

A zText module keeps each testament in three files (``ot.*`` and ``nt.*``):

* ``.bzs`` block index: per block ``offset, compressed_size, uncompressed_size`` (uint32 LE) into
* ``.bzz`` the zlib-compressed blocks (one per book or chapter, depending on ``BlockType``), and
* ``.bzv`` verse index: per slot ``block, offset, size`` (uint32, uint32, uint16 LE), one slot per
  verse of the module's versification, plus slots for the testament, book and chapter headings.

Each slot holds an OSIS fragment. :class:`OsisCollector` walks the fragments in index order and keeps
only the scripture: it drops notes, cross references, headings and front/back matter, groups verses
into paragraphs (the module's own ``x-p`` paragraph markers and chapter breaks), and splits books on
the ``<chapter osisID="Book.N">`` markers. Book boundaries come from the markup, so the reader does
not need the versification tables.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Book", "OsisCollector", "SwordError", "read_ztext_slots", "read_books", "strip_osis"]


class SwordError(ValueError):
    """The module files are missing or inconsistent."""


_BLOCK = struct.Struct("<III")  # offset, size, uncompressed size
_VERSE = struct.Struct("<IIH")  # block, offset, size


def read_ztext_slots(module_dir: Path, testament: str) -> Iterator[str]:
    """Yield the non-empty text slots of one testament (``"ot"`` or ``"nt"``) in index order.

    The slot size is only 16 bits wide, and osis2mod wraps it when one slot gets more than 64 KiB
    (a whole book placed in one heading slot, say). Slots are stored in order inside a block, so the
    true size is recovered from where the next slot starts, when that agrees modulo 65536.
    """
    paths = {ext: module_dir / f"{testament}.{ext}" for ext in ("bzs", "bzv", "bzz")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SwordError(f"missing zText files: {', '.join(missing)}")
    bzs, bzv, bzz = (paths[e].read_bytes() for e in ("bzs", "bzv", "bzz"))
    if len(bzs) % _BLOCK.size or len(bzv) % _VERSE.size:
        raise SwordError(f"{module_dir}/{testament}: index sizes are not whole records")

    blocks: list[bytes] = []
    for i, (offset, size, usize) in enumerate(_BLOCK.iter_unpack(bzs)):
        if offset + size > len(bzz):
            raise SwordError(f"{testament}.bzs block {i} runs past the end of {testament}.bzz")
        data = zlib.decompress(bzz[offset:offset + size]) if size else b""
        if len(data) != usize:
            raise SwordError(f"{testament} block {i}: {len(data)} bytes, index says {usize}")
        blocks.append(data)

    slots = [s for s in _VERSE.iter_unpack(bzv) if s[2] > 0]
    # Where does each slot really end? At the next slot's start in the same block, or block end.
    ends: dict[tuple[int, int], int] = {}
    by_block: dict[int, list[int]] = {}
    for block, offset, _ in slots:
        by_block.setdefault(block, []).append(offset)
    for block, offsets in by_block.items():
        if block >= len(blocks):
            raise SwordError(f"{testament}.bzv points at block {block}, only {len(blocks)} exist")
        starts = sorted(set(offsets))
        for a, b in zip(starts, starts[1:] + [len(blocks[block])]):
            ends[(block, a)] = b

    for block, offset, size in slots:
        gap = ends[(block, offset)] - offset
        if gap > size and (gap - size) % 65536 == 0:
            size = gap  # a wrapped 16-bit size
        if offset + size > len(blocks[block]):
            raise SwordError(f"{testament}: slot at block {block} offset {offset} overruns its block")
        yield blocks[block][offset:offset + size].decode("utf-8", "replace")


# --- OSIS -> plain text ------------------------------------------------------------------------

_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)([^>]*?)(/?)>")
_ATTR = re.compile(r'([\w:.-]+)\s*=\s*"([^"]*)"')

# Elements whose whole content is editorial, not scripture.
_DROP_ELEMENTS = {"note", "speaker", "catchWord", "rdg", "figure", "index"}
# Divisions of front and back matter (prefaces, book introductions, the glossary).
_DROP_DIV_TYPES = {"front", "introduction", "glossary", "back", "preface", "x-introduction"}
# Title types that are part of the text (psalm superscriptions); other titles are headings, including
# the Hebrew letters over the stanzas of Psalm 119.
_KEEP_TITLE_TYPES = {"psalm"}
# A dropped note usually stands where a space was ("God<note>..</note>created"); it leaves a soft space
# that becomes a real one unless punctuation or a space is already there.
_SOFT = "\x00"
_SOFT_BEFORE_CLOSE = re.compile(_SOFT + r"+(?=[\s,.;:!?’”)\]]|$)")
_SOFT_AFTER_OPEN = re.compile(r"(?:(?<=[\s“‘(\[])|^)" + _SOFT + "+")
# A few quotes end in "coins</q> <note/> <q>? Not": no space before closing punctuation.
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\w|’) +([,.;:!?])(?=[\s”’]|$)")
# Elements whose start or end ends a paragraph.
_PARAGRAPH_ELEMENTS = {"p", "lg"}


@dataclass
class Book:
    """One book of the Bible: its OSIS id, display name and chapters (each a list of paragraphs)."""

    osis_id: str
    name: str
    chapters: list[list[str]] = field(default_factory=list)

    def text(self) -> str:
        """The book as plain text: its name, then paragraphs separated by blank lines."""
        paragraphs = [self.name] + [p for chapter in self.chapters for p in chapter]
        return "\n\n".join(paragraphs) + "\n"


class OsisCollector:
    """Turns a stream of OSIS fragments into books of clean paragraphs.

    State carries across fragments, because milestone elements (``<chapter sID/>``...``<chapter
    eID/>``, ``<div sID/>``, ``<l sID/>``) open in one verse slot and close in another.
    """

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.names: dict[str, str] = {}
        self._book_div: str | None = None  # osisID of the <div type="book"> being read
        self._chapter: list[str] | None = None  # paragraphs of the open chapter
        self._paragraph: list[str] = []
        self._drop_depth = 0  # > 0 inside a dropped container element
        self._drop_milestones: set[str] = set()  # sIDs of open dropped milestone divs
        self._title_paragraph = False

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, fragment: str) -> None:
        """Consume one OSIS fragment (a verse slot)."""
        if self._chapter is not None and not self._dropping():
            self._paragraph.append(_SOFT)  # verses follow each other with a space, not always stored
        pos = 0
        for m in _TAG.finditer(fragment):
            self._text(fragment[pos:m.start()])
            pos = m.end()
            closing, name, attrs, empty = m.group(1) == "/", m.group(2), m.group(3), m.group(4) == "/"
            self._tag(name, dict(_ATTR.findall(attrs)), closing, empty)
        self._text(fragment[pos:])

    def finish(self) -> list[Book]:
        """Close what is open and return the books (with at least one chapter) in reading order."""
        self.close_chapter()
        return [b for b in self.books.values() if any(b.chapters)]

    # -- internals -----------------------------------------------------------------------------
    def _dropping(self) -> bool:
        return self._drop_depth > 0 or bool(self._drop_milestones)

    def _text(self, text: str) -> None:
        if text and self._chapter is not None and not self._dropping():
            self._paragraph.append(html.unescape(text))

    def _break(self) -> None:
        """End the current paragraph."""
        if self._chapter is None:
            self._paragraph = []
            return
        paragraph = _SOFT_AFTER_OPEN.sub("", _SOFT_BEFORE_CLOSE.sub("", "".join(self._paragraph)))
        paragraph = " ".join(paragraph.replace(_SOFT, " ").split())
        paragraph = _SPACE_BEFORE_PUNCT.sub(r"\1", paragraph)
        if paragraph:
            self._chapter.append(paragraph)
        self._paragraph = []

    def close_chapter(self) -> None:
        """End the open chapter (if any)."""
        self._break()
        self._chapter = None

    def _tag(self, name: str, attrs: dict[str, str], closing: bool, empty: bool) -> None:
        kind = attrs.get("type", "")
        # Inside a dropped container only nesting matters.
        if self._drop_depth:
            if not empty:
                self._drop_depth += -1 if closing else 1
            return

        if name == "div" and kind in _DROP_DIV_TYPES:
            if empty and "sID" in attrs:
                self._drop_milestones.add(attrs["sID"])
            elif empty and "eID" in attrs:
                self._drop_milestones.discard(attrs["eID"])
            elif not closing and not empty:
                self._drop_depth = 1
            return
        if self._drop_milestones:
            return

        if name in _DROP_ELEMENTS or (name == "title" and kind not in _KEEP_TITLE_TYPES):
            if not closing and not empty:
                self._drop_depth = 1
                if self._chapter is not None:
                    self._paragraph.append(_SOFT)
            return

        if name == "div" and kind == "book":
            if "sID" in attrs or not (closing or empty):
                self._book_div = attrs.get("osisID")
        elif name == "milestone" and kind == "x-usfm-h" and self._book_div:
            self.names.setdefault(self._book_div, attrs.get("n", self._book_div).strip())
        elif name == "chapter":
            if "sID" in attrs or not (closing or empty):
                self.close_chapter()
                osis = attrs.get("osisID", attrs.get("sID", ""))
                book_id = osis.rsplit(".", 1)[0] if "." in osis else (self._book_div or "?")
                book = self.books.get(book_id)
                if book is None:
                    book = self.books[book_id] = Book(book_id, self.names.get(book_id, book_id))
                self._chapter = []
                book.chapters.append(self._chapter)
            else:
                self.close_chapter()
        elif name == "title":  # a kept title (psalm superscription) is a paragraph of its own
            self._break()
        elif (name == "div" and kind == "x-p") or (name == "lb" and kind == "x-p"):
            self._break()
        elif name in _PARAGRAPH_ELEMENTS:
            self._break()
        elif name in ("l", "lb", "item"):
            self._text(" ")  # poetry lines and list items run on inside a paragraph
        elif name == "q":
            self._text(_SOFT)  # quotation bounds stand between words, sometimes with no space stored


def strip_osis(fragment: str) -> str:
    """Plain text of one OSIS fragment: tags removed, notes and headings dropped, whitespace joined.

    Used for checks and tests; whole modules go through :class:`OsisCollector`.
    """
    collector = OsisCollector()
    collector.feed('<chapter osisID="X.1" sID="X.1"/>' + fragment + '<chapter eID="X.1"/>')
    books = collector.finish()
    return "\n\n".join(p for b in books for c in b.chapters for p in c)


def read_books(module_dir: Path, testaments: Iterable[str] = ("ot", "nt")) -> list[Book]:
    """All books of a zText module, in the order of its versification."""
    collector = OsisCollector()
    found = False
    for testament in testaments:
        if not (module_dir / f"{testament}.bzv").exists():
            continue
        found = True
        for slot in read_ztext_slots(module_dir, testament):
            collector.feed(slot)
        collector.close_chapter()  # a testament never continues a chapter into the next one
    if not found:
        raise SwordError(f"no zText testament files (ot.bzv / nt.bzv) in {module_dir}")
    books = collector.finish()
    for book in books:  # the name may have been met after the book's first chapter
        book.name = collector.names.get(book.osis_id, book.name)
    return books

"""Documents that are never lost: atomic saves, strict UTF-8, the same bytes back, and no surprises.

- :func:`read_document` reads UTF-8 (with or without a BOM) and refuses anything else with a
  :class:`DocumentError` that says where the first bad byte is; nothing is opened as garbage, so
  nothing can be saved over the original. Only regular files up to :data:`MAX_DOCUMENT_BYTES` are
  read (a device, a FIFO or a huge file is refused before any of it is read).
- :func:`write_document` saves atomically (see :mod:`aigc_studio.services.files`), with the line
  endings the file had, line by line, and its BOM: saving an unedited document writes the same bytes.
- :class:`DiskState` remembers what a file was like when it was opened or saved, so a save can
  tell that another program changed it in between, or that it is read-only.
- The recovery folder and the autosave live in :mod:`aigc_studio.services.recovery` (re-exported).
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aigc_studio.services.files import atomic_write, clean_stale_temporaries
from aigc_studio.services.recovery import (
    AutosaveService,
    RecoveryEntry,
    RecoverySnapshot,
    RecoveryStore,
    default_data_dir,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "AutosaveService",
    "DiskChange",
    "DiskState",
    "DocumentError",
    "LoadedDocument",
    "RecoveryEntry",
    "RecoverySnapshot",
    "RecoveryStore",
    "TextFormat",
    "default_data_dir",
    "encode_document",
    "is_read_only",
    "read_document",
    "reformat",
    "write_document",
]

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
"""The largest file the editor opens: it is meant for manuscripts, not logs or data dumps."""

_BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class DocumentError(Exception):
    """A document could not be read or written; the message names the file and says why."""


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


@dataclass(frozen=True)
class TextFormat:
    """How a file's text was encoded, to write it back the same way.

    ``newline`` is the most common line break (used for new lines); ``bom`` whether the file started
    with a UTF-8 BOM. For a file whose line breaks differ from line to line, ``lines`` are its lines
    and ``breaks`` the break after each (one fewer than lines), so unchanged lines keep theirs.
    """

    newline: str = "\n"
    bom: bool = False
    lines: tuple[str, ...] = ()
    breaks: tuple[str, ...] = ()


@dataclass(frozen=True)
class DiskState:
    """A file as it was when it was read or written: enough to notice another program's change."""

    mtime_ns: int
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path, data: bytes | None = None) -> DiskState | None:
        """The state of ``path`` now (``data`` is its content if already at hand); None if missing."""
        try:
            info = os.stat(path)
            if data is None:
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_DOCUMENT_BYTES:
                    return cls(info.st_mtime_ns, info.st_size, "")
                data = Path(path).read_bytes()
        except OSError:
            return None
        return cls(info.st_mtime_ns, info.st_size, hashlib.sha256(data).hexdigest())

    def same_file(self, other: DiskState | None) -> bool:
        """Whether ``other`` (a newer look at the file) has the same content."""
        if other is None:
            return False
        if (other.mtime_ns, other.size) == (self.mtime_ns, self.size):
            return True
        return bool(other.sha256) and other.sha256 == self.sha256


class DiskChange(enum.Enum):
    """What happened to a document's file since it was read or saved."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"      # another program wrote it
    DELETED = "deleted"      # it is gone (a save creates it again)
    READ_ONLY = "read-only"  # it cannot (or must not) be written


def is_read_only(path: Path) -> bool:
    """Whether ``path`` exists and is not writable (no write permission bits, or access denied)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (mode & 0o222) or not os.access(path, os.W_OK)


@dataclass(frozen=True)
class LoadedDocument:
    """The text of a file, with what is needed to write it back the same way.

    ``text`` uses ``"\\n"`` line breaks; ``format`` says how the file was encoded. ``exists`` is False
    for a path that does not exist yet (it is created on the first save). ``disk`` is the file's
    state when read.
    """

    path: Path
    text: str
    format: TextFormat = TextFormat()
    exists: bool = True
    disk: DiskState | None = None

    @property
    def newline(self) -> str:
        """The file's most common line break."""
        return self.format.newline

    @property
    def bom(self) -> bool:
        """Whether the file starts with a UTF-8 BOM."""
        return self.format.bom


def _describe_bad_byte(data: bytes, error: UnicodeDecodeError, offset: int) -> str:
    position = error.start + offset
    line = data.count(b"\n", 0, position) + 1
    column = position - (data.rfind(b"\n", 0, position) + 1) + 1
    return (f"byte 0x{data[position]:02x} at line {line}, column {column} "
            f"(offset {position}) is not valid UTF-8")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_bytes(path: Path) -> tuple[bytes, os.stat_result]:
    """Read a regular file of at most MAX_DOCUMENT_BYTES, checking before reading anything."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise DocumentError(f"cannot read {path}: {error.strerror or error}") from error
    if stat.S_ISDIR(info.st_mode):
        raise DocumentError(f"{path} is a folder, not a text file")
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError(f"{path} is {_kind(info.st_mode)}, not a text file; only files can be "
                            f"opened, so it was not read")
    limit = f"the editor opens files up to {_size(MAX_DOCUMENT_BYTES)}"
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{path.name} is too large to open ({_size(info.st_size)}; {limit}). "
                            f"It was not read, and nothing in it has changed.")
    try:  # O_NONBLOCK: a file swapped for a FIFO since the stat must not block the window
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise DocumentError(f"{path} is {_kind(info.st_mode)}, not a text file")
            data = stream.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise DocumentError(f"cannot read {path}: {error.strerror or error}") from error
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{path.name} is too large to open (it grew past "
                            f"{_size(MAX_DOCUMENT_BYTES)} while being read; {limit})")
    return data, info


def _text_format(text: str, bom: bool) -> tuple[str, TextFormat]:
    """Split ``text`` at any line break; return it with "\\n" breaks and how to write it back."""
    breaks = _LINE_BREAK.findall(text)
    if not breaks:
        return text, TextFormat("\n", bom)
    counts = {newline: breaks.count(newline) for newline in ("\n", "\r\n", "\r")}
    newline = max(counts, key=lambda key: (counts[key], key == "\n"))
    if counts[newline] == len(breaks):
        return (text if newline == "\n" else _LINE_BREAK.sub("\n", text)), TextFormat(newline, bom)
    normal = _LINE_BREAK.sub("\n", text)
    return normal, TextFormat(newline, bom, tuple(normal.split("\n")), tuple(breaks))


def read_document(path: str | Path) -> LoadedDocument:
    """Read a UTF-8 text file; a missing file reads as an empty, not yet existing document.

    Raises :class:`DocumentError` for a file that is not valid UTF-8 (saying where), that looks
    binary, that is not a regular file, that is larger than :data:`MAX_DOCUMENT_BYTES`, or that
    cannot be read. Stale temporary files of an interrupted save of this file are removed.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return LoadedDocument(path, "", exists=False)
    data, info = _read_bytes(path)
    real = Path(os.path.realpath(path))
    clean_stale_temporaries(real.parent, real.name)
    bom = data.startswith(_BOM)
    offset = len(_BOM) if bom else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"{path.name} is not a UTF-8 text file: {_describe_bad_byte(data, error, offset)}. "
            f"It was not opened, so nothing in it has changed. Convert it to UTF-8 (for example "
            f"with `iconv -f latin1 -t utf-8`) and open it again.") from None
    if "\x00" in text:
        raise DocumentError(f"{path.name} looks like a binary file (it contains NUL bytes); "
                            f"it was not opened")
    text, text_format = _text_format(text, bom)
    disk = DiskState.of(path, data)
    if disk is not None:
        disk = DiskState(info.st_mtime_ns, info.st_size, disk.sha256)
    return LoadedDocument(path, text, text_format, disk=disk)


def _common_prefix(a: list[str], b: list[str]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def encode_document(text: str, text_format: TextFormat = TextFormat()) -> bytes:
    """The bytes of ``text`` written in ``text_format``: unchanged lines keep their line breaks."""
    head = _BOM if text_format.bom else b""
    if not text_format.breaks:
        newline = text_format.newline
        return head + (text.replace("\n", newline) if newline != "\n" else text).encode("utf-8")
    old, breaks = list(text_format.lines), text_format.breaks
    new = text.split("\n")
    prefix = _common_prefix(old, new)
    most = min(len(old), len(new)) - prefix
    suffix = min(_common_prefix(old[::-1], new[::-1]), most)
    shift = len(new) - len(old)
    parts: list[str] = []
    for index, line in enumerate(new):
        parts.append(line)
        if index == len(new) - 1:
            break
        if index < prefix and index < len(breaks):
            parts.append(breaks[index])  # the line and its break are as they were
        elif index + 1 >= len(new) - suffix and 0 <= index - shift < len(breaks):
            parts.append(breaks[index - shift])  # the break before an unchanged line at the end
        else:
            parts.append(text_format.newline)
    return head + "".join(parts).encode("utf-8")


def reformat(text: str, text_format: TextFormat) -> TextFormat:
    """The format of the file just written from ``text`` (its lines now keep the breaks written)."""
    if not text_format.breaks:
        return text_format
    data = encode_document(text, text_format)
    offset = len(_BOM) if text_format.bom else 0
    return _text_format(data[offset:].decode("utf-8"), text_format.bom)[1]


def write_document(path: str | Path, text: str, *, newline: str = "\n", bom: bool = False,
                   text_format: TextFormat | None = None) -> DiskState | None:
    """Save ``text`` (with ``"\\n"`` line breaks) as UTF-8, atomically; return the file's new state.

    ``text_format`` (from :class:`LoadedDocument`) writes unchanged lines with their own breaks;
    otherwise ``newline`` and ``bom`` say how. Raises :class:`DocumentError` naming the file and the
    reason (the target is then unchanged).
    """
    path = Path(path)
    data = encode_document(text, text_format or TextFormat(newline, bom))

    def write(stream: IO[bytes]) -> None:
        stream.write(data)

    real = Path(os.path.realpath(path))
    clean_stale_temporaries(real.parent, real.name)
    try:
        atomic_write(path, write)
    except OSError as error:
        raise DocumentError(f"cannot save {path}: {error.strerror or error}; "
                            f"the file on disk is unchanged") from error
    return DiskState.of(path, data)

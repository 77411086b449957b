"""Documents that are never lost: atomic saves, strict UTF-8, and a recovery folder.

- :func:`read_document` reads UTF-8 (with or without a BOM) and refuses anything else with a
  :class:`DocumentError` that says where the first bad byte is; nothing is opened as garbage, so
  nothing can be saved over the original.
- :func:`write_document` saves atomically: a temporary file in the same folder, flushed and fsynced,
  then renamed over the target (and the folder fsynced), so a crash leaves the old or the new file,
  never half of one.
- :class:`RecoveryStore` keeps a copy of unsaved text per running session in the user's data folder;
  each session holds a lock on its own entry, so the next start can tell a crashed (or killed)
  session's text from a running one's and offer it back.
- :class:`AutosaveService` writes that copy a few seconds after the last change, and at once when
  asked (the window lost focus).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

__all__ = [
    "AutosaveService",
    "DocumentError",
    "LoadedDocument",
    "RecoveryEntry",
    "RecoverySnapshot",
    "RecoveryStore",
    "default_data_dir",
    "read_document",
    "write_document",
]

log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
_MAGIC = "AIGC-STUDIO-RECOVERY 1"


class DocumentError(Exception):
    """A document could not be read or written; the message names the file and says why."""


@dataclass(frozen=True)
class LoadedDocument:
    """The text of a file, with what is needed to write it back the same way.

    ``text`` uses ``"\\n"`` line breaks; ``newline`` is what the file used. ``exists`` is False for a
    path that does not exist yet (it is created on the first save).
    """

    path: Path
    text: str
    newline: str = "\n"
    bom: bool = False
    exists: bool = True


def _describe_bad_byte(data: bytes, error: UnicodeDecodeError, offset: int) -> str:
    position = error.start + offset
    line = data.count(b"\n", 0, position) + 1
    column = position - (data.rfind(b"\n", 0, position) + 1) + 1
    return (f"byte 0x{data[position]:02x} at line {line}, column {column} "
            f"(offset {position}) is not valid UTF-8")


def read_document(path: str | Path) -> LoadedDocument:
    """Read a UTF-8 text file; a missing file reads as an empty, not yet existing document.

    Raises :class:`DocumentError` for a file that is not valid UTF-8 (saying where), that looks
    binary, or that cannot be read.
    """
    path = Path(path)
    if not path.exists():
        return LoadedDocument(path, "", exists=False)
    if path.is_dir():
        raise DocumentError(f"{path} is a folder, not a text file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DocumentError(f"cannot read {path}: {error.strerror or error}") from error
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
    newline = "\r\n" if "\r\n" in text else ("\r" if "\r" in text else "\n")
    if newline != "\n":
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return LoadedDocument(path, text, newline, bom)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync it and rename it over."""
    target = Path(os.path.realpath(path))  # saving through a symlink keeps the link
    folder = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        with contextlib.suppress(OSError):
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def write_document(path: str | Path, text: str, *, newline: str = "\n", bom: bool = False) -> None:
    """Save ``text`` (with ``"\\n"`` line breaks) as UTF-8, atomically.

    Raises :class:`DocumentError` naming the file and the reason (the target is then unchanged).
    """
    path = Path(path)
    data = (text.replace("\n", newline) if newline != "\n" else text).encode("utf-8")

    def write(stream: IO[bytes]) -> None:
        if bom:
            stream.write(_BOM)
        stream.write(data)

    try:
        _atomic_write(path, write)
    except OSError as error:
        raise DocumentError(f"cannot save {path}: {error.strerror or error}; "
                            f"the file on disk is unchanged") from error


# --------------------------------------------------------------------------------------------------
# Recovery
# --------------------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """The user's data folder for AIGC Studio (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("aigc-studio", "AIGC Studio"))


class _SessionLock:
    """An exclusive lock on a file, held while a session runs; the OS drops it if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: IO[bytes] | None = None

    def acquire(self) -> bool:
        stream = open(self.path, "a+b")  # noqa: SIM115 - held open for the session
        if _try_lock(stream):
            self._stream = stream
            return True
        stream.close()
        return False

    def release(self) -> None:
        if self._stream is not None:
            _unlock(self._stream)
            self._stream.close()
            self._stream = None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(stream: IO[bytes]) -> bool:
        try:
            stream.seek(0)
            msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock(stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            stream.seek(0)
            msvcrt.locking(stream.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
else:
    import fcntl

    def _try_lock(stream: IO[bytes]) -> bool:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class RecoverySnapshot:
    """What the autosave writes: the text and the file it belongs to (``None`` if never saved)."""

    text: str
    document: str | None = None


@dataclass(frozen=True)
class RecoveryEntry:
    """Unsaved text left behind by a session that ended without saving (a crash, a kill)."""

    file: Path
    session: str
    text: str
    document: str | None
    saved_at: float

    @property
    def title(self) -> str:
        """The document's file name, or "Untitled"."""
        return Path(self.document).name if self.document else "Untitled"

    def preview(self, lines: int = 12) -> str:
        """The last lines of the text, where the writing stopped."""
        return "\n".join(self.text.rstrip("\n").split("\n")[-lines:])

    def describe(self) -> str:
        """One line: the title, the size and when it was saved."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at))
        words = len(self.text.split())
        return f"{self.title}: {words} words, autosaved {when}"


class RecoveryStore:
    """The recovery folder: one file per running session, locked while the session runs.

    ``folder`` defaults to ``<user data folder>/recovery``; tests pass a temporary folder.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_data_dir() / "recovery"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.session = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._lock = _SessionLock(self.folder / f"{self.session}.lock")
        if not self._lock.acquire():  # pragma: no cover - a fresh random name
            raise OSError(f"cannot lock {self._lock.path}")
        self.file = self.folder / f"{self.session}.recovery"
        self._closed = False

    def write(self, snapshot: RecoverySnapshot) -> Path:
        """Save ``snapshot`` as this session's recovery text (atomically)."""
        header = json.dumps({"session": self.session, "document": snapshot.document,
                             "saved_at": time.time(), "pid": os.getpid()})
        data = snapshot.text.encode("utf-8")

        def write(stream: IO[bytes]) -> None:
            stream.write(f"{_MAGIC}\n{header}\n".encode())
            stream.write(data)

        _atomic_write(self.file, write)
        return self.file

    def clear(self) -> None:
        """Remove this session's recovery text (the document was saved or deliberately dropped)."""
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def close(self) -> None:
        """End the session cleanly: remove its recovery text and its lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.clear()
        self._lock.release()
        with contextlib.suppress(OSError):
            self._lock.path.unlink()

    def release(self) -> None:
        """End the session but keep its recovery text, to be offered at the next start (the
        application quit with unsaved changes without the user deciding about them)."""
        if self._closed:
            return
        self._closed = True
        self._lock.release()

    @staticmethod
    def _read(file: Path) -> RecoveryEntry:
        with open(file, "rb") as stream:
            magic = stream.readline().decode("utf-8", "replace").strip()
            if magic != _MAGIC:
                raise ValueError(f"not a recovery file ({magic[:40]!r})")
            header: dict[str, Any] = json.loads(stream.readline())
            text = stream.read().decode("utf-8")
        return RecoveryEntry(file=file, session=str(header.get("session", file.stem)), text=text,
                             document=header.get("document"),
                             saved_at=float(header.get("saved_at", file.stat().st_mtime)))

    def _is_alive(self, session: str) -> bool:
        lock_path = self.folder / f"{session}.lock"
        if not lock_path.exists():
            return False
        lock = _SessionLock(lock_path)
        if lock.acquire():
            lock.release()
            return False
        return True

    def pending(self) -> list[RecoveryEntry]:
        """Text left by sessions that are no longer running, newest first.

        Unreadable recovery files are skipped with a log line (and left in place).
        """
        entries = []
        for file in self.folder.glob("*.recovery"):
            session = file.stem
            if session == self.session or self._is_alive(session):
                continue
            try:
                entries.append(self._read(file))
            except (OSError, ValueError) as error:
                log.warning("skipping unreadable recovery file %s: %s", file, error)
        for lock in self.folder.glob("*.lock"):  # sessions that died with nothing unsaved
            session = lock.stem
            if (session != self.session and not (self.folder / f"{session}.recovery").exists()
                    and not self._is_alive(session)):
                with contextlib.suppress(OSError):
                    lock.unlink()
        return sorted(entries, key=lambda entry: entry.saved_at, reverse=True)

    def discard(self, entry: RecoveryEntry) -> None:
        """Delete a recovered entry (it was restored or the user declined it)."""
        with contextlib.suppress(FileNotFoundError):
            entry.file.unlink()
        if re.fullmatch(r"[\w.-]+", entry.session):
            with contextlib.suppress(OSError):
                (self.folder / f"{entry.session}.lock").unlink()


class AutosaveService(QObject):
    """Copies unsaved text to the recovery store a few seconds after the last change.

    While changes keep coming (someone typing without a pause), a copy is still written at least
    every ``max_wait_s`` seconds.

    ``snapshot`` is called (in the UI thread) when it is time to save: it returns the text to keep,
    or ``None`` when there is nothing unsaved (the recovery copy is then removed).
    """

    saved = Signal(str)
    """The recovery copy was written: carries its path."""

    failed = Signal(str)
    """Writing the recovery copy failed: carries the message."""

    def __init__(self, store: RecoveryStore, snapshot: Callable[[], RecoverySnapshot | None], *,
                 delay_s: float = 3.0, max_wait_s: float = 20.0,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._snapshot = snapshot
        self._dirty = False
        self._dirty_since = 0.0
        self.max_wait_s = max_wait_s
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self.delay_s = delay_s

    @property
    def delay_s(self) -> float:
        """Seconds after the last change before the copy is written."""
        return self._delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self._delay_s = max(0.0, float(value))

    @property
    def pending(self) -> bool:
        """Whether a change has not been copied yet."""
        return self._dirty

    def document_changed(self) -> None:
        """Note a change; the copy is written after the delay (restarted by every change)."""
        now = time.monotonic()
        if not self._dirty:
            self._dirty = True
            self._dirty_since = now
        left = self.max_wait_s - (now - self._dirty_since)
        self._timer.start(max(0, int(min(self.delay_s, left) * 1000)))

    @Slot()
    def flush(self) -> None:
        """Write the copy now if anything changed since the last one."""
        self._timer.stop()
        if not self._dirty:
            return
        self._dirty = False
        try:
            snapshot = self._snapshot()
            if snapshot is None:
                self.store.clear()
                return
            path = self.store.write(snapshot)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("autosave failed: %s", error)
            self.failed.emit(f"Autosave failed: {error}")
            return
        self.saved.emit(str(path))

    def clear(self) -> None:
        """The document was saved (or dropped on purpose): remove the copy and forget changes."""
        self._timer.stop()
        self._dirty = False
        self.store.clear()

    def shutdown(self) -> None:
        """Stop the timer (the store is closed by its owner)."""
        self._timer.stop()

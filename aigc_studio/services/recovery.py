"""The recovery folder: unsaved text that outlives a crash or a ``kill -9``.

- :class:`RecoveryStore` keeps a copy of unsaved text per running session in the user's data folder:
  a snapshot (``<session>.recovery``, written atomically) and a journal of the edits made since
  (``<session>.journal``, append-only, a few bytes per edit however large the document). Each session
  holds a lock on its own entry, so the next start can tell a crashed (or killed) session's text
  from a running one's and offer it back. A folder that cannot be written leaves the store
  unavailable (:attr:`RecoveryStore.error` says why) instead of stopping the application.
- :class:`AutosaveService` journals changes at most :data:`JOURNAL_WAIT_S` after they are made, and
  writes a fresh snapshot a few seconds after the last change and at once when asked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_studio.services.files import (
    SessionLock,
    atomic_write,
    clean_stale_temporaries,
)

__all__ = ["JOURNAL_WAIT_S", "AutosaveService", "RecoveryEntry", "RecoverySnapshot",
           "RecoveryStore", "default_data_dir", "text_edit"]

log = logging.getLogger(__name__)

_MAGIC = "AIGC-STUDIO-RECOVERY 1"
_RECORD = re.compile(rb"E (\w+) (\d+) (\d+) (\d+)\n")

JOURNAL_WAIT_S = 0.5
"""The longest a change waits before it is in the journal: what a kill can lose, plus a write."""

_CHUNK = 1 << 16


def default_data_dir() -> Path:
    """The user's data folder for AIGC Studio (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("aigc-studio", "AIGC Studio"))


def text_edit(old: str, new: str) -> tuple[int, int, str]:
    """One edit turning ``old`` into ``new``: (position, characters removed, text inserted).

    Compares 64 KiB chunks from both ends, so the cost is a memory compare of the document.
    """
    limit = min(len(old), len(new))
    start = 0
    while start < limit:
        end = min(start + _CHUNK, limit)
        if old[start:end] == new[start:end]:
            start = end
            continue
        while old[start] == new[start]:
            start += 1
        break
    tail = 0
    most = limit - start
    while tail < most:
        step = min(_CHUNK, most - tail)
        if old[len(old) - tail - step:len(old) - tail] == new[len(new) - tail - step:len(new) - tail]:
            tail += step
            continue
        while old[len(old) - tail - 1] == new[len(new) - tail - 1]:
            tail += 1
        break
    return start, len(old) - start - tail, new[start:len(new) - tail]


def _apply_journal(text: str, generation: str, journal: bytes) -> tuple[str, int]:
    """Replay the complete records of ``generation``; return the text and how many were applied."""
    applied = 0
    at = 0
    while True:
        match = _RECORD.match(journal, at)
        if match is None:
            break
        payload_end = match.end() + int(match[4])
        if payload_end + 1 > len(journal) or journal[payload_end:payload_end + 1] != b"\n":
            break  # the last record was cut short by the kill
        if match[1].decode() == generation:
            position, removed = int(match[2]), int(match[3])
            if position + removed > len(text):
                break
            inserted = journal[match.end():payload_end].decode("utf-8")
            text = text[:position] + inserted + text[position + removed:]
            applied += 1
        at = payload_end + 1
    return text, applied


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
    """The recovery folder: a snapshot and a journal per running session, locked while it runs.

    ``folder`` defaults to ``<user data folder>/recovery``; tests pass a temporary folder. When the
    folder cannot be created or written, the store is not :attr:`available`: nothing is written or
    offered, and :attr:`error` says why.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_data_dir() / "recovery"
        self.session = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.file = self.folder / f"{self.session}.recovery"
        self.journal = self.folder / f"{self.session}.journal"
        self._lock = SessionLock(self.folder / f"{self.session}.lock")
        self._closed = False
        self._base: RecoverySnapshot | None = None  # what the snapshot plus the journal hold
        self._generation = ""
        self._journal_bytes = 0
        self.error: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._lock.acquire():  # pragma: no cover - a fresh random name
                raise OSError(f"cannot lock {self._lock.path}")
        except OSError as error:
            self.error = f"cannot write to {self.folder}: {error.strerror or error}"
            self._closed = True
            log.warning("autosave and recovery are off: %s", self.error)
            return
        clean_stale_temporaries(self.folder)

    @property
    def available(self) -> bool:
        """Whether unsaved text can be kept here (False: the folder is not writable)."""
        return self.error is None

    def write(self, snapshot: RecoverySnapshot, *, durable: bool = True) -> Path:
        """Save ``snapshot`` as this session's recovery text (atomically); the journal restarts."""
        if not self.available:
            return self.file
        generation = uuid.uuid4().hex[:12]
        header = json.dumps({"session": self.session, "document": snapshot.document,
                             "saved_at": time.time(), "pid": os.getpid(),
                             "generation": generation})
        data = snapshot.text.encode("utf-8")

        def write(stream: IO[bytes]) -> None:
            stream.write(f"{_MAGIC}\n{header}\n".encode())
            stream.write(data)

        atomic_write(self.file, write, durable=durable)
        with contextlib.suppress(FileNotFoundError):
            self.journal.unlink()  # its records belong to the previous generation anyway
        self._base, self._generation, self._journal_bytes = snapshot, generation, 0
        return self.file

    def record(self, snapshot: RecoverySnapshot) -> Path:
        """Keep ``snapshot`` cheaply: append the edit since the last record to the journal.

        A full snapshot is written instead when there is none yet, when the document's file changed,
        or when the journal has grown as large as a quarter of the text.
        """
        if not self.available:
            return self.file
        base = self._base
        if (base is None or base.document != snapshot.document
                or self._journal_bytes > max(1 << 20, len(snapshot.text) // 4)):
            return self.write(snapshot, durable=False)
        if base.text == snapshot.text:
            return self.journal
        position, removed, inserted = text_edit(base.text, snapshot.text)
        payload = inserted.encode("utf-8")
        record = b"E %s %d %d %d\n%s\n" % (self._generation.encode(), position, removed,
                                           len(payload), payload)
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, record)  # no fsync: a killed process's writes are in the OS already
        finally:
            os.close(fd)
        self._base = snapshot
        self._journal_bytes += len(record)
        return self.journal

    def clear(self) -> None:
        """Remove this session's recovery text (the document was saved or deliberately dropped)."""
        if not self.available:
            return
        self._base = None
        for file in (self.journal, self.file):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()

    def close(self) -> None:
        """End the session cleanly: remove its recovery text and its lock (idempotent)."""
        if self._closed:
            return
        self.clear()
        self._closed = True
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
        saved_at = float(header.get("saved_at", file.stat().st_mtime))
        journal = file.with_suffix(".journal")
        generation = str(header.get("generation", ""))
        if generation and journal.exists():
            text, applied = _apply_journal(text, generation, journal.read_bytes())
            if applied:
                saved_at = max(saved_at, journal.stat().st_mtime)
        return RecoveryEntry(file=file, session=str(header.get("session", file.stem)), text=text,
                             document=header.get("document"), saved_at=saved_at)

    def _is_alive(self, session: str) -> bool:
        lock_path = self.folder / f"{session}.lock"
        if not lock_path.exists():
            return False
        lock = SessionLock(lock_path)
        if lock.acquire():
            lock.release()
            return False
        return True

    def pending(self) -> list[RecoveryEntry]:
        """Text left by sessions that are no longer running, newest first.

        Unreadable recovery files are skipped with a log line (and left in place).
        """
        if not self.available:
            return []
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
                for leftover in (lock, lock.with_suffix(".journal")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
        return sorted(entries, key=lambda entry: entry.saved_at, reverse=True)

    def discard(self, entry: RecoveryEntry) -> None:
        """Delete a recovered entry (it was restored or the user declined it)."""
        for file in (entry.file.with_suffix(".journal"), entry.file):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        if re.fullmatch(r"[\w.-]+", entry.session):
            with contextlib.suppress(OSError):
                (self.folder / f"{entry.session}.lock").unlink()


class AutosaveService(QObject):
    """Copies unsaved text to the recovery store, so that a kill loses at most about a second.

    Every change is journalled at most ``max_wait_s`` after it was made, even while changes keep
    coming; ``delay_s`` after the last change (and on :meth:`flush`) a full snapshot is written.

    ``snapshot`` is called (in the UI thread) when it is time to save: it returns the text to keep,
    or ``None`` when there is nothing unsaved (the recovery copy is then removed).
    """

    saved = Signal(str)
    """The recovery copy (snapshot or journal) was written: carries its path."""

    failed = Signal(str)
    """Writing the recovery copy failed: carries the message."""

    def __init__(self, store: RecoveryStore, snapshot: Callable[[], RecoverySnapshot | None], *,
                 delay_s: float = 3.0, max_wait_s: float = JOURNAL_WAIT_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._snapshot = snapshot
        self._dirty = False         # changes not yet in the journal
        self._unsnapshotted = False  # changes not yet in a full snapshot
        self.max_wait_s = max_wait_s
        self._timer = QTimer(self)  # the full snapshot, after a pause
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self._journal_timer = QTimer(self)  # the journal, at most max_wait_s after a change
        self._journal_timer.setSingleShot(True)
        self._journal_timer.timeout.connect(self._on_journal_due)
        self.delay_s = delay_s

    @property
    def delay_s(self) -> float:
        """Seconds after the last change before a full snapshot is written."""
        return self._delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self._delay_s = max(0.0, float(value))

    @property
    def pending(self) -> bool:
        """Whether a change has not been copied yet."""
        return self._dirty

    def document_changed(self) -> None:
        """Note a change: journalled within ``max_wait_s``, snapshotted ``delay_s`` after the last."""
        if not self.store.available:
            return
        self._dirty = self._unsnapshotted = True
        if not self._journal_timer.isActive():
            self._journal_timer.start(max(0, int(self.max_wait_s * 1000)))
        self._timer.start(max(0, int(self.delay_s * 1000)))

    @Slot()
    def _on_journal_due(self) -> None:
        if self._dirty:
            self._save(full=False)

    @Slot()
    def flush(self) -> None:
        """Write a full snapshot now if anything changed since the last one."""
        self._timer.stop()
        if self._unsnapshotted:
            self._save(full=True)

    def _save(self, *, full: bool) -> None:
        self._journal_timer.stop()
        self._dirty = False
        if full:
            self._unsnapshotted = False
        try:
            snapshot = self._snapshot()
            if snapshot is None:
                self._unsnapshotted = False
                self.store.clear()
                return
            path = self.store.write(snapshot) if full else self.store.record(snapshot)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("autosave failed: %s", error)
            self.failed.emit(f"Autosave failed: {error}")
            return
        self.saved.emit(str(path))

    def clear(self) -> None:
        """The document was saved (or dropped on purpose): remove the copy and forget changes."""
        self._timer.stop()
        self._journal_timer.stop()
        self._dirty = self._unsnapshotted = False
        self.store.clear()

    def shutdown(self) -> None:
        """Stop the timers (the store is closed by its owner)."""
        self._timer.stop()
        self._journal_timer.stop()

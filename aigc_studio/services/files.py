"""Atomic file writes whose temporary files can be cleaned up after a crash, and session locks.

A save writes ``.<name>.aigc-studio-<pid>-<random>.tmp`` next to the target, fsyncs it and renames
it over the target. A process killed in between leaves that temporary file behind;
:func:`clean_stale_temporaries` removes those whose writer is no longer running (or that are older
than :data:`STALE_AFTER_S`). :class:`SessionLock` is a lock the OS drops when its process dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["STALE_AFTER_S", "TEMPORARY_TAG", "SessionLock", "atomic_write",
           "clean_stale_temporaries", "fsync_folder"]

log = logging.getLogger(__name__)

TEMPORARY_TAG = "aigc-studio"
"""Part of every temporary file name this application writes."""

STALE_AFTER_S = 3600.0
"""A temporary file this old is stale even if a process with its writer's id is running (no save
takes an hour; the id may belong to another program by now)."""

_TEMPORARY = re.compile(rf"^\.(?P<name>.+)\.{TEMPORARY_TAG}-(?P<pid>\d+)-[^.]*\.tmp$")


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX only; errors are ignored)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{TEMPORARY_TAG}-{os.getpid()}-"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], *, durable: bool = True) -> None:
    """Write ``path`` through a temporary file in the same folder and rename it over the target.

    ``durable`` fsyncs the file and the folder (a power cut then leaves the old or the new file);
    without it the write still survives the process being killed. A symlink is followed, so it stays
    a link. Raises ``OSError``; the target is then unchanged and the temporary file removed.
    """
    target = Path(os.path.realpath(path))
    folder = target.parent
    fd, temporary = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            if durable:
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
    if durable:
        fsync_folder(folder)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process
    return True


def clean_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove this application's temporary files in ``folder`` left by writers that died.

    ``name`` limits it to one target's temporary files. Returns what was removed; errors are
    logged and skipped (cleaning up never stops an open or a save).
    """
    removed: list[Path] = []
    pattern = f".{name}.{TEMPORARY_TAG}-*.tmp" if name else f".*.{TEMPORARY_TAG}-*.tmp"
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return removed
    now = time.time()
    for file in candidates:
        match = _TEMPORARY.match(file.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        try:
            old = now - file.lstat().st_mtime > STALE_AFTER_S
            if old or not _pid_alive(int(match["pid"])):
                file.unlink()
                removed.append(file)
        except OSError as error:
            log.warning("cannot remove the stale temporary file %s: %s", file, error)
    if removed:
        log.info("removed %d stale temporary file(s) in %s", len(removed), folder)
    return removed


class SessionLock:
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

"""Run tests/faults/document_kill_child.py, SIGKILL it at a random moment, and see what survived.

Used by test_document_faults (a few kills) and bench/kill_probe.py (many).
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aigc_studio.services.documents import read_document
from aigc_studio.services.recovery import RecoveryStore

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Kill:
    """What one kill lost: typed characters not recovered, and how long ago the first was typed."""

    typed: int          # characters typed before the kill (after the base text)
    recovered: int      # of those, how many the recovery copy (or the saved file) holds
    lost_ms: float      # from the first lost keystroke to the kill (0 when nothing was lost)
    source: str         # "recovery" or "file"
    saving: bool        # the kill came while a save was under way

    @property
    def lost(self) -> int:
        """Typed characters lost."""
        return self.typed - self.recovered


def _start(work: Path, mode: str, base_bytes: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen([sys.executable, "-m", "tests.faults.document_kill_child", str(work),
                             mode, str(base_bytes)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _read_until(child: subprocess.Popen[str], lines: list[str], deadline: float,
                want: str | None = None) -> bool:
    """Collect the child's lines until ``deadline`` (or a line starting with ``want``)."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(timeout=left):
                continue
            line = child.stdout.readline()
            if not line:
                return False
            lines.append(line.strip())
            if want is not None and line.startswith(want):
                return True
    return want is None


def _kill(child: subprocess.Popen[str], lines: list[str]) -> float:
    child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    rest, _ = child.communicate(timeout=30)  # what it printed before it died
    lines.extend(line.strip() for line in rest.splitlines())
    assert child.returncode == -signal.SIGKILL, child.returncode
    return killed_at


def kill_while_typing(work: Path, rng: random.Random, *, mode: str = "type",
                      base_bytes: int = 20_000, after: tuple[float, float] = (0.3, 1.2)) -> Kill:
    """Start a writer in ``work`` (a fresh folder), kill it ``after`` seconds into typing, and
    compare what it typed with what recovery (or the saved file) gives back."""
    from tests.faults.document_kill_child import base_text, word

    work.mkdir(parents=True, exist_ok=True)
    child = _start(work, mode, base_bytes)
    lines: list[str] = []
    try:
        if not _read_until(child, lines, time.monotonic() + 60, want="ready"):
            raise RuntimeError(f"the writer did not start: {lines}")
        _read_until(child, lines, time.monotonic() + rng.uniform(*after))
    finally:
        killed_at = _kill(child, lines)
    typed_at = [(int(n), float(t)) for kind, n, t in
                (line.split() for line in lines if line.startswith("typed "))]
    count = typed_at[-1][0] if typed_at else 0
    words, total = [], 0
    while total < count:
        words.append(word(len(words)))
        total += len(words[-1])
    base = read_document(work / "novel.txt").text if mode == "type" else None
    store = RecoveryStore(work / "recovery")
    try:
        entries = store.pending()
        for entry in entries:
            store.discard(entry)
    finally:
        store.close()
    expected_base = base_text(base_bytes)
    typed = expected_base + "".join(words)
    on_disk = read_document(work / "novel.txt").text
    source, best = "file", on_disk
    if entries and len(entries[0].text) >= len(on_disk):
        source, best = "recovery", entries[0].text
    assert base is None or base == expected_base
    if not typed.startswith(best) or len(best) < len(expected_base):
        raise AssertionError(f"recovered text is not a prefix of what was typed "
                             f"({len(best)} characters from {source})")
    recovered = len(best) - len(expected_base)
    first_lost = next((t for n, t in typed_at if n > recovered), None)
    lost_ms = 0.0 if first_lost is None else (killed_at - first_lost) * 1000
    # the 40th, 80th... word starts a save: no "saved" line after it means the kill came mid-save
    saving = (mode == "save" and bool(typed_at) and len(typed_at) % 40 == 0
              and lines[-1].startswith("typed "))
    return Kill(count, recovered, max(lost_ms, 0.0), source, saving)


def kill_while_saving(work: Path, rng: random.Random, *, base_bytes: int = 2_000_000,
                      after: tuple[float, float] = (0.05, 0.4), halfway: bool = False) -> None:
    """Start a process that saves ``work/novel.txt`` and kill it mid-save: at a random moment of a
    tight loop of saves, or (``halfway``) once a save has written half its temporary file, which
    lands inside a save on any machine."""
    work.mkdir(parents=True, exist_ok=True)
    child = _start(work, "savehalf" if halfway else "saveloop", base_bytes)
    lines: list[str] = []
    try:
        if halfway:
            if not _read_until(child, lines, time.monotonic() + 60, want="half"):
                raise RuntimeError(f"the saver did not get halfway: {lines}")
            return
        if not _read_until(child, lines, time.monotonic() + 60, want="saving"):
            raise RuntimeError(f"the saver did not start: {lines}")
        _read_until(child, lines, time.monotonic() + rng.uniform(*after))
    finally:
        _kill(child, lines)


def temporaries(folder: Path) -> list[Path]:
    """Hidden temporary files next to the document (this application's or anyone's)."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.suffix == ".tmp")

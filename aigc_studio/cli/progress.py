"""How far a long evaluation is, reported on standard error."""

from __future__ import annotations

import sys


class _Progress:
    """How far a long evaluation is, on standard error (standard output keeps only the results): a line
    such as ``condition: 120/400 images, 35 s`` when it starts, at most every ``every`` seconds while it
    runs and when it ends; on a terminal, one line rewritten in place instead."""

    def __init__(self, what: str, total: int | None, unit: str, *, every: float = 2.0) -> None:
        import time

        self._clock = time.monotonic
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.stream = sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.started = self._last = self._clock()
        self._write(self.started)

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
        self.update(self.done + count)

    def update(self, done: int) -> None:
        """``done`` units are done."""
        self.done = done
        now = self._clock()
        if now - self._last >= (0.25 if self.tty else self.every):
            self._write(now)

    def close(self) -> None:
        """The last line (on a terminal, the line is ended)."""
        self._write(self._clock(), final=True)

    def _write(self, now: float, final: bool = False) -> None:
        self._last = now
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        line = f"{self.what}: {count} {self.unit}, {now - self.started:.0f} s"
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

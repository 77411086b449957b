"""Work around a reference-counting bug of PySide6 6.12.0 on Python 3.11.

In that build, every Qt method that returns nothing gives back ``None`` without a new reference, and
``SignalInstance.emit()`` / ``disconnect()`` do the same with ``True``/``False``. On Python 3.12 and
later these objects are immortal and nothing happens; on 3.11 each call takes one reference away, and
after enough calls (a few hundred emits, some tens of thousands of ``QTimer.start()``) the interpreter
aborts with "Fatal Python error: none_dealloc" or "bool_dealloc".

The bug is detected at import, so a fixed PySide6 (6.11 and earlier are fine) is left alone. Where
it is present, ``None``, ``True`` and ``False`` get the treatment Python 3.12 gives them: a reference
count so large that no amount of lost references can bring it to zero. These three objects are never
freed anyway, so nothing else changes. The real fix is a PySide6 without the bug
(``PySide6-Essentials!=6.12.0`` on Python < 3.12) or Python 3.12+.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, QTimer, Signal

__all__ = ["affected", "apply"]

log = logging.getLogger(__name__)

_PROBES = 16
_IMMORTAL = 1 << 40  # what 3.12 does, roughly: far beyond what any number of calls can take away
_applied = False
affected: list[str] = []
"""The objects whose reference count was raised (empty where PySide6 is fine)."""


class _Probe(QObject):
    ping = Signal()


def _loses_references(obj: object, call: object) -> bool:
    before = sys.getrefcount(obj)
    for _ in range(_PROBES):
        call()  # type: ignore[operator]
    return sys.getrefcount(obj) <= before - _PROBES


def _make_immortal(obj: object) -> None:
    ctypes.c_ssize_t.from_address(id(obj)).value += _IMMORTAL


def apply() -> None:
    """Detect the bug and protect ``None``, ``True`` and ``False`` (idempotent)."""
    global _applied
    if _applied:
        return
    _applied = True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    timer = QTimer()
    probe = _Probe()
    if _loses_references(None, lambda: timer.setInterval(1)):
        affected.append("None")
    if _loses_references(True, probe.ping.emit):
        affected.extend(["True", "False"])
    for name in affected:
        _make_immortal({"None": None, "True": True, "False": False}[name])
    if affected:
        log.info("PySide6 loses references to %s; protected them (use a PySide6 other than "
                 "6.12.0 on Python 3.11, or Python 3.12+)", ", ".join(affected))


apply()

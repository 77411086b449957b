"""Helpers of the canvas tests: a generated PNG with its record, an icon SVG, mouse drags."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from aigc_studio.core.png_record import GenerationRecord, encode_png
from aigc_studio.gui.canvas import DesignCanvasView

ICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
            'stroke="currentColor" stroke-width="2" stroke-linecap="round"><circle cx="12" cy="12" r="9"/>'
            '<path d="M8 14s1.5 2 4 2 4-2 4-2"/><line x1="9" y1="9" x2="9.01" y2="9"/></svg>')
EMOJI_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 36 36" width="36" height="36">'
             '<circle fill="#FFCC4D" cx="18" cy="18" r="18"/><ellipse fill="#664500" cx="12" cy="14" rx="2.5" '
             'ry="3.5"/><ellipse fill="#664500" cx="24" cy="14" rx="2.5" ry="3.5"/></svg>')


def generated_png(seed: int = 42, side: int = 64) -> tuple[bytes, str]:
    """A PNG with a generation record in it, and the record's JSON."""
    yy, xx = np.mgrid[0:side, 0:side]
    pixels = np.stack([xx * 255 // side, yy * 255 // side, np.full_like(xx, 120 + seed % 100),
                       np.full_like(xx, 255)], -1).astype(np.uint8)
    record = GenerationRecord(model="emoji-style", model_sha256="ab" * 32, seed=seed, text="a cat").with_pixels(pixels)
    return encode_png(pixels, record.text_chunks()), record.to_json()


def _send(view: DesignCanvasView, kind: QEvent.Type, at: QPoint, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    local = QPointF(at)
    event = QMouseEvent(kind, local, QPointF(view.viewport().mapToGlobal(at)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def drag(view: DesignCanvasView, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """A left-button drag in scene coordinates, moving through ``steps`` points."""
    held = Qt.MouseButton.LeftButton
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    _send(view, QEvent.Type.MouseButtonPress, a, held)
    for i in range(1, steps + 1):
        point = QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps)
        _send(view, QEvent.Type.MouseMove, point, held)
    _send(view, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)

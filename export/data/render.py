"""Rendering for export.data.images: SVGs with QtSvg offscreen, colour emoji with Pillow, and contact
sheets of the results on a checkerboard. Every function returns straight-alpha RGBA uint8 arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from export.data.archives import DataError, log

NOTO_PT = 109          # the one size at which the colour bitmaps (136 px strike) are drawn


def _qt_app() -> object:
    """The process's Qt application, created if needed. A QApplication (not a QGuiApplication), so
    that widgets created later in the same process, as in a test session, still work."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    return QCoreApplication.instance() or QApplication([])


def svg_renderer() -> Callable[[str, int], np.ndarray | None]:
    """A function (svg text, size) -> (size, size, 4) uint8 straight-alpha RGBA, or None if the SVG
    is invalid. Drawn with QtSvg's QSvgRenderer onto a transparent QImage, antialiased, at the final
    size (sharper than drawing large and shrinking)."""
    try:
        from PySide6.QtCore import QByteArray, QRectF
        from PySide6.QtGui import QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer
    except ImportError as exc:
        raise DataError(f"QtSvg is not available ({exc}); install PySide6-Essentials >= 6.6") from None
    app = _qt_app()

    def render(svg: str, size: int) -> np.ndarray | None:
        renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
        if not renderer.isValid():
            return None
        img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(0)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        rgba = img.convertToFormat(QImage.Format.Format_RGBA8888)  # un-premultiplies
        arr = np.frombuffer(rgba.constBits(), np.uint8, rgba.sizeInBytes())
        return arr.reshape(size, rgba.bytesPerLine())[:, : size * 4].reshape(size, size, 4).copy()

    render.app = app  # type: ignore[attr-defined]  # keep the application alive with the renderer
    return render


def emoji_renderer(font_path: Path) -> Callable[[str, Sequence[int]], list[np.ndarray] | None]:
    """A function (emoji, sizes) -> one RGBA array per size, or None when the font has no single glyph
    for that sequence (it would draw several glyphs side by side, or nothing)."""
    from PIL import features

    font = ImageFont.truetype(str(font_path), NOTO_PT)
    advance = font.getlength("\U0001F600")
    shaped = features.check("raqm")
    if not shaped:
        log("  warning: Pillow has no raqm layout; emoji sequences (ZWJ, flags, skin tones) are skipped")

    def render(text: str, sizes: Sequence[int]) -> list[np.ndarray] | None:
        if not shaped and len(text.replace("\ufe0f", "")) > 1:
            return None
        if font.getlength(text) > 1.2 * advance:
            return None
        canvas = Image.new("RGBA", (int(advance * 1.5), int(advance * 1.5)), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((int(advance * 0.25), int(advance * 0.25)), text, font=font,
                                    embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        if box is None:
            return None
        glyph = canvas.crop(box)
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        return [np.asarray(square.resize((s, s), Image.Resampling.LANCZOS)) for s in sizes]

    return render


def contact_sheet(images: Sequence[np.ndarray], cols: int = 20, cell: int = 64) -> Image.Image:
    """Images on a light checkerboard (so transparency shows), `cols` per row."""
    rows = max(1, -(-len(images) // cols))
    yy, xx = np.mgrid[0:rows * cell, 0:cols * cell]
    board = np.where(((yy // 8) + (xx // 8)) % 2 == 0, 235, 205).astype(np.uint8)
    sheet = Image.fromarray(np.stack([board] * 3 + [np.full_like(board, 255)], axis=-1), "RGBA")
    for i, img in enumerate(images):
        tile = Image.fromarray(img, "RGBA")
        if tile.size != (cell, cell):
            tile = tile.resize((cell, cell), Image.Resampling.LANCZOS)
        sheet.alpha_composite(tile, ((i % cols) * cell, (i // cols) * cell))
    return sheet

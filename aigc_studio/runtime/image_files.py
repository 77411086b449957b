"""Image files that need an encoder beyond PNG: animated GIF and WebP (Pillow; no Qt, no model).

Shared by the CLI (`aigc-studio generate --interpolate -o x.gif`) and the Design workspace's export, so
both write the same bytes. GIF has 256 colours and on/off transparency: pixels with alpha of at least
GIF_ALPHA_THRESHOLD are kept, composited onto GIF_MATTE, and the others get the dedicated palette entry
GIF_TRANSPARENT_INDEX, so no speckles appear where the image is transparent. WebP keeps full alpha
(lossless).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ANIMATION_FORMATS", "FRAME_MS", "GIF_ALPHA_THRESHOLD", "GIF_MATTE", "GIF_TRANSPARENT_INDEX",
           "composite", "encode_animation", "gif_frames", "save_animation"]

GIF_ALPHA_THRESHOLD = 128        # GIF transparency is on or off: alpha >= this is opaque, the rest transparent
GIF_MATTE = (255, 255, 255)      # kept semi-transparent pixels (and JPEG) are composited onto white
GIF_TRANSPARENT_INDEX = 255      # the palette entry of transparent pixels; 0 .. 254 hold the colours
FRAME_MS = 80                    # the duration of one animation frame
ANIMATION_FORMATS = ("GIF", "WEBP")  # Pillow's names of the formats that hold an animation here


def composite(img: np.ndarray, matte: tuple[int, int, int]) -> np.ndarray:
    """(..., 4) uint8 straight RGBA composited onto the colour `matte`: (..., 3) uint8 RGB."""
    alpha = img[..., 3:].astype(np.float32) / 255.0
    rgb = img[..., :3] * alpha + np.asarray(matte, np.float32) * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def gif_frames(frames: Sequence[np.ndarray]) -> list[Any]:
    """RGBA frames as Pillow palette images for GIF, which has 256 colours and on/off transparency.

    Pixels with alpha >= GIF_ALPHA_THRESHOLD are opaque, their colour composited onto GIF_MATTE (a
    nearly transparent pixel's colour is noise, and must not show); the others are transparent, with
    the dedicated palette entry GIF_TRANSPARENT_INDEX. One palette of 255 colours serves every frame,
    so colours do not flicker from frame to frame."""
    from PIL import Image

    rgba = np.stack([np.asarray(f, np.uint8) for f in frames])            # (N, H, W, 4)
    n, h, w, _ = rgba.shape
    opaque = rgba[..., 3] >= GIF_ALPHA_THRESHOLD                            # (N, H, W)
    rgb = composite(rgba, GIF_MATTE)
    rgb[~opaque] = GIF_MATTE
    q = Image.fromarray(rgb.reshape(n * h, w, 3), "RGB").quantize(
        colors=GIF_TRANSPARENT_INDEX, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    index = np.array(q, dtype=np.uint8).reshape(n, h, w)
    index[~opaque] = GIF_TRANSPARENT_INDEX
    palette = list(q.getpalette() or [])[:3 * GIF_TRANSPARENT_INDEX]
    palette += [0] * (3 * GIF_TRANSPARENT_INDEX - len(palette)) + list(GIF_MATTE)
    pics = []
    for frame in index:
        pic = Image.fromarray(frame, "P")
        pic.putpalette(palette)
        pic.info["transparency"] = GIF_TRANSPARENT_INDEX
        pics.append(pic)
    return pics


def save_animation(out: str | Path | io.BytesIO, fmt: str, frames: Sequence[np.ndarray],
                   duration_ms: int = FRAME_MS) -> None:
    """Frames (H, W, 4) uint8 RGBA as an animated GIF (see `gif_frames`) or lossless WebP (full alpha),
    written to the path or file object `out`; `fmt` is "GIF" or "WEBP"."""
    from PIL import Image

    if fmt == "GIF":
        pics = gif_frames(frames)
        pics[0].save(out, format="GIF", save_all=True, append_images=pics[1:], duration=duration_ms, loop=0,
                     disposal=2, transparency=GIF_TRANSPARENT_INDEX, optimize=False)
    elif fmt == "WEBP":
        webp = [Image.fromarray(np.asarray(f, np.uint8), "RGBA") for f in frames]
        webp[0].save(out, format="WEBP", save_all=True, append_images=webp[1:], duration=duration_ms, loop=0,
                     lossless=True)
    else:
        raise ValueError(f"an animation is saved as {' or '.join(ANIMATION_FORMATS)}, not {fmt!r}")


def encode_animation(frames: Sequence[np.ndarray], fmt: str, duration_ms: int = FRAME_MS) -> bytes:
    """The bytes of `save_animation`'s file."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    buffer = io.BytesIO()
    save_animation(buffer, fmt, frames, duration_ms)
    return buffer.getvalue()

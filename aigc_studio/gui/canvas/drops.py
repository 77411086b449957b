"""What a drop on the canvas adds: generated images, SVG and PNG data, and SVG and PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPointF

if TYPE_CHECKING:
    from aigc_studio.gui.canvas.view import DesignCanvasView

__all__ = ["IMAGE_MIME", "MAX_DROP_BYTES", "RECORD_MIME", "layers_from_mime"]

IMAGE_MIME = "application/x-aigc-image"    # PNG bytes of a generated image
RECORD_MIME = "application/x-aigc-record"  # its generation record's JSON (optional; else read from the PNG)
MAX_DROP_BYTES = 64 * 2**20                # a dropped file larger than this is refused


def _read_file(path: Path) -> bytes:
    with open(path, "rb") as stream:
        data = stream.read(MAX_DROP_BYTES + 1)
    if len(data) > MAX_DROP_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_DROP_BYTES // 2**20} MiB")
    return data


def _add_file(canvas: DesignCanvasView, path: Path, at: QPointF) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".png":
        return canvas.add_image(_read_file(path), name=path.stem, at=at)
    if suffix == ".svg":
        text = _read_file(path).decode("utf-8")
        return canvas.add_svg(text, path.stem, "currentColor" in text, at=at)
    return None


def layers_from_mime(canvas: DesignCanvasView, mime: QMimeData, at: QPointF) -> tuple[list[str], list[str]]:
    """Add what ``mime`` holds as layers centred at ``at``: the new ids and a message per problem."""
    added: list[str] = []
    problems: list[str] = []
    try:
        if mime.hasFormat(IMAGE_MIME):
            record = bytes(mime.data(RECORD_MIME).data()).decode("utf-8") if mime.hasFormat(RECORD_MIME) else None
            added.append(canvas.add_image(bytes(mime.data(IMAGE_MIME).data()), record or None, "Generated", at))
        elif mime.hasFormat("image/svg+xml"):
            text = bytes(mime.data("image/svg+xml").data()).decode("utf-8")
            added.append(canvas.add_svg(text, "SVG", "currentColor" in text, at))
        elif mime.hasFormat("image/png"):
            added.append(canvas.add_image(bytes(mime.data("image/png").data()), None, "Image", at))
    except (ValueError, UnicodeDecodeError) as error:
        problems.append(f"Cannot add the dropped image: {error}")
    for url in mime.urls() if not added else []:
        if not url.isLocalFile():
            continue
        path = Path(url.toLocalFile())
        try:
            layer_id = _add_file(canvas, path, at)
        except (OSError, ValueError, UnicodeDecodeError) as error:
            problems.append(f"Cannot add {path.name}: {error}")
            continue
        if layer_id is None:
            problems.append(f"Cannot add {path.name}: only PNG and SVG files can be dropped on the canvas")
        else:
            added.append(layer_id)
    return added, problems

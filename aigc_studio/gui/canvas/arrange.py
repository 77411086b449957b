"""Arranging layers, each call one undo step: z-order, align, distribute, group, scale, rotate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aigc_studio.gui.canvas.geometry import Box, align_offsets, distribute_offsets
from aigc_studio.gui.canvas.scene import box_of

if TYPE_CHECKING:
    from aigc_studio.gui.canvas.view import DesignCanvasView

__all__ = ["align", "bring_forward", "bring_to_front", "distribute", "group", "rotate", "scale",
           "send_backward", "send_to_back", "ungroup"]


def _restack(canvas: DesignCanvasView, order: list[str], text: str) -> None:
    """Give the layers z = 1, 2, ... in ``order`` (bottom to top)."""
    canvas.change({layer_id: {"z": float(z)} for z, layer_id in enumerate(order, start=1)}, text)


def _order(canvas: DesignCanvasView) -> list[str]:
    return [layer.id for layer in canvas.layers()]


def bring_to_front(canvas: DesignCanvasView, ids: Sequence[str]) -> None:
    """Put the layers above all others, keeping their own order."""
    order = _order(canvas)
    _restack(canvas, [i for i in order if i not in ids] + [i for i in order if i in ids], "Bring to front")


def send_to_back(canvas: DesignCanvasView, ids: Sequence[str]) -> None:
    """Put the layers below all others, keeping their own order."""
    order = _order(canvas)
    _restack(canvas, [i for i in order if i in ids] + [i for i in order if i not in ids], "Send to back")


def bring_forward(canvas: DesignCanvasView, ids: Sequence[str]) -> None:
    """Move each layer one step up."""
    order = _order(canvas)
    for index in range(len(order) - 2, -1, -1):
        if order[index] in ids and order[index + 1] not in ids:
            order[index], order[index + 1] = order[index + 1], order[index]
    _restack(canvas, order, "Bring forward")


def send_backward(canvas: DesignCanvasView, ids: Sequence[str]) -> None:
    """Move each layer one step down."""
    order = _order(canvas)
    for index in range(1, len(order)):
        if order[index] in ids and order[index - 1] not in ids:
            order[index], order[index - 1] = order[index - 1], order[index]
    _restack(canvas, order, "Send backward")


def _shift(canvas: DesignCanvasView, ids: Sequence[str], offsets: list[tuple[float, float]], text: str) -> None:
    changes = {}
    for layer_id, (dx, dy) in zip(ids, offsets):
        layer = canvas.layer(layer_id)
        changes[layer_id] = {"x": layer.x + dx, "y": layer.y + dy}
    canvas.change(changes, text)


def align(canvas: DesignCanvasView, ids: Sequence[str], mode: str, to_canvas: bool = False) -> None:
    """Align the layers' ``mode`` edge or centre ("left", "hcenter", "right", "top", "vcenter",
    "bottom") with their common bounds, or with the paper (``to_canvas``, or a single layer)."""
    boxes = [box_of(canvas.item(i)) for i in ids]
    width, height = canvas.canvas_size
    within = Box(0, 0, width, height) if to_canvas or len(ids) == 1 else None
    _shift(canvas, ids, align_offsets(boxes, mode, within), f"Align {mode}")


def distribute(canvas: DesignCanvasView, ids: Sequence[str], axis: str) -> None:
    """Space three or more layers evenly, "horizontal" or "vertical"."""
    boxes = [box_of(canvas.item(i)) for i in ids]
    _shift(canvas, ids, distribute_offsets(boxes, axis), f"Distribute {axis}")


def group(canvas: DesignCanvasView, ids: Sequence[str]) -> str:
    """Group the layers: they select and move together. Returns the group id."""
    group_id = uuid.uuid4().hex[:12]
    canvas.set_fields(ids, "Group", group=group_id)
    return group_id


def ungroup(canvas: DesignCanvasView, ids: Sequence[str]) -> None:
    """Ungroup the layers."""
    canvas.set_fields(ids, "Ungroup", group="")


def scale(canvas: DesignCanvasView, ids: Sequence[str], factor: float) -> None:
    """Scale the layers by ``factor`` about their own centres."""
    layers = [canvas.layer(i) for i in ids]
    canvas.change({la.id: {"scale": min(100.0, max(0.01, la.scale * factor))} for la in layers}, "Scale")


def rotate(canvas: DesignCanvasView, ids: Sequence[str], degrees: float) -> None:
    """Rotate the layers by ``degrees`` (clockwise) about their own centres."""
    layers = [canvas.layer(i) for i in ids]
    canvas.change({la.id: {"rotation": (la.rotation + degrees) % 360} for la in layers}, "Rotate")

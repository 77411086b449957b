"""Pure geometry of the canvas: snapping, aligning and distributing rectangles (no Qt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ALIGN_MODES", "Box", "Snap", "align_offsets", "distribute_offsets", "snap"]

ALIGN_MODES = ("left", "hcenter", "right", "top", "vcenter", "bottom")


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle: left, top, width, height."""

    left: float
    top: float
    width: float
    height: float

    @property
    def xs(self) -> tuple[float, float, float]:
        """Left edge, centre and right edge."""
        return self.left, self.left + self.width / 2, self.left + self.width

    @property
    def ys(self) -> tuple[float, float, float]:
        """Top edge, centre and bottom edge."""
        return self.top, self.top + self.height / 2, self.top + self.height


@dataclass(frozen=True)
class Snap:
    """How far to shift a moving box so that an edge or centre meets a guide, and the guides met."""

    dx: float = 0.0
    dy: float = 0.0
    guide_x: float | None = None   # a vertical guide line at this x
    guide_y: float | None = None   # a horizontal guide line at this y


def _nearest(values: Sequence[float], targets: Sequence[float], tolerance: float) -> tuple[float, float | None]:
    best: tuple[float, float | None] = (0.0, None)
    best_distance = tolerance
    for value in values:
        for target in targets:
            distance = abs(target - value)
            if distance <= best_distance:
                best, best_distance = (target - value, target), distance
    return best


def snap(moving: Box, canvas: Box, others: Sequence[Box], tolerance: float) -> Snap:
    """Snap ``moving``'s edges and centre to the canvas's edges and centre and to ``others``' edges
    and centres, each axis on its own, when within ``tolerance``."""
    target_xs = [*canvas.xs, *(x for box in others for x in box.xs)]
    target_ys = [*canvas.ys, *(y for box in others for y in box.ys)]
    dx, guide_x = _nearest(moving.xs, target_xs, tolerance)
    dy, guide_y = _nearest(moving.ys, target_ys, tolerance)
    return Snap(dx, dy, guide_x, guide_y)


def align_offsets(boxes: Sequence[Box], mode: str, within: Box | None = None) -> list[tuple[float, float]]:
    """The (dx, dy) moving each box to align ``mode`` with the others' bounds (or with ``within``,
    e.g. the canvas, when given or when there is only one box)."""
    if mode not in ALIGN_MODES:
        raise ValueError(f"unknown alignment {mode!r} (known: {', '.join(ALIGN_MODES)})")
    if within is None:
        if len(boxes) < 2:
            return [(0.0, 0.0) for _ in boxes]
        left = min(b.left for b in boxes)
        top = min(b.top for b in boxes)
        within = Box(left, top, max(b.left + b.width for b in boxes) - left,
                     max(b.top + b.height for b in boxes) - top)
    axis = 0 if mode in ("left", "hcenter", "right") else 1
    which = {"left": 0, "hcenter": 1, "right": 2, "top": 0, "vcenter": 1, "bottom": 2}[mode]
    target = (within.xs if axis == 0 else within.ys)[which]
    out = []
    for box in boxes:
        shift = target - (box.xs if axis == 0 else box.ys)[which]
        out.append((shift, 0.0) if axis == 0 else (0.0, shift))
    return out


def distribute_offsets(boxes: Sequence[Box], axis: str) -> list[tuple[float, float]]:
    """The (dx, dy) spacing the boxes with equal gaps along ``axis`` ("horizontal" or "vertical");
    the first and last stay where they are."""
    if axis not in ("horizontal", "vertical"):
        raise ValueError(f"unknown axis {axis!r}")
    horizontal = axis == "horizontal"
    out = [(0.0, 0.0)] * len(boxes)
    if len(boxes) < 3:
        return out
    start = (lambda b: b.left) if horizontal else (lambda b: b.top)
    size = (lambda b: b.width) if horizontal else (lambda b: b.height)
    order = sorted(range(len(boxes)), key=lambda i: start(boxes[i]))
    first, last = boxes[order[0]], boxes[order[-1]]
    span = start(last) + size(last) - start(first)
    gap = (span - sum(size(b) for b in boxes)) / (len(boxes) - 1)
    at = start(first)
    for i in order:
        shift = at - start(boxes[i])
        out[i] = (shift, 0.0) if horizontal else (0.0, shift)
        at += size(boxes[i]) + gap
    return out

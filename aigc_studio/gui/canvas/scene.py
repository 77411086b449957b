"""The design scene: the paper, snapping guides while dragging, and drags reported as one change."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneMouseEvent

from aigc_studio.core.project_schema import Layer
from aigc_studio.gui.canvas.geometry import Box, snap
from aigc_studio.gui.canvas.items import LAYER_ROLE, layer_of

__all__ = ["DesignScene", "box_of"]


def box_of(item: QGraphicsItem) -> Box:
    """The item's bounds on the canvas (after scale and rotation)."""
    rect = item.sceneBoundingRect()
    return Box(rect.left(), rect.top(), rect.width(), rect.height())


class DesignScene(QGraphicsScene):
    """The canvas's scene; items are layers, the paper is ``(0, 0, width, height)``."""

    text_edited = Signal(str, str, str)
    """A text layer was edited in place: carries the layer id, the text before and after."""

    drag_finished = Signal(object, object)
    """A mouse drag moved layers: carries their layers before and after (lists of ``Layer``)."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.exporting = False        # True while rendering an export: no paper, guides or frames
        self.snapping = True
        self.snap_tolerance = 8.0     # canvas pixels (the view keeps it ~8 screen pixels)
        self._guides: tuple[float | None, float | None] = (None, None)
        self._drag_start: dict[str, Layer] = {}
        self._grabbed: QGraphicsItem | None = None
        self.set_canvas_size(width, height)

    @property
    def canvas_rect(self) -> QRectF:
        """The paper: what is exported."""
        return QRectF(0, 0, self._width, self._height)

    def set_canvas_size(self, width: int, height: int) -> None:
        """Resize the paper (the scene keeps a margin around it for panning)."""
        self._width, self._height = int(width), int(height)
        margin = max(width, height) * 0.5
        self.setSceneRect(QRectF(-margin, -margin, width + 2 * margin, height + 2 * margin))
        self.update()

    def layer_items(self) -> list[QGraphicsItem]:
        """The layer items, bottom to top."""
        items = [item for item in self.items() if item.data(LAYER_ROLE)]
        return sorted(items, key=lambda item: item.zValue())

    # ---------------------------------------------------------------------------------------- snapping

    def snap_position(self, item: QGraphicsItem, proposed: QPointF) -> QPointF:
        """Where ``item`` goes when dragged to ``proposed``: snapped to guides and other layers."""
        if not self.snapping or item is not self._grabbed or len(self.selectedItems()) != 1:
            return proposed
        box = box_of(item)
        shift = proposed - item.pos()
        moving = Box(box.left + shift.x(), box.top + shift.y(), box.width, box.height)
        others = [box_of(other) for other in self.layer_items() if other is not item and other.isVisible()]
        result = snap(moving, Box(0, 0, self._width, self._height), others, self.snap_tolerance)
        if self._guides != (result.guide_x, result.guide_y):
            self._guides = (result.guide_x, result.guide_y)
            self.update()
        return proposed + QPointF(result.dx, result.dy)

    # ---------------------------------------------------------------------------------------- drags

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mousePressEvent(event)
        grabber = self.mouseGrabberItem()
        self._grabbed = grabber if grabber is not None and grabber.data(LAYER_ROLE) else None
        self._drag_start = {item.data(LAYER_ROLE): layer_of(item) for item in self.selectedItems()
                            if item.data(LAYER_ROLE)}

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self.finish_drag()

    def finish_drag(self) -> None:
        """Report the layers a drag moved (one change) and clear the guides."""
        before, after = [], []
        for item in self.selectedItems():
            start = self._drag_start.get(item.data(LAYER_ROLE))
            if start is not None and (start.x, start.y) != (item.pos().x(), item.pos().y()):
                before.append(start)
                after.append(layer_of(item))
        self._drag_start, self._grabbed = {}, None
        if self._guides != (None, None):
            self._guides = (None, None)
            self.update()
        if after:
            self.drag_finished.emit(before, after)

    # ---------------------------------------------------------------------------------------- drawing

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        if self.exporting:
            return
        painter.fillRect(rect, QColor("#6b6f75"))
        paper = self.canvas_rect
        painter.fillRect(paper, QColor("#ffffff"))
        painter.setPen(QPen(QColor("#3a3d41"), 0))
        painter.drawRect(paper)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.exporting:
            return
        guide_x, guide_y = self._guides
        painter.setPen(QPen(QBrush(QColor("#ff3b8b")), 0, Qt.PenStyle.DashLine))
        if guide_x is not None:
            painter.drawLine(QPointF(guide_x, rect.top()), QPointF(guide_x, rect.bottom()))
        if guide_y is not None:
            painter.drawLine(QPointF(rect.left(), guide_y), QPointF(rect.right(), guide_y))

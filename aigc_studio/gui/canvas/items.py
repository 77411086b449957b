"""The canvas's layer items: images, SVG icons and emoji, text, rectangles and ellipses.

Every item holds its :class:`Layer` (the content: colours, text, asset...) and keeps its geometry
(position, scale, rotation, z, visibility, lock) in the Qt item itself; :func:`layer_of` reads
both back into one ``Layer`` and :func:`apply_layer` sets an item from one (what undo uses).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QByteArray, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QTextOption
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneMouseEvent,
    QGraphicsTextItem,
    QStyle,
    QStyleOptionGraphicsItem,
    QWidget,
)

from aigc_studio.core.project_schema import Layer
from aigc_studio.gui.canvas.svg_tools import recolour_svg

__all__ = ["ImageItem", "LayerItem", "ShapeItem", "SvgItem", "TextItem", "apply_layer", "layer_of",
           "make_item", "qcolor"]

LAYER_ROLE = 0  # QGraphicsItem.data key holding the layer id


def qcolor(text: str) -> QColor:
    """A ``#rrggbb`` / ``#aarrggbb`` colour; "" is transparent."""
    return QColor(text) if text else QColor(Qt.GlobalColor.transparent)


class _Base(QGraphicsItem):
    """An item painting its layer into ``(0, 0, width, height)``."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.layer = layer

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.layer.width, self.layer.height)

    def set_content(self, layer: Layer) -> None:
        """Take the content fields of ``layer`` (geometry is set by :func:`apply_layer`)."""
        self.prepareGeometryChange()
        self.layer = layer
        self.update()

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        return _snap_change(self, change, value)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        self.paint_content(painter)
        _paint_selection(self, painter)

    def paint_content(self, painter: QPainter) -> None:
        raise NotImplementedError


def _snap_change(item: QGraphicsItem, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
    scene = item.scene()
    if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and hasattr(scene, "snap_position"):
        return scene.snap_position(item, value)
    return value


def _paint_selection(item: QGraphicsItem, painter: QPainter) -> None:
    scene = item.scene()
    if item.isSelected() and not getattr(scene, "exporting", False):
        pen = QPen(QColor("#2d7ff9"), 0, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(item.boundingRect())


class ShapeItem(_Base):
    """A rectangle or ellipse with a fill and an outline."""

    def boundingRect(self) -> QRectF:
        half = self.layer.outline_width / 2 if self.layer.outline else 0.0
        return QRectF(0, 0, self.layer.width, self.layer.height).adjusted(-half, -half, half, half)

    def paint_content(self, painter: QPainter) -> None:
        layer = self.layer
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(qcolor(layer.outline), layer.outline_width) if layer.outline and layer.outline_width > 0 \
            else QPen(Qt.PenStyle.NoPen)
        painter.setPen(pen)
        painter.setBrush(qcolor(layer.fill))
        rect = QRectF(0, 0, layer.width, layer.height)
        if layer.kind == "ellipse":
            painter.drawEllipse(rect)
        else:
            painter.drawRect(rect)


class ImageItem(_Base):
    """A (generated) PNG image; its generation record stays in ``layer.record``."""

    def __init__(self, layer: Layer, png: bytes) -> None:
        super().__init__(layer)
        self.png = png
        self.image = QImage.fromData(QByteArray(png), "PNG")

    def paint_content(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(0, 0, self.layer.width, self.layer.height), self.image)


class SvgItem(_Base):
    """An SVG icon (stroke recolourable) or emoji (drawn as it is)."""

    def __init__(self, layer: Layer, svg: bytes) -> None:
        super().__init__(layer)
        self.svg = svg
        self.renderer = QSvgRenderer()
        self._load()

    def source(self) -> str:
        """The SVG text as drawn: recoloured when the layer is recolourable."""
        text = self.svg.decode("utf-8")
        if self.layer.recolourable:
            text = recolour_svg(text, self.layer.stroke, self.layer.stroke_width)
        return text

    def _load(self) -> None:
        self.renderer.load(QByteArray(self.source().encode("utf-8")))

    def set_content(self, layer: Layer) -> None:
        recolour = (layer.stroke, layer.stroke_width) != (self.layer.stroke, self.layer.stroke_width)
        super().set_content(layer)
        if recolour:
            self._load()

    def paint_content(self, painter: QPainter) -> None:
        self.renderer.render(painter, QRectF(0, 0, self.layer.width, self.layer.height))


class TextItem(QGraphicsTextItem):
    """Text with a font, size, colour and alignment; double-click edits it in place."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.layer = layer
        self.document().setDocumentMargin(0)
        self._before_edit = ""
        self._editing = False
        self.set_content(layer)

    def set_content(self, layer: Layer) -> None:
        """Take the content fields of ``layer``."""
        self.layer = layer
        font = QFont(layer.font_family)
        font.setPixelSize(max(1, round(layer.font_size)))
        self.setFont(font)
        self.setDefaultTextColor(qcolor(layer.color))
        option = QTextOption(self.document().defaultTextOption())
        option.setAlignment({"left": Qt.AlignmentFlag.AlignLeft, "center": Qt.AlignmentFlag.AlignHCenter,
                             "right": Qt.AlignmentFlag.AlignRight}[layer.align])
        self.document().setDefaultTextOption(option)
        if self.toPlainText() != layer.text:
            self.setPlainText(layer.text)
        self.setTextWidth(layer.width)

    @property
    def editing(self) -> bool:
        """Whether the text is being edited in place."""
        return self._editing

    def start_editing(self) -> None:
        """Edit in place (double-click); the edit is one undo step when it ends."""
        if self.layer.locked:
            return
        self._before_edit = self.toPlainText()
        self._editing = True
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, False)  # drags select text meanwhile
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.setFocus(Qt.FocusReason.MouseFocusReason)

    def finish_editing(self) -> None:
        """End in-place editing and report the change to the scene (which makes the undo step)."""
        if not self._editing:
            return
        self._editing = False  # first: clearing the flags below moves the focus out, which calls us again
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not self.layer.locked)
        cursor = self.textCursor()
        cursor.clearSelection()
        self.setTextCursor(cursor)
        new = self.toPlainText()
        scene = self.scene()
        if new != self._before_edit and scene is not None and hasattr(scene, "text_edited"):
            scene.text_edited.emit(self.layer.id, self._before_edit, new)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        return _snap_change(self, change, value)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if not self.editing:
            self.start_editing()
        super().mouseDoubleClickEvent(event)

    def focusOutEvent(self, event: object) -> None:  # type: ignore[override]
        super().focusOutEvent(event)
        self.finish_editing()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        option.state &= ~QStyle.StateFlag.State_Selected  # our own frame instead
        super().paint(painter, option, widget)
        _paint_selection(self, painter)


LayerItem = _Base | TextItem
"""Any layer item."""


def make_item(layer: Layer, asset: bytes = b"") -> _Base | TextItem:
    """A new item for ``layer`` (``asset``: the PNG or SVG bytes of image and SVG layers)."""
    item: _Base | TextItem
    if layer.kind == "image":
        item = ImageItem(layer, asset)
    elif layer.kind == "svg":
        item = SvgItem(layer, asset)
    elif layer.kind == "text":
        item = TextItem(layer)
    else:
        item = ShapeItem(layer)
    item.setData(LAYER_ROLE, layer.id)
    apply_layer(item, layer)
    return item


def apply_layer(item: _Base | TextItem, layer: Layer) -> None:
    """Set ``item`` to show ``layer``: content, place, scale, rotation, z, visibility and lock."""
    if layer != item.layer:
        item.set_content(layer)
    item.layer = layer
    item.setTransformOriginPoint(QPointF(layer.width / 2, _height(item) / 2))
    item.setPos(layer.x, layer.y)
    item.setScale(layer.scale)
    item.setRotation(layer.rotation)
    item.setZValue(layer.z)
    item.setVisible(layer.visible)
    flags = QGraphicsItem.GraphicsItemFlag
    item.setFlag(flags.ItemIsMovable, not layer.locked)
    item.setFlag(flags.ItemIsSelectable, not layer.locked)
    item.setFlag(flags.ItemSendsGeometryChanges, True)
    if layer.locked and item.isSelected():
        item.setSelected(False)


def _height(item: _Base | TextItem) -> float:
    return item.boundingRect().height() if isinstance(item, TextItem) else item.layer.height


def layer_of(item: _Base | TextItem) -> Layer:
    """The item's layer as it is now (geometry read from the item)."""
    flags = QGraphicsItem.GraphicsItemFlag
    extra = {}
    if isinstance(item, TextItem):
        extra = {"text": item.toPlainText(), "height": max(0.5, item.boundingRect().height())}
    return replace(item.layer, x=item.pos().x(), y=item.pos().y(), scale=item.scale(), rotation=item.rotation(),
                   z=item.zValue(), visible=item.isVisible(),
                   locked=not bool(item.flags() & flags.ItemIsMovable), **extra)

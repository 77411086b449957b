"""The generated image, large: a checkerboard under its transparency, nearest or smooth scaling, and
a drag out of it that carries the PNG (with its record) to the canvas or another program."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QMimeData, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QImage, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QApplication, QSizePolicy, QWidget

from aigc_studio.services.image_service import GeneratedImage

__all__ = ["IMAGE_MIME", "ImagePreviewWidget", "image_mime_data", "rgba_pixmap"]

IMAGE_MIME = "application/x-aigc-image"
"""The drag and clipboard type of an app image: the PNG bytes (the record is inside; the record's JSON
also travels as ``application/x-aigc-record``)."""
RECORD_MIME = "application/x-aigc-record"
CHECKER = 8   # pixels of a checkerboard square


def rgba_pixmap(image: GeneratedImage) -> QPixmap:
    """A pixmap of the image's straight RGBA pixels (copied, so the array may go)."""
    rgba = image.rgba
    h, w = int(rgba.shape[0]), int(rgba.shape[1])
    qimage = QImage(rgba.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(qimage.copy())


def image_mime_data(image: GeneratedImage) -> QMimeData:
    """What a drag of ``image`` carries: its PNG as application/x-aigc-image and image/png, and the
    record's JSON as application/x-aigc-record."""
    mime = QMimeData()
    mime.setData(IMAGE_MIME, QByteArray(image.png))
    mime.setData("image/png", QByteArray(image.png))
    mime.setData(RECORD_MIME, QByteArray(image.record.to_json().encode("utf-8")))
    return mime


class ImagePreviewWidget(QWidget):
    """Shows one :class:`GeneratedImage` scaled to fit (whole multiples when nearest), over a
    checkerboard; dragging it out starts a drag of :func:`image_mime_data`."""

    drag_started = Signal()
    """A drag of the image began."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: GeneratedImage | None = None
        self._pixmap: QPixmap | None = None
        self._smooth = False
        self._press: QPoint | None = None
        self.setMinimumSize(192, 192)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Drag the image onto the canvas")

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    @property
    def image(self) -> GeneratedImage | None:
        return self._image

    def set_image(self, image: GeneratedImage | None) -> None:
        """Show ``image`` (None: nothing)."""
        self._image = image
        self._pixmap = rgba_pixmap(image) if image is not None else None
        self.update()

    def set_smooth(self, smooth: bool) -> None:
        """Smooth (bilinear) or nearest-neighbour scaling."""
        if smooth != self._smooth:
            self._smooth = smooth
            self.update()

    def target_rect(self) -> QRect:
        """Where the image is drawn: centred, as large as fits (a whole multiple when nearest)."""
        if self._pixmap is None:
            return QRect()
        pw, ph = self._pixmap.width(), self._pixmap.height()
        scale = min(self.width() / pw, self.height() / ph)
        if not self._smooth and scale >= 1:
            scale = int(scale)
        w, h = int(pw * scale), int(ph * scale)
        return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.target_rect()
        if self._pixmap is None or rect.isEmpty():
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No image yet")
            return
        light, dark = QColor(236, 236, 236), QColor(200, 200, 200)
        for y in range(rect.top(), rect.bottom() + 1, CHECKER):
            for x in range(rect.left(), rect.right() + 1, CHECKER):
                odd = ((x - rect.left()) // CHECKER + (y - rect.top()) // CHECKER) % 2
                painter.fillRect(QRect(x, y, CHECKER, CHECKER).intersected(rect), dark if odd else light)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        painter.drawPixmap(rect, self._pixmap)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None or self._image is None:
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        self.start_drag()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    def start_drag(self) -> None:
        """Drag the image out (copy)."""
        if self._image is None or self._pixmap is None:
            return
        drag = QDrag(self)
        drag.setMimeData(image_mime_data(self._image))
        drag.setPixmap(self._pixmap.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio))
        self.drag_started.emit()
        drag.exec(Qt.DropAction.CopyAction)

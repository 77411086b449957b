"""The design canvas: a view of a :class:`DesignScene` whose every change is one undo step."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QByteArray, QPointF, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QGraphicsView, QWidget

from aigc_studio.core.png_record import RECORD_KEY, RecordError, read_text
from aigc_studio.core.project_schema import Layer, ProjectData, asset_name
from aigc_studio.gui.canvas.commands import CanvasSizeCommand, ChangeLayersCommand
from aigc_studio.gui.canvas.drops import layers_from_mime
from aigc_studio.gui.canvas.items import LAYER_ROLE, LayerItem, TextItem, apply_layer, layer_of, make_item

__all__ = ["DesignCanvasView", "SHAPE_KINDS"]

SHAPE_KINDS = ("rect", "ellipse")
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


class DesignCanvasView(QGraphicsView):
    """The Design workspace's canvas: layers on a ``width`` x ``height`` pixel paper.

    Every change goes through :attr:`undo_stack` as one step (a drag, a text edit, a recolour...).
    Ctrl+wheel zooms about the cursor, the wheel and the middle mouse button pan, Delete removes the
    selection. Drops of ``application/x-aigc-image``, ``image/svg+xml`` and ``image/png`` add layers.
    """

    layers_changed = Signal()
    """A layer was added, removed or changed (read :meth:`layers`)."""

    selection_changed = Signal(list)
    """The selected layers changed: carries their ids (bottom to top)."""

    drop_failed = Signal(str)
    """A drop could not be used: carries the message to show."""

    def __init__(self, width: int = 512, height: int = 512, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from aigc_studio.gui.canvas.scene import DesignScene

        self.undo_stack = QUndoStack(self)
        self._scene = DesignScene(width, height)
        self._scene.setParent(self)
        self._items: dict[str, LayerItem] = {}
        self._assets: dict[str, bytes] = {}
        self._selecting = False
        self.setScene(self._scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setAcceptDrops(True)
        self._pan_from: QPointF | None = None
        self._scene.drag_finished.connect(self._on_drag_finished)
        self._scene.text_edited.connect(self._on_text_edited)
        self._scene.selectionChanged.connect(self._on_selection_changed)

    # ------------------------------------------------------------------------------------------ reading

    @property
    def design_scene(self) -> Any:
        """The :class:`DesignScene` (exports render it)."""
        return self._scene

    @property
    def canvas_size(self) -> tuple[int, int]:
        """The paper's width and height in pixels."""
        rect = self._scene.canvas_rect
        return int(rect.width()), int(rect.height())

    def layers(self) -> list[Layer]:
        """Every layer as it is now, bottom to top."""
        return [layer_of(item) for item in self._scene.layer_items()]

    def layer(self, layer_id: str) -> Layer:
        """One layer as it is now (``KeyError`` for an unknown id)."""
        return layer_of(self._items[layer_id])

    def item(self, layer_id: str) -> LayerItem:
        """The scene item of a layer (for exports and tests)."""
        return self._items[layer_id]

    def asset(self, name: str) -> bytes:
        """The bytes of an asset (a layer's PNG or SVG)."""
        return self._assets[name]

    def selected_ids(self) -> list[str]:
        """The selected layers' ids, bottom to top."""
        return [i.data(LAYER_ROLE) for i in self._scene.layer_items() if i.isSelected()]

    def project(self) -> ProjectData:
        """The design as data, with the assets its layers use (what is saved and autosaved)."""
        layers = tuple(self.layers())
        used = {layer.asset for layer in layers if layer.asset}
        width, height = self.canvas_size
        return ProjectData(width, height, layers, {n: d for n, d in self._assets.items() if n in used})

    # ------------------------------------------------------------------------------------------ adding

    def add_image(self, png: bytes, record_json: str | None = None, name: str = "",
                  at: QPointF | None = None) -> str:
        """Add a PNG image layer; its generation record is ``record_json`` or the one the PNG holds.

        Returns the layer id; ``ValueError`` if ``png`` is not a PNG image."""
        image = QImage.fromData(QByteArray(png), "PNG")
        if image.isNull():
            raise ValueError("the dropped or added data is not a PNG image")
        if record_json is None:
            try:
                record_json = read_text(png).get(RECORD_KEY)
            except RecordError:
                record_json = None
        key = asset_name(png, "png")
        self._assets[key] = png
        # A 64 px generated image arrives at a quarter of the paper's shorter side, not as a speck.
        factor = max(1.0, min(self.canvas_size) / 4 / max(image.width(), image.height(), 1))
        layer = Layer(id=_new_id(), kind="image", name=name or "Image", width=image.width(),
                      height=image.height(), asset=key, record=record_json, scale=factor)
        return self._add(layer, at, "Add image")

    def add_svg(self, svg: str, name: str, recolourable: bool, at: QPointF | None = None) -> str:
        """Add an SVG layer: an icon (``recolourable``: stroke colour and width may be set) or an emoji.

        Returns the layer id; ``ValueError`` if ``svg`` does not parse."""
        data = svg.encode("utf-8")
        renderer = QSvgRenderer(QByteArray(data))
        if not renderer.isValid():
            raise ValueError(f"{name or 'the SVG'} is not a valid SVG image")
        size = renderer.defaultSize()
        width, height = (size.width(), size.height()) if size.width() > 0 and size.height() > 0 else (128, 128)
        factor = max(1.0, 128 / max(width, height))  # a 24 px icon arrives at a useful size
        key = asset_name(data, "svg")
        self._assets[key] = data
        layer = Layer(id=_new_id(), kind="svg", name=name or "Icon", width=width * factor,
                      height=height * factor, asset=key, recolourable=recolourable)
        return self._add(layer, at, f"Add {name or 'icon'}")

    def add_text(self, text: str, at: QPointF | None = None) -> str:
        """Add a text layer; returns its id."""
        layer = Layer(id=_new_id(), kind="text", name=text.split("\n")[0][:40] or "Text", text=text,
                      width=max(200.0, self.canvas_size[0] * 0.6), height=60)
        return self._add(layer, at, "Add text")

    def add_shape(self, kind: str, at: QPointF | None = None) -> str:
        """Add a ``"rect"`` or ``"ellipse"`` layer; returns its id."""
        if kind not in SHAPE_KINDS:
            raise ValueError(f"unknown shape {kind!r} (known: {', '.join(SHAPE_KINDS)})")
        side = max(32.0, min(self.canvas_size) / 4)
        layer = Layer(id=_new_id(), kind=kind, name="Rectangle" if kind == "rect" else "Ellipse",
                      width=side, height=side)
        return self._add(layer, at, f"Add {layer.name.lower()}")

    def _add(self, layer: Layer, at: QPointF | None, text: str) -> str:
        width, height = self.canvas_size
        centre = at if at is not None else QPointF(width / 2, height / 2)
        top = max((item.zValue() for item in self._items.values()), default=0.0) + 1
        layer = replace(layer, x=centre.x() - layer.width / 2, y=centre.y() - layer.height / 2, z=top)
        self.undo_stack.push(ChangeLayersCommand(self, [], [layer], text))
        self.select([layer.id])
        return layer.id

    def add_asset_layers(self, layers: list[Layer], assets: dict[str, bytes], text: str) -> None:
        """Add ready-made layers (a paste, a drop) with their assets as one undo step."""
        self._assets.update(assets)
        self.undo_stack.push(ChangeLayersCommand(self, [], layers, text))

    # ------------------------------------------------------------------------------------------ changing

    def change(self, changes: dict[str, dict[str, Any]], text: str, merge_key: str = "") -> None:
        """Change layer fields as one undo step: ``{layer id: {field: value}}`` (e.g. colours, text,
        name, a generated layer's settings). ``ValueError`` for unknown fields.

        Consecutive changes of the same layers with the same non-empty ``merge_key`` make one step
        (a spin box's arrow steps); a change without the key, or with another, starts a new one."""
        before = [self.layer(i) for i in changes]
        after = [replace(layer, **changes[layer.id]) for layer in before]
        if after != before:
            self.undo_stack.push(ChangeLayersCommand(self, before, after, text, merge_key))

    def set_fields(self, ids: Iterable[str], text: str, **fields: Any) -> None:
        """Set the same fields on several layers as one undo step."""
        self.change({i: dict(fields) for i in ids}, text)

    def recolour(self, layer_id: str, stroke: str, stroke_width: float = 0.0) -> None:
        """Set a recolourable icon's stroke colour and width (one undo step)."""
        if not self.layer(layer_id).recolourable:
            raise ValueError("this layer is not a recolourable icon")
        self.change({layer_id: {"stroke": stroke, "stroke_width": stroke_width}}, "Recolour icon")

    def set_visible(self, layer_id: str, visible: bool) -> None:
        """Show or hide a layer (one undo step)."""
        self.change({layer_id: {"visible": visible}}, "Show layer" if visible else "Hide layer")

    def set_locked(self, layer_id: str, locked: bool) -> None:
        """Lock (no selecting or moving on the canvas) or unlock a layer (one undo step)."""
        self.change({layer_id: {"locked": locked}}, "Lock layer" if locked else "Unlock layer")

    def rename(self, layer_id: str, name: str) -> None:
        """Rename a layer (one undo step)."""
        self.change({layer_id: {"name": name}}, "Rename layer")

    def remove(self, ids: Iterable[str] | None = None) -> None:
        """Delete layers (the selection by default) as one undo step."""
        before = [self.layer(i) for i in (self.selected_ids() if ids is None else ids)]
        if before:
            self.undo_stack.push(ChangeLayersCommand(self, before, [], "Delete"))

    def set_canvas_size(self, width: int, height: int) -> None:
        """Resize the paper (one undo step)."""
        if (width, height) != self.canvas_size:
            self.undo_stack.push(CanvasSizeCommand(self, self.canvas_size, (int(width), int(height))))

    def load_project(self, project: ProjectData) -> None:
        """Show ``project`` instead of the current design; the undo history starts afresh."""
        self.undo_stack.clear()
        self.remove_layers_now(list(self._items))
        self._assets = dict(project.assets)
        self.resize_canvas_now(project.width, project.height)
        self.insert_layers(list(project.layers))
        self.undo_stack.setClean()
        self.fit()

    # ------------------------------------------------------------------------------------------ for commands

    def insert_layers(self, layers: list[Layer]) -> None:
        """Put items for ``layers`` on the scene (undo commands call this)."""
        for layer in layers:
            item = make_item(layer, self._assets.get(layer.asset, b""))
            self._items[layer.id] = item
            self._scene.addItem(item)
        self.layers_changed.emit()

    def remove_layers_now(self, ids: list[str]) -> None:
        """Take layers off the scene (undo commands call this)."""
        for layer_id in ids:
            item = self._items.pop(layer_id)
            self._scene.removeItem(item)
        self.layers_changed.emit()

    def apply_layers(self, layers: list[Layer]) -> None:
        """Set existing items to ``layers`` (undo commands call this)."""
        for layer in layers:
            apply_layer(self._items[layer.id], layer)
        self.layers_changed.emit()

    def resize_canvas_now(self, width: int, height: int) -> None:
        """Resize the paper (undo commands call this)."""
        self._scene.set_canvas_size(width, height)
        self.layers_changed.emit()

    # ------------------------------------------------------------------------------------------ selection

    def select(self, ids: Iterable[str]) -> None:
        """Select exactly these layers (and the rest of their groups)."""
        wanted = set(ids)
        self._selecting = True
        try:
            for layer_id, item in self._items.items():
                item.setSelected(layer_id in wanted)
        finally:
            self._selecting = False
        self._on_selection_changed()

    def _on_selection_changed(self) -> None:
        if self._selecting:
            return
        groups = {item.layer.group for item in self._scene.selectedItems()
                  if getattr(item, "layer", None) is not None and item.layer.group}
        if groups:
            self._selecting = True
            try:
                for item in self._items.values():
                    if item.layer.group in groups and not item.layer.locked:
                        item.setSelected(True)
            finally:
                self._selecting = False
        self.selection_changed.emit(self.selected_ids())

    def _on_drag_finished(self, before: list[Layer], after: list[Layer]) -> None:
        self.undo_stack.push(ChangeLayersCommand(self, before, after, "Move"))

    def _on_text_edited(self, layer_id: str, old: str, new: str) -> None:
        before = replace(self.layer(layer_id), text=old)
        self.undo_stack.push(ChangeLayersCommand(self, [before], [self.layer(layer_id)], "Edit text"))

    # ------------------------------------------------------------------------------------------ zoom, pan

    @property
    def zoom(self) -> float:
        """The current zoom factor (1 = one canvas pixel per screen pixel)."""
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        """Zoom to ``factor`` (clamped to 2 %..3200 %)."""
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        self.scale(factor / self.zoom, factor / self.zoom)
        self._scene.snap_tolerance = 8.0 / factor

    def fit(self) -> None:
        """Zoom so the whole paper is in view."""
        self.fitInView(self._scene.canvas_rect.adjusted(-16, -16, 16, 16), Qt.AspectRatioMode.KeepAspectRatio)
        self._scene.snap_tolerance = 8.0 / self.zoom

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            self.set_zoom(self.zoom * 1.25 ** steps)
            event.accept()
            return
        super().wheelEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        editing = isinstance(self._scene.focusItem(), TextItem) and self._scene.focusItem().editing
        if not editing and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.remove()
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------------------------------ drops

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        formats = set(mime.formats())
        if formats & {"application/x-aigc-image", "image/svg+xml", "image/png"} or mime.hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        at = self.mapToScene(event.position().toPoint())
        added, problems = layers_from_mime(self, event.mimeData(), at)
        for problem in problems:
            self.drop_failed.emit(problem)
        if added:
            event.acceptProposedAction()

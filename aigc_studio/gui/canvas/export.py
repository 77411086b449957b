"""Exports of the canvas: PNG (transparent, 1x/2x/4x, generation records kept) and SVG (vectors stay
vectors, text stays ``<text>``, generated images embedded as PNG data)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QIODevice, QRectF, Qt
from PySide6.QtGui import QFontInfo, QImage, QPainter, QTransform

from aigc_studio.core.png_record import PARAMETERS_KEY, RECORD_KEY, RecordError, record_from_json, with_text
from aigc_studio.core.project_schema import Layer
from aigc_studio.gui.canvas.items import SvgItem, TextItem
from aigc_studio.gui.canvas.svg_tools import SVG_NS, XLINK_NS, inline_svg

if TYPE_CHECKING:
    from aigc_studio.gui.canvas.view import DesignCanvasView

__all__ = ["EXPORT_SCALES", "RECORDS_KEY", "export_png", "export_svg", "render_canvas"]

EXPORT_SCALES = (1, 2, 4)
RECORDS_KEY = "aigc-studio.records"
"""PNG text key of an exported design: JSON list of {"layer", "name", "record"} per generated layer."""


def render_canvas(canvas: DesignCanvasView, factor: float = 1.0) -> QImage:
    """The paper rendered at ``factor`` on a transparent background, without selection frames."""
    width, height = canvas.canvas_size
    image = QImage(round(width * factor), round(height * factor), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    scene = canvas.design_scene
    scene.exporting = True
    painter = QPainter(image)
    try:
        painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
                               | QPainter.RenderHint.TextAntialiasing)
        scene.render(painter, QRectF(0, 0, image.width(), image.height()), scene.canvas_rect)
    finally:
        painter.end()
        scene.exporting = False
    return image


def _records_text(layers: list[Layer]) -> dict[str, str]:
    records = [{"layer": la.id, "name": la.name, "record": la.record} for la in layers
               if la.kind == "image" and la.record and la.visible]
    if not records:
        return {}
    text = {RECORDS_KEY: json.dumps(records, ensure_ascii=False)}
    if len(records) == 1:  # one generated image: the standard record, readable by read_record
        text[RECORD_KEY] = str(records[0]["record"])
        try:
            text[PARAMETERS_KEY] = record_from_json(text[RECORD_KEY], allow_edited=True).parameters_line()
        except RecordError:
            pass
    return text


def export_png(canvas: DesignCanvasView, scale: int = 1) -> bytes:
    """The canvas as PNG bytes at ``scale`` (1, 2 or 4), with the generated layers' records as text."""
    if scale not in EXPORT_SCALES:
        raise ValueError(f"the export scale is 1, 2 or 4, not {scale!r}")
    image = render_canvas(canvas, scale)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    data = bytes(buffer.data().data())
    buffer.close()
    text = _records_text(canvas.layers())
    return with_text(data, text) if text else data


def _paint(colour: str) -> tuple[str, str]:
    """SVG paint and opacity of a ``#rrggbb`` / ``#aarrggbb`` colour ("" is none)."""
    if not colour:
        return "none", "1"
    if len(colour) == 9:
        return "#" + colour[3:], f"{int(colour[1:3], 16) / 255:.4g}"
    return colour, "1"


def _matrix(transform: QTransform) -> str:
    t = transform
    return f"matrix({t.m11():.6g} {t.m12():.6g} {t.m21():.6g} {t.m22():.6g} {t.dx():.6g} {t.dy():.6g})"


def _shape(group: ET.Element, layer: Layer) -> None:
    fill, fill_opacity = _paint(layer.fill)
    stroke, stroke_opacity = _paint(layer.outline if layer.outline_width > 0 else "")
    style = {"fill": fill, "fill-opacity": fill_opacity, "stroke": stroke, "stroke-opacity": stroke_opacity,
             "stroke-width": f"{layer.outline_width:g}"}
    if layer.kind == "ellipse":
        ET.SubElement(group, "ellipse", cx=f"{layer.width / 2:g}", cy=f"{layer.height / 2:g}",
                      rx=f"{layer.width / 2:g}", ry=f"{layer.height / 2:g}", **style)
    else:
        ET.SubElement(group, "rect", width=f"{layer.width:g}", height=f"{layer.height:g}", **style)


def _text(group: ET.Element, item: TextItem) -> None:
    """One ``<text>`` with a ``<tspan>`` per laid-out line, at Qt's own line positions."""
    layer = item.layer
    fill, opacity = _paint(layer.color)
    family = QFontInfo(item.font()).family()
    text = ET.SubElement(group, "text", {"font-family": f"{family}, {layer.font_family}, sans-serif",
                                         "font-size": f"{item.font().pixelSize()}", "fill": fill,
                                         "fill-opacity": opacity, "{http://www.w3.org/XML/1998/namespace}space":
                                         "preserve"})
    block = item.document().begin()
    while block.isValid():
        layout = block.layout()
        origin = layout.position()
        for index in range(layout.lineCount()):
            line = layout.lineAt(index)
            words = block.text()[line.textStart():line.textStart() + line.textLength()].rstrip()
            if not words:
                continue
            span = ET.SubElement(text, "tspan", x=f"{origin.x() + line.naturalTextRect().x():.2f}",
                                 y=f"{origin.y() + line.y() + line.ascent():.2f}")
            span.text = words
        block = block.next()


def _layer_element(root: ET.Element, canvas: DesignCanvasView, layer: Layer) -> None:
    item = canvas.item(layer.id)
    group = ET.SubElement(root, "g", {"id": f"layer-{layer.id}", "transform": _matrix(item.sceneTransform())})
    ET.SubElement(group, "title").text = layer.name
    if layer.kind == "image":
        data = "data:image/png;base64," + base64.b64encode(canvas.asset(layer.asset)).decode("ascii")
        ET.SubElement(group, "image", {"width": f"{layer.width:g}", "height": f"{layer.height:g}",
                                       "preserveAspectRatio": "none", "href": data, f"{{{XLINK_NS}}}href": data})
    elif layer.kind == "svg" and isinstance(item, SvgItem):
        group.append(inline_svg(item.source(), layer.width, layer.height))
    elif layer.kind == "text" and isinstance(item, TextItem):
        _text(group, item)
    else:
        _shape(group, layer)


def export_svg(canvas: DesignCanvasView) -> str:
    """The canvas as SVG text (hidden layers left out; transparent background)."""
    width, height = canvas.canvas_size
    root = ET.Element(f"{{{SVG_NS}}}svg", {"width": str(width), "height": str(height),
                                          "viewBox": f"0 0 {width} {height}", "version": "1.1"})
    for layer in canvas.layers():
        if layer.visible:
            _layer_element(root, canvas, layer)
    for element in root.iter():  # plain names: the default namespace applies to all
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{SVG_NS}}}{element.tag}"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

"""SVG text helpers for icon layers: recolouring strokes, and the SVG inlined into an exported SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["SVG_NS", "inline_svg", "recolour_svg"]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

_STROKE_ATTR = re.compile(r'(\bstroke\s*=\s*)(["\'])(?!none\2)[^"\']*\2')
_STROKE_CSS = re.compile(r"(\bstroke\s*:\s*)(?!none)[^;\"'}]+")
_WIDTH_ATTR = re.compile(r'(\bstroke-width\s*=\s*)(["\'])[^"\']*\2')
_WIDTH_CSS = re.compile(r"(\bstroke-width\s*:\s*)[^;\"'}]+")
_CURRENT = re.compile(r"currentColor", re.IGNORECASE)


def recolour_svg(svg: str, stroke: str = "", stroke_width: float = 0.0) -> str:
    """``svg`` with every stroke colour (attributes, inline styles, ``currentColor``) set to
    ``stroke`` and every stroke width set to ``stroke_width``; "" and 0 leave them as drawn.
    ``stroke="none"`` stays none."""
    if stroke:
        svg = _STROKE_ATTR.sub(lambda m: f"{m[1]}{m[2]}{stroke}{m[2]}", svg)
        svg = _STROKE_CSS.sub(lambda m: f"{m[1]}{stroke}", svg)
        svg = _CURRENT.sub(stroke, svg)
    if stroke_width > 0:
        width = f"{stroke_width:g}"
        svg = _WIDTH_ATTR.sub(lambda m: f"{m[1]}{m[2]}{width}{m[2]}", svg)
        svg = _WIDTH_CSS.sub(lambda m: f"{m[1]}{width}", svg)
    return svg


def inline_svg(svg: str, width: float, height: float) -> ET.Element:
    """The root ``<svg>`` element of ``svg`` sized ``width`` x ``height`` (its viewBox kept, or made
    from its own size), ready to nest in another SVG. Raises ``ET.ParseError`` for bad SVG."""
    root = ET.fromstring(svg)
    if "viewBox" not in root.attrib:
        own_w = _number(root.get("width"), width)
        own_h = _number(root.get("height"), height)
        root.set("viewBox", f"0 0 {own_w:g} {own_h:g}")
    root.set("width", f"{width:g}")
    root.set("height", f"{height:g}")
    root.set("x", "0")
    root.set("y", "0")
    root.set("preserveAspectRatio", "none")
    return root


def _number(value: str | None, default: float) -> float:
    match = re.match(r"\s*([0-9.]+)", value or "")
    try:
        return float(match[1]) if match else default
    except ValueError:
        return default

"""Small string operations on SVG documents: recolouring line icons, compacting whitespace.

Pure text work, no XML parser: the icons are trusted files of a verified library, and the operations
touch only the attributes they name. Colours and widths are checked before they go into an attribute,
so nothing a caller passes can break out of the quotes.
"""

from __future__ import annotations

import math
import re

__all__ = ["compact_svg", "format_width", "is_colour", "recolour"]

CURRENT_COLOUR = "currentColor"
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[a-zA-Z]{3,20}")
_ROOT = re.compile(r"<svg\b[^>]*>", re.S)
_STROKE_WIDTH = re.compile(r'\sstroke-width="[^"]*"')
MAX_STROKE_WIDTH = 64.0


def is_colour(value: str) -> bool:
    """``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa`` or a colour keyword (``red``)."""
    return bool(_COLOUR.fullmatch(value))


def format_width(width: float) -> str:
    """A stroke width as an attribute value: ``2``, ``1.5``, ``0.75``."""
    return f"{width:.3f}".rstrip("0").rstrip(".")


def recolour(svg: str, stroke_colour: str = CURRENT_COLOUR, stroke_width: float | None = None) -> str:
    """``svg`` with every ``currentColor`` replaced by ``stroke_colour`` and the root element's
    ``stroke-width`` set to ``stroke_width`` (left as it is when None).

    Made for line icons such as Tabler's, which draw with ``stroke="currentColor"`` (a few dots use
    ``fill="currentColor"``) and set ``stroke-width="2"`` once on the root. A document without a
    ``currentColor`` keeps its colours. Raises ValueError for a colour that is not ``#hex`` or a
    keyword, or a width that is not a positive finite number up to :data:`MAX_STROKE_WIDTH`.
    """
    if not is_colour(stroke_colour):
        raise ValueError(f"not a colour: {stroke_colour!r} (use #rrggbb or a colour name)")
    out = svg if stroke_colour == CURRENT_COLOUR else svg.replace(CURRENT_COLOUR, stroke_colour)
    if stroke_width is None:
        return out
    if not (isinstance(stroke_width, (int, float)) and math.isfinite(stroke_width)
            and 0 < stroke_width <= MAX_STROKE_WIDTH):
        raise ValueError(f"stroke width must be in (0, {MAX_STROKE_WIDTH:g}], not {stroke_width!r}")
    root = _ROOT.search(out)
    if root is None:
        raise ValueError("not an SVG document: no <svg> element")
    attr = f' stroke-width="{format_width(float(stroke_width))}"'
    tag = root.group(0)
    if _STROKE_WIDTH.search(tag):
        new_tag = _STROKE_WIDTH.sub(attr, tag, count=1)
    else:
        end = len(tag) - (2 if tag.endswith("/>") else 1)
        new_tag = tag[:end].rstrip() + attr + tag[end:]
    return out[:root.start()] + new_tag + out[root.end():]


def compact_svg(svg: str) -> str:
    """``svg`` without its line breaks and indentation (between tags and between attributes); the
    drawing is unchanged. Attribute values are never touched."""
    out = re.sub(r">\s+<", "><", svg.strip())
    return re.sub(r"<[^>]+>", lambda m: _compact_tag(m.group(0)), out)


def _compact_tag(tag: str) -> str:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|\s+|[^\s"\']+', tag)
    out = "".join(" " if p.isspace() else p for p in parts)
    return re.sub(r"\s+(/?>)$", r"\1", out)

"""The design project's data and the strict reading of its ``project.json`` (stdlib only).

A design is a canvas size and a list of layers, bottom to top. Each layer is one flat, frozen
:class:`Layer`; fields that do not belong to its kind keep their defaults. Image and SVG layers name
an asset (``assets/<sha256 prefix>.png|svg``) whose bytes live beside ``project.json`` in the zip.

Version 2 adds an optional ``history``: the generation panel's image history (the view-model's
history JSON, embedded as a JSON object whose ``entries`` are objects). This module checks it only as
data (its size, its shape); what an entry means is the view-model's to check. Version 1 files (no
history) are still read.

:func:`parse_project` reads JSON that came from anywhere: every type, range and name is checked, and
anything unexpected raises :class:`ProjectFormatError` with a message a user can act on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["CANVAS_PRESETS", "LAYER_KINDS", "MAX_HISTORY_CHARS", "MAX_HISTORY_ENTRIES", "PROJECT_FORMAT",
           "PROJECT_VERSION", "READ_VERSIONS", "CanvasPreset", "Layer", "ProjectData", "ProjectFormatError",
           "asset_name", "parse_project", "project_to_json"]

PROJECT_FORMAT = "aigc-studio.design"
PROJECT_VERSION = 2
READ_VERSIONS = (1, 2)      # version 1: no history
LAYER_KINDS = ("image", "svg", "text", "rect", "ellipse")
ALIGNMENTS = ("left", "center", "right")
MAX_LAYERS = 2000
MAX_SIDE = 20000            # pixels, canvas and layer
MAX_TEXT = 100_000          # characters of one text layer
MAX_NAME = 200
MAX_HISTORY_CHARS = 4 << 20    # the history's JSON text (an entry is a few hundred characters)
MAX_HISTORY_ENTRIES = 10_000
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8})?$")  # "" = none
_ASSET = re.compile(r"^assets/[0-9a-f]{16,64}\.(png|svg)$")
_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class ProjectFormatError(ValueError):
    """A project file that cannot be read: damaged, hostile, or from a newer version; says which."""


@dataclass(frozen=True)
class CanvasPreset:
    """A named canvas size in pixels."""

    name: str
    width: int
    height: int


CANVAS_PRESETS: tuple[CanvasPreset, ...] = (
    CanvasPreset("Icon", 512, 512),
    CanvasPreset("Sticker sheet (A4 at 300 dpi)", 2480, 3508),  # home-printer sticker paper
    CanvasPreset("Square social post", 1080, 1080),
    CanvasPreset("A4 poster (300 dpi)", 2480, 3508),
)


@dataclass(frozen=True)
class Layer:
    """One layer: its kind, place and look. Coordinates are canvas pixels; ``x, y`` is the top-left
    of the unscaled, unrotated layer; scale and rotation act about its centre."""

    id: str
    kind: str                     # one of LAYER_KINDS
    name: str = ""
    x: float = 0.0
    y: float = 0.0
    width: float = 100.0          # natural size (before scale)
    height: float = 100.0
    scale: float = 1.0
    rotation: float = 0.0         # degrees, clockwise
    z: float = 0.0
    visible: bool = True
    locked: bool = False
    group: str = ""               # layers sharing a group id move and select together
    asset: str = ""               # image, svg: the asset's member name
    record: str | None = None     # image: the generation record's JSON, kept as written
    recolourable: bool = False    # svg: stroke colour and width may be rewritten
    stroke: str = ""              # svg: the stroke colour ("" = as drawn)
    stroke_width: float = 0.0     # svg: the stroke width (0 = as drawn)
    text: str = ""                # text
    font_family: str = "DejaVu Sans"
    font_size: float = 48.0       # pixels
    color: str = "#000000"        # text colour
    align: str = "left"           # one of ALIGNMENTS
    fill: str = "#4a90d9"         # rect, ellipse ("" = none)
    outline: str = "#1f3b57"      # rect, ellipse ("" = none)
    outline_width: float = 4.0


@dataclass(frozen=True)
class ProjectData:
    """A whole design: canvas size, layers bottom to top, the assets' bytes by member name, and the
    generation history's JSON text (None: none kept, as in a version 1 file)."""

    width: int
    height: int
    layers: tuple[Layer, ...] = ()
    assets: dict[str, bytes] = field(default_factory=dict)
    history: str | None = None


def asset_name(data: bytes, suffix: str) -> str:
    """The member name of an asset: its content's sha256 (so equal assets are stored once)."""
    return f"assets/{hashlib.sha256(data).hexdigest()[:32]}.{suffix}"


def project_to_json(project: ProjectData) -> str:
    """``project.json``'s text for ``project`` (the assets are stored separately)."""
    body: dict[str, Any] = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
                            "canvas": {"width": project.width, "height": project.height},
                            "layers": [asdict(layer) for layer in project.layers]}
    if project.history is not None:
        try:
            value = json.loads(project.history)
        except (ValueError, RecursionError) as error:
            raise ProjectFormatError(f"the image history is not valid JSON ({str(error)[:200]})") from None
        _check_history(value)
        body["history"] = value
    return json.dumps(body, ensure_ascii=False, indent=1)


def _check_history(value: Any) -> str:
    """The history's JSON text, once ``value`` is a bounded object whose ``entries`` are objects."""
    if not isinstance(value, dict) or not isinstance(value.get("entries"), list):
        raise ProjectFormatError("'history' must be a JSON object with a list of 'entries'")
    entries = value["entries"]
    if len(entries) > MAX_HISTORY_ENTRIES:
        raise ProjectFormatError(f"'history' has {len(entries)} entries, more than the {MAX_HISTORY_ENTRIES} "
                                 "a design may keep")
    if not all(isinstance(entry, dict) for entry in entries):
        raise ProjectFormatError("every entry of 'history' must be a JSON object")
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError) as error:
        raise ProjectFormatError(f"'history' cannot be read ({str(error)[:200]})") from None
    if len(text) > MAX_HISTORY_CHARS:
        raise ProjectFormatError(f"'history' is {len(text)} characters long, more than the "
                                 f"{MAX_HISTORY_CHARS} a design may keep")
    return text


_FIELD_TYPES = {f.name: f.type for f in fields(Layer)}
_RANGES: dict[str, tuple[float, float]] = {
    "x": (-4 * MAX_SIDE, 4 * MAX_SIDE), "y": (-4 * MAX_SIDE, 4 * MAX_SIDE),
    "width": (0.5, MAX_SIDE), "height": (0.5, MAX_SIDE), "scale": (0.01, 100.0),
    "rotation": (-3600.0, 3600.0), "z": (-1e6, 1e6), "stroke_width": (0.0, 500.0),
    "font_size": (1.0, 2000.0), "outline_width": (0.0, 500.0),
}


def _check_value(name: str, value: Any, where: str) -> Any:
    kind = _FIELD_TYPES[name]
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProjectFormatError(f"{where}: '{name}' must be a finite number, not {value!r}")
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise ProjectFormatError(f"{where}: '{name}' = {value!r} is outside {low:g} to {high:g}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ProjectFormatError(f"{where}: '{name}' must be true or false, not {value!r}")
        return value
    if kind == "str | None":
        if value is not None and not isinstance(value, str):
            raise ProjectFormatError(f"{where}: '{name}' must be text or null")
        return value
    if not isinstance(value, str):
        raise ProjectFormatError(f"{where}: '{name}' must be text, not {type(value).__name__}")
    return value


def _check_strings(layer: Layer, where: str) -> None:
    if not _ID.match(layer.id):
        raise ProjectFormatError(f"{where}: the id {layer.id[:80]!r} is not a layer id")
    if layer.kind not in LAYER_KINDS:
        raise ProjectFormatError(f"{where}: unknown kind {layer.kind[:40]!r} (known: {', '.join(LAYER_KINDS)})")
    if layer.align not in ALIGNMENTS:
        raise ProjectFormatError(f"{where}: unknown alignment {layer.align[:40]!r}")
    for name in ("stroke", "color", "fill", "outline"):
        if not _COLOUR.match(getattr(layer, name)):
            raise ProjectFormatError(f"{where}: '{name}' must be a colour like #12ab34")
    if len(layer.name) > MAX_NAME or len(layer.group) > 64 or len(layer.font_family) > MAX_NAME:
        raise ProjectFormatError(f"{where}: a name is longer than {MAX_NAME} characters")
    if len(layer.text) > MAX_TEXT or (layer.record is not None and len(layer.record) > 1 << 20):
        raise ProjectFormatError(f"{where}: its text or record is too long")
    if layer.kind in ("image", "svg"):
        suffix = "png" if layer.kind == "image" else "svg"
        if not _ASSET.match(layer.asset) or not layer.asset.endswith(suffix):
            raise ProjectFormatError(f"{where}: the asset name {layer.asset[:80]!r} is not an assets/*.{suffix} "
                                     "member")


def _parse_layer(raw: Any, index: int) -> Layer:
    where = f"layer {index + 1}"
    if not isinstance(raw, dict):
        raise ProjectFormatError(f"{where} must be a JSON object")
    unknown = set(raw) - set(_FIELD_TYPES)
    if unknown:
        raise ProjectFormatError(f"{where} has unknown fields: {', '.join(sorted(unknown))[:200]}")
    for required in ("id", "kind"):
        if required not in raw:
            raise ProjectFormatError(f"{where} has no '{required}'")
    values = {name: _check_value(name, value, where) for name, value in raw.items()}
    layer = Layer(**values)
    _check_strings(layer, where)
    return layer


def _parse_canvas(body: dict[str, Any]) -> tuple[int, int]:
    canvas = body.get("canvas")
    if not isinstance(canvas, dict):
        raise ProjectFormatError("project.json has no 'canvas' object")
    sides = [canvas.get("width"), canvas.get("height")]
    if not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in sides):
        raise ProjectFormatError(f"the canvas size must be whole pixels from 1 to {MAX_SIDE}, not {sides!r}")
    return sides[0], sides[1]


def parse_project(text: str | bytes, assets: dict[str, bytes] | None = None) -> ProjectData:
    """Read ``project.json``; every asset a layer names must be in ``assets`` (when given)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ProjectFormatError(f"project.json is not valid JSON ({str(error)[:200]}); the file is "
                                 "damaged") from None
    if not isinstance(body, dict) or body.get("format") != PROJECT_FORMAT:
        raise ProjectFormatError("project.json is not an AIGC Studio design (its 'format' is missing or wrong)")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in READ_VERSIONS:
        raise ProjectFormatError(f"design version {version!r} is not supported (this AIGC Studio reads versions "
                                 f"{READ_VERSIONS[0]} to {READ_VERSIONS[-1]}); it was written by a newer "
                                 "version or damaged")
    width, height = _parse_canvas(body)
    raw_layers = body.get("layers")
    if not isinstance(raw_layers, list) or len(raw_layers) > MAX_LAYERS:
        raise ProjectFormatError(f"'layers' must be a list of at most {MAX_LAYERS} layers")
    layers = tuple(_parse_layer(raw, i) for i, raw in enumerate(raw_layers))
    if len({layer.id for layer in layers}) != len(layers):
        raise ProjectFormatError("two layers share one id")
    used = {layer.asset for layer in layers if layer.asset}
    if assets is not None:
        missing = sorted(used - set(assets))
        if missing:
            raise ProjectFormatError(f"the design names assets the file does not hold: {', '.join(missing)[:300]}")
        assets = {name: data for name, data in assets.items() if name in used}
    raw_history = body.get("history") if version >= 2 else None  # version 1 had no history
    history = _check_history(raw_history) if raw_history is not None else None
    return ProjectData(width, height, layers, dict(assets or {}), history)

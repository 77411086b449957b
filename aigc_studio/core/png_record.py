"""The generation record of an image, kept in the text chunks of its PNG file (stdlib + numpy only).

Two text chunks are written:
- `parameters`: an A1111-style line that other tools already show (the condition text on the first line,
  then "Seed: 42, Truncation psi: 0.7, ..., Model hash: 1a2b3c4d5e, Model: emoji-style");
- `aigc-studio.record`: the full record as JSON (`GenerationRecord`), with a digest of its own content so
  that a record edited by hand is recognised, and the sha256 of the generated pixels so that
  regenerating from the record can be checked bit for bit.

PNG chunks are written and parsed here with `zlib` and `struct` (no Pillow in core): `encode_png` writes
an 8-bit RGBA/RGB image with text chunks, `with_text` adds or replaces text chunks of any PNG,
`read_text` reads tEXt, zTXt and iTXt chunks, checking every CRC. `read_record` turns the chunks back
into a `GenerationRecord` or raises `RecordError` with a message a user can act on.

Reading is bounded, because the file comes from anywhere: `read_png_file` reads at most MAX_PNG_BYTES,
and a text chunk may inflate to at most MAX_TEXT_CHUNK bytes (MAX_TEXT_TOTAL for all of them), so a
small file holding a compressed-text bomb is refused instead of inflated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS_KEY = "parameters"
RECORD_KEY = "aigc-studio.record"
RECORD_VERSION = 1
MAX_PNG_BYTES = 256 * 2**20    # a PNG read for its record (a 32x32 grid of 64 px images is about 10 MB)
MAX_TEXT_CHUNK = 2**20         # bytes one text chunk may hold, inflated (a record is a few kB; Pillow's limit)
MAX_TEXT_TOTAL = 8 * 2**20     # bytes all the text chunks of one PNG may hold, inflated


class RecordError(ValueError):
    """A PNG whose generation record is missing, damaged or edited; the message says which and why."""


# ----------------------------------------------------------------------------- PNG chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _text_chunk(key: str, value: str) -> bytes:
    if not 1 <= len(key) <= 79:
        raise ValueError(f"a PNG text keyword has 1 to 79 characters, not {len(key)} ({key!r})")
    k = key.encode("latin-1")
    try:  # tEXt when the text is Latin-1 (what most tools read), iTXt (UTF-8) otherwise
        return _chunk(b"tEXt", k + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", k + b"\0\0\0" + b"\0" + b"\0" + value.encode("utf-8"))


def iter_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, CRCs checked; RecordError for a file that is not a sound PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise RecordError("not a PNG file (its first bytes are not the PNG signature)")
    out = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise RecordError(f"PNG is truncated at byte {pos}")
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        end = pos + 8 + length + 4
        if end > len(data):
            raise RecordError(f"PNG is truncated: chunk {kind!r} at byte {pos} runs past the end")
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            raise RecordError(f"PNG chunk {kind.decode('latin-1')!r} at byte {pos} is corrupt (CRC mismatch); "
                              "the file was damaged or edited with a tool that does not fix checksums")
        out.append((kind, payload))
        pos = end
        if kind == b"IEND":
            break
    if not out or out[-1][0] != b"IEND":
        raise RecordError("PNG is truncated: no IEND chunk")
    return out


def _inflate(data: bytes, limit: int, what: str) -> bytes:
    """zlib-decompress `data` to at most `limit` bytes; RecordError if it holds more (a compression bomb)
    or is not a complete zlib stream."""
    d = zlib.decompressobj()
    out = d.decompress(data, limit + 1)  # never more than limit + 1 bytes, however much `data` holds
    if len(out) > limit:
        raise RecordError(f"{what} inflates to more than {_TEXT_LIMITS}; the file is not an AIGC Studio "
                          "image, or was made to exhaust memory")
    if not d.eof:
        raise RecordError(f"{what} cannot be read (its compressed text is truncated)")
    return out


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


_TEXT_LIMITS = (f"the text a PNG may hold here ({_size(MAX_TEXT_CHUNK)} a chunk, {_size(MAX_TEXT_TOTAL)} in "
                "all)")


def read_text(data: bytes) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG as {keyword: text}; a later chunk wins.

    Bounded: each chunk's text may hold MAX_TEXT_CHUNK bytes, all of them MAX_TEXT_TOTAL (after
    inflating); more raises RecordError."""
    text: dict[str, str] = {}
    total = 0
    for kind, payload in iter_chunks(data):
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        key = payload.partition(b"\0")[0].decode("latin-1")
        what = f"PNG text chunk {kind.decode()} {key[:79]!r}"
        limit = min(MAX_TEXT_CHUNK, MAX_TEXT_TOTAL - total)
        try:
            if kind == b"tEXt":
                v = payload.partition(b"\0")[2]
                raw, encoding = v, "latin-1"
            elif kind == b"zTXt":
                rest = payload.partition(b"\0")[2]
                raw, encoding = _inflate(rest[1:], limit, what), "latin-1"
            else:
                rest = payload.partition(b"\0")[2]
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _translated, _, v = rest.partition(b"\0")
                raw, encoding = (_inflate(v, limit, what) if compressed else v), "utf-8"
            if len(raw) > limit:
                raise RecordError(f"{what} holds more than {_TEXT_LIMITS}; the file is not an AIGC Studio "
                                  "image")
            text[key] = raw.decode(encoding)
            total += len(raw)
        except (zlib.error, UnicodeDecodeError, IndexError) as exc:
            raise RecordError(f"{what} cannot be read ({exc})") from None
    return text


def read_png_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the PNG file `path`, reading at most `limit` (default MAX_PNG_BYTES) bytes:
    RecordError for a larger file (or an endless one such as /dev/zero), OSError if it cannot be read."""
    limit = MAX_PNG_BYTES if limit is None else limit
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise RecordError(f"{os.fspath(path)} is larger than {_size(limit)}, more than any image AIGC Studio "
                          "writes; it is not one of its PNGs")
    return data


def with_text(data: bytes, text: Mapping[str, str]) -> bytes:
    """The PNG `data` with the text chunks `text` added, replacing chunks of the same keywords."""
    chunks = iter_chunks(data)
    keys = {k.encode("latin-1") for k in text}
    out = [PNG_SIGNATURE]
    for kind, payload in chunks:
        if kind in (b"tEXt", b"zTXt", b"iTXt") and payload.partition(b"\0")[0] in keys:
            continue
        if kind == b"IEND":
            out += [_text_chunk(k, v) for k, v in text.items()]
        out.append(_chunk(kind, payload))
    return b"".join(out)


def encode_png(image: np.ndarray, text: Mapping[str, str] | None = None, level: int = 6) -> bytes:
    """An (H, W, 4) RGBA or (H, W, 3) RGB uint8 array as PNG bytes, with text chunks."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4) or 0 in img.shape[:2]:
        raise ValueError(f"encode_png wants an (H, W, 3|4) uint8 array, not {img.dtype} {img.shape}")
    h, w, c = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(img).reshape(h, w * c)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6 if c == 4 else 2, 0, 0, 0)
    parts = [PNG_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))]
    parts += [_text_chunk(k, v) for k, v in (text or {}).items()]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def pixels_sha256(image: np.ndarray) -> str:
    """sha256 of the raw pixel bytes with the shape in front (what "the same pixels" means)."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return hashlib.sha256(repr(img.shape).encode() + img.tobytes()).hexdigest()


# ----------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class GenerationRecord:
    """Everything needed to make an image again. Images of a grid use consecutive seeds from `seed`,
    row by row; `grid` is (rows, columns) or None for one image."""

    model: str                                  # package name
    model_sha256: str                           # sha256 of the package's manifest.json (covers every file)
    seed: int
    psi: float = 1.0                            # truncation ψ
    mix_seed: int | None = None                 # style mixing: the other seed ...
    mix_layers: str | None = None               # ... and its layers ("coarse", "4:8", ...)
    directions: dict[int, float] = field(default_factory=dict)  # principal direction -> offset (std)
    text: str = ""                              # condition text ("" = unconditional)
    noise: str = "const"                        # noise inputs: "const" (the exported fixed noise)
    width: int = 0
    height: int = 0
    grid: tuple[int, int] | None = None
    onnxruntime: str = ""                       # onnxruntime version ...
    provider: str = ""                          # ... and execution provider that made the pixels
    app: str = ""                               # "aigc-studio 0.1.0"
    pixels_sha256: str = ""                     # of the generated pixels (see `pixels_sha256`)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["directions"] = {str(k): float(v) for k, v in sorted(self.directions.items())}
        d["grid"] = list(self.grid) if self.grid else None
        return {"record_version": RECORD_VERSION, **d}

    def to_json(self) -> str:
        """The JSON text of the record, with `digest`: the sha256 of the canonical JSON of the rest."""
        d = self.to_dict()
        return json.dumps({**d, "digest": _digest(d)}, ensure_ascii=False, sort_keys=True)

    def parameters_line(self) -> str:
        """The A1111-style `parameters` text: condition text, then "Key: value" pairs."""
        pairs = [("Seed", str(self.seed)), ("Truncation psi", f"{self.psi:g}")]
        if self.mix_seed is not None:
            pairs += [("Mix seed", str(self.mix_seed)), ("Mix layers", str(self.mix_layers))]
        if self.directions:
            pairs.append(("Directions", " ".join(f"{k}={v:g}" for k, v in sorted(self.directions.items()))))
        if self.grid:
            pairs.append(("Grid", f"{self.grid[0]}x{self.grid[1]}"))
        pairs += [("Size", f"{self.width}x{self.height}"), ("Model hash", self.model_sha256[:10]),
                  ("Model", self.model), ("Provider", self.provider), ("Version", self.app)]
        prompt = " ".join(self.text.split())
        return f"{prompt}\n" + ", ".join(f"{k}: {v}" for k, v in pairs if v != "")

    def text_chunks(self) -> dict[str, str]:
        return {PARAMETERS_KEY: self.parameters_line(), RECORD_KEY: self.to_json()}

    def with_pixels(self, image: np.ndarray) -> GenerationRecord:
        img = np.asarray(image)
        return replace(self, pixels_sha256=pixels_sha256(img), width=int(img.shape[1]), height=int(img.shape[0]))


def _digest(d: Mapping[str, Any]) -> str:
    body = {k: v for k, v in d.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True,
                                     separators=(",", ":")).encode("utf-8")).hexdigest()


_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,), "model_sha256": (str,), "seed": (int,), "psi": (int, float), "mix_seed": (int, type(None)),
    "mix_layers": (str, type(None)), "directions": (dict,), "text": (str,), "noise": (str,),
    "width": (int,), "height": (int,), "grid": (list, type(None)), "onnxruntime": (str,),
    "provider": (str,), "app": (str,), "pixels_sha256": (str,),
}


def record_from_json(text: str, allow_edited: bool = False) -> GenerationRecord:
    """Parse and check a record's JSON. A record whose digest does not match its content was edited
    after it was written: refused unless `allow_edited` (the values are still type-checked)."""
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; a 5000-digit number; nesting too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RecordError(f"the generation record is not valid JSON ({reason}); it was damaged or edited "
                          "by hand") from None
    if not isinstance(d, dict):
        raise RecordError("the generation record must be a JSON object")
    version = d.get("record_version")
    if version != RECORD_VERSION:
        raise RecordError(f"generation record version {version!r} is not supported (this AIGC Studio reads "
                          f"version {RECORD_VERSION})")
    if not allow_edited and d.get("digest") != _digest(d):
        raise RecordError("the generation record was edited after it was written (its digest does not match "
                          "its content); regenerate from the original file, or accept the edited values "
                          "explicitly")
    names = {f.name for f in fields(GenerationRecord)}
    for key in ("model", "seed"):
        if key not in d:
            raise RecordError(f"the generation record has no '{key}'")
    unknown = set(d) - names - {"record_version", "digest"}
    if unknown:
        raise RecordError(f"the generation record has unknown fields: {', '.join(sorted(unknown))}")
    for key, types in _TYPES.items():
        if key in d and (not isinstance(d[key], types) or (isinstance(d[key], bool) and bool not in types)):
            raise RecordError(f"the generation record's '{key}' has the wrong type ({type(d[key]).__name__}: "
                              f"{d[key]!r})")
    try:
        directions = {int(k): float(v) for k, v in d.get("directions", {}).items()}
    except (TypeError, ValueError):
        raise RecordError(f"the generation record's directions are not index: number pairs "
                          f"({d.get('directions')!r})") from None
    psi = float(d.get("psi", 1.0))
    if not math.isfinite(psi) or any(not math.isfinite(v) for v in directions.values()):
        raise RecordError("the generation record holds a NaN or infinite value")
    grid = d.get("grid")
    if grid is not None and (len(grid) != 2 or not all(isinstance(g, int) and g > 0 for g in grid)):
        raise RecordError(f"the generation record's grid must be [rows, columns], not {grid!r}")
    kwargs = {k: v for k, v in d.items() if k in names}
    kwargs.update(psi=psi, directions=directions, grid=tuple(grid) if grid else None)
    return GenerationRecord(**kwargs)


def read_record(data: bytes, allow_edited: bool = False) -> GenerationRecord:
    """The generation record of the PNG bytes `data`, or a RecordError saying why there is none."""
    text = read_text(data)
    if RECORD_KEY not in text:
        if PARAMETERS_KEY in text:
            raise RecordError("this PNG has a 'parameters' text from another tool but no AIGC Studio "
                              "generation record, so it cannot be regenerated here")
        raise RecordError("this PNG has no generation record (it was not made by AIGC Studio, or the "
                          "record was removed, e.g. by an editor that drops PNG text chunks)")
    return record_from_json(text[RECORD_KEY], allow_edited=allow_edited)

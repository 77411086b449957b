"""A small reader for R's serialization format and lazy-load databases.

R packages ship their data sets as a *lazy-load database*: ``Rdata.rdx`` is a compressed (gzip, or
R's own zlib frame), serialized R list that says where each object lives, and ``Rdata.rdb`` holds the
objects themselves, each one compressed and serialized on its own. This module reads both without R,
for the plain data R packages usually ship: vectors (logical, integer, double, complex, character,
raw), lists, pairlists, symbols and attributes. Anything else (closures, environments, byte code,
external pointers) raises :class:`RDataError` with a message naming what was found, rather than
guessing.

Format reference: R's ``src/main/serialize.c`` (``ReadItem``) and ``src/main/saveload.c``; the
compression frame comes from ``R_compress1/2/3`` in ``src/main/connections.c``.

Values come back as plain Python objects (export.data.robjects: RVector, RPairlist, RSymbol, None).
Any vector keeps its R attributes in ``.attributes`` (a dict: ``names``, ``class``, ...).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import struct
import zlib
from pathlib import Path
from typing import Any

from export.data.robjects import RDataError, RPairlist, RSymbol, RVector, attributes_dict

__all__ = [
    "RDataError",
    "RPairlist",
    "RSymbol",
    "RVector",
    "LazyLoadDB",
    "decompress_r",
    "read_rds_bytes",
    "unserialize",
]


# SEXP type codes (R's Rinternals.h) ...
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP = 7, 8, 9, 10, 13, 14, 15
STRSXP, DOTSXP, VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = (
    16, 17, 19, 20, 21, 22, 23, 24, 25)
# ... and the pseudo-types that only occur in serialized streams (serialize.c).
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP = 255, 254, 253, 252, 251
BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP, PERSISTSXP = 250, 249, 248, 247
EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 242, 241, 240, 239, 238

TYPE_NAMES = {
    NILSXP: "NILSXP", SYMSXP: "SYMSXP", LISTSXP: "LISTSXP", CLOSXP: "CLOSXP", ENVSXP: "ENVSXP",
    PROMSXP: "PROMSXP", LANGSXP: "LANGSXP", SPECIALSXP: "SPECIALSXP", BUILTINSXP: "BUILTINSXP",
    CHARSXP: "CHARSXP", LGLSXP: "LGLSXP", INTSXP: "INTSXP", REALSXP: "REALSXP", CPLXSXP: "CPLXSXP",
    STRSXP: "STRSXP", DOTSXP: "DOTSXP", VECSXP: "VECSXP", EXPRSXP: "EXPRSXP", BCODESXP: "BCODESXP",
    EXTPTRSXP: "EXTPTRSXP", WEAKREFSXP: "WEAKREFSXP", RAWSXP: "RAWSXP", S4SXP: "S4SXP",
    REFSXP: "REFSXP", GLOBALENV_SXP: "GLOBALENV_SXP", UNBOUNDVALUE_SXP: "UNBOUNDVALUE_SXP",
    MISSINGARG_SXP: "MISSINGARG_SXP", BASENAMESPACE_SXP: "BASENAMESPACE_SXP",
    NAMESPACESXP: "NAMESPACESXP", PACKAGESXP: "PACKAGESXP", PERSISTSXP: "PERSISTSXP",
    EMPTYENV_SXP: "EMPTYENV_SXP", BASEENV_SXP: "BASEENV_SXP", ALTREP_SXP: "ALTREP_SXP",
}

NA_INTEGER = -(2**31)
# R's NA_real_ is a NaN whose low word is 1954; other NaNs are plain NaN.
_NA_REAL_LOW_WORD = 1954

# CHARSXP encoding flags live in the "levels" bits of the item header.
_LATIN1_MASK, _UTF8_MASK, _BYTES_MASK = 1 << 2, 1 << 3, 1 << 1

# Refuse absurd lengths early instead of allocating gigabytes on corrupt input.
_MAX_LENGTH = 1 << 31


_PAIRLISTS = (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLISTSXP, ATTRLANGSXP)
# Every type that is not a vector: read by _Reader.not_vector (code and environments are refused there).
_NOT_VECTORS = frozenset({
    NILVALUE_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, BASENAMESPACE_SXP, UNBOUNDVALUE_SXP,
    MISSINGARG_SXP, REFSXP, SYMSXP, *_PAIRLISTS, ALTREP_SXP, ENVSXP, PACKAGESXP, NAMESPACESXP, PERSISTSXP,
    EXTPTRSXP, WEAKREFSXP, BCODESXP, SPECIALSXP, BUILTINSXP})


class _Reader:
    """Reads one serialized stream (XDR binary or native little-endian binary, version 2 or 3)."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0
        self.refs: list[Any] = []
        fmt = bytes(self.data[:2])
        if fmt == b"X\n":
            self.endian = ">"
        elif fmt == b"B\n":
            self.endian = "<"
        elif fmt == b"A\n":
            raise RDataError("ASCII R serialization is not supported (only binary XDR)")
        else:
            raise RDataError(f"not R serialization data (starts with {bytes(self.data[:4])!r})")
        self.pos = 2
        self.version = self.read_int()
        self.writer_version = self.read_int()
        self.min_reader_version = self.read_int()
        if self.version == 3:
            n = self.read_int()
            self.native_encoding = self.read_bytes(n).decode("ascii", "replace")
        elif self.version == 2:
            self.native_encoding = "UTF-8"
        else:
            raise RDataError(f"unsupported R serialization version {self.version} (expected 2 or 3)")

    # -- primitives ----------------------------------------------------------------------------
    def read_bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise RDataError(f"truncated data: wanted {n} bytes at offset {self.pos}")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def read_int(self) -> int:
        return struct.unpack(self.endian + "i", self.read_bytes(4))[0]

    def read_length(self) -> int:
        n = self.read_int()
        if n == -1:  # long vector: two more ints, upper and lower 32 bits
            hi, lo = self.read_int(), self.read_int()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        if n < 0 or n > _MAX_LENGTH:
            raise RDataError(f"implausible vector length {n} at offset {self.pos}")
        return n

    def read_ints(self, n: int) -> tuple[int, ...]:
        return struct.unpack(f"{self.endian}{n}i", self.read_bytes(4 * n))

    def read_doubles(self, n: int) -> list[float | None]:
        raw = self.read_bytes(8 * n)
        words = struct.unpack(f"{self.endian}{2 * n}I", raw)
        values = struct.unpack(f"{self.endian}{n}d", raw)
        out: list[float | None] = []
        low_index = 1 if self.endian == ">" else 0  # position of the low word in each pair
        for i, v in enumerate(values):
            if math.isnan(v) and words[2 * i + low_index] == _NA_REAL_LOW_WORD:
                out.append(None)
            else:
                out.append(v)
        return out

    # -- items ---------------------------------------------------------------------------------
    def item(self) -> Any:
        flags = self.read_int()
        sxptype = flags & 0xFF
        if sxptype in _NOT_VECTORS:
            return self.not_vector(sxptype, flags)
        value = self.vector(sxptype, flags >> 12)
        if flags & (1 << 9):  # has attributes
            attributes = self.item()
            if isinstance(value, RVector):
                value.attributes = attributes_dict(attributes)
            # CHARSXPs may carry (ignored) attributes in old streams; R drops them too.
        if flags & (1 << 10):  # has a tag: only pairlist-like types carry tags, handled above
            raise RDataError(f"unexpected tag on {TYPE_NAMES.get(sxptype, sxptype)}")
        return value

    def not_vector(self, sxptype: int, flags: int) -> Any:
        """NULL, references, symbols, pairlists and ALTREP objects; an error for code and environments."""
        if sxptype == NILVALUE_SXP:
            return None
        if sxptype in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, BASENAMESPACE_SXP):
            return RSymbol(f"<{TYPE_NAMES[sxptype]}>")
        if sxptype in (UNBOUNDVALUE_SXP, MISSINGARG_SXP):
            return RSymbol(f"<{TYPE_NAMES[sxptype]}>")
        if sxptype == REFSXP:
            index = flags >> 8
            if index == 0:
                index = self.read_int()
            if not 1 <= index <= len(self.refs):
                raise RDataError(f"bad reference index {index} (table has {len(self.refs)})")
            return self.refs[index - 1]
        if sxptype == SYMSXP:
            name = self.item()  # a CHARSXP
            sym = RSymbol(name if isinstance(name, str) else "NA")
            self.refs.append(sym)
            return sym
        if sxptype in _PAIRLISTS:
            return self.pairlist(flags)
        if sxptype == ALTREP_SXP:
            return self.altrep()
        raise RDataError(
            f"unsupported R object type {TYPE_NAMES[sxptype]} at offset {self.pos - 4}: "
            "this reader handles data (vectors, lists, pairlists), not code or environments")

    def vector(self, sxptype: int, levels: int) -> Any:
        """A CHARSXP, an atomic vector or a list, without its attributes."""
        if sxptype == CHARSXP:
            return self.charsxp(levels)
        if sxptype == S4SXP:
            return RVector((), "S4SXP")
        if sxptype == NILSXP:
            return None
        if sxptype not in (STRSXP, VECSXP, EXPRSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, RAWSXP):
            raise RDataError(f"unknown R object type code {sxptype} at offset {self.pos - 4}")
        n = self.read_length()
        if sxptype in (STRSXP, VECSXP, EXPRSXP):
            return RVector((self.item() for _ in range(n)), TYPE_NAMES[sxptype])
        if sxptype == LGLSXP:
            return RVector((None if v == NA_INTEGER else bool(v) for v in self.read_ints(n)), "LGLSXP")
        if sxptype == INTSXP:
            return RVector((None if v == NA_INTEGER else v for v in self.read_ints(n)), "INTSXP")
        if sxptype == REALSXP:
            return RVector(self.read_doubles(n), "REALSXP")
        if sxptype == CPLXSXP:
            parts = self.read_doubles(2 * n)
            return RVector((None if re is None or im is None else complex(re, im)
                            for re, im in zip(parts[::2], parts[1::2])), "CPLXSXP")
        return RVector(self.read_bytes(n), "RAWSXP")  # ints 0..255

    def charsxp(self, levels: int) -> str | None:
        n = self.read_int()
        if n == -1:
            return None  # NA_character_
        if n < 0:
            raise RDataError(f"bad string length {n} at offset {self.pos - 4}")
        raw = self.read_bytes(n)
        if levels & _LATIN1_MASK:
            return raw.decode("latin-1")
        if levels & _BYTES_MASK:
            return raw.decode("utf-8", "backslashreplace")
        # UTF-8, ASCII, or "native": R packages are built in UTF-8 locales in practice.
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.native_encoding.upper().replace("-", "") in ("LATIN1", "ISO88591", "CP1252"):
                return raw.decode("cp1252", "replace")
            raise RDataError(f"string at offset {self.pos - n} is not valid UTF-8") from None

    def pairlist(self, flags: int) -> RPairlist:
        """Read a chain of pairlist cells iteratively (long pairlists would overflow recursion)."""
        sxptype = flags & 0xFF
        result = RPairlist([], TYPE_NAMES[sxptype])
        first = True
        while True:
            has_attr = bool(flags & (1 << 9))
            has_tag = bool(flags & (1 << 10))
            attrs = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            if first and attrs is not None:
                result.attributes = attributes_dict(attrs)
            first = False
            tag_name = tag.name if isinstance(tag, RSymbol) else None
            result.items.append((tag_name, car))
            # The cdr follows: another cell of the same kind continues the chain.
            flags = self.read_int()
            cdr_type = flags & 0xFF
            if cdr_type == NILVALUE_SXP:
                return result
            if cdr_type not in (LISTSXP, LANGSXP, DOTSXP, ATTRLISTSXP, ATTRLANGSXP):
                self.pos -= 4
                result.items.append((None, self.item()))  # dotted pair: rare, keep the value
                return result

    def altrep(self) -> Any:
        """ALTREP objects: expand the compact and wrapper classes R writes for plain data."""
        info = self.item()
        state = self.item()
        attributes = self.item()
        cls = info.items[0][1].name if isinstance(info, RPairlist) and info.items else "?"
        if cls in ("compact_intseq", "compact_realseq"):
            n, start, step = (state[0], state[1], state[2])
            n = int(n)
            if cls == "compact_intseq":
                value: Any = RVector((int(start + i * step) for i in range(n)), "INTSXP")
            else:
                value = RVector((start + i * step for i in range(n)), "REALSXP")
        elif cls.startswith("wrap_"):
            value = state.items[0][1] if isinstance(state, RPairlist) else state[0]
        elif cls == "deferred_string":
            arg = state.items[0][1] if isinstance(state, RPairlist) else state
            value = RVector((None if v is None else _format_number(v) for v in arg), "STRSXP")
        else:
            raise RDataError(f"unsupported ALTREP class {cls!r}")
        if attributes is not None and isinstance(value, RVector):
            value.attributes = attributes_dict(attributes)
        return value


def _format_number(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def unserialize(data: bytes) -> Any:
    """Decode one serialized R object (the bytes of ``serialize(x, NULL)`` or an .rds after gunzip)."""
    reader = _Reader(data)
    value = reader.item()
    return value


def decompress_r(blob: bytes, compression: int = 1) -> bytes:
    """Undo R's ``R_compress1`` (zlib), ``R_compress2`` (bzip2) or ``R_compress3`` (xz) framing.

    All start with a 4-byte big-endian uncompressed length. Types 2 and 3 then have one byte naming
    the method actually used (``Z`` zlib, ``2`` bzip2, ``X`` xz, ``0`` stored).
    """
    if len(blob) < 5:
        raise RDataError("compressed R blob is too short")
    (expected,) = struct.unpack(">I", blob[:4])
    if compression == 1:
        out = zlib.decompress(blob[4:])
    else:
        method, payload = blob[4:5], blob[5:]
        if method == b"Z":
            out = zlib.decompress(payload)
        elif method == b"2":
            out = bz2.decompress(payload)
        elif method == b"X":
            out = lzma.decompress(payload)
        elif method == b"0":
            out = payload
        else:
            raise RDataError(f"unknown R compression method byte {method!r}")
    if len(out) != expected:
        raise RDataError(f"decompressed {len(out)} bytes, header says {expected}")
    return out


def read_rds_bytes(raw: bytes) -> bytes:
    """The serialized stream inside an .rds-style file, whichever way it was compressed.

    ``saveRDS`` (and so the ``.rdx`` index R writes today) uses gzip, bzip2 or xz file compression,
    or none; older ``.rdx`` files use the ``R_compress1`` zlib frame. The magic bytes tell them apart.
    """
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if raw[:3] == b"BZh":
        return bz2.decompress(raw)
    if raw[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(raw)
    if raw[:2] in (b"X\n", b"B\n", b"A\n"):
        return raw
    return decompress_r(raw, 1)


class LazyLoadDB:
    """An R lazy-load database (``name.rdx`` + ``name.rdb``), as used for package data and code.

    >>> db = LazyLoadDB(Path(".../janeaustenr/data/Rdata"))   # doctest: +SKIP
    >>> db.names()                                            # doctest: +SKIP
    ['emma', 'mansfieldpark', ...]
    >>> db.load("emma")[:3]                                   # doctest: +SKIP
    """

    def __init__(self, stem: Path):
        self.rdx_path = Path(f"{stem}.rdx")
        self.rdb_path = Path(f"{stem}.rdb")
        index = unserialize(read_rds_bytes(self.rdx_path.read_bytes()))
        if not isinstance(index, RVector) or index.rtype != "VECSXP":
            raise RDataError(f"{self.rdx_path}: index is not an R list")
        entries = index.as_dict()
        if "variables" not in entries:
            raise RDataError(f"{self.rdx_path}: index has no 'variables' entry")
        self.variables: dict[str, tuple[int, int]] = {
            name: _offset_length(name, pos) for name, pos in entries["variables"].as_dict().items()}
        compressed = entries.get("compressed")
        # TRUE (or 1) means zlib; 2 and 3 mean bzip2 / xz framing with a method byte.
        self.compression = int(compressed[0]) if compressed else 0
        if self.compression not in (0, 1, 2, 3):
            raise RDataError(f"{self.rdx_path}: unknown compression {compressed!r}")

    def names(self) -> list[str]:
        """Object names in the database, in index order."""
        return list(self.variables)

    def load(self, name: str) -> Any:
        """Read and decode one object by name."""
        if name not in self.variables:
            raise KeyError(f"{name!r} not in {self.rdx_path.name}; known: {', '.join(self.variables)}")
        offset, length = self.variables[name]
        with open(self.rdb_path, "rb") as f:
            f.seek(offset)
            blob = f.read(length)
        if len(blob) != length:
            raise RDataError(f"{self.rdb_path}: object {name!r} runs past the end of the file")
        data = decompress_r(blob, self.compression) if self.compression else blob
        return unserialize(data)


def _offset_length(name: str, pos: Any) -> tuple[int, int]:
    if not isinstance(pos, RVector) or len(pos) != 2 or any(v is None for v in pos):
        raise RDataError(f"bad index entry for {name!r}: {pos!r}")
    return int(pos[0]), int(pos[1])

"""The asset library of the Design workspace: icon and emoji sets kept as SVG, searchable.

A library is a folder in the spirit of a model package::

    manifest.json              format version, kind "asset-library", the sets, sha256 and size per file
    <set>.json.gz              one per set: {"set": key, "assets": [{"name", "svg", "tags", "group"}]}
    LICENSE-<package>.txt      the licence text of every source package

The workshop writes it (``python -m export.data.library``) with :func:`write_library`; the app loads it
with :meth:`AssetLibrary.load`, which checks every field's type, every file's size and sha256, the
format version and each set's count, and refuses a broken library with a :class:`LibraryError` that
names the file and the problem. The gzip files are written without a time stamp, so the same packages
give byte-identical files.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigc_studio.core.svg import recolour
from aigc_studio.runtime.manifest import FileEntry
from aigc_studio.runtime.package import read_json_object, sha256_file

__all__ = ["FORMAT_VERSION", "KIND", "MANIFEST", "Asset", "AssetLibrary", "AssetSet", "LibraryError",
           "SetSource", "SourceRecord", "recolour", "write_library"]

FORMAT_VERSION = 1
"""The version :func:`write_library` writes."""
READABLE_VERSIONS = (1,)
KIND = "asset-library"
MANIFEST = "manifest.json"
MAX_SET_BYTES = 256 << 20
"""A set's JSON after decompression; a larger one (a gzip bomb) is refused while it is read."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,119}")
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class LibraryError(Exception):
    """A library that cannot be used; the message names the folder, the file and the problem."""


@dataclass(frozen=True)
class Asset:
    """One icon or emoji: its set's key, name (``heart``), tags, group (Tabler's category, the emoji
    group) and SVG document. ``recolourable`` assets draw with ``currentColor`` (see :func:`recolour`)."""

    set: str
    name: str
    tags: tuple[str, ...]
    group: str
    svg: str = field(repr=False)
    recolourable: bool = False

    def rendered(self, stroke_colour: str, stroke_width: float) -> str:
        """The SVG to place on a canvas: recoloured if the asset is recolourable, else as it is."""
        return recolour(self.svg, stroke_colour, stroke_width) if self.recolourable else self.svg


@dataclass(frozen=True)
class SourceRecord:
    """A registry package a set was built from: ``use`` says what was taken ("svg", "tags")."""

    package: str
    version: str
    licence: str          # SPDX identifier as the package states it
    licence_file: str     # the licence text, a file of the library
    registry: str = "npm"
    use: str = "svg"


@dataclass(frozen=True)
class AssetSet:
    """A set as the manifest describes it."""

    key: str                # "tabler", "fluent-emoji"
    title: str              # "Tabler Icons (outline)"
    kind: str               # "icons" or "emoji"
    file: str               # the set's .json.gz
    count: int
    recolourable: bool
    sources: tuple[SourceRecord, ...]
    notes: str = ""         # what was left out and why


@dataclass(frozen=True)
class SetSource:
    """What :func:`write_library` writes for one set: its description, licence texts and assets."""

    key: str
    title: str
    kind: str
    recolourable: bool
    sources: Sequence[tuple[SourceRecord, str]]   # (record, licence text)
    assets: Sequence[Asset]
    notes: str = ""


# --------------------------------------------------------------------------------------------- reading

def _fail(path: Path, what: str) -> LibraryError:
    return LibraryError(f"asset library {path}: {what}")


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    if key not in obj:
        raise _fail(path, f"{MANIFEST}: {where}.{key} is missing")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise _fail(path, f"{MANIFEST}: {where}.{key} has the wrong type ({type(value).__name__})")
    return value


def _file_name(value: str, where: str, path: Path) -> str:
    if not _FILE_NAME.fullmatch(value) or ".." in value:
        raise _fail(path, f"{MANIFEST}: {where} names '{value}', which is not a plain file name in the folder")
    return value


def read_library_manifest(path: Path) -> tuple[dict[str, Any], tuple[AssetSet, ...]]:
    """The manifest of the library folder ``path``, checked field by field (no checksums), and its
    sets parsed into :class:`AssetSet`."""
    m = read_json_object(path, MANIFEST, _fail)
    version = m.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise _fail(path, f"{MANIFEST}: format version {version!r} is not supported by this AIGC Studio "
                          f"(it reads asset library versions {', '.join(map(str, READABLE_VERSIONS))}); "
                          "use a matching app or rebuild the library with `python -m export.data.library`")
    if m.get("kind") != KIND:
        raise _fail(path, f"{MANIFEST}: kind is {m.get('kind')!r}, not {KIND!r}")
    files = _field(m, "files", dict, "manifest", path)
    for name, entry in files.items():
        _file_name(name, "files", path)
        if not isinstance(entry, dict):
            raise _fail(path, f"{MANIFEST}: files[{name!r}] must hold sha256 and size")
        sha = _field(entry, "sha256", str, f"files[{name!r}]", path)
        size = _field(entry, "size", int, f"files[{name!r}]", path)
        if not _SHA256.fullmatch(sha) or size < 0:
            raise _fail(path, f"{MANIFEST}: files[{name!r}] has a malformed sha256 or size")
    sets = []
    raw_sets = _field(m, "sets", list, "manifest", path)
    if not raw_sets:
        raise _fail(path, f"{MANIFEST}: the library has no sets")
    for i, s in enumerate(raw_sets):
        where = f"sets[{i}]"
        if not isinstance(s, dict):
            raise _fail(path, f"{MANIFEST}: {where} must be an object")
        key = _field(s, "key", str, where, path)
        if not _KEY.fullmatch(key):
            raise _fail(path, f"{MANIFEST}: {where}.key {key!r} is not a short lower-case name")
        records = []
        for j, r in enumerate(_field(s, "sources", list, where, path)):
            rw = f"{where}.sources[{j}]"
            if not isinstance(r, dict):
                raise _fail(path, f"{MANIFEST}: {rw} must be an object")
            licence_file = _file_name(_field(r, "licence_file", str, rw, path), f"{rw}.licence_file", path)
            if licence_file not in files:
                raise _fail(path, f"{MANIFEST}: {rw}.licence_file '{licence_file}' is not listed in files")
            records.append(SourceRecord(
                package=_field(r, "package", str, rw, path), version=_field(r, "version", str, rw, path),
                licence=_field(r, "licence", str, rw, path), licence_file=licence_file,
                registry=_field(r, "registry", str, rw, path), use=_field(r, "use", str, rw, path)))
        if not records:
            raise _fail(path, f"{MANIFEST}: {where} names no source package")
        file = _file_name(_field(s, "file", str, where, path), f"{where}.file", path)
        if file not in files:
            raise _fail(path, f"{MANIFEST}: {where}.file '{file}' is not listed in files")
        count = _field(s, "count", int, where, path)
        if count < 0:
            raise _fail(path, f"{MANIFEST}: {where}.count is negative")
        sets.append(AssetSet(key=key, title=_field(s, "title", str, where, path),
                             kind=_field(s, "kind", str, where, path), file=file, count=count,
                             recolourable=_field(s, "recolourable", bool, where, path),
                             sources=tuple(records), notes=str(s.get("notes", ""))))
    if len({s.key for s in sets}) != len(sets):
        raise _fail(path, f"{MANIFEST}: two sets have the same key")
    return m, tuple(sets)


def _read_set(path: Path, spec: AssetSet) -> list[Asset]:
    fpath = path / spec.file
    try:
        with gzip.open(fpath, "rb") as f:
            raw = f.read(MAX_SET_BYTES + 1)
        if len(raw) > MAX_SET_BYTES:
            raise _fail(path, f"{spec.file} holds more than {MAX_SET_BYTES:,} bytes of JSON")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"{spec.file} is not gzip-compressed JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("set") != spec.key or not isinstance(data.get("assets"), list):
        raise _fail(path, f"{spec.file} does not hold the assets of set '{spec.key}'")
    assets = []
    for i, a in enumerate(data["assets"]):
        ok = (isinstance(a, dict) and isinstance(a.get("name"), str) and isinstance(a.get("svg"), str)
              and isinstance(a.get("group"), str) and isinstance(a.get("tags"), list)
              and all(isinstance(t, str) for t in a["tags"]))
        if not ok:
            raise _fail(path, f"{spec.file}: asset {i} needs a name, an svg, a group and a list of tags")
        if "<svg" not in a["svg"]:
            raise _fail(path, f"{spec.file}: asset '{a['name']}' is not an SVG document")
        assets.append(Asset(set=spec.key, name=a["name"], tags=tuple(a["tags"]), group=a["group"],
                            svg=a["svg"], recolourable=spec.recolourable))
    if len(assets) != spec.count:
        raise _fail(path, f"{spec.file} holds {len(assets)} assets, the manifest says {spec.count}")
    return assets


# --------------------------------------------------------------------------------------------- search

@dataclass(frozen=True)
class _Entry:
    asset: Asset
    name: str                 # lower case, "-" and "_" as spaces
    words: tuple[str, ...]
    tags: tuple[str, ...]
    group: str
    blob: str                 # all of the above, to skip a non-matching asset with one `in`
    order: int                # the set's place in the library (an empty query lists sets in order)


RANK_EXACT, RANK_PREFIX, RANK_WORD, RANK_TAG, RANK_GROUP, RANK_SUBSTRING = range(6)
"""How well a query matches, best first: the whole name, the start of the name, a word of the name,
a tag, the group, and a substring of any of them."""


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-_]+", " ", text.lower()).split())


def _term_rank(term: str, e: _Entry) -> int | None:
    if e.name.startswith(term):
        return RANK_PREFIX
    if term in e.words:
        return RANK_WORD
    if term in e.tags:
        return RANK_TAG
    if e.group == term or e.group.startswith(term):
        return RANK_GROUP
    if any(w.startswith(term) for w in e.words) or any(t.startswith(term) for t in e.tags):
        return RANK_TAG
    if term in e.name or any(term in t for t in e.tags) or term in e.group:
        return RANK_SUBSTRING
    return None


class AssetLibrary:
    """A verified library: its sets and assets, searchable. Build one with :meth:`load`."""

    def __init__(self, path: Path, sets: Sequence[AssetSet], assets: Iterable[Asset],
                 files: Mapping[str, FileEntry]) -> None:
        self.path = path
        self.sets: tuple[AssetSet, ...] = tuple(sets)
        self.assets: tuple[Asset, ...] = tuple(assets)
        self.files: Mapping[str, FileEntry] = dict(files)
        """Every file of the library but the manifest, with its sha256 and size."""
        order = {s.key: i for i, s in enumerate(self.sets)}
        self._entries = []
        for a in self.assets:
            name, tags, group = _norm(a.name), tuple(_norm(t) for t in a.tags), _norm(a.group)
            self._entries.append(_Entry(a, name, tuple(name.split()), tags, group,
                                        "\n".join((name, group, *tags)), order.get(a.set, len(order))))
        self._by_key = {(a.set, a.name): a for a in self.assets}

    @classmethod
    def load(cls, path: Path | str, verify: bool = True) -> AssetLibrary:
        """Load the library folder ``path``, checking the manifest, every file's size and (with
        ``verify``) sha256, and each set's count; raise :class:`LibraryError` if anything is wrong."""
        path = Path(path)
        manifest, sets = read_library_manifest(path)
        for name, entry in manifest["files"].items():
            fpath = path / name
            if not fpath.is_file():
                raise _fail(path, f"{name} is missing")
            if fpath.stat().st_size != entry["size"]:
                raise _fail(path, f"{name} has {fpath.stat().st_size} bytes, the manifest says {entry['size']} "
                                  "(truncated or replaced file)")
            if verify and sha256_file(fpath) != entry["sha256"]:
                raise _fail(path, f"{name}: sha256 mismatch; the file is corrupt or was modified")
        assets = [a for s in sets for a in _read_set(path, s)]
        files = {n: FileEntry(e["sha256"], e["size"]) for n, e in manifest["files"].items()}
        return cls(path, sets, assets, files)

    @property
    def size_bytes(self) -> int:
        """The size of the library's files on disk."""
        return sum(e.size or 0 for e in self.files.values()) + (self.path / MANIFEST).stat().st_size

    def set_info(self, key: str) -> AssetSet:
        for s in self.sets:
            if s.key == key:
                return s
        raise KeyError(f"no set '{key}' (the library has: {', '.join(s.key for s in self.sets)})")

    def get(self, set_key: str, name: str) -> Asset:
        """The asset ``name`` of set ``set_key``; KeyError if there is none."""
        return self._by_key[(set_key, name)]

    def licence_text(self, record: SourceRecord) -> str:
        return (self.path / record.licence_file).read_text(encoding="utf-8")

    def search(self, query: str, set: str | None = None, limit: int | None = 200) -> list[Asset]:
        """Assets matching every word of ``query`` in their name, tags or group, best first (see
        ``RANK_*``; ties: shorter name, then alphabetical). An empty query lists the set(s) in name
        order. ``set`` restricts to one set's key; ``limit`` None returns every match."""
        terms = _norm(query).split()
        entries = self._entries if set is None else [e for e in self._entries if e.asset.set == set]
        if not terms:
            found = sorted(entries, key=lambda e: (e.order, e.name))
            return [e.asset for e in found[:limit]]
        whole = " ".join(terms)
        scored = []
        for e in entries:
            if not all(t in e.blob for t in terms):
                continue
            if e.name == whole:
                scored.append((RANK_EXACT, e))
                continue
            if len(terms) > 1 and e.name.startswith(whole):
                scored.append((RANK_PREFIX, e))
                continue
            worst = RANK_EXACT
            for t in terms:
                r = _term_rank(t, e)
                if r is None:
                    break
                worst = max(worst, r)
            else:
                scored.append((worst, e))
        scored.sort(key=lambda x: (x[0], len(x[1].name), x[1].name, x[1].asset.set))
        return [e.asset for _, e in scored[:limit]]


# --------------------------------------------------------------------------------------------- writing

def _gzip_json(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def write_library(folder: Path | str, sets: Sequence[SetSource], name: str = "design-library",
                  description: str = "") -> Path:
    """Write the library ``sets`` into ``folder`` (replaced as a whole), with the manifest's sha256 and
    size of every file, and check that it loads. Used by the workshop and the tests; returns ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        licences: dict[str, str] = {}
        manifest_sets = []
        for s in sets:
            if not _KEY.fullmatch(s.key):
                raise ValueError(f"set key {s.key!r} is not a short lower-case name")
            if any(a.set != s.key for a in s.assets):
                raise ValueError(f"set '{s.key}' holds assets of another set")
            if len({a.name for a in s.assets}) != len(s.assets):
                raise ValueError(f"set '{s.key}' has two assets with the same name")
            records = []
            for record, text in s.sources:
                _file_name(record.licence_file, "licence_file", folder)
                if licences.setdefault(record.licence_file, text) != text:
                    raise ValueError(f"two different licence texts for {record.licence_file}")
                records.append({"package": record.package, "version": record.version, "licence": record.licence,
                                "licence_file": record.licence_file, "registry": record.registry,
                                "use": record.use})
            file = f"{s.key}.json.gz"
            assets = [{"name": a.name, "svg": a.svg, "tags": list(a.tags), "group": a.group}
                      for a in sorted(s.assets, key=lambda a: a.name)]
            (tmp / file).write_bytes(_gzip_json({"set": s.key, "assets": assets}))
            manifest_sets.append({"key": s.key, "title": s.title, "kind": s.kind, "file": file,
                                  "count": len(assets), "recolourable": s.recolourable, "sources": records,
                                  **({"notes": s.notes} if s.notes else {})})
        for fname, text in licences.items():
            (tmp / fname).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        files = {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format_version": FORMAT_VERSION, "kind": KIND, "name": name, "description": description,
                    "sets": manifest_sets, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        os.chmod(tmp, 0o755)
        AssetLibrary.load(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder

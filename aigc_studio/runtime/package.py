"""Model packages: a folder with `manifest.json`, ONNX graphs, tokenizer files and a reference file.

The manifest is the package's own description; the runtime never hard-codes a shape, a vocabulary size
or a token id. Loading verifies the format version, the presence and sha256 of every listed file and the
kind-specific fields, and refuses a broken package with a `PackageError` whose message names the file
and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from aigc_studio.runtime import manifest_schema as schema
from aigc_studio.runtime.manifest import FORMAT_VERSION, READABLE_VERSIONS, Manifest, parse_manifest
from aigc_studio.runtime.manifest_schema import MAX_MANIFEST_BYTES

MANIFEST = "manifest.json"
KINDS = ("text-lm", "image-gan", "image-features")


class PackageError(Exception):
    """A model package that cannot be used; the message names the package, the file and the problem."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """A verified model package: its folder, the manifest as written (for the workshop, which writes
    packages, and for display) and `spec`, the typed manifest the runtime reads."""

    path: Path
    manifest: Mapping[str, Any] = field(repr=False)

    @cached_property
    def spec(self) -> Manifest:
        """The typed manifest (parsed once)."""
        return parse_manifest(self.manifest)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def file(self, name: str) -> Path:
        """Absolute path of a file listed in the manifest."""
        if name not in self.spec.files:
            raise PackageError(f"{self.path}: '{name}' is not listed in {MANIFEST}")
        return self.path / name

    def graph(self, variant: str | None = None, role: str = "graphs") -> tuple[str, Path]:
        """(variant, path) of a graph of `role` ("graphs": the decoder; "mapping", "synthesis"...);
        `None` picks the manifest's default variant."""
        graphs = self.spec.graphs[role]
        chosen = graphs.choose(variant)
        if chosen not in graphs.variants:
            raise PackageError(f"{self.path}: no graph variant '{chosen}' (has: {', '.join(graphs.variants)})")
        return chosen, self.file(graphs.variants[chosen])

    @property
    def size_bytes(self) -> int:
        return self.spec.size_bytes


def _fail(path: Path, what: str) -> PackageError:
    return PackageError(f"model package {path}: {what}")


def read_json_object(folder: Path, name: str, fail: Callable[[Path, str], Exception]) -> dict[str, Any]:
    """The JSON object in ``folder / name`` (a manifest: at most MAX_MANIFEST_BYTES), or ``fail(folder,
    why)`` raised when the folder or file is missing, unreadable, too large, not JSON, nested too deeply
    or not an object. Package and asset-library manifests are read through here."""
    file = folder / name
    if not folder.is_dir():
        raise fail(folder, "folder not found")
    if not file.is_file():
        raise fail(folder, f"{name} is missing")
    try:
        size = file.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise fail(folder, f"{name} is {size:,} bytes; a manifest has at most {MAX_MANIFEST_BYTES:,}")
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(folder, f"{name} cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(folder, f"{name} is not valid JSON ({exc})") from None
    except RecursionError:
        raise fail(folder, f"{name} is not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise fail(folder, f"{name} must hold a JSON object")
    return data


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse and check the manifest of the package folder `path` (no checksums): every field the
    runtime reads has its type and range checked (runtime/manifest_schema.py)."""
    path = Path(path)
    manifest = read_json_object(path, MANIFEST, _fail)
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise _fail(path, f"{MANIFEST}: format version {version!r} is not supported by this AIGC Studio "
                          f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))}); use a matching "
                          f"app or re-export the package")
    for key in ("name", "kind", "files"):
        if key not in manifest:
            raise _fail(path, f"{MANIFEST}: required field '{key}' is missing")
    if manifest["kind"] not in KINDS:
        raise _fail(path, f"{MANIFEST}: unknown kind '{manifest['kind']}' (known: {', '.join(KINDS)})")
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise _fail(path, f"{MANIFEST}: 'files' must map file names to their sha256 and size")
    for name in files:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise _fail(path, f"{MANIFEST}: file name '{name}' leaves the package folder")
    try:
        schema.check_common(manifest)
        kind = manifest["kind"]
        if kind == "text-lm":
            schema.check_text_lm(manifest)
        elif kind == "image-gan":
            schema.check_image_gan(manifest, _gan_graphs(path, manifest))
        else:
            schema.check_image_features(manifest)
    except schema.ManifestFieldError as exc:
        raise _fail(path, f"{MANIFEST}: {exc}") from None
    return manifest


def _gan_graphs(path: Path, m: Mapping[str, Any]) -> tuple[str, ...]:
    arch = m.get("architecture")
    graphs = {"stylegan": ("mapping", "synthesis"), "dcgan": ("generator",)}.get(str(arch))
    if graphs is None:
        raise _fail(path, f"{MANIFEST}: unknown architecture {arch!r} (known: stylegan, dcgan)")
    need = ("z_dim", "img_size", "channels") + (("w_dim", "num_ws", "cond_features", "layer_resolutions")
                                                if arch == "stylegan" else ())
    cfg = m.get("config")
    missing = [k for k in need if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise _fail(path, f"{MANIFEST}: 'config' lacks {', '.join(missing)}")
    return graphs


def load_package(path: Path | str, verify: bool = True) -> ModelPackage:
    """Load and verify the package folder `path`; raise `PackageError` naming the file and the problem."""
    path = Path(path)
    manifest = read_manifest(path)
    for name, meta in manifest["files"].items():
        fpath = path / name
        if not fpath.is_file():
            raise _fail(path, f"{name} is missing")
        size = fpath.stat().st_size
        if "size" in meta and size != int(meta["size"]):
            raise _fail(path, f"{name} has {size} bytes, the manifest says {meta['size']} "
                              "(truncated or replaced file)")
        if verify and sha256_file(fpath) != meta.get("sha256"):
            raise _fail(path, f"{name}: sha256 mismatch; the file is corrupt or was modified")
    return ModelPackage(path=path, manifest=manifest)


def write_package(folder: Path, manifest: dict[str, Any]) -> Path:
    """Fill in `format_version` and the sha256/size of every file in `folder`, write manifest.json
    atomically, and check the result loads. Used by the workshop."""
    folder = Path(folder)
    files = {}
    for p in sorted(folder.iterdir()):
        if p.name == MANIFEST or not p.is_file():
            continue
        files[p.name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = {"format_version": FORMAT_VERSION, **manifest, "files": files}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / MANIFEST)
    load_package(folder)
    return folder / MANIFEST

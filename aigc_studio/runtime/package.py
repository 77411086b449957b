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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

FORMAT_VERSION = 1
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
    """A verified model package. `manifest` is the parsed manifest.json."""

    path: Path
    manifest: Mapping[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def config(self) -> Mapping[str, Any]:
        return self.manifest.get("config", {})

    def file(self, name: str) -> Path:
        """Absolute path of a file listed in the manifest."""
        if name not in self.manifest["files"]:
            raise PackageError(f"{self.path}: '{name}' is not listed in {MANIFEST}")
        return self.path / name

    def graph(self, variant: str | None = None) -> tuple[str, Path]:
        """(variant, path) of the decoder graph; `None` picks the manifest's default variant."""
        variants: Mapping[str, str] = self.manifest["graphs"]["variants"]
        chosen = variant or self.manifest["graphs"].get("default", next(iter(variants)))
        if chosen not in variants:
            raise PackageError(f"{self.path}: no graph variant '{chosen}' (has: {', '.join(variants)})")
        return chosen, self.file(variants[chosen])

    @property
    def size_bytes(self) -> int:
        return sum(int(v.get("size", 0)) for v in self.manifest["files"].values())


def _fail(path: Path, what: str) -> PackageError:
    return PackageError(f"model package {path}: {what}")


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse and check the manifest of the package folder `path` (no checksums)."""
    path = Path(path)
    mpath = path / MANIFEST
    if not path.is_dir():
        raise _fail(path, "folder not found")
    if not mpath.is_file():
        raise _fail(path, f"{MANIFEST} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise _fail(path, f"{MANIFEST} must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(path, f"{MANIFEST}: format version {version!r} is not supported by this AIGC Studio "
                          f"(it reads version {FORMAT_VERSION}); use a matching app or re-export the package")
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
        if p.is_absolute() or ".." in p.parts:
            raise _fail(path, f"{MANIFEST}: file name '{name}' leaves the package folder")
    {"text-lm": _check_text_lm, "image-gan": _check_image_gan,
     "image-features": _check_image_features}[manifest["kind"]](path, manifest)
    return manifest


def _check_text_lm(path: Path, m: Mapping[str, Any]) -> None:
    need = {"config": ("n_layer", "n_head", "kv_heads", "head_dim", "context_length", "vocab_size"),
            "tokens": ("eos",), "tokenizer": ("type", "file"), "graphs": ("variants", "inputs", "outputs")}
    for section, keys in need.items():
        if not isinstance(m.get(section), dict):
            raise _fail(path, f"{MANIFEST}: section '{section}' is missing")
        for key in keys:
            if key not in m[section]:
                raise _fail(path, f"{MANIFEST}: '{section}.{key}' is missing")
    listed = set(m["files"])
    for f in [m["tokenizer"]["file"], *m["graphs"]["variants"].values()]:
        if f not in listed:
            raise _fail(path, f"{MANIFEST}: '{f}' is used but not listed under 'files'")


def _check_graphs(path: Path, m: Mapping[str, Any], graphs: tuple[str, ...]) -> None:
    if not isinstance(m.get("graphs"), dict) or not isinstance(m["graphs"].get("variants"), dict):
        raise _fail(path, f"{MANIFEST}: section 'graphs' is missing")
    for g in graphs:
        if g not in m["graphs"]["variants"] or not isinstance(m.get(g), dict):
            raise _fail(path, f"{MANIFEST}: graph '{g}' is not declared")
        for key in ("inputs", "outputs"):
            if key not in m[g]:
                raise _fail(path, f"{MANIFEST}: '{g}.{key}' is missing")
    listed = set(m["files"])
    for f in [*m["graphs"]["variants"].values(), *(m[k] for k in ("latents", "reference") if k in m)]:
        if f not in listed:
            raise _fail(path, f"{MANIFEST}: '{f}' is used but not listed under 'files'")


def _check_image_gan(path: Path, m: Mapping[str, Any]) -> None:
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
    _check_graphs(path, m, graphs)


def _check_image_features(path: Path, m: Mapping[str, Any]) -> None:
    cfg = m.get("config")
    missing = [k for k in ("img_size", "feature_dim") if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise _fail(path, f"{MANIFEST}: 'config' lacks {', '.join(missing)}")
    if "reference" not in m:
        raise _fail(path, f"{MANIFEST}: required field 'reference' is missing")
    _check_graphs(path, m, ("features",))


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

"""A package's manifest as typed, frozen dataclasses, parsed once when the package is read.

`read_manifest` checks every field's type and range (runtime/manifest_schema.py) and `parse_manifest`
turns the JSON into a `Manifest`; the generators read its fields, never the JSON. Format versions: 1 is
the first; 2 states the text graphs' cache layout and element type for every variant
(`graphs.kv_cache`, `graphs.kv_dtype`), which version 1 packages leave out ("concat", float32).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FORMAT_VERSION = 2
"""The version `write_package` writes."""
READABLE_VERSIONS = (1, 2)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class FileEntry:
    """A listed file: its sha256 and size in bytes (None when a version 1 manifest leaves it out)."""

    sha256: str
    size: int | None


@dataclass(frozen=True)
class Source:
    """Where the package's data or weights came from: a registry package and its version."""

    package: str
    version: str

    def __str__(self) -> str:
        return f"{self.package} {self.version}".strip()


@dataclass(frozen=True)
class GraphSet:
    """The graphs of one role (`graphs`, `mapping`, `synthesis`...): variant -> file, the default
    variant, and the graph's input and output names (empty where a role declares none)."""

    variants: Mapping[str, str]
    default: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def choose(self, variant: str | None) -> str:
        """`variant`, or the default, or the first variant."""
        return variant or self.default or next(iter(self.variants))


@dataclass(frozen=True)
class TextSpec:
    """A text-lm package: the model's shape, special tokens, tokenizer and graph."""

    n_layer: int
    n_head: int
    kv_heads: int
    head_dim: int
    context_length: int
    vocab_size: int
    eos_id: int | None
    tokenizer_type: str
    tokenizer_file: str
    kv_cache: str                   # "concat", "buffer" or "shared"
    kv_dtype: Mapping[str, str]     # variant -> "float32" | "int8"
    sampling: Mapping[str, Any]     # default sampling settings, read by SamplingConfig


@dataclass(frozen=True)
class GanSpec:
    """An image-gan package: architecture and shapes; graphs in `Manifest.graphs` by role."""

    architecture: str               # "stylegan" | "dcgan"
    z_dim: int
    img_size: int
    channels: int
    w_dim: int = 0
    num_ws: int = 0
    cond_features: int = 0
    layer_resolutions: tuple[int, ...] = ()
    latents: str = "latents.npz"


@dataclass(frozen=True)
class FeatureSpec:
    """An image-features package: input size, feature size, classes, held-out labels and floor scores."""

    img_size: int
    feature_dim: int
    classes: tuple[str, ...]
    labels: str | None
    floor: Mapping[str, float]


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.json. `text`, `gan` or `features` is set according to `kind`; `details` keeps
    the free-form sections a person reads (training, validation) for display only."""

    format_version: int
    name: str
    kind: str
    files: Mapping[str, FileEntry]
    graphs: Mapping[str, GraphSet]  # role -> graphs ("graphs" always)
    description: str = ""
    licence: str = "unknown"
    sources: tuple[Source, ...] = ()
    reference: str | None = None
    text: TextSpec | None = None
    gan: GanSpec | None = None
    features: FeatureSpec | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def size_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files.values())


def _graph_set(section: Mapping[str, Any]) -> GraphSet:
    return GraphSet(variants=_frozen(section["variants"]), default=section.get("default"),
                    inputs=tuple(section.get("inputs", ())), outputs=tuple(section.get("outputs", ())))


def _text_spec(m: Mapping[str, Any]) -> TextSpec:
    cfg, graphs = m["config"], m["graphs"]
    kv_cache = graphs.get("kv_cache", "concat")
    kv_dtype = {variant: graphs.get("kv_dtype", {}).get(variant, "float32") for variant in graphs["variants"]}
    return TextSpec(
        n_layer=cfg["n_layer"], n_head=cfg["n_head"], kv_heads=cfg["kv_heads"], head_dim=cfg["head_dim"],
        context_length=cfg["context_length"], vocab_size=cfg["vocab_size"], eos_id=m["tokens"].get("eos"),
        tokenizer_type=m["tokenizer"]["type"], tokenizer_file=m["tokenizer"]["file"], kv_cache=kv_cache,
        kv_dtype=_frozen(kv_dtype), sampling=_frozen(m.get("sampling")))


def _gan_spec(m: Mapping[str, Any]) -> GanSpec:
    cfg = m["config"]
    return GanSpec(architecture=str(m["architecture"]), z_dim=cfg["z_dim"], img_size=cfg["img_size"],
                   channels=cfg["channels"], w_dim=cfg.get("w_dim", 0), num_ws=cfg.get("num_ws", 0),
                   cond_features=cfg.get("cond_features", 0),
                   layer_resolutions=tuple(cfg.get("layer_resolutions", ())),
                   latents=m.get("latents", "latents.npz"))


def _feature_spec(m: Mapping[str, Any]) -> FeatureSpec:
    cfg = m["config"]
    floor = {k: v for k, v in (m.get("floor") or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}  # counts stay whole numbers
    return FeatureSpec(img_size=cfg["img_size"], feature_dim=cfg["feature_dim"],
                       classes=tuple(cfg.get("classes", ())), labels=m.get("labels"), floor=_frozen(floor))


def parse_manifest(m: Mapping[str, Any]) -> Manifest:
    """The typed form of a manifest that `read_manifest` has checked."""
    roles = ["graphs", *(r for r in ("mapping", "synthesis", "generator", "features") if isinstance(m.get(r), dict))]
    kind = m["kind"]
    return Manifest(
        format_version=m["format_version"], name=m["name"], kind=kind,
        files=_frozen({name: FileEntry(meta["sha256"], meta.get("size")) for name, meta in m["files"].items()}),
        graphs=_frozen({role: _graph_set(m[role]) for role in roles}),
        description=m.get("description", ""), licence=m.get("licence", "unknown"),
        sources=tuple(Source(str(s.get("package", "?")), str(s.get("version", ""))) for s in m.get("sources", [])),
        reference=m.get("reference"),
        text=_text_spec(m) if kind == "text-lm" else None,
        gan=_gan_spec(m) if kind == "image-gan" else None,
        features=_feature_spec(m) if kind == "image-features" else None,
        details=_frozen({k: m[k] for k in ("training", "validation") if k in m}))

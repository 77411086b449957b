"""The types and ranges of a manifest's fields, checked when it is read.

A manifest is untrusted input: a package copied from elsewhere may hold a field of the wrong type
(`files` entries that are strings, `"size": "big"`, `"size": 1e400`), a value that would make the runtime
allocate without limit (`n_layer: 1000000000`), or JSON nested thousands of levels deep. Every field the
runtime reads is checked here, so that a broken package is refused with a message that names the field,
and the code that uses a manifest can trust the types it reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_MANIFEST_BYTES = 4 << 20
"""A manifest is a few kilobytes; a larger file is refused before it is parsed."""
MAX_FILE_BYTES = 1 << 40
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")

TEXT_LIMITS = {  # config field -> (least, most): far beyond any model this app runs, far below a DoS
    "n_layer": (1, 512), "n_head": (1, 1024), "kv_heads": (1, 1024), "head_dim": (1, 4096),
    "context_length": (1, 1 << 20), "vocab_size": (2, 1 << 22),
}
GAN_LIMITS = {
    "z_dim": (1, 8192), "img_size": (4, 4096), "channels": (1, 4), "w_dim": (1, 8192), "num_ws": (1, 128),
    "cond_features": (0, 1 << 16),
}
FEATURE_LIMITS = {"img_size": (4, 4096), "feature_dim": (1, 1 << 16)}


class ManifestFieldError(ValueError):
    """A field of the wrong type or out of range; the message names the field."""


def _where(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isidentifier():
            out += f"[{json.dumps(part, ensure_ascii=False)}]"  # files["model.onnx"]
        else:
            out += f".{part}" if out else part
    return out or "the manifest"


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a whole number", float: "a number"}.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], path: Sequence[str | int], what: str) -> None:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        ok = False
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ManifestFieldError(f"'{_where(path)}' must be {what}, not {_type_name(value)} "
                                 f"({str(value)[:40]!r})")


def _int(value: Any, path: Sequence[str | int], low: int, high: int) -> int:
    _expect(value, int, path, f"a whole number from {low:,} to {high:,}")
    if not low <= value <= high:
        raise ManifestFieldError(f"'{_where(path)}' is {value:,}; it must be from {low:,} to {high:,}")
    return value


def _str(value: Any, path: Sequence[str | int]) -> str:
    _expect(value, str, path, "a string")
    return value


def _str_list(value: Any, path: Sequence[str | int]) -> list[str]:
    _expect(value, list, path, "a list of strings")
    for i, item in enumerate(value):
        _str(item, [*path, i])
    return value


def _section(m: Mapping[str, Any], key: str, path: Sequence[str | int] = ()) -> Mapping[str, Any]:
    value = m.get(key)
    if value is None:
        raise ManifestFieldError(f"section '{_where([*path, key])}' is missing")
    _expect(value, dict, [*path, key], "an object")
    return value


def _optional(m: Mapping[str, Any], key: str, kind: type, what: str) -> None:
    if key in m and m[key] is not None:
        _expect(m[key], kind, [key], what)


def check_common(m: Mapping[str, Any]) -> None:
    """The fields every package has: name, kind, files (sha256 and size of each), and the free text
    the model list shows."""
    name = _str(m.get("name"), ["name"])
    if not _NAME.fullmatch(name):
        raise ManifestFieldError(f"'name' {name[:40]!r} must be 1-100 letters, digits, '.', '_', '+' or '-'")
    _str(m.get("kind"), ["kind"])
    files = _section(m, "files")
    if not files:
        raise ManifestFieldError("'files' must list the package's files with their sha256 and size")
    for fname, meta in files.items():
        _expect(meta, dict, ["files", fname], "an object with the file's sha256 and size")
        sha = _str(meta.get("sha256"), ["files", fname, "sha256"])
        if not _SHA256.fullmatch(sha):
            raise ManifestFieldError(f"'{_where(['files', fname, 'sha256'])}' must be 64 lower-case hex digits")
        if "size" in meta:
            _int(meta["size"], ["files", fname, "size"], 0, MAX_FILE_BYTES)
    for key in ("description", "licence", "reference", "latents", "labels"):
        _optional(m, key, str, "a string")
    for key in ("reference", "latents", "labels"):
        if key in m and m[key] not in files:
            raise ManifestFieldError(f"'{key}' names {m[key]!r}, which is not listed under 'files'")
    if "sources" in m:
        _expect(m["sources"], list, ["sources"], "a list of objects")
        for i, source in enumerate(m["sources"]):
            _expect(source, dict, ["sources", i], "an object")
    for key in ("training", "validation", "floor", "sampling"):
        _optional(m, key, dict, "an object")


def check_graph_section(m: Mapping[str, Any], key: str, *, io: bool) -> None:
    """A graph section: `variants` (name -> listed file), an optional `default` among them, and, with
    `io`, the `inputs` and `outputs` lists of names."""
    section = _section(m, key)
    variants = _section(section, "variants", [key])
    if not variants:
        raise ManifestFieldError(f"'{key}.variants' names no graph")
    for variant, fname in variants.items():
        _str(fname, [key, "variants", variant])
        if fname not in m["files"]:
            raise ManifestFieldError(f"'{key}.variants.{variant}' is {fname!r}, which is not listed under 'files'")
    if "default" in section:
        default = _str(section["default"], [key, "default"])
        if default not in variants:
            raise ManifestFieldError(f"'{key}.default' is {default!r}, not one of {', '.join(variants)}")
    if io:
        for part in ("inputs", "outputs"):
            if part not in section:
                raise ManifestFieldError(f"'{key}.{part}' is missing")
            _str_list(section[part], [key, part])


def check_text_lm(m: Mapping[str, Any]) -> None:
    config = _section(m, "config")
    for key, (low, high) in TEXT_LIMITS.items():
        if key not in config:
            raise ManifestFieldError(f"'config.{key}' is missing")
        _int(config[key], ["config", key], low, high)
    tokens = _section(m, "tokens")
    if "eos" not in tokens:
        raise ManifestFieldError("'tokens.eos' is missing")
    for key, value in tokens.items():
        if value is not None:
            _int(value, ["tokens", key], 0, config["vocab_size"] - 1)
    tokenizer = _section(m, "tokenizer")
    for key in ("type", "file"):
        _str(tokenizer.get(key), ["tokenizer", key])
    if tokenizer["file"] not in m["files"]:
        raise ManifestFieldError(f"'tokenizer.file' is {tokenizer['file']!r}, which is not listed under 'files'")
    check_graph_section(m, "graphs", io=True)
    graphs = m["graphs"]
    if m.get("format_version", 1) >= 2:  # version 2 states the cache of every variant
        for key in ("kv_cache", "kv_dtype"):
            if key not in graphs:
                raise ManifestFieldError(f"'graphs.{key}' is missing (required since format version 2)")
        missing = [v for v in graphs["variants"] if v not in graphs["kv_dtype"]]
        if missing:
            raise ManifestFieldError(f"'graphs.kv_dtype' does not name the variants {', '.join(missing)}")
    if "kv_cache" in graphs:
        _str(graphs["kv_cache"], ["graphs", "kv_cache"])
    if "kv_dtype" in graphs:
        _expect(graphs["kv_dtype"], dict, ["graphs", "kv_dtype"], "an object (variant -> dtype)")
        for variant, dtype in graphs["kv_dtype"].items():
            _str(dtype, ["graphs", "kv_dtype", variant])


def check_image_gan(m: Mapping[str, Any], graphs: Sequence[str]) -> None:
    config = _section(m, "config")
    for key, (low, high) in GAN_LIMITS.items():
        if key in config:
            _int(config[key], ["config", key], low, high)
    if "layer_resolutions" in config:
        _expect(config["layer_resolutions"], list, ["config", "layer_resolutions"], "a list of whole numbers")
        for i, r in enumerate(config["layer_resolutions"]):
            _int(r, ["config", "layer_resolutions", i], 1, 4096)
    _check_graphs(m, graphs)


def _check_graphs(m: Mapping[str, Any], graphs: Sequence[str]) -> None:
    """The `graphs` section and the section of each graph a kind needs, declared in `graphs.variants`."""
    check_graph_section(m, "graphs", io=False)
    for g in graphs:
        if g not in m["graphs"]["variants"] or not isinstance(m.get(g), dict):
            raise ManifestFieldError(f"graph '{g}' is not declared")
        check_graph_section(m, g, io=True)


def check_image_features(m: Mapping[str, Any]) -> None:
    config = _section(m, "config")
    if "reference" not in m:
        raise ManifestFieldError("required field 'reference' is missing")
    missing = [k for k in FEATURE_LIMITS if k not in config]
    if missing:
        raise ManifestFieldError(f"'config' lacks {', '.join(missing)}")
    for key, (low, high) in FEATURE_LIMITS.items():
        _int(config[key], ["config", key], low, high)
    if "classes" in config:
        _str_list(config["classes"], ["config", "classes"])
    _check_graphs(m, ("features",))

"""Model packages: a valid one loads; every kind of broken one is refused with a message that names
the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_studio.runtime.package import FORMAT_VERSION, PackageError, load_package, sha256_file
from aigc_studio.runtime.text_generator import TextGenerator


def _edit_manifest(pkg: Path, change) -> None:
    path = pkg / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def test_valid_package_loads_with_its_manifest(tiny_text_package: Path) -> None:
    pkg = load_package(tiny_text_package)
    assert pkg.name == "tiny-writer" and pkg.kind == "text-lm"
    m = pkg.manifest
    assert m["format_version"] == FORMAT_VERSION
    assert set(m["files"]) == {"manifest.json"} ^ {p.name for p in tiny_text_package.iterdir()}
    for name, meta in m["files"].items():
        assert meta["sha256"] == sha256_file(tiny_text_package / name)
    cfg = m["config"]
    assert cfg["kv_heads"] * cfg["head_dim"] <= cfg["n_embd"]
    assert m["graphs"]["inputs"][:2] == ["input_ids", "position_ids"]
    assert m["graphs"]["outputs"][0] == "logits"
    assert "validation" in m and m["validation"]["fp32"]["greedy_all_equal"] is True


def test_missing_manifest(package_copy: Path) -> None:
    (package_copy / "manifest.json").unlink()
    with pytest.raises(PackageError, match="manifest.json is missing"):
        load_package(package_copy)


def test_manifest_not_json(package_copy: Path) -> None:
    (package_copy / "manifest.json").write_text("{not json")
    with pytest.raises(PackageError, match="manifest.json is not valid JSON"):
        load_package(package_copy)


def test_unknown_format_version(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m.update(format_version=99))
    with pytest.raises(PackageError, match="format version 99 is not supported"):
        load_package(package_copy)


def test_missing_file(package_copy: Path) -> None:
    (package_copy / "tokenizer.model").unlink()
    with pytest.raises(PackageError, match="tokenizer.model is missing"):
        load_package(package_copy)


def test_checksum_mismatch(package_copy: Path) -> None:
    path = package_copy / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="model.onnx: sha256 mismatch"):
        load_package(package_copy)


def test_truncated_onnx_by_size(package_copy: Path) -> None:
    path = package_copy / "model.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PackageError, match="model.onnx has 1000 bytes.*truncated"):
        load_package(package_copy)


def test_truncated_onnx_with_matching_manifest_fails_at_load(package_copy: Path) -> None:
    # A package written around a truncated graph passes the checksums but not onnxruntime.
    path = package_copy / "model.int8.onnx"
    path.write_bytes(path.read_bytes()[:5000])
    _edit_manifest(package_copy, lambda m: m["files"]["model.int8.onnx"].update(
        sha256=sha256_file(path), size=path.stat().st_size))
    pkg = load_package(package_copy)
    with pytest.raises(PackageError, match="model.int8.onnx could not be loaded by onnxruntime"):
        TextGenerator(pkg, device="cpu", variant="int8")


def test_graph_inputs_disagree_with_manifest(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m["graphs"]["inputs"].__setitem__(0, "tokens"))
    with pytest.raises(PackageError, match="has inputs .*input_ids.* but the manifest declares inputs .*tokens"):
        TextGenerator(load_package(package_copy), device="cpu")


def test_unknown_kind_and_missing_section(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m.update(kind="music"))
    with pytest.raises(PackageError, match="unknown kind 'music'"):
        load_package(package_copy)


def test_missing_config_field(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m["config"].pop("kv_heads"))
    with pytest.raises(PackageError, match="'config.kv_heads' is missing"):
        load_package(package_copy)


def test_file_names_cannot_leave_the_package(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m["files"].update({"../evil": {"sha256": "0", "size": 0}}))
    with pytest.raises(PackageError, match="leaves the package folder"):
        load_package(package_copy)


def test_tokenizer_vocab_must_match(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m["config"].update(vocab_size=m["config"]["vocab_size"] + 1))
    with pytest.raises(PackageError, match="tokenizer has .* tokens, the manifest says"):
        TextGenerator(load_package(package_copy), device="cpu")


def test_unknown_variant(tiny_text_package: Path) -> None:
    with pytest.raises(PackageError, match="no graph variant 'fp16'"):
        TextGenerator(load_package(tiny_text_package), device="cpu", variant="fp16")


def test_manifest_is_parsed_into_typed_fields(tiny_text_package: Path) -> None:
    spec = load_package(tiny_text_package).spec
    assert spec.format_version == 2 and spec.kind == "text-lm" and spec.text is not None
    assert spec.text.kv_cache == "shared" and set(spec.text.kv_dtype) == set(spec.graphs["graphs"].variants)
    assert spec.size_bytes == sum(f.size or 0 for f in spec.files.values()) > 0
    with pytest.raises(TypeError):
        spec.files["x"] = None  # type: ignore[index]  # frozen: nothing downstream can change it


def test_version_1_manifests_read_with_their_defaults(package_copy: Path) -> None:
    """Version 1 left out the cache layout and element type: "concat" and float32."""
    def to_v1(m: dict) -> None:
        m["format_version"] = 1
        del m["graphs"]["kv_cache"], m["graphs"]["kv_dtype"]
    _edit_manifest(package_copy, to_v1)
    spec = load_package(package_copy, verify=False).spec
    assert spec.text is not None and spec.text.kv_cache == "concat"
    assert set(spec.text.kv_dtype.values()) == {"float32"}


def test_version_2_must_state_every_variants_cache(package_copy: Path) -> None:
    _edit_manifest(package_copy, lambda m: m["graphs"]["kv_dtype"].popitem())
    with pytest.raises(PackageError, match="'graphs.kv_dtype' does not name the variants"):
        load_package(package_copy, verify=False)
    _edit_manifest(package_copy, lambda m: m.update(format_version=3))
    with pytest.raises(PackageError, match="format version 3 is not supported .* reads versions 1, 2"):
        load_package(package_copy, verify=False)

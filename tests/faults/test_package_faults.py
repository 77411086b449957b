"""Fault tests of model packages (issue #16, findings 3, 4 and 10): a broken manifest anywhere on the
search path is refused with a message naming its file, and every other package stays usable; config
values are checked against the graph; threads are bounded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import PackageError, load_package, read_manifest
from aigc_studio.runtime.registry import ModelRegistry
from aigc_studio.runtime.text_generator import TextGenerator

Edit = Callable[[dict[str, Any]], None]


def _set(path: tuple[str, ...], value: Any) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _files_as_strings(m: dict[str, Any]) -> None:
    m["files"] = {name: meta["sha256"] for name, meta in m["files"].items()}


def _first_size(value: Any) -> Edit:
    def edit(m: dict[str, Any]) -> None:
        next(iter(m["files"].values()))["size"] = value
    return edit


CORRUPTIONS: dict[str, tuple[Edit | str, str]] = {
    # name: (manifest edit, or the manifest's raw text; what the message must say)
    "files entries are strings": (_files_as_strings, r"files\[\".*\"\]' must be an object"),
    "size is a word": (_first_size("big"), r"size' must be a whole number"),
    "size is 1e400": ('{"format_version": 1, "name": "x", "kind": "text-lm", "files": '
                      '{"a": {"sha256": "' + "0" * 64 + '", "size": 1e400}}}', r"size' must be a whole number"),
    "size is negative": (_first_size(-1), r"size' is -1"),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply|must hold a JSON object"),
    "n_layer 1e9": (_set(("config", "n_layer"), 1_000_000_000), r"'config.n_layer' is 1,000,000,000"),
    "n_layer a string": (_set(("config", "n_layer"), "6"), r"'config.n_layer' must be a whole number"),
    "vocab_size true": (_set(("config", "vocab_size"), True), r"'config.vocab_size' must be a whole number"),
    "eos out of range": (_set(("tokens", "eos"), 10 ** 9), r"'tokens.eos' is 1,000,000,000"),
    "tokenizer a list": (_set(("tokenizer",), ["x"]), r"'tokenizer' must be an object"),
    "variants a list": (_set(("graphs", "variants"), ["model.onnx"]), r"'graphs.variants' must be an object"),
    "inputs a string": (_set(("graphs", "inputs"), "input_ids"), r"'graphs.inputs' must be a list"),
    "sources strings": (_set(("sources",), ["pypi"]), r"'sources\[0\]' must be an object"),
    "name a number": (_set(("name",), 7), r"'name' must be a string"),
    "name a path": (_set(("name",), "../x"), r"'name' '../x' must be"),
    "sha256 short": (lambda m: next(iter(m["files"].values())).update(sha256="abc"), "64 lower-case hex"),
    "default unknown": (_set(("graphs", "default"), "fp64"), r"'graphs.default' is 'fp64'"),
    "not an object": ("[]", "must hold a JSON object"),
    "not UTF-8": ("\udcff", "not valid JSON"),
}


def _corrupt(src: Path, dst: Path, edit: Edit | str) -> Path:
    shutil.copytree(src, dst)
    path = dst / "manifest.json"
    if isinstance(edit, str):
        path.write_bytes(edit.encode("utf-8", errors="surrogateescape"))
    else:
        m = json.loads(path.read_text())
        edit(m)
        path.write_text(json.dumps(m))
    return dst


@pytest.mark.parametrize("case", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_broken_manifest_is_refused_by_name(tiny_text_package: Path, tmp_path: Path, case: str) -> None:
    """Finding 3: a field of the wrong type or out of range gives a PackageError naming the file and
    the field (before: AttributeError, TypeError, OverflowError, RecursionError or memory growth)."""
    edit, message = CORRUPTIONS[case]
    broken = _corrupt(tiny_text_package, tmp_path / "broken", edit)
    with pytest.raises(PackageError, match=message) as info:
        read_manifest(broken)
    assert str(broken / "manifest.json") in str(info.value) or str(broken) in str(info.value)


def test_one_broken_package_leaves_the_others_usable(tiny_text_package: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 3: one broken manifest on the search path made `models`, `complete` and the GUI's model
    list fail for every model ("'str' object has no attribute 'get'")."""
    from aigc_studio.cli import main
    from aigc_studio.services.models import RuntimeBackend

    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny_text_package, models / tiny_text_package.name)
    for i, case in enumerate(("files entries are strings", "size is a word", "size is 1e400")):
        _corrupt(tiny_text_package, models / f"broken-{i}", CORRUPTIONS[case][0])
    registry = ModelRegistry([models])
    assert registry.names() == [tiny_text_package.name]
    assert sorted(i.path.name for i in registry.list() if i.error) == ["broken-0", "broken-1", "broken-2"]
    listed = RuntimeBackend([models]).list_models()
    assert [m.name for m in listed if not m.error] == [tiny_text_package.name]
    assert all("manifest.json" in m.error for m in listed if m.error)

    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(models))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "broken-0" in out and "broken" in out and tiny_text_package.name in out
    assert main(["complete", "--model", tiny_text_package.name, "--max-tokens", "3", "The cat"]) == 0
    assert capsys.readouterr().out.startswith("The cat")


def test_config_disagreeing_with_the_graph_is_refused(tiny_text_package: Path, tmp_path: Path) -> None:
    """Findings 4 and 10: a manifest whose n_layer (or cache shape) disagrees with the graph loaded and
    then failed with a traceback (or, with n_layer 10^9, grew without limit)."""
    m = json.loads((tiny_text_package / "manifest.json").read_text())
    for i, (key, value) in enumerate([("n_layer", m["config"]["n_layer"] + 1),
                                      ("n_layer", m["config"]["n_layer"] - 1),
                                      ("kv_heads", m["config"]["kv_heads"] + 1),
                                      ("head_dim", m["config"]["head_dim"] * 2)]):
        broken = _corrupt(tiny_text_package, tmp_path / f"p{i}", _set(("config", key), value))
        with pytest.raises(PackageError, match=f"config.{key} is {value}.*the graph"):
            TextGenerator(load_package(broken, verify=False), device="cpu")


def test_threads_are_bounded(tiny_text_package: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 4: `--threads 100000` started 100,000 threads; now a clear message with the range."""
    from aigc_studio.cli import main
    from aigc_studio.runtime.session import max_threads

    with pytest.raises(ValueError, match=f"threads must be from 0 .* to {max_threads()}"):
        TextGenerator(load_package(tiny_text_package), device="cpu", threads=100_000)
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tiny_text_package.parent))
    assert main(["complete", "--model", tiny_text_package.name, "--threads", "100000", "x"]) == 2
    assert f"to {max_threads()}" in capsys.readouterr().err
    gen = TextGenerator(load_package(tiny_text_package), device="cpu", threads=max_threads())
    assert gen.complete("The", SamplingConfig(max_new_tokens=2))

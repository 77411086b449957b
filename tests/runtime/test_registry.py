"""The registry finds packages by name across its folders; an unknown name lists the known ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aigc_studio.runtime.package import PackageError
from aigc_studio.runtime.registry import ModelRegistry, default_search_paths


def test_find_and_load_by_name(tiny_text_package: Path) -> None:
    reg = ModelRegistry([tiny_text_package.parent])
    assert reg.names() == ["tiny-writer"]
    assert reg.find("tiny-writer") == tiny_text_package
    assert reg.load("tiny-writer").kind == "text-lm"
    info = reg.list()[0]
    assert info.size_bytes > 0 and info.licence == "test" and "tests" in info.source


def test_unknown_name_lists_the_known_ones(tiny_text_package: Path) -> None:
    reg = ModelRegistry([tiny_text_package.parent])
    with pytest.raises(PackageError, match=r"no model package named 'nope' \(installed: tiny-writer"):
        reg.find("nope")


def test_first_folder_wins_and_broken_packages_are_listed(tiny_text_package: Path, tmp_path: Path) -> None:
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    shutil.copytree(tiny_text_package, user / "mine")
    shutil.copytree(tiny_text_package, shipped / "tiny-writer")
    (shipped / "broken").mkdir()
    (shipped / "broken" / "manifest.json").write_text(json.dumps({"format_version": 1}))
    reg = ModelRegistry([user, shipped])
    assert reg.find("tiny-writer") == user / "mine"
    broken = [i for i in reg.list() if i.error]
    assert len(broken) == 1 and "required field 'name' is missing" in broken[0].error
    assert reg.names() == ["tiny-writer"]


def test_environment_folders_come_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tmp_path))
    paths = default_search_paths()
    assert paths[0] == tmp_path
    assert paths[-1].parts[-2:] == ("resources", "models")


def test_default_name_prefers_the_writers(tiny_text_package: Path, tmp_path: Path) -> None:
    for name in ("aaa", "writer-tiny"):
        dst = tmp_path / name
        shutil.copytree(tiny_text_package, dst)
        m = json.loads((dst / "manifest.json").read_text())
        m["name"] = name
        (dst / "manifest.json").write_text(json.dumps(m))
    reg = ModelRegistry([tmp_path])
    assert reg.default_name() == "writer-tiny"
    assert ModelRegistry([tiny_text_package.parent]).default_name() == "tiny-writer"
    assert ModelRegistry([tmp_path / "empty"]).default_name() is None

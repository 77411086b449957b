"""The workshop's library builder, from tiny fake npm tarballs in the cache (no network)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from aigc_studio.runtime.library import AssetLibrary
from export.data import library as builder
from export.data.archives import UnsafeArchiveError, unpack_npm
from export.data.images import EMOJIBASE_NPM, FLUENT_NPM, TABLER_NPM

pytest.importorskip("PIL")  # export.data.images' imports

LINE = ('<svg\n  xmlns="http://www.w3.org/2000/svg"\n  width="24"\n  height="24"\n  viewBox="0 0 24 24"\n'
        '  fill="none"\n  stroke="currentColor"\n  stroke-width="2"\n  stroke-linecap="round"\n'
        '  stroke-linejoin="round"\n>\n  <path d="{}" />\n</svg>\n')
FILLED = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="currentColor"><path d="M1 1"/></svg>'


def _tgz(path: Path, files: dict[str, bytes | str], hostile: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for info in hostile or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


def _tgz_name(spec: tuple[str, str]) -> str:
    name, version = spec
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def fake_packages(cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    icons = {
        "heart": {"name": "heart", "category": "Shapes", "tags": ["love"], "styles": {"outline": {}, "filled": {}}},
        "home": {"name": "home", "category": "Buildings", "tags": ["house"], "styles": {"outline": {}}},
        "brand-github": {"name": "brand-github", "category": "Brand", "tags": ["git"], "styles": {"outline": {}}},
    }
    _tgz(cache / _tgz_name(TABLER_NPM), {
        "package/package.json": json.dumps({"name": "@tabler/icons", "version": "3.52.0", "license": "MIT"}),
        "package/LICENSE": "MIT License\n\nCopyright (c) Tabler\n",
        "package/icons.json": json.dumps(icons),
        "package/icons/outline/heart.svg": LINE.format("M1 1l2 2"),
        "package/icons/outline/home.svg": LINE.format("M5 12l7-7"),
        "package/icons/outline/brand-github.svg": LINE.format("M0 0"),
        "package/icons/filled/heart.svg": FILLED,
        "package/docs/react.mdx": "not wanted",
    })
    fluent = {"prefix": "fluent-emoji-flat", "width": 32, "height": 32, "icons": {
        "red-heart": {"body": '<path fill="#f8312f" d="M6 6z"/>'},
        "pizza": {"body": '<path fill="#ffb02e" d="M1 1z"/>'},
        "skier-dark": {"body": '<path d="M0 0z"/>', "hidden": True},
    }}
    _tgz(cache / _tgz_name(FLUENT_NPM), {
        "package/package.json": json.dumps({"name": "@iconify-json/fluent-emoji-flat", "version": "1.2.6",
                                            "license": "MIT"}),
        "package/icons.json": json.dumps(fluent),
        "package/info.json": json.dumps({"name": "Fluent Emoji Flat",
                                         "author": {"name": "Microsoft Corporation", "url": "https://x"},
                                         "license": {"title": "MIT", "spdx": "MIT", "url": "https://y"}}),
        "package/metadata.json": json.dumps({"categories": {"Smileys & Emotion": ["red-heart"],
                                                            "Food & Drink": ["pizza"]}}),
    })
    emojibase = [{"label": "red heart", "hexcode": "2764", "emoji": "❤️", "tags": ["love"], "group": 0,
                  "subgroup": 0},
                 {"label": "pizza", "hexcode": "1F355", "emoji": "🍕", "tags": ["cheese", "slice"], "group": 1,
                  "subgroup": 1}]
    messages = {"groups": [{"order": 0, "key": "smileys-emotion"}, {"order": 1, "key": "food-drink"}],
                "subgroups": [{"order": 0, "key": "heart"}, {"order": 1, "key": "food-prepared"}]}
    _tgz(cache / _tgz_name(EMOJIBASE_NPM), {
        "package/package.json": json.dumps({"name": "emojibase-data", "version": "17.0.0", "license": "MIT"}),
        "package/LICENSE": "MIT License\n\nCopyright (c) Miles Johnson\n",
        "package/en/data.json": json.dumps(emojibase),
        "package/en/messages.json": json.dumps(messages),
    })


def test_build_writes_a_verified_library_without_brand_icons(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "resources" / "library"
    fake_packages(cache)
    lib = builder.build(out, cache)

    assert lib.path == out and AssetLibrary.load(out).assets == lib.assets
    tabler, fluent = lib.sets
    assert sorted(a.name for a in lib.assets if a.set == "tabler") == ["heart", "home"]  # Brand dropped
    assert tabler.count == 2 and tabler.recolourable and "Brand" in tabler.notes
    heart = lib.get("tabler", "heart")
    assert 'stroke="currentColor"' in heart.svg and "\n" not in heart.svg  # the outline, compacted
    assert heart.tags == ("love",) and heart.group == "Shapes"
    assert sorted(a.name for a in lib.assets if a.set == "fluent-emoji") == ["pizza", "red-heart"]  # no hidden
    pizza = lib.get("fluent-emoji", "pizza")
    assert pizza.group == "Food & Drink" and set(pizza.tags) == {"cheese", "slice", "🍕"}
    assert pizza.svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"')
    assert not fluent.recolourable

    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["kind"] == "asset-library" and m["format_version"] == 1
    sources = {r["package"]: r for s in m["sets"] for r in s["sources"]}
    assert {p: (r["version"], r["licence"]) for p, r in sources.items()} == {
        "@tabler/icons": ("3.52.0", "MIT"), "@iconify-json/fluent-emoji-flat": ("1.2.6", "MIT"),
        "emojibase-data": ("17.0.0", "MIT")}
    assert (out / sources["@tabler/icons"]["licence_file"]).read_text().startswith("MIT License")
    fluent_licence = (out / sources["@iconify-json/fluent-emoji-flat"]["licence_file"]).read_text()
    assert "Microsoft Corporation" in fluent_licence and "Permission is hereby granted" in fluent_licence
    assert not any(p.name.endswith(".partial") for p in cache.iterdir())
    assert not (cache / "tabler-icons-3.52.0" / "package" / "docs").exists()  # only what is needed


def test_build_replaces_an_old_library_and_reuses_the_cache(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "library"
    fake_packages(cache)
    out.mkdir()
    (out / "stale.json.gz").write_bytes(b"old")
    first = builder.build(out, cache)
    assert not (out / "stale.json.gz").exists()
    again = builder.build(out, cache)
    assert again.files == first.files


def test_build_refuses_an_archive_that_climbs_out(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    evil = tarfile.TarInfo("package/../../escaped.txt")
    evil.size = 1
    tgz = _tgz(cache / _tgz_name(TABLER_NPM), {"package/package.json": "{}"}, hostile=[evil])
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        unpack_npm(tgz, cache, lambda m: True)
    with pytest.raises(UnsafeArchiveError):
        builder.build(tmp_path / "library", cache)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "library").exists()


def test_links_in_an_archive_are_never_created(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    link = tarfile.TarInfo("package/icons.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tgz = _tgz(cache / "links-1.0.0.tgz", {"package/package.json": "{}"}, hostile=[link])
    root = unpack_npm(tgz, cache, lambda m: True)
    assert (root / "package.json").is_file() and not (root / "icons.json").exists()


def test_absolute_member_paths_are_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    absolute = tarfile.TarInfo("/tmp/escaped.txt")
    absolute.size = 1
    tgz = _tgz(cache / "abs-1.0.0.tgz", {"package/package.json": "{}"}, hostile=[absolute])
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        unpack_npm(tgz, cache, lambda m: True)

"""The asset library: written by the workshop's writer, verified when loaded, searched, recoloured."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from aigc_studio.core.svg import compact_svg, recolour
from aigc_studio.runtime.library import (
    FORMAT_VERSION,
    MANIFEST,
    Asset,
    AssetLibrary,
    LibraryError,
    SetSource,
    SourceRecord,
    write_library,
)
from aigc_studio.runtime.registry import LIBRARY_ENV_VAR, shipped_library_dir

LINE = ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
        'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{}</svg>')
EMOJI = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">{}</svg>'
ICONS = {  # name: (tags, group, body)
    "heart": (("love", "like"), "Shapes", '<path d="M19.5 12.5l-7.5 7.5l-7.5-7.5a5 5 0 1 1 7.5-6.5"/>'),
    "heart-broken": (("love", "sad"), "Shapes", '<path d="M12 6l-2 4l4 3l-2 4"/>'),
    "home": (("house", "dwelling"), "Buildings", '<path d="M5 12l-2 0l9-9l9 9l-2 0"/>'),
    "sun": (("light", "day"), "Weather", '<circle cx="12" cy="12" r="4"/><circle cx="12" cy="3" r="1" '
                                         'fill="currentColor"/>'),
    "arrow-left": (("back",), "Arrows", '<path d="M5 12l14 0"/>'),
}
EMOJIS = {
    "red-heart": (("love", "❤"), "Smileys & Emotion", '<path fill="#f8312f" d="M6 6c4-2 8 0 10 2z"/>'),
    "house": (("home", "building"), "Travel & Places", '<path fill="#b4acbc" d="M4 16l12-12l12 12z"/>'),
    "smiling-face": (("smile", "happy"), "Smileys & Emotion", '<circle fill="#ffb02e" cx="16" cy="16" r="14"/>'),
}
MIT = "MIT License\n\nCopyright (c) test\n"


def tiny_sets() -> list[SetSource]:
    icons = [Asset("tabler", n, t, g, compact_svg(LINE.format(b)), True) for n, (t, g, b) in ICONS.items()]
    emoji = [Asset("fluent-emoji", n, t, g, EMOJI.format(b), False) for n, (t, g, b) in EMOJIS.items()]
    return [
        SetSource("tabler", "Tabler Icons (outline)", "icons", True,
                  [(SourceRecord("@tabler/icons", "3.52.0", "MIT", "LICENSE-tabler-icons.txt"), MIT)], icons),
        SetSource("fluent-emoji", "Fluent Emoji Flat", "emoji", False,
                  [(SourceRecord("@iconify-json/fluent-emoji-flat", "1.2.6", "MIT", "LICENSE-fluent.txt"), MIT),
                   (SourceRecord("emojibase-data", "17.0.0", "MIT", "LICENSE-emojibase.txt", use="tags"), MIT)],
                  emoji),
    ]


def build_tiny_library(folder: Path) -> Path:
    """A tiny library in ``folder``, written by the workshop's writer (also used by the GUI tests)."""
    return write_library(folder, tiny_sets())


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return build_tiny_library(tmp_path / "library")


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text(encoding="utf-8"))


def _rewrite_manifest(path: Path, change) -> None:
    m = _manifest(path)
    change(m)
    (path / MANIFEST).write_text(json.dumps(m), encoding="utf-8")


def test_written_library_verifies_and_describes_its_sets(library_dir: Path) -> None:
    lib = AssetLibrary.load(library_dir)
    m = _manifest(library_dir)
    assert m["format_version"] == FORMAT_VERSION and m["kind"] == "asset-library"
    assert [s.key for s in lib.sets] == ["tabler", "fluent-emoji"]
    assert [s.count for s in lib.sets] == [len(ICONS), len(EMOJIS)]
    assert len(lib.assets) == len(ICONS) + len(EMOJIS)
    tabler, fluent = lib.sets
    assert tabler.recolourable and not fluent.recolourable
    assert tabler.sources[0].package == "@tabler/icons" and tabler.sources[0].version == "3.52.0"
    assert [r.use for r in fluent.sources] == ["svg", "tags"]
    assert lib.licence_text(tabler.sources[0]).startswith("MIT License")
    for name, entry in m["files"].items():  # every file listed, with its size and sha256
        assert (library_dir / name).stat().st_size == entry["size"] and len(entry["sha256"]) == 64
    assert set(m["files"]) == {p.name for p in library_dir.iterdir()} - {MANIFEST}
    heart = lib.get("tabler", "heart")
    assert heart.recolourable and heart.tags == ("love", "like") and heart.group == "Shapes"
    assert not lib.get("fluent-emoji", "house").recolourable


def test_writing_twice_gives_identical_files(library_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_library(tmp_path / "again")
    assert (again / "tabler.json.gz").read_bytes() == (library_dir / "tabler.json.gz").read_bytes()
    assert _manifest(again)["files"] == _manifest(library_dir)["files"]


def test_a_modified_file_is_refused(library_dir: Path) -> None:
    path = library_dir / "tabler.json.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    path.write_bytes(bytes(data))
    with pytest.raises(LibraryError, match=r"tabler.json.gz: sha256 mismatch"):
        AssetLibrary.load(library_dir)


def test_a_truncated_or_missing_file_is_refused(library_dir: Path) -> None:
    path = library_dir / "fluent-emoji.json.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(LibraryError, match="truncated or replaced"):
        AssetLibrary.load(library_dir)
    path.unlink()
    with pytest.raises(LibraryError, match="fluent-emoji.json.gz is missing"):
        AssetLibrary.load(library_dir)


def test_an_unknown_format_version_is_refused_with_a_clear_message(library_dir: Path) -> None:
    _rewrite_manifest(library_dir, lambda m: m.update(format_version=99))
    with pytest.raises(LibraryError, match=r"format version 99 is not supported .* reads asset library versions 1"):
        AssetLibrary.load(library_dir)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["sets"][0].update(count="5"), r"sets\[0\].count has the wrong type"),
    (lambda m: m["sets"][0].update(recolourable=1), r"sets\[0\].recolourable has the wrong type"),
    (lambda m: m["sets"][0].update(count=4), "holds 5 assets, the manifest says 4"),
    (lambda m: m["sets"][0].update(file="../tabler.json.gz"), "not a plain file name"),
    (lambda m: m["files"].update({"../evil": {"sha256": "0" * 64, "size": 1}}), "not a plain file name"),
    (lambda m: m["sets"][1]["sources"][0].update(licence_file="LICENSE-none.txt"), "not listed in files"),
    (lambda m: m.update(kind="text-lm"), "kind is 'text-lm'"),
    (lambda m: m.update(sets=[]), "no sets"),
    (lambda m: m["files"]["tabler.json.gz"].update(sha256="xyz"), "malformed sha256"),
])
def test_a_malformed_manifest_is_refused_naming_the_field(library_dir: Path, change, message: str) -> None:
    _rewrite_manifest(library_dir, change)
    with pytest.raises(LibraryError, match=message):
        AssetLibrary.load(library_dir)


def test_a_missing_folder_or_manifest_is_a_library_error(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="folder not found"):
        AssetLibrary.load(tmp_path / "nowhere")
    with pytest.raises(LibraryError, match="manifest.json is missing"):
        AssetLibrary.load(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(LibraryError, match="not valid JSON"):
        AssetLibrary.load(tmp_path)


def test_a_set_file_of_the_wrong_shape_is_refused(library_dir: Path) -> None:
    bad = gzip.compress(json.dumps({"set": "tabler", "assets": [{"name": "x"}]}).encode(), mtime=0)
    (library_dir / "tabler.json.gz").write_bytes(bad)
    _rewrite_manifest(library_dir, lambda m: m["files"]["tabler.json.gz"].update(size=len(bad)))
    with pytest.raises(LibraryError, match="asset 0 needs a name, an svg"):
        AssetLibrary.load(library_dir, verify=False)


def _names(assets: list[Asset]) -> list[str]:
    return [a.name for a in assets]


def test_search_ranks_exact_name_then_prefix_then_tag_then_substring(library_dir: Path) -> None:
    lib = AssetLibrary.load(library_dir)
    # exact name, then the name's prefix, then a word of a name, then a tag
    assert _names(lib.search("heart")) == ["heart", "heart-broken", "red-heart"]
    assert _names(lib.search("house")) == ["house", "home"]             # exact emoji name, then a tag
    assert _names(lib.search("love")) == ["heart", "red-heart", "heart-broken"]  # tags, shorter first
    assert _names(lib.search("weather")) == ["sun"]                     # the group
    assert _names(lib.search("eart")) == ["heart", "red-heart", "heart-broken"]  # substrings
    assert _names(lib.search("Heart Broken")) == ["heart-broken"]       # case, spaces for hyphens
    assert _names(lib.search("heart sad")) == ["heart-broken"]          # every word must match
    assert lib.search("nothing-like-this") == []
    assert _names(lib.search("❤")) == ["red-heart"]


def test_search_filters_by_set_and_limits(library_dir: Path) -> None:
    lib = AssetLibrary.load(library_dir)
    assert _names(lib.search("heart", set="fluent-emoji")) == ["red-heart"]
    assert _names(lib.search("heart", limit=1)) == ["heart"]
    everything = lib.search("", limit=None)
    assert len(everything) == len(ICONS) + len(EMOJIS)
    assert [a.set for a in everything[:len(ICONS)]] == ["tabler"] * len(ICONS)  # sets in library order
    assert _names(lib.search("", set="fluent-emoji")) == sorted(EMOJIS)


def test_recolour_sets_stroke_colour_and_width_of_line_icons() -> None:
    svg = compact_svg(LINE.format(ICONS["sun"][2]))
    out = recolour(svg, "#ff0000", 1.5)
    assert "currentColor" not in out
    assert 'stroke="#ff0000"' in out and 'fill="#ff0000"' in out   # the filled dot follows the colour
    assert out.count('stroke-width="1.5"') == 1 and 'stroke-width="2"' not in out
    assert recolour(svg, "currentColor", None) == svg
    assert 'stroke-width="3"' in recolour('<svg xmlns="http://www.w3.org/2000/svg"><path/></svg>', "red", 3)
    for bad_colour in ('red" onload="x', "#12", ""):
        with pytest.raises(ValueError, match="not a colour"):
            recolour(svg, bad_colour, 2)
    for bad_width in (0, -1, float("nan"), 1000):
        with pytest.raises(ValueError, match="stroke width"):
            recolour(svg, "#000", bad_width)


def test_assets_render_recoloured_icons_and_emoji_as_they_are(library_dir: Path) -> None:
    lib = AssetLibrary.load(library_dir)
    icon, emoji = lib.get("tabler", "heart"), lib.get("fluent-emoji", "red-heart")
    assert 'stroke="#00ff00"' in icon.rendered("#00ff00", 1.0)
    assert emoji.rendered("#00ff00", 1.0) == emoji.svg


def test_compact_svg_keeps_attribute_values() -> None:
    svg = '<svg\n  a="1  2"\n  b="x" >\n  <path d="M0 0  L1 1" />\n</svg>'
    assert compact_svg(svg) == '<svg a="1  2" b="x"><path d="M0 0  L1 1"/></svg>'


def test_the_library_folder_is_found_through_the_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(LIBRARY_ENV_VAR, raising=False)
    assert shipped_library_dir().parts[-2:] == ("resources", "library")
    monkeypatch.setenv(LIBRARY_ENV_VAR, str(tmp_path))
    assert shipped_library_dir() == tmp_path

"""Build the Design workspace's asset library from registry packages (see shared/DATA.md).

    python -m export.data.library [--out resources/library] [--cache runs/cache/packages]

Two sets, kept as SVG (vectors), with the names, tags and groups the search box reads:

* ``tabler``: Tabler Icons, npm ``@tabler/icons``, the *outline* style only, without the "Brand"
  category (trademarks). Outline only because the issue asks for line icons that the designer recolours
  by stroke colour and width: the filled style has no stroke to set, and its icons repeat outline
  names ("heart" and "heart" filled) in every search. Tags and category from the package's icons.json.
* ``fluent-emoji``: Fluent Emoji Flat, npm ``@iconify-json/fluent-emoji-flat`` (SVG bodies in
  icons.json, hidden aliases left out), groups from its metadata.json; tags and the emoji character
  from npm ``emojibase-data`` where the name matches (export.data.images' matcher), else the name's
  words. Emoji keep their colours.

The library is written with ``aigc_studio.runtime.library.write_library``, the same writer the tests
use: one gzip-compressed JSON per set (name -> svg, tags, group; compacted whitespace), the licence text
of every package, and manifest.json (format version, kind "asset-library", per set: source packages,
versions, licences, count; sha256 and size of every file). Archives are unpacked with every member path
confined to its folder (export.data.archives).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aigc_studio.core.svg import compact_svg
from aigc_studio.runtime.library import Asset, AssetLibrary, SetSource, SourceRecord, write_library
from export.data.archives import DataError, fetch_npm, human_size, log, npm_info, run_command, unpack_npm
from export.data.images import (
    EMOJIBASE_NPM,
    EXCLUDED_TABLER,
    FLUENT_NPM,
    TABLER_NPM,
    label_slug,
    load_emojibase,
    match_emojibase,
)

DEFAULT_OUT = Path("resources/library")
DEFAULT_CACHE = Path("runs/cache/packages")
TABLER_STYLE = "outline"

# What each package's unpacked folder must hold. The keep lists are supersets of export.data.images',
# so either command can reuse (or redo) the other's unpacked folder.
TABLER_KEEP = ("package/icons.json", "package/LICENSE")
FLUENT_KEEP = ("package/icons.json", "package/info.json", "package/metadata.json", "package/LICENSE")


def _package_json(root: Path) -> tuple[str, str, str]:
    meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
    version, licence = npm_info(root)
    return str(meta.get("name", root.name)), version, licence


def _licence_file(package: str) -> str:
    return "LICENSE-" + re.sub(r"[^A-Za-z0-9]+", "-", package.lstrip("@")).strip("-") + ".txt"


def tabler_set(root: Path) -> SetSource:
    """The outline icons of an unpacked ``@tabler/icons``, without the excluded categories."""
    package, version, licence = _package_json(root)
    meta = json.loads((root / "icons.json").read_text(encoding="utf-8"))
    assets, dropped, missing = [], 0, 0
    for name, m in sorted(meta.items()):
        if m.get("category") in EXCLUDED_TABLER:
            dropped += 1
            continue
        if TABLER_STYLE not in m.get("styles", {TABLER_STYLE: {}}):
            continue
        path = root / "icons" / TABLER_STYLE / f"{name}.svg"
        if not path.is_file():
            missing += 1
            continue
        svg = compact_svg(path.read_text(encoding="utf-8"))
        if 'stroke="currentColor"' not in svg:
            raise DataError(f"{path} does not draw with stroke=\"currentColor\"; cannot be recoloured")
        assets.append(Asset(set="tabler", name=name, tags=tuple(str(t) for t in m.get("tags", [])),
                            group=str(m.get("category") or "Other"), svg=svg, recolourable=True))
    if not assets:
        raise DataError(f"{root} has no {TABLER_STYLE} icons")
    log(f"  tabler: {len(assets)} {TABLER_STYLE} icons ({dropped} in {', '.join(sorted(EXCLUDED_TABLER))} "
        f"left out, {missing} listed without a file)")
    licence_text = (root / "LICENSE").read_text(encoding="utf-8")
    return SetSource(key="tabler", title="Tabler Icons (outline)", kind="icons", recolourable=True,
                     sources=[(SourceRecord(package, version, licence, _licence_file(package)), licence_text)],
                     assets=assets,
                     notes=f"outline style only; categories left out: {', '.join(sorted(EXCLUDED_TABLER))}")


def _fluent_licence(root: Path, package: str, version: str, licence: str) -> str:
    """The package ships no LICENSE file; its info.json names the artwork's author and licence."""
    if (root / "LICENSE").is_file():
        return (root / "LICENSE").read_text(encoding="utf-8")
    info = json.loads((root / "info.json").read_text(encoding="utf-8"))
    author = info.get("author", {})
    lic = info.get("license", {})
    if lic.get("spdx", licence) != "MIT":
        raise DataError(f"{package} {version}: licence {lic.get('spdx')!r} is not MIT; check it before shipping")
    return (f"{info.get('name', 'Fluent Emoji Flat')}: artwork by {author.get('name', '?')} "
            f"({author.get('url', '')}),\nlicensed under the {lic.get('title', 'MIT')} licence "
            f"({lic.get('url', '')}),\nas stated in {package} {version} (info.json; licence {licence}). "
            "The npm package carries no licence file; the licence is reproduced here.\n\n"
            "MIT License\n\n"
            f"Copyright (c) {author.get('name', 'the authors')}\n\n" + MIT_BODY)


MIT_BODY = """\
Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def fluent_set(root: Path, emojibase: Sequence[dict] | None = None,
               emojibase_source: tuple[SourceRecord, str] | None = None) -> SetSource:
    """The visible icons of an unpacked ``@iconify-json/fluent-emoji-flat``; tags from ``emojibase``
    (export.data.images.load_emojibase's entries) where a name matches."""
    package, version, licence = _package_json(root)
    icons = json.loads((root / "icons.json").read_text(encoding="utf-8"))
    categories = json.loads((root / "metadata.json").read_text(encoding="utf-8")).get("categories", {})
    group_of = {n: g for g, names in categories.items() for n in names}
    by_slug = {label_slug(e["label"]): e for e in emojibase or []}
    w0, h0 = icons.get("width", 16), icons.get("height", 16)
    assets, hidden, matched = [], 0, 0
    for name, icon in sorted(icons["icons"].items()):
        if icon.get("hidden"):
            hidden += 1
            continue
        w, h = icon.get("width", w0), icon.get("height", h0)
        left, top = icon.get("left", 0), icon.get("top", 0)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left} {top} {w} {h}" width="{w}" '
               f'height="{h}">{icon["body"]}</svg>')
        e = match_emojibase(name, by_slug) if by_slug else None
        matched += e is not None
        tags = [*(e["tags"] if e else []), *([e["emoji"]] if e and e.get("emoji") else [])]
        assets.append(Asset(set="fluent-emoji", name=name, tags=tuple(dict.fromkeys(tags)),
                            group=group_of.get(name, "Other"), svg=svg, recolourable=False))
    log(f"  fluent emoji: {len(assets)} emoji ({hidden} hidden aliases left out, {matched} with emojibase tags)")
    sources = [(SourceRecord(package, version, licence, _licence_file(package)),
                _fluent_licence(root, package, version, licence))]
    if emojibase_source is not None:
        sources.append(emojibase_source)
    return SetSource(key="fluent-emoji", title="Fluent Emoji Flat", kind="emoji", recolourable=False,
                     sources=sources, assets=assets, notes="hidden aliases left out")


def _unpacked(spec: tuple[str, str], cache: Path, keep: Callable[[str], bool], need: Sequence[str]) -> Path:
    """Fetch and unpack an npm package, unpacking again if an earlier, narrower unpack lacks a file."""
    tgz = fetch_npm(*spec, cache)
    root = unpack_npm(tgz, cache, keep)
    if any(not (root / n).is_file() for n in need):
        (root.parent / ".complete").unlink(missing_ok=True)
        root = unpack_npm(tgz, cache, keep)
    missing = [n for n in need if not (root / n).is_file()]
    if missing:
        raise DataError(f"{tgz.name} has no {', '.join(missing)}")
    return root


def build(out: Path, cache: Path) -> AssetLibrary:
    """Fetch the pinned packages into ``cache`` and write the library to ``out``."""
    cache.mkdir(parents=True, exist_ok=True)
    tabler = _unpacked(TABLER_NPM, cache, lambda m: m in TABLER_KEEP or (
        m.startswith("package/icons/") and m.endswith(".svg")), ["icons.json", "LICENSE", "package.json"])
    fluent = _unpacked(FLUENT_NPM, cache, lambda m: m in FLUENT_KEEP,
                       ["icons.json", "info.json", "metadata.json", "package.json"])
    _, emojibase = load_emojibase(cache)
    eb_root = _unpacked(EMOJIBASE_NPM, cache, lambda m: m in (
        "package/en/data.json", "package/en/messages.json", "package/LICENSE"), ["LICENSE", "package.json"])
    eb_package, eb_version, eb_licence = _package_json(eb_root)
    eb_source = (SourceRecord(eb_package, eb_version, eb_licence, _licence_file(eb_package), use="tags"),
                 (eb_root / "LICENSE").read_text(encoding="utf-8"))
    sets = [tabler_set(tabler), fluent_set(fluent, emojibase, eb_source)]
    write_library(out, sets, description="Icons and emoji for the Design workspace, kept as SVG "
                                         "(built by python -m export.data.library)")
    library = AssetLibrary.load(out)
    report(library)
    return library


def report(library: AssetLibrary) -> None:
    log(f"wrote {library.path}: {len(library.assets):,} assets, {human_size(library.size_bytes)}")
    for s in library.sets:
        size = (library.path / s.file).stat().st_size
        sources = "; ".join(f"{r.package} {r.version} ({r.licence}, {r.use})" for r in s.sources)
        log(f"  {s.key}: {s.count:,} assets, {s.file} {human_size(size)}; from {sources}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the library folder to write (replaced)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where npm tarballs are kept and unpacked")
    args = ap.parse_args(argv)
    return run_command(lambda: build(args.out, args.cache))


if __name__ == "__main__":
    sys.exit(main())

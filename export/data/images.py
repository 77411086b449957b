"""Build the RGBA image datasets for the GANs from registry packages (see shared/DATA.md).

    python -m export.data.images [--cache runs/cache/packages] [--out runs/data/images] \
        [--sources fluent,noto,tabler] [--sizes 64,128]

Three sources, fetched with the ordinary clients and nothing else:

* ``fluent``: Fluent Emoji Flat, npm ``@iconify-json/fluent-emoji-flat`` (SVG bodies in ``icons.json``),
  rendered with QtSvg offscreen; labels from the icon names, matched to emojibase for tags and group;
* ``noto``: Noto Color Emoji, Debian ``fonts-noto-color-emoji``, rendered with Pillow (colour bitmaps at
  109 pt, cropped to the alpha box, padded square, LANCZOS); every emoji and skin tone of npm
  ``emojibase-data`` (``en/data.json``: label, tags, group, subgroup) that the font draws as one glyph;
* ``tabler``: Tabler line icons, npm ``@tabler/icons`` (outline and filled SVGs with ``icons.json``),
  without the "Brand" category (trademarks).

Output in ``--out`` (outside git; rebuilt from the packages when needed):

* ``<source>/<size>/<id>.png``: RGBA images at each size, rendered directly at that size;
* ``<source>/meta/<id>.json``: one metadata file per image: label, tags, group, subgroup, style, the
  emoji character where there is one, source package, version, registry and licence;
* ``<source>/index.json``: all metadata of the source in one file (what training loads);
* ``contact_sheet_<source>.png``: a sample of the 64-pixel images on a checkerboard, to look at;
* ``sources.json``: packages, versions, licences and counts.

Archives are unpacked with every member path confined to its folder (export.data.text's extractor).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from export.data.archives import DataError, fetch_deb, fetch_npm, log, npm_info, run_command, unpack_deb, unpack_npm
from export.data.render import contact_sheet, emoji_renderer, svg_renderer

DEFAULT_CACHE = Path("runs/cache/packages")
DEFAULT_OUT = Path("runs/data/images")
SIZES = (64, 128)
SOURCES = ("fluent", "noto", "tabler")

# Pinned so that a dataset is the same on every machine; bump deliberately.
FLUENT_NPM = ("@iconify-json/fluent-emoji-flat", "1.2.6")
EMOJIBASE_NPM = ("emojibase-data", "17.0.0")
TABLER_NPM = ("@tabler/icons", "3.52.0")
NOTO_DEB = "fonts-noto-color-emoji"
NOTO_FONT = "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EXCLUDED_TABLER = {"Brand"}


@dataclass
class Item:
    """One image to render: its id, labels and what to draw (an SVG document or an emoji string)."""

    id: str
    label: str
    tags: list[str]
    group: str
    subgroup: str = ""
    style: str = ""
    emoji: str = ""
    svg: str = field(default="", repr=False)


@dataclass
class SourceInfo:
    key: str
    package: str
    registry: str
    version: str
    licence: str
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- labels


def label_slug(text: str) -> str:
    """"A button (blood type)" -> "a-button-blood-type" (how Fluent names its icons)."""
    text = text.lower().replace("’", "").replace("'", "").replace("&", "and")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def load_emojibase(cache: Path) -> tuple[SourceInfo, list[dict]]:
    """Every emoji of emojibase's English data, skin tones included, with group names resolved."""
    root = unpack_npm(fetch_npm(*EMOJIBASE_NPM, cache), cache,
                      lambda m: m in ("package/en/data.json", "package/en/messages.json", "package/LICENSE"))
    version, licence = npm_info(root)
    data = json.loads((root / "en/data.json").read_text(encoding="utf-8"))
    messages = json.loads((root / "en/messages.json").read_text(encoding="utf-8"))
    groups = {g["order"]: g["key"] for g in messages["groups"]}
    subgroups = {g["order"]: g["key"] for g in messages["subgroups"]}
    out = []
    for e in data:
        if "group" not in e:  # regional indicators and other components without a group
            continue
        for x in [e, *e.get("skins", [])]:
            out.append({"label": x["label"], "hexcode": x["hexcode"], "emoji": x["emoji"],
                        "tags": list(e.get("tags", [])), "group": groups.get(x.get("group", e["group"]), "?"),
                        "subgroup": subgroups.get(x.get("subgroup", e.get("subgroup")), "")})
    return SourceInfo("emojibase", EMOJIBASE_NPM[0], "npm", version, licence), out


# ----------------------------------------------------------------------------- sources


_TONES = ("medium-light", "medium-dark", "light", "medium", "dark")


def match_emojibase(name: str, by_slug: dict[str, dict]) -> dict | None:
    """The emojibase entry of a Fluent icon name: the name itself, "<name>-skin-tone" for the tone
    variants ("artist-dark" is "artist: dark skin tone"), then the base emoji without tone or
    "-facing-right" (newer variants emojibase may not have), keeping the icon's own label."""
    if name in by_slug:
        return by_slug[name]
    if name + "-skin-tone" in by_slug:
        return by_slug[name + "-skin-tone"]
    base = name.replace("-facing-right", "")
    for tone in _TONES:
        if base.endswith("-" + tone):
            base = base[: -len(tone) - 1]
            break
    for cand in (base, base.replace("woman-with-", "women-with-").replace("man-with-", "men-with-")):
        if cand in by_slug:
            e = by_slug[cand]
            return {**e, "label": name.replace("-", " "), "emoji": ""}
    return None


def load_fluent(cache: Path, emojibase: list[dict]) -> tuple[SourceInfo, list[Item]]:
    root = unpack_npm(fetch_npm(*FLUENT_NPM, cache), cache,
                      lambda m: m in ("package/icons.json", "package/info.json", "package/LICENSE"))
    version, licence = npm_info(root)
    icons = json.loads((root / "icons.json").read_text(encoding="utf-8"))
    by_slug = {label_slug(e["label"]): e for e in emojibase}
    w0, h0 = icons.get("width", 16), icons.get("height", 16)
    items, matched = [], 0
    for name, icon in sorted(icons["icons"].items()):
        w, h = icon.get("width", w0), icon.get("height", h0)
        left, top = icon.get("left", 0), icon.get("top", 0)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left} {top} {w} {h}" width="{w}" '
               f'height="{h}">{icon["body"]}</svg>')
        e = match_emojibase(name, by_slug)
        matched += e is not None
        items.append(Item(id=name, label=e["label"] if e else name.replace("-", " "),
                          tags=e["tags"] if e else name.split("-"), group=e["group"] if e else "unmatched",
                          subgroup=e["subgroup"] if e else "", emoji=e["emoji"] if e else "", svg=svg))
    log(f"  fluent: {len(items)} icons, {matched} matched to emojibase labels")
    return SourceInfo("fluent", FLUENT_NPM[0], "npm", version, licence,
                      {"emojibase_matched": matched}), items


def load_tabler(cache: Path) -> tuple[SourceInfo, list[Item]]:
    root = unpack_npm(fetch_npm(*TABLER_NPM, cache), cache, lambda m: m in (
        "package/icons.json", "package/LICENSE") or (m.startswith("package/icons/") and m.endswith(".svg")))
    version, licence = npm_info(root)
    meta = json.loads((root / "icons.json").read_text(encoding="utf-8"))
    items, dropped = [], 0
    for name, m in sorted(meta.items()):
        if m.get("category") in EXCLUDED_TABLER:
            dropped += 1
            continue
        for style in sorted(m.get("styles", {})):
            path = root / "icons" / style / f"{name}.svg"
            if not path.is_file():
                continue
            # currentColor has no meaning offscreen: draw the strokes and fills black.
            svg = path.read_text(encoding="utf-8").replace("currentColor", "#000000")
            items.append(Item(id=name if style == "outline" else f"{name}--{style}", label=name.replace("-", " "),
                              tags=[str(t) for t in m.get("tags", [])], group=m.get("category") or "none",
                              style=style, svg=svg))
    log(f"  tabler: {len(items)} SVGs ({dropped} Brand icons left out)")
    return SourceInfo("tabler", TABLER_NPM[0], "npm", version, licence, {"excluded": sorted(EXCLUDED_TABLER)}), items


def load_noto(cache: Path, emojibase: list[dict]) -> tuple[SourceInfo, list[Item], Path]:
    deb = fetch_deb(NOTO_DEB, cache)
    pkg = unpack_deb(deb, cache, [NOTO_FONT, "usr/share/doc/fonts-noto-color-emoji"])
    items = [Item(id=e["hexcode"].lower(), label=e["label"], tags=e["tags"], group=e["group"],
                  subgroup=e["subgroup"], emoji=e["emoji"]) for e in emojibase]
    return (SourceInfo("noto", NOTO_DEB, "debian", pkg.version, "OFL-1.1 (font), Apache-2.0 (images)"),
            items, pkg.root / NOTO_FONT)


# ----------------------------------------------------------------------------- writing


def _metadata(item: Item, src: SourceInfo) -> dict:
    d = {k: v for k, v in asdict(item).items() if k != "svg" and v != ""}
    d["source"] = {"package": src.package, "registry": src.registry, "version": src.version}
    d["licence"] = src.licence
    return d


def write_source(src: SourceInfo, rendered: Iterable[tuple[Item, list[np.ndarray]]], total: int,
                 out: Path, sizes: Sequence[int], sheet_n: int = 200) -> dict:
    """Write images, per-image metadata, the index and the contact sheet of one source."""
    folder = out / src.key
    shutil.rmtree(folder, ignore_errors=True)
    for s in sizes:
        (folder / str(s)).mkdir(parents=True)
    (folder / "meta").mkdir()
    index, sheet = [], []
    step = max(1, total // sheet_n)
    bar = tqdm(total=total, desc=f"render {src.key}", unit="img", mininterval=0.5 if sys.stderr.isatty() else 10)
    skipped = 0
    for n, (item, images) in enumerate(rendered):
        bar.update(1)
        if not images:
            skipped += 1
            continue
        for s, img in zip(sizes, images):
            Image.fromarray(img, "RGBA").save(folder / str(s) / f"{item.id}.png", optimize=False)
        meta = _metadata(item, src)
        (folder / "meta" / f"{item.id}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                                        encoding="utf-8")
        index.append(meta)
        if n % step == 0 and len(sheet) < sheet_n:
            sheet.append(images[0])
    bar.close()
    (folder / "index.json").write_text(json.dumps({"source": asdict(src), "sizes": list(sizes), "items": index},
                                                  ensure_ascii=False) + "\n", encoding="utf-8")
    contact_sheet(sheet).save(out / f"contact_sheet_{src.key}.png")
    groups: dict[str, int] = {}
    for m in index:
        groups[m["group"]] = groups.get(m["group"], 0) + 1
    log(f"  {src.key}: {len(index)} images, {skipped} skipped, {len(groups)} groups")
    return {**asdict(src), "images": len(index), "skipped": skipped, "groups": groups}


def _render_svgs(items: Sequence[Item], sizes: Sequence[int]) -> Iterator[tuple[Item, list[np.ndarray]]]:
    render = svg_renderer()
    for item in items:
        imgs = [render(item.svg, s) for s in sizes]
        yield item, ([] if any(i is None for i in imgs) else imgs)  # type: ignore[misc]


def build(cache: Path, out: Path, sources: Sequence[str] = SOURCES, sizes: Sequence[int] = SIZES) -> dict:
    start = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise DataError(f"unknown source(s) {', '.join(sorted(unknown))}; known: {', '.join(SOURCES)}")
    report: dict = {"sizes": list(sizes), "sources": {}}
    previous = out / "sources.json"
    if previous.is_file():  # building one source keeps the entries of the others
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            if old.get("sizes") == list(sizes):
                report["sources"].update({k: v for k, v in old.get("sources", {}).items() if k not in sources})
                if "labels" in old:
                    report["labels"] = old["labels"]
        except (ValueError, AttributeError):
            pass
    eb_info, emojibase = load_emojibase(cache) if {"fluent", "noto"} & set(sources) else (None, [])
    if eb_info:
        report["labels"] = asdict(eb_info)
    if "fluent" in sources:
        info, items = load_fluent(cache, emojibase)
        report["sources"]["fluent"] = write_source(info, _render_svgs(items, sizes), len(items), out, sizes)
    if "noto" in sources:
        info, items, font = load_noto(cache, emojibase)
        render = emoji_renderer(font)
        gen = ((it, render(it.emoji, sizes) or []) for it in items)
        report["sources"]["noto"] = write_source(info, gen, len(items), out, sizes)
    if "tabler" in sources:
        info, items = load_tabler(cache)
        report["sources"]["tabler"] = write_source(info, _render_svgs(items, sizes), len(items), out, sizes)
    (out / "sources.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"{out / 'sources.json'} ({time.monotonic() - start:.1f} s)")
    return report


# ----------------------------------------------------------------------------- loading for training


def load_dataset(root: Path, sources: Sequence[str], size: int,
                 groups: Sequence[str] | None = None) -> tuple[np.ndarray, list[dict]]:
    """(N, size, size, 4) uint8 images and their metadata from a built dataset folder."""
    images, metas = [], []
    for key in sources:
        index_path = Path(root) / key / "index.json"
        if not index_path.is_file():
            raise DataError(f"{index_path} is missing; build it with python -m export.data.images "
                            f"--sources {key}")
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if size not in index["sizes"]:
            raise DataError(f"{key} was built at sizes {index['sizes']}, not {size}")
        for meta in index["items"]:
            if groups and meta["group"] not in groups:
                continue
            with Image.open(Path(root) / key / str(size) / f"{meta['id']}.png") as im:
                images.append(np.asarray(im.convert("RGBA")))
            metas.append({**meta, "dataset": key})
    if not images:
        raise DataError(f"no images for sources {list(sources)} (groups {groups}) in {root}")
    return np.stack(images), metas


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.data.images", description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = ap.parse_args(argv)
    return run_command(lambda: build(args.cache, args.out, [s.strip() for s in args.sources.split(",") if s.strip()],
                                     [int(s) for s in args.sizes.split(",")]))


if __name__ == "__main__":
    sys.exit(main())

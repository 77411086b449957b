"""Design projects on disk: a zip of ``project.json`` and its assets, saved atomically, opened warily.

- :func:`save_project` writes the zip through :func:`files.atomic_write` (a crash leaves the old file).
- :func:`open_project` reads a zip that may come from anywhere. It refuses member names that are
  absolute or leave the folder, symlink members, more than :data:`MAX_MEMBERS` members, members
  declared or found larger than :data:`MAX_MEMBER_BYTES` (a zip bomb stops inflating there), and
  JSON that :func:`core.project_schema.parse_project` rejects (a hostile or oversized generation
  history included). Every refusal is a :class:`ProjectError`; nothing of the caller's open work is
  touched (it gets a new ``ProjectData`` or an exception).
- Autosave and recovery reuse :class:`recovery.RecoveryStore` and :class:`recovery.AutosaveService`
  in their own folder (``<data>/recovery/designs``): the recovery text is one JSON object holding
  ``project.json`` (with the generation history) and the assets in base64, so a move journals a few
  bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from PySide6.QtCore import QObject

from aigc_studio.core.project_schema import (
    ProjectData,
    ProjectFormatError,
    parse_project,
    project_to_json,
)
from aigc_studio.services.files import atomic_write
from aigc_studio.services.recovery import (
    AutosaveService,
    RecoveryEntry,
    RecoverySnapshot,
    RecoveryStore,
    default_data_dir,
)

__all__ = ["MAX_MEMBERS", "MAX_MEMBER_BYTES", "MAX_TOTAL_BYTES", "PROJECT_SUFFIX", "ProjectError",
           "RecoveredProject", "make_project_autosave", "open_project", "pending_project_recoveries",
           "project_from_recovery_text", "project_recovery_store", "project_recovery_text", "save_project"]

PROJECT_SUFFIX = ".aigcdesign"
MAX_MEMBERS = 4096
MAX_MEMBER_BYTES = 128 * 2**20   # one asset (a 4096 x 4096 RGBA PNG is at most ~64 MiB)
MAX_TOTAL_BYTES = 1 * 2**30      # everything, inflated
_JSON_LIMIT = 32 * 2**20


class ProjectError(ProjectFormatError):
    """A design file that cannot be opened or saved; the message names the file and the reason."""


def save_project(path: str | Path, project: ProjectData, *, durable: bool = True) -> None:
    """Write ``project`` to ``path`` atomically. Raises ``OSError`` (the old file is then unchanged)."""
    text = project_to_json(project)

    def write(stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("project.json", text)
            for name, data in sorted(project.assets.items()):
                method = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
                archive.writestr(name, data, compress_type=method)

    atomic_write(Path(path), write, durable=durable)


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or path.is_absolute():
        raise ProjectError(f"it holds a member with an absolute path ({name[:120]!r}); refused")
    if ".." in path.parts:
        raise ProjectError(f"it holds a member that leaves its folder ({name[:120]!r}); refused")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ProjectError(f"it holds a symbolic link ({name[:120]!r}); refused")
    if info.file_size > MAX_MEMBER_BYTES:
        raise ProjectError(f"its member {name[:120]!r} declares {info.file_size} bytes, more than the "
                           f"{MAX_MEMBER_BYTES // 2**20} MiB a design asset may have")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, inflating at most ``limit + 1`` bytes whatever its header says."""
    with archive.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ProjectError(f"its member {info.filename[:120]!r} inflates to more than {limit // 2**20} MiB "
                           "(a damaged file or a zip bomb); refused")
    return data


def _read_archive(archive: zipfile.ZipFile) -> ProjectData:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ProjectError(f"it holds {len(infos)} members, more than the {MAX_MEMBERS} a design may have")
    for info in infos:
        _check_member(info)
    if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
        raise ProjectError(f"its members declare more than {MAX_TOTAL_BYTES // 2**30} GiB in all; refused")
    by_name = {info.filename: info for info in infos if not info.is_dir()}
    if "project.json" not in by_name:
        raise ProjectError("it has no project.json (it is not an AIGC Studio design)")
    text = _read_member(archive, by_name.pop("project.json"), _JSON_LIMIT)
    assets: dict[str, bytes] = {}
    total = 0
    for name, info in by_name.items():
        if name.startswith("assets/"):
            assets[name] = _read_member(archive, info, MAX_MEMBER_BYTES)
            total += len(assets[name])
            if total > MAX_TOTAL_BYTES:
                raise ProjectError("its assets inflate to more than 1 GiB in all; refused")
    project = parse_project(text, assets)
    _check_assets(project)
    return project


def _check_assets(project: ProjectData) -> None:
    for name, data in project.assets.items():
        if name.endswith(".png") and not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ProjectError(f"its asset {name} is not a PNG image")
        if name.endswith(".svg"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise ProjectError(f"its asset {name} is not SVG text (not UTF-8)") from None


def open_project(path: str | Path) -> ProjectData:
    """Read the design at ``path`` into new data; :class:`ProjectError` says why it cannot be opened."""
    where = Path(path).name
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_archive(archive)
    except ProjectError as error:
        raise ProjectError(f"Cannot open {where}: {error}") from None
    except ProjectFormatError as error:
        raise ProjectError(f"Cannot open {where}: {error}") from None
    except zipfile.BadZipFile as error:
        raise ProjectError(f"Cannot open {where}: it is not a design file or it is damaged ({error})") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as error:
        # RuntimeError: encrypted member; NotImplementedError: unknown compression; zlib errors are OSError
        raise ProjectError(f"Cannot open {where}: {error}") from None


# ---------------------------------------------------------------------------------------------- recovery


def project_recovery_text(project: ProjectData) -> str:
    """The recovery copy of ``project``: one JSON text (layers first, so edits journal small)."""
    assets = {name: base64.b64encode(data).decode("ascii") for name, data in sorted(project.assets.items())}
    return json.dumps({"project": project_to_json(project), "assets": assets}, ensure_ascii=False)


def project_from_recovery_text(text: str) -> ProjectData:
    """A project back from :func:`project_recovery_text`, checked like an opened file."""
    try:
        body = json.loads(text)
        raw_assets = body["assets"]
        assets = {str(name): base64.b64decode(data, validate=True) for name, data in raw_assets.items()}
        project = parse_project(body["project"], assets)
    except ProjectFormatError as error:
        raise ProjectError(f"the recovered design is damaged: {error}") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, RecursionError) as error:
        raise ProjectError(f"the recovered design is damaged ({str(error)[:200]})") from None
    _check_assets(project)
    return project


def project_recovery_store(data_dir: str | Path | None = None) -> RecoveryStore:
    """The recovery store for designs: ``<data_dir>/recovery/designs`` (the user data folder by default),
    apart from the documents' so neither offers the other's entries."""
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    return RecoveryStore(base / "recovery" / "designs")


@dataclass(frozen=True)
class RecoveredProject:
    """A design left unsaved by a session that ended without saving, ready to open."""

    entry: RecoveryEntry          # pass to RecoveryStore.discard once restored or declined
    project: ProjectData
    path: str | None              # the design file it belongs to (None: never saved)


def pending_project_recoveries(store: RecoveryStore) -> tuple[list[RecoveredProject], list[str]]:
    """Designs to offer back at start, newest first, and a message per damaged entry (left in place)."""
    found: list[RecoveredProject] = []
    problems: list[str] = []
    for entry in store.pending():
        try:
            found.append(RecoveredProject(entry, project_from_recovery_text(entry.text), entry.document))
        except ProjectError as error:
            problems.append(f"{entry.file.name}: {error}")
    return found, problems


def make_project_autosave(store: RecoveryStore, snapshot: Callable[[], ProjectData | None],
                          path: Callable[[], str | None], *, delay_s: float = 3.0,
                          parent: QObject | None = None) -> AutosaveService:
    """An :class:`AutosaveService` keeping the design ``snapshot()`` returns (``None``: nothing unsaved).

    Call ``document_changed()`` on every change (e.g. the undo stack's ``indexChanged``): the
    change is on disk within ``JOURNAL_WAIT_S`` (0.5 s), a full copy ``delay_s`` after the last one;
    call ``clear()`` after a save and ``shutdown()`` before closing the store.
    """
    def take() -> RecoverySnapshot | None:
        project = snapshot()
        return None if project is None else RecoverySnapshot(project_recovery_text(project), path())

    return AutosaveService(store, take, delay_s=delay_s, parent=parent)

"""Damaged and hostile design files are refused with a clear message, and the open work is kept."""

from __future__ import annotations

import json
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from aigc_studio.core.project_schema import (
    MAX_HISTORY_CHARS,
    MAX_HISTORY_ENTRIES,
    ProjectFormatError,
    project_to_json,
)
from aigc_studio.services.project import MAX_MEMBER_BYTES, MAX_MEMBERS, ProjectError, open_project, save_project
from tests.services.test_project import sample_project


def _archive(path: Path, members: dict[str, bytes], *, extra: Callable[[zipfile.ZipFile], None] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if extra is not None:
            extra(archive)
    return path


def _good_members() -> dict[str, bytes]:
    project = sample_project()
    return {"project.json": project_to_json(project).encode(), **project.assets}


def _json(**changes: object) -> dict[str, bytes]:
    members = _good_members()
    body = json.loads(members["project.json"])
    body.update(changes)
    members["project.json"] = json.dumps(body).encode()
    return members


def _refused(path: Path, words: str) -> None:
    with pytest.raises(ProjectError, match=words) as caught:
        open_project(path)
    assert path.name in str(caught.value)


def test_zip_slip_member_is_refused(tmp_path: Path) -> None:
    _refused(_archive(tmp_path / "slip.aigcdesign", {**_good_members(), "../x": b"evil"}), "leaves its folder")
    _refused(_archive(tmp_path / "slip2.aigcdesign", {**_good_members(), "assets/../../x": b"e"}), "leaves")
    assert not (tmp_path.parent / "x").exists()


def test_absolute_member_is_refused(tmp_path: Path) -> None:
    _refused(_archive(tmp_path / "abs.aigcdesign", {**_good_members(), "/etc/x": b"evil"}), "absolute")
    _refused(_archive(tmp_path / "drive.aigcdesign", {**_good_members(), "C:/x": b"evil"}), "absolute")


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    def link(archive: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("assets/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")

    _refused(_archive(tmp_path / "link.aigcdesign", _good_members(), extra=link), "symbolic link")


def test_member_declaring_2_gb_is_refused(tmp_path: Path) -> None:
    path = _archive(tmp_path / "huge.aigcdesign", {**_good_members(), "assets/big.png": b"\x89PNG" + b"\0" * 100})
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")  # the first central directory entry
    while True:  # patch the central directory's uncompressed size of assets/big.png to 2 GB
        name_len = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_len] == b"assets/big.png":
            data[at + 24:at + 28] = struct.pack("<I", 2 * 2**30)
            break
        at = data.index(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    _refused(path, "declares")


def test_zip_bomb_stops_inflating_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc_studio.services.project as project_module

    monkeypatch.setattr(project_module, "MAX_MEMBER_BYTES", 1 << 20)  # a 1 MiB limit keeps the test quick
    path = _archive(tmp_path / "bomb.aigcdesign", _good_members())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("assets/bomb.png", b"\0" * (8 << 20))
    data = bytearray(path.read_bytes())  # lie in both headers: declare 100 bytes
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(signature, at + 1)) != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + 15] == b"assets/bomb.png":
                data[at + offset:at + offset + 4] = struct.pack("<I", 100)
    path.write_bytes(bytes(data))
    # zipfile inflates no more than the declared 100 bytes, and their CRC does not match
    _refused(path, "damaged")
    honest = _archive(tmp_path / "honest.aigcdesign", {**_good_members(), "assets/bomb.png": b"\0" * (8 << 20)})
    _refused(honest, "declares 8388608 bytes")
    assert MAX_MEMBER_BYTES >= 64 << 20


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    many = {f"assets/{i:032x}.png": b"" for i in range(MAX_MEMBERS + 1)}
    _refused(_archive(tmp_path / "many.aigcdesign", {**_good_members(), **many}), "members")


@pytest.mark.parametrize(("members", "words"), [
    ({"project.json": b"{not json"}, "not valid JSON"),
    ({"project.json": b"[1, 2]"}, "not an AIGC Studio design"),
    ({}, "no project.json"),
], ids=["bad-json", "not-an-object", "no-project-json"])
def test_bad_json_is_refused(tmp_path: Path, members: dict[str, bytes], words: str) -> None:
    _refused(_archive(tmp_path / "bad.aigcdesign", members), words)


@pytest.mark.parametrize(("changes", "words"), [
    ({"version": 3}, "version 3 is not supported"),
    ({"version": "1"}, "not supported"),
    ({"version": 2.0}, "not supported"),
    ({"version": True}, "not supported"),
    ({"canvas": {"width": 0, "height": 10}}, "canvas size"),
    ({"canvas": {"width": True, "height": 10}}, "canvas size"),
    ({"layers": [{"id": "a", "kind": "rect", "x": float("nan")}]}, "finite number"),
    ({"layers": [{"id": "a", "kind": "rect", "scale": 1e9}]}, "outside"),
    ({"layers": [{"id": "a", "kind": "rect", "visible": "yes"}]}, "true or false"),
    ({"layers": [{"id": "a", "kind": "blob"}]}, "unknown kind"),
    ({"layers": [{"id": "a", "kind": "rect", "evil": 1}]}, "unknown fields"),
    ({"layers": [{"id": "a", "kind": "rect", "fill": "red; x"}]}, "colour"),
    ({"layers": [{"id": "a", "kind": "image", "asset": "../../etc/passwd"}]}, "asset name"),
    ({"layers": [{"id": "a", "kind": "rect"}, {"id": "a", "kind": "rect"}]}, "share one id"),
], ids=["newer-version", "version-text", "version-float", "version-bool", "zero-width", "bool-width", "nan",
        "scale-range", "bool-type", "kind", "unknown-field", "colour", "asset-path", "duplicate-id"])
def test_invalid_project_json_is_refused(tmp_path: Path, changes: dict[str, object], words: str) -> None:
    _refused(_archive(tmp_path / "invalid.aigcdesign", _json(**changes)), words)


@pytest.mark.parametrize(("history", "words"), [
    ([{"id": 1}], "JSON object with a list"),
    ("[]", "JSON object with a list"),
    ({"history_version": 1, "entries": {"id": 1}}, "list of 'entries'"),
    ({"history_version": 1, "entries": [{"id": 1}, "evil"]}, "must be a JSON object"),
    ({"history_version": 1, "entries": [[1, 2]]}, "must be a JSON object"),
    ({"history_version": 1, "entries": [{}] * (MAX_HISTORY_ENTRIES + 1)}, "more than the 10000"),
    ({"history_version": 1, "entries": [{"pad": "x" * (MAX_HISTORY_CHARS + 1)}]}, "characters long"),
], ids=["a-list", "text", "entries-not-a-list", "entry-text", "entry-list", "too-many-entries", "oversized"])
def test_a_hostile_or_oversized_history_is_refused(tmp_path: Path, history: object, words: str) -> None:
    _refused(_archive(tmp_path / "history.aigcdesign", _json(history=history)), words)


def test_a_deeply_nested_history_is_refused(tmp_path: Path) -> None:
    members = _good_members()
    text = members["project.json"].decode()
    nested = '{"history_version": 1, "entries": [{"a": ' + "[" * 100_000 + "]" * 100_000 + "}]}"
    members["project.json"] = (text.rstrip().rstrip("}") + f', "history": {nested}}}').encode()
    _refused(_archive(tmp_path / "deep.aigcdesign", members), "not valid JSON")


def test_an_unsavable_history_is_refused_on_save(tmp_path: Path) -> None:
    path = tmp_path / "design.aigcdesign"
    save_project(path, sample_project())
    before = path.read_bytes()
    for history in ("{not json", '{"entries": 3}'):
        with pytest.raises(ProjectFormatError):
            save_project(path, replace(sample_project(), history=history))
    assert path.read_bytes() == before


def test_missing_asset_and_not_a_zip_are_refused(tmp_path: Path) -> None:
    members = _good_members()
    del members[next(name for name in members if name.endswith(".svg"))]
    _refused(_archive(tmp_path / "missing.aigcdesign", members), "does not hold")
    truncated = tmp_path / "cut.aigcdesign"
    save_project(truncated, sample_project())
    truncated.write_bytes(truncated.read_bytes()[:200])
    _refused(truncated, "damaged|not a design")


def test_a_refused_file_leaves_the_open_design_as_it_was(qtbot, tmp_path: Path) -> None:
    from aigc_studio.gui.canvas import DesignCanvasView

    canvas = DesignCanvasView(512, 512)
    qtbot.addWidget(canvas)
    canvas.add_text("my unsaved work")
    before = canvas.project()
    hostile = _archive(tmp_path / "slip.aigcdesign", {**_good_members(), "../x": b"evil"})
    with pytest.raises(ProjectError):
        canvas.load_project(open_project(hostile))  # open into new data; swap only on success
    assert canvas.project() == before and canvas.undo_stack.count() == 1

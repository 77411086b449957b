"""Design projects: save and reopen equal (the generation history too), version 1 files still open,
atomic saves, autosave and recovery."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from aigc_studio.core.project_schema import (
    PROJECT_VERSION,
    Layer,
    ProjectData,
    asset_name,
    parse_project,
    project_to_json,
)
from aigc_studio.services.image_models import ImageSettings
from aigc_studio.services.project import (
    ProjectError,
    make_project_autosave,
    open_project,
    pending_project_recoveries,
    project_from_recovery_text,
    project_recovery_store,
    project_recovery_text,
    save_project,
)
from aigc_studio.viewmodels.image_history import HistoryEntry, history_from_json, history_to_json

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path stroke="currentColor" d="M1 1h9"/></svg>'


def sample_project() -> ProjectData:
    png_name, svg_name = asset_name(PNG, "png"), asset_name(SVG, "svg")
    layers = (
        Layer(id="img1", kind="image", name="cat", x=10.5, y=-3, width=64, height=64, asset=png_name,
              record='{"seed": 42, "text": "un chat é"}', z=1),
        Layer(id="svg1", kind="svg", name="smile", width=128, height=128, asset=svg_name, recolourable=True,
              stroke="#ff0000", stroke_width=2.5, rotation=30, scale=0.5, z=2, group="g1"),
        Layer(id="txt1", kind="text", text="Hello\nwörld", font_size=30, color="#80112233", align="center",
              z=3, locked=True),
        Layer(id="shp1", kind="ellipse", fill="", outline="#000000", outline_width=0, visible=False, z=4,
              group="g1"),
    )
    return ProjectData(1080, 1080, layers, {png_name: PNG, svg_name: SVG}, sample_history())


def sample_history() -> str:
    """The generation view-model's history JSON: two entries and a child bred from them."""
    a = HistoryEntry(1, "fake-image", ImageSettings(seed=7, psi=0.6, text="cœur rouge"))
    b = HistoryEntry(2, "fake-image", ImageSettings(seed=9, mix_seed=3, mix_layers="fine", directions=((1, 1.5),)))
    child = HistoryEntry(3, "fake-image", ImageSettings(seed=7, mix_seed=9, mix_layers="coarse"), (1, 2))
    return history_to_json([a, b, child])


def test_save_and_reopen_equal(tmp_path: Path) -> None:
    project = sample_project()
    path = tmp_path / "design.aigcdesign"
    save_project(path, project)
    again = open_project(path)
    assert again == project  # layers, properties, records, and the assets byte for byte
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(["project.json", *project.assets])
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_history_is_saved_with_the_project_as_version_2(tmp_path: Path) -> None:
    project = sample_project()
    path = tmp_path / "design.aigcdesign"
    save_project(path, project)
    with zipfile.ZipFile(path) as archive:
        body = json.loads(archive.read("project.json"))
    assert body["version"] == PROJECT_VERSION == 2
    assert body["history"] == json.loads(sample_history())  # embedded as JSON, not as a string
    again = open_project(path)
    assert again.history == project.history
    assert [e.parents for e in history_from_json(again.history or "")] == [(), (), (1, 2)]
    no_history = ProjectData(64, 64)
    save_project(path, no_history)
    assert open_project(path) == no_history and open_project(path).history is None


def test_a_version_1_file_still_opens(tmp_path: Path) -> None:
    project = sample_project()
    body = json.loads(project_to_json(project))
    body["version"] = 1
    del body["history"]
    path = tmp_path / "old.aigcdesign"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json.dumps(body))
        for name, data in project.assets.items():
            archive.writestr(name, data)
    opened = open_project(path)
    assert opened.history is None and opened.layers == project.layers and opened.assets == project.assets
    body["history"] = {"nothing": "version 1 had no history"}  # not read from a version 1 file
    assert parse_project(json.dumps(body), project.assets).history is None


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "design.aigcdesign"
    save_project(path, sample_project())
    before = path.read_bytes()
    bigger = ProjectData(10, 10, (), {})

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    with pytest.raises(OSError):
        save_project(path, bigger)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_unused_assets_are_dropped_and_missing_ones_refused() -> None:
    project = sample_project()
    text = project_to_json(project)
    assert parse_project(text, {**project.assets, "assets/" + "0" * 32 + ".png": PNG}) == project
    with pytest.raises(ValueError, match="does not hold"):
        parse_project(text, {})


def test_recovery_text_round_trip() -> None:
    project = sample_project()
    assert project_from_recovery_text(project_recovery_text(project)) == project
    with pytest.raises(ProjectError):
        project_from_recovery_text('{"project": "{}", "assets": {}}')


def test_autosave_within_a_second_and_recovery_at_start(qtbot, tmp_path: Path) -> None:
    project = sample_project()
    store = project_recovery_store(tmp_path)
    autosave = make_project_autosave(store, lambda: project, lambda: "/designs/a.aigcdesign", delay_s=5.0)
    with qtbot.waitSignal(autosave.saved, timeout=1000):
        autosave.document_changed()
    autosave.shutdown()
    store.release()  # the session ends without saving (as after a crash)
    later = project_recovery_store(tmp_path)
    found, problems = pending_project_recoveries(later)
    assert problems == [] and len(found) == 1
    assert found[0].project == project and found[0].path == "/designs/a.aigcdesign"
    later.discard(found[0].entry)
    assert pending_project_recoveries(later) == ([], [])
    later.close()


def test_damaged_recovery_is_reported_not_raised(tmp_path: Path) -> None:
    from aigc_studio.services.recovery import RecoverySnapshot

    store = project_recovery_store(tmp_path)
    store.write(RecoverySnapshot('{"project": "not json", "assets": {}}', None))
    store.release()
    later = project_recovery_store(tmp_path)
    found, problems = pending_project_recoveries(later)
    assert found == [] and len(problems) == 1 and "damaged" in problems[0]
    later.close()

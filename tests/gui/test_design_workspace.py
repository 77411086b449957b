"""The Design workspace in the main window: generated images, library assets and phrases from the
writing pane reach the canvas; undo follows the workspace on show; exports and projects are files that
keep the generation history; recovery asks; the title shows unsaved changes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialog

from aigc_studio.core.project_schema import Layer, ProjectData
from aigc_studio.gui.dialogs import ChoiceDialog
from aigc_studio.services.models import ImageSettings, ModelState
from aigc_studio.services.project import pending_project_recoveries, project_recovery_text
from aigc_studio.services.recovery import RecoverySnapshot, RecoveryStore
from aigc_studio.viewmodels.image_history import HistoryEntry, history_to_json
from tests.gui.canvas_helpers import generated_png
from tests.services.fakes import Recorder

from .conftest import Dialogs, MakeApp


def _design(app, qtbot) -> None:  # noqa: ANN001
    window = app.window
    window.tabs.setCurrentWidget(window.design)
    library = window.design_services.library
    qtbot.waitUntil(lambda: library.status.state.name in ("READY", "FAILED"), timeout=10000)
    qtbot.waitUntil(lambda: bool(window.design_services.generation.models), timeout=10000)


def test_the_design_tab_starts_its_services_and_folds_the_sampling_panel(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    window = app.window
    assert not window.design_services.started and window.sampling_dock.isVisible()
    _design(app, qtbot)
    assert window.design_services.started
    assert window.design_services.library.status.state.name == "READY"
    assert window.design_services.generation.models == ["fake-image"]
    assert not window.sampling_dock.isVisible()
    window.tabs.setCurrentIndex(0)
    assert window.sampling_dock.isVisible()
    assert window.host.status.state is ModelState.READY  # the text model is untouched


def test_generated_images_and_library_assets_reach_the_canvas_and_undo(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    window = app.window
    _design(app, qtbot)
    canvas = window.design.canvas
    png, record = generated_png()
    window.design.generation.add_to_canvas_requested.emit(png, record)
    library = window.design.library
    library.add_requested.emit('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
                               '<path d="M4 4h16v16z" stroke="currentColor" fill="none"/></svg>', "square", True)
    kinds = [layer.kind for layer in canvas.layers()]
    assert kinds == ["image", "svg"]
    assert canvas.layers()[0].record == record
    assert window.actions_["undo"].isEnabled()
    window.actions_["undo"].trigger()  # Edit > Undo acts on the canvas while designing
    assert [layer.kind for layer in canvas.layers()] == ["image"]
    window.actions_["redo"].trigger()
    assert [layer.kind for layer in canvas.layers()] == ["image", "svg"]
    window.editor.insertPlainText("text to undo")  # the writing pane has something to undo too
    for _ in range(2):
        window.actions_["undo"].trigger()
    assert canvas.layers() == [] and not window.actions_["undo"].isEnabled()
    assert window.editor.toPlainText() == "text to undo"  # untouched by the canvas's undo
    window.tabs.setCurrentIndex(0)
    assert window.actions_["undo"].isEnabled()
    window.actions_["undo"].trigger()
    assert window.editor.toPlainText() == ""


def test_a_phrase_from_the_writing_pane_goes_to_describe_or_the_canvas(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    window = app.window
    window.editor.setPlainText("A red heart over the sea.")
    cursor = window.editor.textCursor()
    cursor.setPosition(2)
    cursor.setPosition(11, QTextCursor.MoveMode.KeepAnchor)
    window.editor.setTextCursor(cursor)
    window.actions_["describe_selection"].trigger()
    assert window.designing
    assert window.design_services.generation.settings.text == "red heart"
    window.tabs.setCurrentIndex(0)
    window.actions_["text_layer_selection"].trigger()
    layers = window.design.canvas.layers()
    assert [layer.kind for layer in layers] == ["text"]


def test_exports_and_projects_are_files_and_a_hostile_project_is_refused(qtbot, make_app: MakeApp,
                                                                        tmp_path: Path) -> None:
    app = make_app()
    window = app.window
    _design(app, qtbot)
    design = window.design
    design.add_text("Sticker")
    assert design.export_png_file(str(tmp_path / "out.png"), scale=2)
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert design.export_svg_file(str(tmp_path / "out.svg"))
    assert "<text" in (tmp_path / "out.svg").read_text(encoding="utf-8")
    assert design.save_project_file(str(tmp_path / "design.aigcd"))
    hostile = tmp_path / "hostile.aigcd"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../escape.txt", "x")
    messages: list[str] = []
    design.message.connect(messages.append)
    assert not design.open_project_file(str(hostile))
    assert messages and "hostile.aigcd" in messages[-1]
    assert [layer.kind for layer in design.canvas.layers()] == ["text"]  # the open design is kept
    design.canvas.remove([design.canvas.layers()[0].id])
    assert design.open_project_file(str(tmp_path / "design.aigcd"))
    assert [layer.kind for layer in design.canvas.layers()] == ["text"]


def _answer(dialogs: Dialogs, key: str, asked: list[str]) -> None:
    """Answer the design recovery question with ``key``, keeping the question's text."""
    def answer(dialog: QDialog) -> int:
        assert isinstance(dialog, ChoiceDialog) and dialog.objectName() == "designRecoveryDialog"
        asked.append(dialog.text())
        dialog.buttons_[key].click()
        return 0

    dialogs.on_exec = answer


def test_an_unsaved_design_comes_back_after_a_crash(qtbot, make_app: MakeApp, tmp_path: Path,
                                                    dialogs: Dialogs) -> None:
    store = RecoveryStore(tmp_path / "designs")
    first = make_app(name="first", design_store=store)
    autosave = first.window.design.autosave
    assert autosave is not None
    with qtbot.waitSignal(autosave.saved, timeout=1500):  # on disk within the journal's half second
        first.window.design.add_text("Keep me")
    store.release()  # the session's lock goes, as when the process is killed
    second = make_app(name="second", design_store=RecoveryStore(tmp_path / "designs"))
    asked: list[str] = []
    _answer(dialogs, "recover", asked)
    assert second.window.design.recover()
    assert len(asked) == 1 and "Untitled design" in asked[0] and "1 layer," in asked[0]
    assert [layer.kind for layer in second.window.design.canvas.layers()] == ["text"]


HISTORY = history_to_json([HistoryEntry(1, "fake-image", ImageSettings(seed=7, psi=0.6)),
                           HistoryEntry(2, "fake-image", ImageSettings(seed=9, text="red heart"))])


def _crashed_design(folder: Path, path: str | None) -> None:
    """A recovery entry left by a session that was killed with a poster (two layers) unsaved."""
    crashed = RecoveryStore(folder)
    layers = (Layer(id="t1", kind="text", text="Keep me"), Layer(id="r1", kind="rect", z=1))
    crashed.write(RecoverySnapshot(project_recovery_text(ProjectData(1080, 1080, layers, {}, HISTORY)), path))
    crashed.release()


@pytest.mark.parametrize("choice", ["recover", "discard", "later"])
def test_design_recovery_asks_and_does_what_was_chosen(qtbot, make_app: MakeApp, tmp_path: Path,
                                                       dialogs: Dialogs, choice: str) -> None:
    _crashed_design(tmp_path / "designs", "/designs/poster.aigcd")
    store = RecoveryStore(tmp_path / "designs")
    design = make_app(design_store=store).window.design
    vm = design.generation.vm
    asked: list[str] = []
    _answer(dialogs, choice, asked)
    assert design.recover() is (choice == "recover")
    assert len(asked) == 1 and "poster.aigcd" in asked[0] and "2 layers" in asked[0] and "autosaved" in asked[0]
    found, problems = pending_project_recoveries(store)
    assert problems == []
    if choice == "recover":
        assert [layer.id for layer in design.canvas.layers()] == ["t1", "r1"]
        assert design.canvas.canvas_size == (1080, 1080)
        assert not design.canvas.undo_stack.isClean() and design.title == "*poster.aigcd"  # still unsaved
        assert [e.settings.seed for e in vm.history] == [7, 9]
        assert found == []  # this session keeps it from now on
        with qtbot.waitSignal(design.autosave.saved, timeout=1500):
            pass  # written again by this session's autosave
    else:
        assert design.canvas.layers() == [] and vm.history == [] and design.title == "Untitled design"
        assert len(found) == (1 if choice == "later" else 0)  # Later keeps it for the next start
    dialogs.on_exec = None  # the next start: closed without a choice, which is Later
    assert not design.recover()
    assert dialogs.texts("dialog").count("Recover unsaved design") == 1 + (choice == "later")  # Later: asked again


def test_a_project_keeps_the_generation_history(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    _design(app, qtbot)
    design = app.window.design
    vm = app.window.design_services.generation
    qtbot.waitUntil(lambda: vm.current is not None, timeout=5000)
    vm.keep()
    vm.set_seed(5)
    qtbot.waitUntil(lambda: len(vm.history) == 2, timeout=5000)
    kept = [(e.entry_id, e.model, e.settings) for e in vm.history]
    design.add_text("Sticker")
    path = tmp_path / "design.aigcd"
    assert design.save_project_file(str(path))
    with zipfile.ZipFile(path) as archive:
        body = json.loads(archive.read("project.json"))
    assert body["version"] == 2 and len(body["history"]["entries"]) == 2
    assert vm.load_history_json(history_to_json([])) and vm.history == []
    with qtbot.waitSignal(vm.history_changed, timeout=5000,  # the images are made again
                          check_params_cb=lambda entries: all(e.image is not None for e in entries)):
        assert design.open_project_file(str(path))
    assert [(e.entry_id, e.model, e.settings) for e in vm.history] == kept
    # a version 1 file (no history) opens and leaves the history alone
    del body["history"]
    body["version"] = 1
    old = tmp_path / "old.aigcd"
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr("project.json", json.dumps(body))
    assert design.open_project_file(str(old))
    assert [layer.kind for layer in design.canvas.layers()] == ["text"] and len(vm.history) == 2


@pytest.mark.parametrize("history", [{"history_version": 1, "entries": 5},           # not data
                                     {"history_version": 1, "entries": [{"id": "x"}]},  # not an entry
                                     {"history_version": 99, "entries": []}],
                         ids=["entries-not-a-list", "malformed-entry", "unknown-version"])
def test_a_hostile_history_is_refused_and_the_open_design_kept(qtbot, make_app: MakeApp, tmp_path: Path,
                                                               history: object) -> None:
    design = make_app().window.design
    vm = design.generation.vm
    assert vm.load_history_json(HISTORY)
    design.add_text("my unsaved work")
    before, title = design.canvas.project(), design.title
    body = {"format": "aigc-studio.design", "version": 2, "canvas": {"width": 64, "height": 64},
            "layers": [], "history": history}
    hostile = tmp_path / "hostile.aigcd"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("project.json", json.dumps(body))
    messages = Recorder()
    design.message.connect(messages)
    assert not design.open_project_file(str(hostile))
    assert messages.items and "Cannot open hostile.aigcd" in messages.items[-1]
    assert design.canvas.project() == before and design.title == title and design.project_path is None
    assert [e.settings.seed for e in vm.history] == [7, 9]


def test_the_title_follows_edits_save_and_undo(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    design = make_app().window.design
    titles = Recorder()
    design.title_changed.connect(titles)
    assert design.title == "Untitled design"
    design.add_text("one")
    design.add_text("two")  # still unsaved: no new title
    assert design.save_project_file(str(tmp_path / "poster.aigcd"))
    design.canvas.undo_stack.undo()
    design.canvas.undo_stack.redo()  # back where it was saved
    assert titles.items == ["*Untitled design", "poster.aigcd", "*poster.aigcd",
                                                  "poster.aigcd"]
    assert design.title == "poster.aigcd"


def test_a_placed_image_opens_in_generate_and_the_tab_shows_the_design(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    window = app.window
    _design(app, qtbot)
    vm = window.design_services.generation
    qtbot.waitUntil(lambda: vm.current is not None, timeout=10000)
    vm.set_seed(5)
    qtbot.waitUntil(lambda: vm.current is not None and vm.current.settings.seed == 5, timeout=10000)
    placed = vm.current
    window.design.generation.add_to_canvas_requested.emit(placed.png, placed.record.to_json())
    assert window.tabs.tabText(window.tabs.indexOf(window.design)).startswith("Design: *")
    vm.set_seed(9)
    qtbot.waitUntil(lambda: vm.current is not None and vm.current.settings.seed == 9, timeout=10000)
    [layer] = window.design.canvas.layers()
    window.design.canvas.select([layer.id])
    window.design.properties.restore_generation_requested.emit(layer.record)
    assert vm.settings.seed == 5  # the placed image's settings are back in the generation panel


def test_the_design_half_is_built_only_when_needed(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    """Start-up pays nothing for the Design workspace: no services, no widgets, no recovery prompt
    when nothing is pending; the tab builds it on first show."""
    app = make_app(design_store=RecoveryStore(tmp_path / "designs"))
    window = app.window
    window.offer_design_recovery()  # nothing pending
    assert not window.design_built
    assert window.tabs.tabText(1) == "Design"
    window.tabs.setCurrentIndex(1)
    assert window.tabs.currentWidget() is window.design and window.designing
    assert window.design_services.started

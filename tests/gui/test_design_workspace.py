"""The Design workspace in the main window: generated images, library assets and phrases from the
writing pane reach the canvas; undo follows the workspace on show; exports and projects are files."""

from __future__ import annotations

import zipfile
from pathlib import Path

from PySide6.QtGui import QTextCursor

from aigc_studio.services.models import ModelState
from aigc_studio.services.recovery import RecoveryStore
from tests.gui.canvas_helpers import generated_png

from .conftest import MakeApp


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


def test_an_unsaved_design_comes_back_after_a_crash(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "designs")
    first = make_app(name="first", design_store=store)
    autosave = first.window.design.autosave
    assert autosave is not None
    with qtbot.waitSignal(autosave.saved, timeout=1500):  # on disk within the journal's half second
        first.window.design.add_text("Keep me")
    store.release()  # the session's lock goes, as when the process is killed
    second = make_app(name="second", design_store=RecoveryStore(tmp_path / "designs"))
    assert second.window.design.recover() == 1
    assert [layer.kind for layer in second.window.design.canvas.layers()] == ["text"]

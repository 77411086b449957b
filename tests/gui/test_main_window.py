"""The main window: files, saving, recovery after a kill, settings, a model that fails to load."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QComboBox, QDialog, QDoubleSpinBox, QMessageBox

from aigc_studio.gui.dialogs import RecoveryDialog
from aigc_studio.services.documents import RecoverySnapshot, RecoveryStore
from aigc_studio.services.models import ModelState
from aigc_studio.services.settings import Settings
from tests.services.fakes import FakeBackend, FakeGenerator

from .conftest import Dialogs, MakeApp

ROOT = Path(__file__).resolve().parents[2]


def test_window_layout(make_app: MakeApp) -> None:
    window = make_app().window
    menus = [action.text().replace("&", "") for action in window.menuBar().actions()]
    assert menus == ["File", "Edit", "View", "Model", "Help"]
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Writing", "Design"]
    assert window.sampling_dock.isVisible()
    assert window.model_button.text() == "fake-lm \u00b7 CPU"
    assert window.windowTitle() == "Untitled \u2014 AIGC Studio"


def test_status_bar_counts_and_latency(qtbot, make_app: MakeApp) -> None:
    window = make_app().window
    qtbot.keyClicks(window.editor, "Three small words")
    qtbot.waitUntil(lambda: window.counts_label.text() == "3 words \u00b7 17 characters",
                    timeout=3000)
    qtbot.waitUntil(lambda: window.latency_label.text().startswith("Suggestion "), timeout=5000)
    assert window.latency_label.text().endswith(" ms")


def test_save_open_and_title(qtbot, make_app: MakeApp, tmp_path: Path, dialogs: Dialogs) -> None:
    app = make_app()
    window = app.window
    qtbot.keyClicks(window.editor, "Chapter one.")
    assert window.windowTitle().startswith("*Untitled")
    dialogs.save_path = str(tmp_path / "chapter")
    save = window.actions_["save"]
    assert save.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
    save.trigger()
    path = tmp_path / "chapter.txt"
    assert path.read_text() == "Chapter one."
    assert window.windowTitle() == "chapter.txt \u2014 AIGC Studio"
    assert not window.document.modified
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("chapter")) == [
        "chapter.txt"]
    assert window.new_file()
    assert window.editor.toPlainText() == "" and window.document.path is None
    assert window.open_file(path)
    assert window.editor.toPlainText() == "Chapter one."
    assert app.settings.recent_files() == [str(path)]


def test_missing_file_is_created_on_first_save(make_app: MakeApp, tmp_path: Path) -> None:
    window = make_app().window
    path = tmp_path / "new-novel.md"
    assert window.open_file(path)
    assert window.windowTitle() == "new-novel.md \u2014 AIGC Studio"
    assert not path.exists()
    window.editor.insertPlainText("# Title\n")
    assert window.save()
    assert path.read_text() == "# Title\n"


def test_opening_a_file_primes_the_model_at_its_end(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    """The cursor lands at the end of an opened file: the model reads the text before it in the
    background, so the first keystroke there is as cheap as the next ones."""
    app = make_app()
    path = tmp_path / "chapter.txt"
    path.write_text("It was a bright cold day in April, and the clocks were", encoding="utf-8")
    with qtbot.waitSignal(app.service.primed, timeout=5000):
        assert app.window.open_file(path)
    assert app.generator.primes == [path.read_text(encoding="utf-8")]
    assert app.generator.calls == []  # nothing is suggested before the writer types


def test_non_utf8_file_is_refused_and_nothing_is_lost(qtbot, make_app: MakeApp, tmp_path: Path,
                                                      dialogs: Dialogs) -> None:
    window = make_app().window
    qtbot.keyClicks(window.editor, "my draft")
    window.editor.document().setModified(False)
    path = tmp_path / "legacy.txt"
    path.write_bytes("na\u00efve caf\u00e9".encode("cp1252"))
    assert not window.open_file(path)
    assert window.editor.toPlainText() == "my draft"
    assert window.document.path is None
    assert "is not a UTF-8 text file" in dialogs.texts("warning")[0]
    assert path.read_bytes() == "na\u00efve caf\u00e9".encode("cp1252")


def test_close_with_unsaved_changes_asks(qtbot, make_app: MakeApp, dialogs: Dialogs) -> None:
    window = make_app().window
    qtbot.keyClicks(window.editor, "unsaved")
    dialogs.question = QMessageBox.StandardButton.Cancel
    assert not window.close()
    assert window.isVisible()
    assert "Save the changes to Untitled" in dialogs.texts("question")[0]
    dialogs.question = QMessageBox.StandardButton.Discard
    assert window.close()
    assert not window.host.running


def test_find_and_replace(qtbot, make_app: MakeApp) -> None:
    window = make_app().window
    window.settings.set_value("completion/enabled", False)
    window.editor.insertPlainText("the cat and the dog and the bird")
    window.actions_["replace"].trigger()
    bar = window.find_bar
    assert bar.isVisible() and bar.replace_edit.isVisible()
    bar.find_edit.setText("the")
    bar.replace_edit.setText("a")
    assert bar.replace_all() == 3
    assert window.editor.toPlainText() == "a cat and a dog and a bird"
    window.editor.undo()
    assert window.editor.toPlainText() == "the cat and the dog and the bird"
    bar.find_edit.setText("dog")
    assert bar.find_next()
    assert window.editor.textCursor().selectedText() == "dog"
    bar.find_edit.setText("zebra")
    assert not bar.find_next()
    assert bar.message.text() == "Not found"


def test_settings_persist_through_the_panel(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    panel = app.window.sampling_panel
    temperature = panel.form.editors["sampling/temperature"]
    assert isinstance(temperature, QDoubleSpinBox)
    strategy = panel.form.editors["sampling/strategy"]
    assert isinstance(strategy, QComboBox)
    assert panel.preset_combo.currentText() == "Fast"  # the default settings
    strategy.setCurrentIndex(strategy.findData("top-p"))
    temperature.setValue(0.65)
    assert panel.preset_combo.currentText() == "Custom"
    assert not panel.form.editors["sampling/num_beams"].isEnabled()  # unused by top-p
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("Precise"))
    panel.preset_combo.activated.emit(panel.preset_combo.currentIndex())
    assert strategy.currentData() == "beam"
    assert panel.form.editors["sampling/num_beams"].isEnabled()
    app.settings.set_value("completion/debounce_ms", 420)
    app.settings.sync()
    again = Settings(tmp_path / "main.ini")
    assert again.value("sampling/strategy") == "beam"
    assert again.value("completion/debounce_ms") == 420
    assert again.matching_preset() == "Precise"


def test_continue_decoding_is_chosen_in_the_panel(qtbot, make_app: MakeApp) -> None:
    """The panel's decoding settings are the suggestions'; Continue's own style sits with its length."""
    app = make_app(FakeGenerator(lambda prompt: "and then more."))
    style = app.window.sampling_panel.findChild(QComboBox, "continue_style")
    assert style.currentData() == "Balanced"
    style.setCurrentIndex(style.findData("Creative"))
    assert app.settings.value("continue/style") == "Creative"
    qtbot.keyClicks(app.window.editor, "Once")
    with qtbot.waitSignal(app.window.suggestion.continue_finished, timeout=5000):
        app.window.start_continue()
    sent = app.generator.calls[-1].config
    assert (sent.strategy, sent.top_p, sent.temperature) == ("top-p", 0.95, 1.1)


def test_gpu_note_is_shown_where_it_helps(make_app: MakeApp) -> None:
    """The GPU's absence is said on its entry in the device list, and under the list only when the
    writer chose the GPU."""
    app = make_app()
    panel = app.window.sampling_panel
    assert "Ready: fake-lm on CPU" in panel.status_label.text()
    gpu = panel.device_combo.findData("gpu")
    assert panel.device_combo.itemText(gpu) == "GPU (not available)"
    assert "no GPU in the tests" in panel.device_combo.toolTip()
    assert panel.gpu_note.isHidden()  # Auto, on a computer without a GPU: nothing to say
    panel.device_combo.setCurrentIndex(gpu)
    assert app.settings.value("model/device") == "gpu"
    assert not panel.gpu_note.isHidden()
    assert panel.gpu_note.text() == ("The GPU cannot be used here, so the model runs on the CPU: "
                                     "no GPU in the tests.")
    app.window.model.shutdown()  # the reload the device change scheduled is not needed here


def test_a_failed_model_leaves_a_working_editor(qtbot, make_app: MakeApp,
                                                dialogs: Dialogs) -> None:
    backend = FakeBackend(error=ValueError("model.onnx: sha256 does not match the manifest"))
    app = make_app(backend=backend)
    window = app.window
    assert window.model.status.state is ModelState.FAILED
    assert "sha256 does not match" in window.statusBar().currentMessage()
    assert window.model_button.text().endswith("failed to load")
    with qtbot.assertNotEmitted(app.service.request_sent, wait=150):
        qtbot.keyClicks(window.editor, "Still writing")
    assert window.editor.toPlainText() == "Still writing"
    qtbot.mouseClick(window.model_button, Qt.MouseButton.LeftButton)
    assert "Why it did not load: model.onnx: sha256 does not match" in dialogs.texts("warning")[0]
    window.start_continue()
    assert "Cannot continue" in window.statusBar().currentMessage()


def test_corrupt_model_package_with_the_real_runtime(qtbot, make_app: MakeApp,
                                                     tmp_path: Path) -> None:
    pytest.importorskip("aigc_studio.runtime.registry")
    from aigc_studio.services.models import RuntimeBackend

    package = tmp_path / "models" / "broken-lm"
    package.mkdir(parents=True)
    (package / "manifest.json").write_text("{ this is not json")
    app = make_app(backend=RuntimeBackend([tmp_path / "models"]), load=False)  # type: ignore[arg-type]
    app.settings.set_value("model/name", "broken-lm")
    with qtbot.waitSignal(app.host.status_changed, timeout=10000,
                          check_params_cb=lambda s: s.state is ModelState.FAILED):
        app.window.model.load()
    assert app.window.model.status.error
    qtbot.keyClicks(app.window.editor, "works")
    assert app.window.editor.toPlainText() == "works"


def test_recovery_dialog_shows_what_would_be_restored(qtbot, make_app: MakeApp, tmp_path: Path,
                                                      dialogs: Dialogs) -> None:
    crashed = RecoveryStore(tmp_path / "recovery")
    crashed.write(RecoverySnapshot("Line one\nThe last line I wrote", str(tmp_path / "book.md")))
    crashed._lock.release()  # the process died
    seen: dict[str, str] = {}

    def recover(dialog: QDialog) -> int:
        assert isinstance(dialog, RecoveryDialog)
        seen["preview"] = dialog.preview.toPlainText()
        seen["item"] = dialog.list.item(0).text()
        dialog.recover_button.click()
        return int(QDialog.DialogCode.Accepted)

    dialogs.on_exec = recover
    app = make_app()
    assert app.window.offer_recovery()
    assert seen["preview"] == "Line one\nThe last line I wrote"
    assert seen["item"].startswith("book.md: 7 words")
    window = app.window
    assert window.editor.toPlainText() == "Line one\nThe last line I wrote"
    assert window.document.modified and window.document.path == tmp_path / "book.md"
    assert not crashed.file.exists()  # taken over by this session's own copy
    assert app.store.file.read_text().endswith("The last line I wrote")
    assert not window.offer_recovery()


def test_recovery_can_be_discarded(make_app: MakeApp, tmp_path: Path, dialogs: Dialogs) -> None:
    crashed = RecoveryStore(tmp_path / "recovery")
    crashed.write(RecoverySnapshot("old text"))
    crashed._lock.release()
    dialogs.on_exec = lambda dialog: (dialog.discard_button.click(), 1)[1]
    app = make_app()
    assert not app.window.offer_recovery()
    assert app.window.editor.toPlainText() == ""
    assert app.window.document.recovery_entries() == []


def test_recovery_after_sigkill_while_typing_and_saving(qtbot, make_app: MakeApp, tmp_path: Path,
                                                        dialogs: Dialogs) -> None:
    from .kill_child import words

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "tests.gui.kill_child", str(tmp_path)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    saved = autosaved = 0
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while not autosaved and time.monotonic() < deadline:
                if not selector.select(timeout=deadline - time.monotonic()):
                    break
                line = child.stdout.readline()  # waits for the child's output, not a sleep
                if not line:
                    break
                kind, _, number = line.partition(" ")
                if kind == "saved":
                    saved = int(number)
                elif kind == "autosaved" and saved and int(number) > saved:
                    autosaved = int(number)
        assert autosaved, "the child never autosaved after saving"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    text = words()
    on_disk = (tmp_path / "novel.txt").read_text()
    assert len(on_disk) >= saved and text.startswith(on_disk) and on_disk.endswith(" ")

    dialogs.on_exec = lambda dialog: (dialog.recover_button.click(), 1)[1]
    app = make_app()
    assert app.window.offer_recovery()
    recovered = app.window.editor.toPlainText()
    assert text.startswith(recovered)
    assert len(recovered) >= autosaved  # at least what the last autosave held
    assert app.window.document.path == tmp_path / "novel.txt"
    assert app.window.document.modified


def test_preferences_are_built_from_the_declarations(qtbot, make_app: MakeApp,
                                                     tmp_path: Path) -> None:
    from aigc_studio.services.settings import OPTIONS

    app = make_app()
    app.window.show_preferences()
    dialog = app.window.preferences_dialog
    assert dialog is not None and dialog.isVisible()
    expected = [k for k, o in OPTIONS.items()
                if o.group in ("completion", "continue", "editor", "documents")]
    assert list(dialog.form.editors) == expected
    debounce = dialog.form.editors["completion/debounce_ms"]
    assert debounce.maximum() == 1000 and debounce.minimum() == 0
    assert debounce.toolTip() == OPTIONS["completion/debounce_ms"].help
    debounce.setValue(250)
    assert app.service.debounce_ms == 250
    app.settings.set_value("completion/debounce_ms", 90)  # from elsewhere: the widget follows
    assert debounce.value() == 90
    dialog.close()


def test_recent_files_menu(qtbot, make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
        assert app.window.open_file(tmp_path / name)
    app.window.fill_recent_menu()
    actions = [a for a in app.window.recent_menu.actions() if a.text().endswith(".txt")]
    assert [a.text() for a in actions] == ["b.txt", "a.txt"]
    actions[1].trigger()
    assert app.window.editor.toPlainText() == "a.txt"


def test_losing_focus_writes_the_recovery_copy(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    app.settings.set_value("documents/autosave_s", 300)
    qtbot.keyClicks(app.window.editor, "precious words")
    assert not app.store.file.exists()
    app.window.document.focus_lost()  # what deactivating the window calls
    assert app.store.file.read_text().endswith("precious words")


def test_models_are_listed_in_the_panel(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    panel = app.window.sampling_panel
    qtbot.waitUntil(lambda: panel.model_combo.count() == 3, timeout=3000)
    assert [panel.model_combo.itemData(i) for i in range(3)] == ["", "fake-lm", "fake-lm-large"]
    panel.model_combo.setCurrentIndex(2)
    assert app.settings.value("model/name") == "fake-lm-large"


def test_quitting_without_closing_keeps_unsaved_text(qtbot, make_app: MakeApp,
                                                     tmp_path: Path) -> None:
    app = make_app()
    qtbot.keyClicks(app.window.editor, "words nobody decided about")
    app.window.shutdown()  # QApplication.quit() at logout, without the close prompt
    later = RecoveryStore(tmp_path / "recovery")
    entries = later.pending()
    assert [e.text for e in entries] == ["words nobody decided about"]
    later.close()


def test_discarding_on_close_leaves_no_recovery(qtbot, make_app: MakeApp, tmp_path: Path,
                                                dialogs: Dialogs) -> None:
    app = make_app()
    qtbot.keyClicks(app.window.editor, "throw this away")
    app.window.document.focus_lost()
    assert app.store.file.exists()
    dialogs.question = QMessageBox.StandardButton.Discard
    assert app.window.close()
    later = RecoveryStore(tmp_path / "recovery")
    assert later.pending() == []
    later.close()


# -- the file on disk: another program's changes, read-only files, sizes, recovery off ------------


def _answer(dialogs: Dialogs, key: str, seen: list[str]) -> None:
    """Answer the next file questions (ChoiceDialog) with ``key``, noting which dialog asked."""
    from aigc_studio.gui.dialogs import ChoiceDialog

    def answer(dialog: QDialog) -> int:
        assert isinstance(dialog, ChoiceDialog)
        seen.append(dialog.objectName())
        dialog.buttons_[key].click()
        return 0

    dialogs.on_exec = answer


def test_saving_over_another_programs_change_asks(qtbot, make_app: MakeApp, tmp_path: Path,
                                                  dialogs: Dialogs) -> None:
    window = make_app().window
    path = tmp_path / "novel.txt"
    path.write_text("first draft\n")
    assert window.open_file(path)
    window.editor.insertPlainText("my words ")
    path.write_text("their version\n")  # another program saves meanwhile
    seen: list[str] = []
    _answer(dialogs, "cancel", seen)
    assert not window.save()
    assert path.read_text() == "their version\n" and window.document.modified
    dialogs.save_path = str(tmp_path / "mine.txt")
    _answer(dialogs, "save_as", seen)
    assert window.save()
    assert (tmp_path / "mine.txt").read_text() == "first draft\nmy words "  # typed at the end
    assert path.read_text() == "their version\n"
    assert window.open_file(path)
    window.editor.insertPlainText("again ")
    path.write_text("their second version\n")
    _answer(dialogs, "overwrite", seen)
    assert window.save()
    assert path.read_text() == "their version\nagain "
    assert seen == ["fileChangedDialog"] * 3
    window.editor.insertPlainText("no question ")  # nothing changed on disk since: no question
    assert window.save() and seen == ["fileChangedDialog"] * 3


def test_a_read_only_file_is_not_replaced(qtbot, make_app: MakeApp, tmp_path: Path,
                                          dialogs: Dialogs) -> None:
    window = make_app().window
    path = tmp_path / "locked.txt"
    path.write_text("keep me")
    assert window.open_file(path)
    path.chmod(0o444)
    window.editor.insertPlainText("edit: ")
    seen: list[str] = []
    _answer(dialogs, "cancel", seen)
    assert not window.save()
    assert path.read_text() == "keep me" and window.editor.toPlainText() == "keep meedit: "
    dialogs.save_path = str(tmp_path / "copy.txt")
    _answer(dialogs, "save_as", seen)
    assert window.save()
    assert (tmp_path / "copy.txt").read_text() == "keep meedit: " and path.read_text() == "keep me"
    assert seen == ["readOnlyDialog", "readOnlyDialog"]


def test_coming_back_to_a_changed_file_offers_reload(qtbot, make_app: MakeApp, tmp_path: Path,
                                                     dialogs: Dialogs) -> None:
    window = make_app().window
    path = tmp_path / "novel.txt"
    path.write_text("one")
    assert window.open_file(path)
    seen: list[str] = []
    _answer(dialogs, "reload", seen)
    assert not window.check_disk()  # nothing changed: no question
    path.write_text("one, two")
    assert window.check_disk()
    assert window.editor.toPlainText() == "one, two" and not window.document.modified
    window.editor.insertPlainText(" mine")
    path.write_text("three")
    _answer(dialogs, "keep", seen)
    assert not window.check_disk()
    assert window.editor.toPlainText() == "one, two mine"
    assert not window.check_disk() and len(seen) == 2  # asked once per change
    assert window.save() and path.read_text() == "one, two mine"  # kept: saving overwrites
    path.write_text("four")
    _answer(dialogs, "reload", seen)
    window.changeEvent(_activation_event())  # what the window gets when it comes back
    qtbot.waitUntil(lambda: window.editor.toPlainText() == "four", timeout=2000)
    assert seen == ["diskChangedDialog"] * 3


def _activation_event() -> QEvent:
    return QEvent(QEvent.Type.ActivationChange)


def test_a_file_that_cannot_be_opened_keeps_the_open_work(qtbot, make_app: MakeApp, tmp_path: Path,
                                                          dialogs: Dialogs) -> None:
    window = make_app().window
    qtbot.keyClicks(window.editor, "unsaved work")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    dialogs.question = QMessageBox.StandardButton.Discard  # would drop the work if asked first
    assert not window.open_file(fifo)
    assert window.editor.toPlainText() == "unsaved work" and window.document.modified
    assert dialogs.texts("question") == []
    assert "named pipe" in dialogs.texts("warning")[0]
    assert "The open document is unchanged" in dialogs.texts("warning")[0]


def test_recovery_off_is_said_once_and_the_editor_works(qtbot, tmp_path: Path,
                                                        dialogs: Dialogs) -> None:
    from PySide6.QtWidgets import QLabel

    from aigc_studio.app import build_window

    blocker = tmp_path / "blocker"
    blocker.write_text("")  # the data folder cannot be created under a file
    window = build_window(Settings(tmp_path / "main.ini"), FakeBackend(),
                          RecoveryStore(blocker / "recovery"))
    qtbot.addWidget(window)
    try:
        assert not window.offer_recovery()
        assert not window.offer_recovery()
        warnings = dialogs.texts("warning")
        assert len(warnings) == 1 and "Autosave and recovery are off" in warnings[0]
        assert "blocker" in warnings[0] and "Everything else works" in warnings[0]
        label = window.statusBar().findChild(QLabel, "recoveryOffLabel")
        assert label is not None and label.text() == "Autosave off"
        qtbot.keyClicks(window.editor, "still works")
        window.document.focus_lost()
        dialogs.save_path = str(tmp_path / "saved.txt")
        assert window.save() and (tmp_path / "saved.txt").read_text() == "still works"
    finally:
        window.shutdown()


def test_a_10_mb_paste_is_kept_whole_by_the_autosave(qtbot, make_app: MakeApp,
                                                     tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    app = make_app()
    app.settings.set_value("completion/enabled", False)
    window = app.window
    qtbot.keyClicks(window.editor, "before ")
    pasted = "A pasted line of text.\n" * (10 * 1024 * 1024 // 23)
    QApplication.clipboard().setText(pasted)
    window.editor.paste()
    assert window.editor.toPlainText() == "before " + pasted
    with qtbot.waitSignal(window.document.autosave.saved, timeout=10000):
        pass  # the journal timer writes it within a second, without a pause in the typing
    window.shutdown()
    later = RecoveryStore(tmp_path / "recovery")
    assert [e.text for e in later.pending()] == ["before " + pasted]
    later.close()

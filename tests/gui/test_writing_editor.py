"""The writing editor: ghost text painted after the cursor, and the keys that use it."""

from __future__ import annotations

import threading

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QImage, QTextCursor

from aigc_studio.gui.writing_editor import WritingEditorView, utf16_slice
from tests.services.fakes import FakeGenerator, Recorder

from .conftest import MakeApp

SUGGESTION = " quick brown fox jumps"


def wait_for_ghost(qtbot, editor: WritingEditorView, ghost: str | None = None) -> None:
    model = editor.suggestion
    if ghost is None:
        qtbot.waitUntil(lambda: model.visible and not model.waiting, timeout=5000)
    else:
        qtbot.waitUntil(lambda: model.ghost == ghost and not model.waiting, timeout=5000)


def grey_pixels_after_cursor(editor: WritingEditorView) -> int:
    """Grey pixels on the cursor's line, right of the cursor (the ghost text)."""
    editor.viewport().repaint()
    image: QImage = editor.viewport().grab().toImage()
    rect = editor.cursorRect()
    count = 0
    for y in range(max(rect.top(), 0), min(rect.bottom(), image.height() - 1)):
        for x in range(rect.right() + 2, min(rect.right() + 300, image.width())):
            color = image.pixelColor(QPoint(x, y))
            r, g, b = color.red(), color.green(), color.blue()
            if max(r, g, b) - min(r, g, b) < 16 and 40 < r < 215:
                count += 1
    return count


def test_typing_asks_once_and_paints_grey_ghost_text(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    editor = app.window.editor
    sent = Recorder()
    app.service.request_sent.connect(sent)
    qtbot.keyClicks(editor, "The")
    assert grey_pixels_after_cursor(editor) == 0
    wait_for_ghost(qtbot, editor, SUGGESTION)
    assert len(sent.items) == 1
    assert [call.prompt for call in app.generator.calls] == ["The"]
    assert editor.toPlainText() == "The"  # the ghost is not in the document
    assert grey_pixels_after_cursor(editor) > 30
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert not editor.suggestion.visible
    assert grey_pixels_after_cursor(editor) == 0
    assert editor.toPlainText() == "The"


def test_tab_accepts_all_as_one_undo_step(qtbot, make_app: MakeApp) -> None:
    editor = make_app().window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == "The quick brown fox jumps"
    assert editor.textCursor().position() == len("The quick brown fox jumps")
    editor.undo()
    assert editor.toPlainText() == "The"


def test_tab_without_a_suggestion_inserts_a_tab(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    app.settings.set_value("completion/enabled", False)
    editor = app.window.editor
    qtbot.keyClicks(editor, "Name")
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == "Name\t"


def test_ctrl_right_accepts_one_word(qtbot, make_app: MakeApp) -> None:
    editor = make_app().window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    qtbot.keyClick(editor, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert editor.toPlainText() == "The quick"
    assert editor.suggestion.ghost == " brown fox jumps"
    qtbot.keyClick(editor, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert editor.toPlainText() == "The quick brown"
    assert grey_pixels_after_cursor(editor) > 30


def test_typing_through_keeps_the_rest(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    editor = app.window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    with qtbot.assertNotEmitted(app.service.request_sent, wait=100):
        qtbot.keyClicks(editor, " qui")
    assert editor.suggestion.ghost == "ck brown fox jumps"
    assert grey_pixels_after_cursor(editor) > 30
    qtbot.keyClicks(editor, "x")  # not what was suggested
    assert not editor.suggestion.visible
    assert editor.toPlainText() == "The quix"


def test_alt_bracket_cycles_alternatives(qtbot, make_app: MakeApp) -> None:
    window = make_app().window
    editor = window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    qtbot.keyClick(editor, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: len(editor.suggestion.alternatives) > 1, timeout=5000)
    assert editor.suggestion.ghost == " variant 1"
    qtbot.keyClick(editor, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.AltModifier)
    assert editor.suggestion.ghost == " variant 2"
    count = len(editor.suggestion.alternatives)
    assert window.statusBar().currentMessage().startswith(f"Suggestion 3 of {count}")
    qtbot.keyClick(editor, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(editor, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.AltModifier)
    assert editor.suggestion.ghost == SUGGESTION
    assert editor.toPlainText() == "The"
    assert window.statusBar().currentMessage().startswith(f"Suggestion 1 of {count}")
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert window.statusBar().currentMessage() == ""


def test_the_status_bar_follows_alt_bracket(qtbot, make_app: MakeApp) -> None:
    same = FakeGenerator(delay_s=0.05, alternatives=lambda prompt, count: [SUGGESTION] * count)
    window = make_app(same).window
    editor = window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    qtbot.keyClick(editor, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.AltModifier)
    assert editor.suggestion.finding_alternatives  # four model steps of 50 ms are still to come
    assert window.statusBar().currentMessage() == "Finding other suggestions\u2026"
    qtbot.waitUntil(lambda: not editor.suggestion.finding_alternatives, timeout=5000)
    assert window.statusBar().currentMessage() == "No other suggestion here"
    assert editor.suggestion.ghost == SUGGESTION and len(editor.suggestion.alternatives) == 1


def test_alt_backslash_asks_now_then_longer(qtbot, make_app: MakeApp) -> None:
    app = make_app(debounce_ms=1000)
    editor = app.window.editor
    app.settings.set_value("completion/enabled", False)
    qtbot.keyClicks(editor, "The")
    app.settings.set_value("completion/enabled", True)
    qtbot.keyClick(editor, Qt.Key.Key_Backslash, Qt.KeyboardModifier.AltModifier)
    wait_for_ghost(qtbot, editor, SUGGESTION)
    qtbot.keyClick(editor, Qt.Key.Key_Backslash, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: len(editor.suggestion.ghost.split()) > 4, timeout=5000)


def test_the_ghost_wraps_like_real_text(qtbot, make_app: MakeApp) -> None:
    generator = FakeGenerator(lambda prompt: " and" + " wonderfully" * 40)
    app = make_app(generator)
    app.settings.set_value("completion/max_words", 30)
    editor = app.window.editor
    editor.resize(300, 400)
    qtbot.keyClicks(editor, "Once")
    editor.suggestion.request_now()
    qtbot.waitUntil(lambda: len(editor.suggestion.ghost.split()) > 10, timeout=5000)
    editor.viewport().repaint()
    image = editor.viewport().grab().toImage()
    rect = editor.cursorRect()
    rows_with_grey = set()
    for y in range(rect.top(), min(image.height(), rect.top() + 8 * rect.height())):
        for x in range(0, image.width()):
            color = image.pixelColor(QPoint(x, y))
            if max(color.red(), color.green(), color.blue()) - min(
                    color.red(), color.green(), color.blue()) < 16 and 40 < color.red() < 215:
                rows_with_grey.add((y - rect.top()) // rect.height())
                break
    assert len(rows_with_grey) >= 3  # it went on over several lines


def test_continue_streams_as_one_undo_step_and_stops(qtbot, make_app: MakeApp) -> None:
    generator = FakeGenerator(lambda prompt: "".join(f" w{i}" for i in range(400)),
                              delay_s=0.01)
    app = make_app(generator)
    window, editor = app.window, app.window.editor
    qtbot.keyClicks(editor, "Once")
    editor.suggestion.dismiss()
    qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert editor.suggestion.continuing
    assert window.continue_bar.isVisible()
    qtbot.waitUntil(lambda: len(editor.toPlainText()) > len("Once w0 w1 w2"), timeout=5000)
    with qtbot.waitSignal(editor.suggestion.continue_finished, timeout=5000) as blocker:
        qtbot.mouseClick(window.continue_bar.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["stopped"]
    assert not window.continue_bar.isVisible()
    text = editor.toPlainText()
    assert text.startswith("Once w0 w1 w2") and len(text) < 400 * 4
    editor.undo()
    assert editor.toPlainText() == "Once"


def test_escape_stops_continue(qtbot, make_app: MakeApp) -> None:
    generator = FakeGenerator(lambda prompt: "".join(f" w{i}" for i in range(400)),
                              delay_s=0.01)
    editor = make_app(generator).window.editor
    qtbot.keyClicks(editor, "Go")
    editor.suggestion.dismiss()
    editor.suggestion.start_continue()
    qtbot.waitUntil(lambda: len(editor.toPlainText()) > 8, timeout=5000)
    with qtbot.waitSignal(editor.suggestion.continue_finished, timeout=5000):
        qtbot.keyClick(editor, Qt.Key.Key_Escape)
    length = len(editor.toPlainText())
    with qtbot.assertNotEmitted(editor.textChanged, wait=100):
        pass
    assert len(editor.toPlainText()) == length


def test_ui_keeps_ticking_while_a_slow_model_works(qtbot, make_app: MakeApp) -> None:
    """Typing and a Continue run the model on the worker thread: the UI thread's timer fires while a
    model step is under way."""
    generator = FakeGenerator(lambda prompt: " ".join(f"w{i}" for i in range(300)),
                              delay_s=0.01)
    app = make_app(generator)
    app.settings.set_value("completion/max_words", 30)
    editor = app.window.editor
    ticks: list[bool] = []  # per timer tick: was the model inside a step?
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(generator.in_step))
    timer.start()
    try:
        for word in ("It ", "was ", "a ", "dark "):
            qtbot.keyClicks(editor, word)
            qtbot.waitUntil(lambda: bool(generator.calls) and generator.calls[-1].steps >= 3,
                            timeout=5000)
        editor.suggestion.start_continue()
        qtbot.waitUntil(lambda: len(editor.toPlainText()) > 60, timeout=5000)
        with qtbot.waitSignal(editor.suggestion.continue_finished, timeout=5000):
            editor.suggestion.stop_continue()
    finally:
        timer.stop()
    assert generator.thread is not None and generator.thread is not threading.main_thread()
    assert sum(ticks) >= 5, f"{sum(ticks)} of {len(ticks)} UI ticks came during a model step"


def test_no_suggestion_inside_a_paragraph(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    editor = app.window.editor
    editor.set_text("The end of the story.")
    cursor = editor.textCursor()
    cursor.setPosition(4)
    editor.setTextCursor(cursor)
    with qtbot.assertNotEmitted(app.service.request_sent, wait=150):
        qtbot.keyClicks(editor, "x")


def test_a_huge_paste_stays_responsive(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    editor = app.window.editor
    paragraph = ("It was the best of times, it was the worst of times, it was the age of "
                 "wisdom, it was the age of foolishness. ") * 10 + "\n"
    text = paragraph * (10_000_000 // len(paragraph))
    assert len(text) > 9_900_000
    editor.insertPlainText(text)
    wait_for_ghost(qtbot, editor)
    prompt = app.generator.calls[-1].prompt
    assert len(prompt) <= 1600 and text.endswith(prompt)  # only the text near the cursor
    qtbot.keyClicks(editor, "And")
    qtbot.waitUntil(lambda: app.generator.calls[-1].prompt.endswith("\nAnd"), timeout=5000)
    assert len(app.generator.calls[-1].prompt) <= 1600
    qtbot.waitUntil(lambda: app.window.document.counts[1] == len(text) + 3, timeout=20000)
    assert app.window.document.counts[0] == len(text.split()) + 1


def test_utf16_slice() -> None:
    assert utf16_slice("abc", 1, 2) == "b"
    assert utf16_slice("a\U0001f600b", 1, 3) == "\U0001f600"
    assert utf16_slice("a\U0001f600b", 3) == "b"


def test_selection_hides_the_ghost(qtbot, make_app: MakeApp) -> None:
    editor = make_app().window.editor
    qtbot.keyClicks(editor, "The")
    wait_for_ghost(qtbot, editor)
    editor.moveCursor(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor)
    assert not editor.suggestion.visible


def test_with_the_real_runtime(qtbot, make_app: MakeApp, tiny_text_package) -> None:
    """End to end: a tiny trained model in the worker thread, its suggestion painted and accepted."""
    from aigc_studio.services.models import RuntimeBackend

    app = make_app(backend=RuntimeBackend([tiny_text_package.parent]))  # type: ignore[arg-type]
    assert app.window.model.status.state == "ready", app.window.model.status.error
    editor = app.window.editor
    qtbot.keyClicks(editor, "The quick brown")
    qtbot.waitUntil(lambda: editor.suggestion.ghost.startswith(" fox"), timeout=20000)
    assert grey_pixels_after_cursor(editor) > 30
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText().startswith("The quick brown fox")

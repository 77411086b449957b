"""Fault tests for the writer's panel (issue #16, "The writer's panel, as a writer met it"): the
Sampling panel, the status bar's word count. Each test names its finding and failed before its fix."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from tests.gui import conftest as gui_fixtures
from tests.gui.conftest import MakeApp
from tests.services.fakes import FakeBackend, FakeGenerator

dialogs = gui_fixtures.dialogs  # the window's fixtures (dialogs never block), here too
make_app = gui_fixtures.make_app

RUNTIME_GPU_REASON = ("this onnxruntime build has no CUDA provider (install onnxruntime-gpu with a "
                      "CUDA driver to use the GPU); available: AzureExecutionProvider, "
                      "CPUExecutionProvider")


def _wheel(widget: QWidget, steps: int = -1) -> None:
    """One notch of the mouse wheel (down for a negative ``steps``) over ``widget``'s middle."""
    local = QPointF(widget.rect().center())
    event = QWheelEvent(local, QPointF(widget.mapToGlobal(local.toPoint())), QPoint(),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_over_an_unfocused_field_leaves_its_setting(qtbot, make_app: MakeApp) -> None:
    """Finding: scrolling the mouse wheel over the Sampling panel changed the spin box under the
    pointer and saved it (the repetition window went from 256 to 96 while scrolling the panel)."""
    app = make_app()
    panel = app.window.sampling_panel
    length = panel.findChild(QWidget, "completion_max_words")
    window = panel.form.editors["sampling/repetition_window"]
    for spin, key, value in ((length, "completion/max_words", 4),
                             (window, "sampling/repetition_window", 256)):
        assert not spin.hasFocus()
        for _ in range(10):
            _wheel(spin)
        assert spin.value() == value  # type: ignore[attr-defined]
        assert app.settings.value(key) == value
        assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel does not take the focus
    _wheel(panel.preset_combo)  # a combo box, where the wheel even applied a preset
    assert panel.preset_combo.currentText() == "Fast"
    assert app.settings.value("sampling/strategy") == "greedy"

    length.setFocus()  # clicked or reached with Tab: now the wheel is the writer's intent
    qtbot.waitUntil(length.hasFocus)
    _wheel(length)
    assert app.settings.value("completion/max_words") == 3


def test_at_640_by_480_the_editor_keeps_most_of_the_width(qtbot, make_app: MakeApp) -> None:
    """Finding: at a 640x480 window the panel did not shrink and clipped the editor to 300 px."""
    window = make_app().window
    window.resize(640, 480)
    qtbot.waitUntil(lambda: window.width() == 640)
    qtbot.waitUntil(lambda: window.editor.width() >= 0.55 * window.width(), timeout=2000)
    panel = window.sampling_panel
    assert window.sampling_dock.isVisible()
    assert panel.scroll.verticalScrollBar().maximum() > 0  # the rest is a scroll away


def test_the_panel_opens_on_presets_not_on_a_developers_console(make_app: MakeApp) -> None:
    """Finding: the panel read as a developer's console: Min-p, repetition window, busy-wait and a
    permanent "GPU not available ... AzureExecutionProvider" notice."""
    class Backend(FakeBackend):
        def gpu_status(self) -> tuple[bool, str]:
            return False, RUNTIME_GPU_REASON

    generator = FakeGenerator()
    generator.device_note = RUNTIME_GPU_REASON  # type: ignore[misc]
    app = make_app(backend=Backend(generator))
    panel = app.window.sampling_panel
    for key in ("sampling/min_p", "sampling/repetition_window"):
        assert not panel.form.editors[key].isVisibleTo(panel)
    assert not panel.findChild(QWidget, "model_spin").isVisibleTo(panel)  # busy-wait
    assert panel.preset_combo.isVisibleTo(panel)
    assert panel.gpu_note.isHidden()  # the writer did not ask for the GPU
    shown = [w.text() for w in panel.findChildren(QLabel) if w.isVisibleTo(panel)]
    tips = [w.toolTip() for w in panel.findChildren(QWidget)]
    combo = panel.device_combo
    tips += [str(combo.itemData(i, Qt.ItemDataRole.ToolTipRole)) for i in range(combo.count())]
    panel.device_combo.setCurrentIndex(panel.device_combo.findData("gpu"))
    assert not panel.gpu_note.isHidden()  # chose the GPU: now it helps to know why not
    shown += [panel.gpu_note.text(), panel.status_label.text(), app.window.model_button.toolTip()]
    assert not [text for text in shown + tips if "ExecutionProvider" in text]
    app.window.model.shutdown()  # the reload the device change scheduled is not needed


def test_the_word_count_follows_each_keystroke(qtbot, make_app: MakeApp) -> None:
    """Finding: the word count in the status bar lagged behind the text (it was recounted only
    300 ms after the last change, so never while the writer typed steadily)."""
    window = make_app().window
    for char in "Three small words":
        qtbot.keyClicks(window.editor, char)
        text = window.editor.toPlainText()
        assert window.counts_label.text() == (f"{len(text.split())} words \u00b7 "
                                              f"{len(text)} characters")
    assert window.counts_label.text() == "3 words \u00b7 17 characters"

"""The sampling panel: presets first, Advanced folded and remembered, what a choice costs."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QLineEdit, QWidget

from aigc_studio.core.sampling import PRESETS
from aigc_studio.gui.sampling_panel import cost_note, plain_gpu_reason

from .conftest import MakeApp


def test_advanced_is_folded_by_default_and_remembered(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    panel = app.window.sampling_panel
    assert panel.advanced.isHidden() and not panel.advanced_button.isChecked()
    panel.advanced_button.click()
    assert panel.advanced.isVisibleTo(panel)
    assert panel.form.editors["sampling/min_p"].isVisibleTo(panel)
    assert app.settings.value("panel/advanced") is True
    app.settings.sync()
    again = make_app(name="main").window.sampling_panel  # the same settings file
    assert again.advanced_button.isChecked() and again.advanced.isVisibleTo(again)


def test_the_sampling_panel_folds_away_and_stays_so(qtbot, make_app: MakeApp) -> None:
    app = make_app()
    action = app.window.sampling_dock.toggleViewAction()
    assert action.text().replace("&", "") == "Sampling Panel"
    action.trigger()
    assert not app.window.sampling_dock.isVisible()
    assert app.window.close()
    again = make_app(name="main").window
    assert not again.sampling_dock.isVisible()


def test_the_preset_note_says_what_a_choice_costs(make_app: MakeApp) -> None:
    app = make_app()
    panel = app.window.sampling_panel
    assert panel.preset_note.text() == cost_note(PRESETS["Fast"])
    assert "quickest" in panel.preset_note.text()
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("Precise"))
    panel.preset_combo.activated.emit(panel.preset_combo.currentIndex())
    note = panel.preset_note.text()
    assert "greedy" in note and "beam search over 4" in note and "second" in note
    app.settings.set_value("sampling/num_beams", 2)  # custom now: the note follows the settings
    assert "beam search over 2" in panel.preset_note.text()
    assert panel.preset_combo.currentText() == "Custom"
    assert "as quick as Fast" in cost_note(PRESETS["Balanced"])


def test_the_presets_come_first(make_app: MakeApp) -> None:
    panel = make_app().window.sampling_panel
    fields = [w for w in panel.findChildren(QWidget) if w.isVisibleTo(panel)
              and isinstance(w, (QComboBox, QAbstractSpinBox, QCheckBox, QLineEdit))]
    top = min(fields, key=lambda w: w.mapTo(panel, w.rect().topLeft()).y())
    assert top is panel.preset_combo


def test_plain_gpu_reason_leaves_out_the_provider_list() -> None:
    reason = ("this onnxruntime build has no CUDA provider (install onnxruntime-gpu with a CUDA "
              "driver to use the GPU); available: AzureExecutionProvider, CPUExecutionProvider")
    assert plain_gpu_reason(reason) == ("this onnxruntime build has no CUDA provider (install "
                                        "onnxruntime-gpu with a CUDA driver to use the GPU)")
    assert plain_gpu_reason("CUDAExecutionProvider failed") == "failed"
    assert plain_gpu_reason("") == "no usable GPU was found"

"""The generation panel on the fake image model: live slider drags, Add to canvas and drags out,
PNG drops, the wheel guard, the controls following the view-model without loops, and the
interpolation's frame count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from aigc_studio.core.png_record import read_record
from aigc_studio.gui.generation_panel import GenerationPanel
from aigc_studio.gui.image_preview import IMAGE_MIME, image_mime_data
from aigc_studio.services.image_service import ImageService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ImageSettings
from aigc_studio.viewmodels.image import MAX_FRAMES, GenerationViewModel
from tests.services.fakes import FakeBackend, FakeImageGenerator, Recorder

from .conftest import Dialogs


@dataclass
class Panel:
    panel: GenerationPanel
    vm: GenerationViewModel
    generator: FakeImageGenerator


@pytest.fixture
def panel(qtbot) -> Iterator[Panel]:
    generator = FakeImageGenerator(delay_s=0.005)
    backend = FakeBackend()
    backend.image_generators = {generator.name: generator}
    host = ModelHost(backend)
    service = ImageService(host)
    vm = GenerationViewModel(service)
    widget = GenerationPanel(vm)
    qtbot.addWidget(widget)
    widget.show()
    host.start()
    with qtbot.waitSignal(vm.image_changed, timeout=5000):
        vm.refresh_models()
    qtbot.waitUntil(lambda: len(widget.direction_sliders) == 6, timeout=5000)
    yield Panel(widget, vm, generator)
    vm.shutdown()
    service.shutdown()
    host.shutdown()


def test_a_slider_drag_updates_the_preview_live(qtbot, panel: Panel) -> None:
    before = len(panel.generator.calls)
    slider = panel.panel.psi_slider
    for value in range(20, 101):
        slider.setValue(value)  # one request per value change, as a drag sends
    qtbot.waitUntil(lambda: panel.panel.preview.image is not None
                    and panel.panel.preview.image.settings.psi == 1.0, timeout=10000)
    assert len(panel.generator.calls) - before < 81
    assert panel.panel.psi_label.text() == "1.00"


def test_controls_follow_the_view_model(qtbot, panel: Panel) -> None:
    settings = ImageSettings(seed=77, psi=0.5, mix_seed=3, mix_layers="fine", directions=((1, -2.0),),
                             text="red heart")
    panel.vm.set_settings(settings)
    p = panel.panel
    assert (int(p.seed_box.value()), p.psi_slider.value(), p.mix_box.isChecked()) == (77, 50, True)
    assert p.mix_layers_combo.currentText() == "fine" and p.direction_sliders[1].value() == -200
    assert p.describe_edit.text() == "red heart" and panel.vm.settings == settings  # no loop changed it


def test_add_to_canvas_emits_the_png_and_its_record(qtbot, panel: Panel) -> None:
    with qtbot.waitSignal(panel.panel.add_to_canvas_requested, timeout=2000) as blocker:
        panel.panel.add_button.click()
    png, record_json = blocker.args
    assert read_record(png).to_json() == record_json
    mime = image_mime_data(panel.vm.current)
    assert bytes(mime.data(IMAGE_MIME).data()) == png and bytes(mime.data("image/png").data()) == png


def test_a_dropped_png_restores_the_settings(qtbot, panel: Panel) -> None:
    settings = ImageSettings(seed=123, psi=0.9)
    img, record = panel.generator.generate(settings)
    mime = QMimeData()
    mime.setData(IMAGE_MIME, panel.generator.png(img, record))
    panel.vm.restore_from_png(bytes(mime.data(IMAGE_MIME).data()))
    assert int(panel.panel.seed_box.value()) == 123 and panel.panel.psi_slider.value() == 90


def test_the_wheel_changes_a_slider_only_when_focused(qtbot, panel: Panel) -> None:
    slider = panel.panel.direction_sliders[0]
    event = QWheelEvent(QPointF(5, 5), QPointF(5, 5), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(slider, event)
    assert slider.value() == 0


def test_history_click_restores_and_breed_needs_two_picks(qtbot, panel: Panel) -> None:
    panel.vm.keep()
    panel.vm.set_seed(5)
    qtbot.waitUntil(lambda: panel.panel.history_view.count() == 2, timeout=5000)
    messages = Recorder()
    panel.panel.breed_button.click()
    assert "Select two" in panel.panel.message_label.text() and not messages.items
    first = panel.panel.history_view.item(0)
    panel.panel.history_view.itemClicked.emit(first)
    assert panel.vm.settings.seed == panel.vm.history[0].settings.seed


def test_the_chosen_frame_count_reaches_the_animation(qtbot, panel: Panel, dialogs: Dialogs,
                                                       tmp_path: Path) -> None:
    from PIL import Image, ImageSequence

    p = panel.panel
    assert (p.frames_box.minimum(), p.frames_box.maximum(), p.frames_box.value()) == (2, MAX_FRAMES, 24)
    panel.vm.keep()
    panel.vm.set_seed(9)
    qtbot.waitUntil(lambda: p.history_view.count() == 2, timeout=5000)
    for row in range(2):
        p.history_view.item(row).setSelected(True)
    p.frames_box.setValue(7)
    out = tmp_path / "walk.gif"
    dialogs.save_path = str(out)
    with qtbot.waitSignal(panel.vm.animation_exported, timeout=10000):
        p.interpolate_button.click()
    with Image.open(out) as gif:
        assert sum(1 for _ in ImageSequence.Iterator(gif)) == 7

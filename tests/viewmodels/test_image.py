"""The generation view-model, on the fake image model, under a bare QCoreApplication: live previews,
history restore and JSON, PNG drops, breeding lineage, the description's message and GIF export."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.core.png_record import RECORD_KEY, read_text, with_text
from aigc_studio.services.image_service import ImageService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ImageSettings
from aigc_studio.viewmodels.image import GenerationViewModel
from tests.services.fakes import FakeBackend, FakeImageGenerator, Recorder

MakeVm = Callable[..., tuple[GenerationViewModel, FakeImageGenerator]]


@pytest.fixture
def make_vm(qtbot) -> Iterator[MakeVm]:
    made: list[tuple[GenerationViewModel, ImageService, ModelHost]] = []

    def make(generator: FakeImageGenerator | None = None) -> tuple[GenerationViewModel, FakeImageGenerator]:
        generator = generator or FakeImageGenerator()
        backend = FakeBackend()
        backend.image_generators = {generator.name: generator}
        host = ModelHost(backend)
        service = ImageService(host)
        vm = GenerationViewModel(service)
        made.append((vm, service, host))
        host.start()
        with qtbot.waitSignal(vm.image_changed, timeout=5000):
            vm.refresh_models()  # the first model is chosen and shown
        qtbot.waitUntil(lambda: vm.spec is not None, timeout=5000)
        return vm, generator

    yield make
    for vm, service, host in made:
        vm.shutdown()
        service.shutdown()
        host.shutdown()


def test_a_slider_drag_shows_the_last_value(qtbot, make_vm: MakeVm) -> None:
    vm, generator = make_vm(FakeImageGenerator(delay_s=0.01))
    before = len(generator.calls)
    shown = Recorder()
    vm.image_changed.connect(shown)
    for i in range(60):
        vm.set_psi(0.4 + i / 100)
    qtbot.waitUntil(lambda: bool(shown.items) and shown.items[-1].settings.psi == 0.99, timeout=10000)
    assert len(generator.calls) - before < 30
    assert vm.current is not None and vm.current.settings == vm.settings


def test_properties_signal_only_on_a_real_change(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm()
    changes = Recorder()
    vm.settings_changed.connect(changes)
    vm.set_seed(5)
    vm.set_seed(5)
    vm.set_direction(1, 0.0)   # no offset already
    vm.set_smooth(False)
    assert [s.seed for s in changes.items] == [5]


def test_history_restores_every_setting_and_round_trips_json(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm()
    vm.keep()  # the first image, at once
    vm.set_settings(ImageSettings(seed=11, psi=0.6, mix_seed=3, mix_layers="fine", directions=((2, 1.5),),
                                  text="red heart"))
    qtbot.waitUntil(lambda: len(vm.history) == 2, timeout=5000)  # this one settled
    first, second = vm.history
    assert second.settings.seed == 11 and second.image is not None
    vm.restore(first.entry_id)
    assert vm.settings == first.settings
    text = vm.history_json()
    with qtbot.waitSignal(vm.history_changed, timeout=5000,
                          check_params_cb=lambda entries: all(e.image is not None for e in entries)):
        assert vm.load_history_json(text)
    assert [e.settings for e in vm.history] == [first.settings, second.settings]
    assert not vm.load_history_json('{"entries": []}') and "history_version" in vm.message


def test_a_png_drop_restores_the_settings(qtbot, make_vm: MakeVm) -> None:
    vm, generator = make_vm()
    settings = ImageSettings(seed=42, psi=0.8, mix_seed=7, mix_layers="coarse", text="cat")
    img, record = generator.generate(settings)
    assert vm.restore_from_png(generator.png(img, record))
    assert vm.settings == settings and "seed 42" in vm.message


def test_an_edited_record_is_refused_with_a_message(qtbot, make_vm: MakeVm) -> None:
    vm, generator = make_vm()
    img, record = generator.generate(ImageSettings(seed=42))
    png = generator.png(img, record)
    edited = with_text(png, {RECORD_KEY: read_text(png)[RECORD_KEY].replace('"seed": 42', '"seed": 43')})
    before = vm.settings
    assert not vm.restore_from_png(edited)
    assert "edited" in vm.message and vm.settings == before
    assert not vm.restore_from_png(b"\x89PNG\r\n\x1a\n") and "Cannot restore" in vm.message


def test_breeding_keeps_the_lineage(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm()
    vm.keep()
    vm.set_seed(2)
    qtbot.waitUntil(lambda: len(vm.history) == 2, timeout=5000)
    a, b = vm.history
    with qtbot.waitSignal(vm.variations_changed, timeout=5000):
        assert vm.breed(a.entry_id, b.entry_id)
    children = vm.history[2:]
    assert len(children) == 6 and all(c.parents == (a.entry_id, b.entry_id) for c in children)
    assert {(c.settings.seed, c.settings.mix_seed, c.settings.mix_layers) for c in children} == {
        (s, m, g) for s, m in ((a.settings.seed, b.settings.seed), (b.settings.seed, a.settings.seed))
        for g in ("coarse", "middle", "fine")}
    assert not vm.breed(a.entry_id, a.entry_id) and "two different" in vm.message


def test_the_description_says_which_words_are_unknown(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm(FakeImageGenerator(words=("red", "heart", "cat")))
    vm.set_text("red heart")
    assert vm.describe_message == "" and vm.describe_known is True
    vm.set_text("red zeppelin")
    assert vm.describe_message == "Unknown to this model: zeppelin." and vm.describe_known is True
    vm.set_text("zeppelin")
    assert "No word is known" in vm.describe_message and vm.describe_known is False


def test_a_model_without_a_word_list_says_so(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm()
    vm.set_text("red heart")
    assert "no word list" in vm.describe_message and vm.describe_known is None


def test_a_model_without_a_description_ignores_the_text(qtbot, make_vm: MakeVm) -> None:
    vm, generator = make_vm(FakeImageGenerator(conditional=False))
    with qtbot.waitSignal(vm.image_changed, timeout=5000):
        vm.set_text("red heart")
    assert "takes no description" in vm.describe_message and generator.calls[-1].text == ""


def test_variations_are_a_grid_around_the_seed(qtbot, make_vm: MakeVm) -> None:
    vm, _ = make_vm()
    vm.set_seed(100)
    with qtbot.waitSignal(vm.variations_changed, timeout=5000) as blocker:
        vm.request_variations()
    seeds = [img.settings.seed for img in blocker.args[0]]
    assert len(seeds) == 16 and 100 in seeds and seeds == sorted(seeds)
    vm.pick_variation(0)
    assert vm.settings.seed == seeds[0]


def test_interpolation_exports_a_gif_without_speckles(qtbot, make_vm: MakeVm, tmp_path: Path) -> None:
    from PIL import Image, ImageSequence

    vm, generator = make_vm()
    vm.keep()
    vm.set_seed(9)
    qtbot.waitUntil(lambda: len(vm.history) == 2, timeout=5000)
    a, b = vm.history
    out = tmp_path / "walk.gif"
    with qtbot.waitSignal(vm.animation_exported, timeout=10000):
        assert vm.export_animation(str(out), a.entry_id, b.entry_id, frames=5)
    sources = generator.interpolate(a.settings, b.settings, 5)
    with Image.open(io.BytesIO(out.read_bytes())) as gif:
        frames = [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 5
    for src, got in zip(sources, frames, strict=True):
        faint = src[..., 3] < 128
        assert ((src[..., 3] > 0) & faint).any()           # the fringe that would speckle
        assert (got[faint, 3] == 0).all() and (got[~faint, 3] == 255).all()
    assert not vm.export_animation(str(tmp_path / "walk.mp4"), a.entry_id, b.entry_id)


def test_an_animation_outside_the_frame_bounds_is_refused(qtbot, make_vm: MakeVm, tmp_path: Path) -> None:
    from aigc_studio.viewmodels.image import MAX_FRAMES

    vm, _ = make_vm()
    vm.keep()
    vm.set_seed(9)
    qtbot.waitUntil(lambda: len(vm.history) == 2, timeout=5000)
    a, b = vm.history
    for frames in (1, MAX_FRAMES + 1):
        assert not vm.export_animation(str(tmp_path / "walk.gif"), a.entry_id, b.entry_id, frames=frames)
        assert f"2 to {MAX_FRAMES} frames" in vm.message
    assert not (tmp_path / "walk.gif").exists()


def test_the_history_keeps_its_newest_entries(qtbot, make_vm: MakeVm, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc_studio.viewmodels.image as image_module

    monkeypatch.setattr(image_module, "HISTORY_LIMIT", 2)
    vm, _ = make_vm()
    vm.keep()
    for seed in (5, 6):
        vm.set_seed(seed)
        qtbot.waitUntil(lambda s=seed: vm.history[-1].settings.seed == s, timeout=5000)
    assert [e.settings.seed for e in vm.history] == [5, 6] and [e.entry_id for e in vm.history] == [2, 3]

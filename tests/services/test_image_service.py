"""The image service: coalesced requests (latest wins), stale results dropped, errors as data, model
listing that sees new packages, and the real runtime behind the seam (tiny packages)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.core.png_record import read_record
from aigc_studio.services.image_service import ImageResult, ImageService, Purpose
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ImageSettings, RuntimeBackend

from .fakes import FakeBackend, FakeImageGenerator, Recorder

MakeService = Callable[..., tuple[ImageService, FakeBackend]]


@pytest.fixture
def make_service(qtbot) -> Iterator[MakeService]:
    made: list[tuple[ImageService, ModelHost]] = []

    def make(generator: FakeImageGenerator | None = None) -> tuple[ImageService, FakeBackend]:
        backend = FakeBackend()
        if generator is not None:
            backend.image_generators = {generator.name: generator}
        host = ModelHost(backend)
        service = ImageService(host)
        made.append((service, host))
        host.start()
        return service, backend

    yield make
    for service, host in made:
        service.shutdown()
        host.shutdown()


def test_one_request_gives_pixels_png_and_record(qtbot, make_service: MakeService) -> None:
    generator = FakeImageGenerator()
    service, _ = make_service(generator)
    with qtbot.waitSignal(service.image_ready, timeout=5000) as blocker:
        request_id = service.request("fake-image", ImageSettings(seed=3, psi=0.5))
    result: ImageResult = blocker.args[0]
    image = result.images[0]
    assert result.request_id == request_id and image.rgba.shape == (16, 16, 4)
    assert read_record(image.png).seed == 3 and image.record.psi == 0.5
    assert generator.threads and all(t.name != "MainThread" for t in generator.threads)


def test_a_drag_coalesces_to_the_latest_request(qtbot, make_service: MakeService) -> None:
    generator = FakeImageGenerator(delay_s=0.02)
    service, _ = make_service(generator)
    shown = Recorder()
    service.image_ready.connect(shown)
    ids = [service.request("fake-image", ImageSettings(seed=1, psi=round(0.5 + i / 200, 3)))
           for i in range(100)]
    qtbot.waitUntil(lambda: any(r.request_id == ids[-1] for r in shown.items), timeout=10000)
    assert len(generator.calls) < 20  # far fewer computed than sent
    assert generator.calls[-1] == ImageSettings(seed=1, psi=round(0.5 + 99 / 200, 3))
    assert shown.items[-1].request_id == ids[-1]
    assert all(r.request_id in ids for r in shown.items)


def test_a_result_for_a_replaced_request_is_dropped(qtbot, make_service: MakeService) -> None:
    generator = FakeImageGenerator(delay_s=0.2)
    service, _ = make_service(generator)
    shown = Recorder()
    service.image_ready.connect(shown)
    service.request("fake-image", ImageSettings(seed=1))
    qtbot.waitUntil(lambda: len(generator.calls) == 1, timeout=5000)  # the first one is running
    last = service.request("fake-image", ImageSettings(seed=2))
    qtbot.waitUntil(lambda: len(shown.items) == 1, timeout=5000)
    qtbot.waitUntil(lambda: service.stale_dropped == 1, timeout=5000)
    assert [r.request_id for r in shown.items] == [last]


def test_channels_do_not_replace_each_other(qtbot, make_service: MakeService) -> None:
    service, _ = make_service(FakeImageGenerator(delay_s=0.01))
    shown = Recorder()
    service.image_ready.connect(shown)
    items = tuple(ImageSettings(seed=s) for s in range(4))
    service.request("fake-image", items, Purpose.VARIATIONS)
    service.request("fake-image", ImageSettings(seed=9))
    qtbot.waitUntil(lambda: len(shown.items) == 2, timeout=5000)
    assert {r.purpose for r in shown.items} == {Purpose.PREVIEW, Purpose.VARIATIONS}
    grid = next(r for r in shown.items if r.purpose is Purpose.VARIATIONS)
    assert [img.settings.seed for img in grid.images] == [0, 1, 2, 3]


def test_errors_come_back_as_data(qtbot, make_service: MakeService) -> None:
    service, _ = make_service(FakeImageGenerator(fail=ValueError("mix seed 5 is out of range")))
    with qtbot.waitSignal(service.request_failed, timeout=5000) as blocker:
        service.request("fake-image", ImageSettings(seed=1))
    assert blocker.args[0].message == "mix seed 5 is out of range"
    with qtbot.waitSignal(service.request_failed, timeout=5000) as blocker:
        service.load("no-such-model")
    assert "no-such-model" in blocker.args[0].message and blocker.args[0].purpose is Purpose.MODEL


def test_a_refresh_lists_a_newly_installed_model(qtbot, make_service: MakeService) -> None:
    service, backend = make_service()
    with qtbot.waitSignal(service.models_changed, timeout=5000) as blocker:
        service.refresh_models()
    assert [m.name for m in blocker.args[0]] == ["fake-image"]
    backend.image_generators["fake-other"] = FakeImageGenerator("fake-other")
    with qtbot.waitSignal(service.models_changed, timeout=5000) as blocker:
        service.refresh_models()
    assert [m.name for m in blocker.args[0]] == ["fake-image", "fake-other"]


def test_the_text_models_are_listed_as_before(qtbot) -> None:
    host = ModelHost(FakeBackend())
    host.start()
    try:
        with qtbot.waitSignal(host.models_changed, timeout=5000) as blocker:
            host.refresh_models()
    finally:
        host.shutdown()
    assert [m.name for m in blocker.args[0]] == ["fake-lm", "fake-lm-large"]


def test_an_animation_is_encoded_in_the_worker(qtbot, make_service: MakeService) -> None:
    service, _ = make_service()
    with qtbot.waitSignal(service.animation_ready, timeout=10000) as blocker:
        service.animate("fake-image", ImageSettings(seed=1), ImageSettings(seed=2), 6, "webp")
    assert blocker.args[0].frames == 6 and blocker.args[0].data[8:12] == b"WEBP"


def test_the_runtime_backend_serves_tiny_image_packages(qtbot, tiny_image_packages: dict[str, Path]) -> None:
    backend = RuntimeBackend([tiny_image_packages["cond"].parent])
    assert "tiny-cond" in [m.name for m in backend.list_image_models()]
    assert all(m.kind == "text-lm" or m.error for m in backend.list_models())  # text listing unchanged
    model = backend.create_image("tiny-cond")
    assert model.spec.style_based and model.spec.conditional and model.spec.words is None
    settings = ImageSettings(seed=4, psi=0.7, mix_seed=9, mix_layers="coarse", directions=((0, 1.0),),
                             text="red heart")
    img, record = model.generate(settings)
    assert img.shape == (16, 16, 4) and ImageSettings.from_record(record) == settings
    frames = model.interpolate(settings, settings.with_(seed=5, psi=1.0), 5)
    assert len(frames) == 5 and np.array_equal(frames[0], img)
    assert np.array_equal(frames[-1], model.generate(settings.with_(seed=5, psi=1.0))[0])

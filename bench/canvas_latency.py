"""Slider-to-pixmap latency of the Design workspace's generation panel, against the generator alone.

    QT_QPA_PLATFORM=offscreen python bench/canvas_latency.py            # the shipped image models (~30 s)
    python bench/canvas_latency.py --models emoji-style --changes 400

For every shipped image model, in one run:

  generator   the baseline: `RuntimeImageModel.generate` called directly, one call per value (ms per
              image, p50 and p95); no Qt
  panel       a real QApplication with the model host, the image service, the view-model and the
              GenerationPanel: `--changes` slider values at 60 Hz (ψ for a StyleGAN-style model, the
              seed for a DCGAN); for every pixmap shown, the ms since its value was set (p50, p95); how
              many images the worker computed (coalescing skips the rest); and the longest stall of the
              UI thread (the largest gap between ticks of a 1 ms timer), the drag's smoothness.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from aigc_studio.gui.generation_panel import GenerationPanel  # noqa: E402
from aigc_studio.services.image_service import GeneratedImage, ImageService  # noqa: E402
from aigc_studio.services.model_host import ModelHost  # noqa: E402
from aigc_studio.services.models import ImageSettings, RuntimeBackend  # noqa: E402
from aigc_studio.viewmodels.image import GenerationViewModel  # noqa: E402

DEFAULT_MODELS = ("emoji-style", "emoji-dcgan")
HZ = 60


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _values(style: bool, n: int) -> list[ImageSettings]:
    if style:
        return [ImageSettings(seed=7, psi=round(0.2 + 0.8 * (i % 80) / 80, 2)) for i in range(n)]
    return [ImageSettings(seed=1000 + i) for i in range(n)]


def baseline(name: str, n: int) -> tuple[list[float], bool]:
    model = RuntimeBackend().create_image(name)
    style = model.spec.style_based
    times = []
    for settings in _values(style, n):
        t = time.perf_counter()
        model.generate(settings)
        times.append((time.perf_counter() - t) * 1000)
    return times, style


def through_panel(app: QApplication, name: str, style: bool, n: int) -> dict[str, float]:
    host = ModelHost(RuntimeBackend())
    service = ImageService(host)
    vm = GenerationViewModel(service)
    panel = GenerationPanel(vm)
    panel.show()
    host.start()
    vm.set_model(name)
    vm.set_settings(_values(style, 1)[0])
    sent: dict[ImageSettings, float] = {}
    latencies: list[float] = []
    ticks: list[float] = []
    values = _values(style, n)
    state = {"i": 0, "done": False}

    def on_image(image: GeneratedImage) -> None:
        started = sent.get(image.settings)
        if started is not None:
            latencies.append((time.perf_counter() - started) * 1000)
        if state["i"] >= n and image.settings == values[-1]:
            state["done"] = True

    def step() -> None:
        if state["i"] >= n:
            return
        settings = values[state["i"]]
        sent[settings] = time.perf_counter()
        state["i"] += 1
        if style:
            panel.psi_slider.setValue(round(settings.psi * 100))
        else:
            panel.seed_box.setValue(settings.seed)

    first = {"shown": False}
    vm.image_changed.connect(lambda _: first.__setitem__("shown", True))
    while not first["shown"]:  # the model loaded and its first image arrived
        app.processEvents()
    vm.image_changed.connect(on_image)
    computed_before = service.worker.computed
    drive, tick = QTimer(), QTimer()
    drive.setInterval(1000 // HZ)
    drive.timeout.connect(step)
    tick.setInterval(1)
    tick.timeout.connect(lambda: ticks.append(time.perf_counter()))
    drive.start()
    tick.start()
    deadline = time.perf_counter() + n / HZ + 30
    while not state["done"] and time.perf_counter() < deadline:
        app.processEvents()
    drive.stop()
    tick.stop()
    computed = service.worker.computed - computed_before
    vm.shutdown()
    service.shutdown()
    host.shutdown()
    panel.close()
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]
    return {"p50": _pct(latencies, 0.5), "p95": _pct(latencies, 0.95), "shown": len(latencies),
            "computed": computed, "stall": max(gaps, default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--changes", type=int, default=200, help="slider values sent at 60 Hz (default 200)")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    print(f"{'model':<12} {'path':<10} {'sent':>5} {'computed':>9} {'shown':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'UI stall ms':>12}")
    for name in args.models:
        times, style = baseline(name, args.changes)
        print(f"{name:<12} {'generator':<10} {args.changes:>5} {args.changes:>9} {'-':>6} "
              f"{statistics.median(times):>8.1f} {_pct(times, 0.95):>8.1f} {'-':>12}")
        r = through_panel(app, name, style, args.changes)
        print(f"{name:<12} {'panel':<10} {args.changes:>5} {r['computed']:>9} {r['shown']:>6} {r['p50']:>8.1f} "
              f"{r['p95']:>8.1f} {r['stall']:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

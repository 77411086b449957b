"""Shared fixtures: every test must leave no thread, thread-pool task or timer running.

Like napari's conftest: ``QThread.start`` and ``QTimer.start`` are wrapped to remember who started
what, and after each test anything still running fails the test with the stack that started it.
Python threads that appeared during the test and are still alive fail it too.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from weakref import WeakKeyDictionary

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # some test modules import onnxruntime before aigc_studio

try:
    import shiboken6
    from PySide6.QtCore import QThread, QThreadPool, QTimer
except ImportError:  # the runtime and core tests run without Qt
    QThread = None  # type: ignore[assignment,misc]


@pytest.fixture(autouse=True)
def _no_dangling_threads_or_timers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    threads_before = set(threading.enumerate())
    if QThread is None:
        yield
        _check_python_threads(threads_before)
        return

    started_threads: WeakKeyDictionary[QThread, str] = WeakKeyDictionary()
    started_timers: WeakKeyDictionary[QTimer, str] = WeakKeyDictionary()
    thread_start = QThread.start
    timer_start = QTimer.start

    def start_thread(self: QThread, *args: object) -> None:
        started_threads[self] = "".join(traceback.format_stack(limit=12)[:-1])
        thread_start(self, *args)

    def start_timer(self: QTimer, *args: object) -> None:
        started_timers[self] = "".join(traceback.format_stack(limit=12)[:-1])
        timer_start(self, *args)

    monkeypatch.setattr(QThread, "start", start_thread)
    monkeypatch.setattr(QTimer, "start", start_timer)
    yield
    problems = []
    for thread, stack in list(started_threads.items()):
        if shiboken6.isValid(thread) and thread.isRunning():
            problems.append(f"QThread {thread.objectName() or thread!r} is still running; "
                            f"it was started at:\n{stack}")
    for timer, stack in list(started_timers.items()):
        if shiboken6.isValid(timer) and timer.isActive():
            timer.stop()
            problems.append(f"QTimer {timer.objectName() or timer!r} is still active; "
                            f"it was started at:\n{stack}")
    pool = QThreadPool.globalInstance()
    if pool.activeThreadCount() and not pool.waitForDone(2000):
        problems.append(f"{pool.activeThreadCount()} QThreadPool tasks are still running")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
    _check_python_threads(threads_before)


def _check_python_threads(before: set[threading.Thread]) -> None:
    alive = [t for t in threading.enumerate()
             if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
    for thread in alive:
        thread.join(timeout=2)
    alive = [t for t in alive if t.is_alive()]
    if alive:
        pytest.fail(f"threads still running after the test: {', '.join(t.name for t in alive)}",
                    pytrace=False)


@pytest.fixture(scope="session")
def tiny_text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained text-lm package (built once per session with the workshop; needs torch).

    Read-only by convention: copy it before damaging it.
    """
    pytest.importorskip("torch")
    from tests.tiny_models import build_tiny_text_package

    return build_tiny_text_package(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_bpe_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained text-lm package with a byte-level BPE tokenizer (the imported models' type; built
    once per session; needs torch). Read-only by convention."""
    pytest.importorskip("torch")
    from tests.tiny_bpe import build_tiny_bpe_package

    return build_tiny_bpe_package(tmp_path_factory.mktemp("bpe-models"))


@pytest.fixture(scope="session")
def tiny_image_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random image-gan packages built with the workshop's export (once per session; needs torch):
    "cond" (StyleGAN-style, text-conditioned), "uncond" (StyleGAN-style) and "dcgan", each in a folder of
    its own under one root (models tiny-cond, tiny-uncond, tiny-dcgan). Read-only by convention."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from export.onnx.gan import export_package, tiny_generator

    root = tmp_path_factory.mktemp("image-models")
    out = {}
    for key, arch, cond in [("cond", "stylegan", True), ("uncond", "stylegan", False), ("dcgan", "dcgan", False)]:
        export_package(arch, tiny_generator(arch, cond), root / key, name=f"tiny-{key}", ganspace_samples=400,
                       directions=4, verbose=False)
        out[key] = root / key
    return out

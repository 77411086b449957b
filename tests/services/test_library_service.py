"""The library service under a bare QCoreApplication: loading in a thread, errors as data, search."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QThread

from aigc_studio.runtime.library import AssetLibrary
from aigc_studio.services.library_service import LibraryService, LibraryState
from tests.runtime.test_library import build_tiny_library


def _ready(status) -> bool:
    return status.state == LibraryState.READY


def test_loads_in_another_thread_then_searches(qtbot, tmp_path: Path) -> None:
    path = build_tiny_library(tmp_path / "library")
    threads = []

    def loader(p: Path) -> AssetLibrary:
        threads.append(threading.current_thread())
        return AssetLibrary.load(p)

    svc = LibraryService(path, loader=loader)
    with qtbot.waitSignal(svc.results_changed) as results:
        with qtbot.waitSignal(svc.status_changed, check_params_cb=_ready):
            svc.start()
    assert threads and threads[0] is not threading.main_thread()
    assert len(results.args[0]) == 8 and svc.status.count == 8
    assert [s.key for s in svc.status.sets] == ["tabler", "fluent-emoji"]
    with qtbot.waitSignal(svc.results_changed) as results:
        svc.search("heart", "fluent-emoji")
    assert [a.name for a in results.args[0]] == ["red-heart"]
    with qtbot.assertNotEmitted(svc.results_changed):
        svc.search("heart", "fluent-emoji")  # the same results are not signalled again
        svc.start()                           # already loaded: nothing to do
    notices = svc.licence_notices()
    assert [n.package for n in notices] == ["@tabler/icons", "@iconify-json/fluent-emoji-flat", "emojibase-data"]
    assert all(n.text.startswith("MIT License") for n in notices)
    assert not [t for t in svc.findChildren(QThread) if t.isRunning()]
    svc.shutdown()


def test_a_failing_load_is_reported_as_data(qtbot, tmp_path: Path) -> None:
    def loader(p: Path) -> AssetLibrary:
        raise RuntimeError("disk on fire")

    svc = LibraryService(tmp_path, loader=loader)
    with qtbot.waitSignal(svc.status_changed, check_params_cb=lambda s: s.state == LibraryState.FAILED) as b:
        svc.start()
    assert b.args[0].error == "disk on fire"
    svc.search("heart")
    assert svc.results == [] and svc.licence_notices() == []
    svc.shutdown()


def test_shutdown_while_loading_waits_for_the_thread(qtbot, tmp_path: Path) -> None:
    path = build_tiny_library(tmp_path / "library")
    started, release = threading.Event(), threading.Event()

    def slow(p: Path) -> AssetLibrary:
        started.set()
        release.wait(5)
        return AssetLibrary.load(p)

    svc = LibraryService(path, loader=slow)
    svc.start()
    assert started.wait(5) and svc.status.state == LibraryState.LOADING
    release.set()
    svc.shutdown()
    assert not [t for t in svc.findChildren(QThread) if t.isRunning()]

"""The asset library for the Design workspace's Library panel: loaded in a thread, searched on demand.

:class:`LibraryService` lives in the UI thread. :meth:`~LibraryService.start` loads and verifies the
library (runtime/library.py: manifest, sha256 of every file, decompression) in
a short-lived ``QThread`` named "library-loader", which ends as soon as the library is read. A broken or
missing library is reported as a FAILED status with the loader's message; the app runs on without it.

Searching runs in the UI thread: the index is a flat list of lower-cased strings and a search is one
pass over it. The service keeps the current query and its results, and signals them only when they
change, so the panel binds to it like a view-model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from aigc_studio.runtime.library import Asset, AssetLibrary, AssetSet

__all__ = ["Asset", "AssetSet", "LibraryService", "LibraryState", "LibraryStatus", "LicenceNotice"]

log = logging.getLogger(__name__)


class LibraryState(Enum):
    IDLE = "idle"          # not started
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class LibraryStatus:
    """Where the library stands: its state, the error of a failed load, the number of assets and its
    sets (for the set filter)."""

    state: LibraryState = LibraryState.IDLE
    error: str = ""
    count: int = 0
    sets: tuple[AssetSet, ...] = ()


@dataclass(frozen=True)
class LicenceNotice:
    """One source package of a set, for the About box: what it is, its version, licence and text."""

    set_title: str
    package: str
    version: str
    licence: str
    text: str


@dataclass(frozen=True)
class _Failure:
    message: str


class _LoadWorker(QObject):
    """Loads the library in the loader thread, then stops that thread."""

    loaded = Signal(object)
    """The load ended: carries the :class:`AssetLibrary` or a :class:`_Failure`."""

    def __init__(self, path: Path, loader: Callable[[Path], AssetLibrary]) -> None:
        super().__init__()
        self._path = path
        self._loader = loader

    @Slot()
    def run(self) -> None:
        try:
            result: AssetLibrary | _Failure = self._loader(self._path)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("the asset library cannot be used: %s", error)
            result = _Failure(str(error) or type(error).__name__)
        self.loaded.emit(result)
        thread = self.thread()
        if thread is not None:
            thread.quit()


class LibraryService(QObject):
    """Loads the asset library at ``path`` in a thread (:meth:`start`) and searches it (:meth:`search`).

    ``loader`` reads a library folder (``AssetLibrary.load``; tests pass a slow or failing one). Call
    :meth:`shutdown` before the application quits if a load may still be running.
    """

    status_changed = Signal(object)
    """The library's state changed: carries a :class:`LibraryStatus`."""

    results_changed = Signal(list)
    """The results of the current query changed: carries a list of :class:`Asset`, best match first."""

    def __init__(self, path: Path, parent: QObject | None = None,
                 loader: Callable[[Path], AssetLibrary] = AssetLibrary.load) -> None:
        super().__init__(parent)
        self._path = Path(path)
        self._loader = loader
        self._library: AssetLibrary | None = None
        self._status = LibraryStatus()
        self._thread: QThread | None = None
        self._worker: _LoadWorker | None = None
        self._query = ""
        self._set_key: str | None = None
        self._results: list[Asset] = []

    # -- state ----------------------------------------------------------------------------------

    @property
    def status(self) -> LibraryStatus:
        return self._status

    @property
    def results(self) -> list[Asset]:
        """The current query's results (empty until the library is loaded)."""
        return list(self._results)

    @property
    def query(self) -> tuple[str, str | None]:
        """The current query and set key (None: every set)."""
        return self._query, self._set_key

    def licence_notices(self) -> list[LicenceNotice]:
        """The licence of every source package of the loaded library (empty before it is loaded)."""
        lib = self._library
        if lib is None:
            return []
        notices = []
        for s in lib.sets:
            for r in s.sources:
                try:
                    text = lib.licence_text(r)
                except OSError as error:
                    text = f"(the licence file {r.licence_file} cannot be read: {error})"
                notices.append(LicenceNotice(s.title, r.package, r.version, r.licence, text))
        return notices

    # -- loading --------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the library in the loader thread (once; a second call while loading or loaded does
        nothing, a call after a failure tries again)."""
        if self._status.state in (LibraryState.LOADING, LibraryState.READY):
            return
        self._set_status(LibraryStatus(LibraryState.LOADING))
        thread = QThread(self)
        thread.setObjectName("library-loader")
        worker = _LoadWorker(self._path, self._loader)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.loaded.connect(self._on_worker_loaded)
        self._thread, self._worker = thread, worker
        thread.start()

    @Slot(object)
    def _on_worker_loaded(self, result: object) -> None:
        self._finish_thread()
        if isinstance(result, AssetLibrary):
            self._library = result
            self._set_status(LibraryStatus(LibraryState.READY, count=len(result.assets), sets=result.sets))
            self._run_search()
        else:
            message = result.message if isinstance(result, _Failure) else str(result)
            self._set_status(LibraryStatus(LibraryState.FAILED, error=message))

    def _finish_thread(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()
            thread.deleteLater()
        if worker is not None:
            worker.deleteLater()

    def shutdown(self) -> None:
        """Wait for a running load to end and stop its thread (idempotent)."""
        self._finish_thread()

    # -- searching ------------------------------------------------------------------------------

    def search(self, query: str, set_key: str | None = None) -> None:
        """Make ``query`` (over names, tags and groups) in set ``set_key`` (None: all) the current
        query; :attr:`results_changed` follows if the results differ."""
        self._query, self._set_key = query, set_key
        self._run_search()

    def _run_search(self) -> None:
        if self._library is None:
            return
        try:
            results = self._library.search(self._query, set=self._set_key, limit=None)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("searching the asset library failed: %s", error)
            results = []
        if results != self._results:
            self._results = results
            self.results_changed.emit(list(results))

    def _set_status(self, status: LibraryStatus) -> None:
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)

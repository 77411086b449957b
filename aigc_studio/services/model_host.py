"""The model host: loads, lists and owns the models, in one worker thread.

:class:`ModelHost` lives in the UI thread. It owns a ``QThread`` (named "model-worker") and a
:class:`ModelHostWorker` in it, which holds the :class:`~aigc_studio.services.models.ModelBackend` and
the loaded generator. Loading, listing the installed packages and checking for a GPU run there; the
results come back as signals, with the same names from the worker through the host to the view-model
(``status_changed``, ``models_changed``, ``gpu_changed``).

A generator is not thread-safe, so whoever uses it runs in the same thread: the completion service
moves its own worker into :attr:`ModelHost.worker_thread` and reads :attr:`ModelHostWorker.generator` from
there. Queued calls to the two workers run one after the other, so a load never overlaps a
suggestion. The Design workspace's image service does the same with its own image generator
(:mod:`aigc_studio.services.image_service`), loaded through :attr:`ModelHostWorker.backend`.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QThread, Signal, Slot

from .models import (
    GeneratorLike,
    ModelBackend,
    ModelChoice,
    ModelInfo,
    ModelState,
    ModelStatus,
)

__all__ = ["ModelHost", "ModelHostWorker"]

log = logging.getLogger(__name__)


class ModelHostWorker(QObject):
    """Owns the backend and the loaded generator; runs in the host's worker thread."""

    status_changed = Signal(object)
    """The model's loading state changed: carries a :class:`ModelStatus`."""

    models_changed = Signal(list)
    """The installed models were listed: carries a list of :class:`ModelInfo`."""

    gpu_changed = Signal(bool, str)
    """Whether a GPU can be used was checked: carries the answer and, if not, why."""

    def __init__(self, backend: ModelBackend) -> None:
        super().__init__()
        self._backend = backend
        self._generator: GeneratorLike | None = None

    @property
    def backend(self) -> ModelBackend:
        """The backend; call it only in this worker's thread (the image worker lists and loads image
        models through it)."""
        return self._backend

    @property
    def generator(self) -> GeneratorLike | None:
        """The loaded generator, or None; use it only in this worker's thread (but
        :meth:`GeneratorLike.terminate`, which is thread-safe)."""
        return self._generator

    @Slot()
    def list_models(self) -> None:
        """List the installed models (:attr:`models_changed`), then check for a GPU
        (:attr:`gpu_changed`)."""
        try:
            models = list(self._backend.list_models())
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("listing the models failed: %s", error)
            models = []
        self.models_changed.emit(models)
        try:
            usable, why = self._backend.gpu_status()
        except Exception as error:  # noqa: BLE001 - errors are data
            usable, why = False, f"cannot check for a GPU: {error}"
        self.gpu_changed.emit(bool(usable), str(why))

    @Slot(object)
    def load(self, choice: ModelChoice) -> None:
        """Drop the current generator and load ``choice`` (emits :attr:`status_changed`)."""
        self._generator = None
        self.status_changed.emit(ModelStatus(ModelState.LOADING, name=choice.name))
        try:
            generator = self._backend.create(choice)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("loading model %r failed: %s", choice.name, error)
            message = str(error) or type(error).__name__
            self.status_changed.emit(ModelStatus(ModelState.FAILED, name=choice.name,
                                                 error=message))
            return
        self._generator = generator
        self.status_changed.emit(ModelStatus(
            ModelState.READY, name=generator.name, provider=generator.provider,
            device_note=generator.device_note, context_length=generator.context_length))

    @Slot()
    def unload(self) -> None:
        """Drop the generator (it is freed in this thread)."""
        self._generator = None


class ModelHost(QObject):
    """Loading, listing, device choice, GPU check and status of the models, in a worker thread.

    ``backend`` lists and creates generators (called in the worker thread). Call :meth:`start` once,
    and :meth:`shutdown` before the application quits (after the services that use :attr:`worker_thread`).
    """

    status_changed = Signal(object)
    """The model's state changed: carries a :class:`ModelStatus`. A load reports LOADING at once,
    from the UI thread, before the worker starts on it."""

    models_changed = Signal(list)
    """The installed models were listed: carries a list of :class:`ModelInfo`."""

    gpu_changed = Signal(bool, str)
    """Whether a GPU can be used was checked: carries the answer and, if not, why."""

    _send_load = Signal(object)
    _send_list = Signal()
    _send_unload = Signal()

    def __init__(self, backend: ModelBackend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = ModelHostWorker(backend)
        """The object that owns the generator, in :attr:`worker_thread`."""
        self._thread = QThread(self)
        self._thread.setObjectName("model-worker")
        self.worker.moveToThread(self._thread)
        self._send_load.connect(self.worker.load)
        self._send_list.connect(self.worker.list_models)
        self._send_unload.connect(self.worker.unload)
        self.worker.status_changed.connect(self._on_worker_status_changed)
        self.worker.models_changed.connect(self._on_worker_models_changed)
        self.worker.gpu_changed.connect(self._on_worker_gpu_changed)
        self._status = ModelStatus()
        self._models: list[ModelInfo] = []
        self._gpu: tuple[bool, str] | None = None

    @property
    def worker_thread(self) -> QThread:
        """The worker thread: every user of the generator runs its worker here."""
        return self._thread

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread and list the installed models."""
        if not self._thread.isRunning():
            self._thread.start()
        self._send_list.emit()

    def shutdown(self) -> None:
        """Abort the running model call, free the generator and stop the thread (idempotent)."""
        if self._thread.isRunning():
            generator = self.worker.generator
            if generator is not None:
                generator.terminate()  # thread-safe: a long prefill stops now, not at its end
            self._send_unload.emit()
            self._thread.quit()
            self._thread.wait()

    @property
    def running(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread.isRunning()

    # -- models -----------------------------------------------------------------------------------

    def load(self, choice: ModelChoice) -> None:
        """Load a model in the background; :attr:`status_changed` reports loading, ready or failed."""
        self._set_status(ModelStatus(ModelState.LOADING, name=choice.name))
        self._send_load.emit(choice)

    def refresh_models(self) -> None:
        """List the installed models again (:attr:`models_changed`)."""
        self._send_list.emit()

    @property
    def status(self) -> ModelStatus:
        """The model's state as last reported."""
        return self._status

    @property
    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self._status.state is ModelState.READY

    @property
    def models(self) -> list[ModelInfo]:
        """The installed models as last listed."""
        return list(self._models)

    @property
    def gpu(self) -> tuple[bool, str] | None:
        """(usable, why not) as last checked, or None before the check."""
        return self._gpu

    def _set_status(self, status: ModelStatus) -> None:
        self._status = status
        self.status_changed.emit(status)

    @Slot(object)
    def _on_worker_status_changed(self, status: ModelStatus) -> None:
        self._set_status(status)

    @Slot(list)
    def _on_worker_models_changed(self, models: list[ModelInfo]) -> None:
        self._models = list(models)
        self.models_changed.emit(self.models)

    @Slot(bool, str)
    def _on_worker_gpu_changed(self, usable: bool, why: str) -> None:
        self._gpu = (usable, why)
        self.gpu_changed.emit(usable, why)

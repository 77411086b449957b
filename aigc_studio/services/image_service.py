"""Images for the Design workspace, computed in the model host's worker thread.

:class:`ImageService` lives in the UI thread. It numbers immutable requests (:class:`ImageRequest`:
the model's name and one frozen :class:`~aigc_studio.services.image_models.ImageSettings` per image)
and hands them to an :class:`ImageWorker` that runs in the
:class:`~aigc_studio.services.model_host.ModelHost`'s worker thread and owns the image generator.
Requests travel on channels (:class:`Purpose`: the preview, the variations grid, breeding, the
history's thumbnails, animations); on each channel the latest request wins: a slider drag sends one
request per value, the worker skips every request that a newer one replaced before it starts (and
between the images of a batch), and results that arrive for a replaced request are dropped. Errors
come back as data (:class:`ImageFailure`); nothing raises into the event loop. The UI thread never
runs a model: listing, loading, generating and encoding all happen in the worker.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from aigc_studio.core.png_record import GenerationRecord

from .image_models import ImageGeneratorLike, ImageModelSpec, ImageSettings
from .model_host import ModelHost, ModelHostWorker
from .models import ModelInfo

__all__ = ["AnimationRequest", "AnimationResult", "GeneratedImage", "ImageFailure", "ImageRequest",
           "ImageResult", "ImageService", "ImageWorker", "Purpose"]

log = logging.getLogger(__name__)


class Purpose(str, Enum):
    """A request channel: on each, the latest request wins."""

    PREVIEW = "preview"
    VARIATIONS = "variations"
    BREED = "breed"
    HISTORY = "history"
    ANIMATION = "animation"
    MODEL = "model"          # loading a model (failures only)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ImageRequest:
    """An immutable snapshot: the images of ``items`` with model ``model``, on channel ``purpose``."""

    request_id: int
    model: str
    items: tuple[ImageSettings, ...]
    purpose: Purpose = Purpose.PREVIEW


@dataclass(frozen=True)
class AnimationRequest:
    """An immutable snapshot: ``frames`` images from ``start`` to ``end``, encoded as ``fmt`` ("GIF" or
    "WEBP")."""

    request_id: int
    model: str
    start: ImageSettings
    end: ImageSettings
    frames: int
    fmt: str = "GIF"


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """One image: its settings, straight RGBA pixels (H, W, 4) uint8, PNG bytes with the record, and the
    record itself."""

    model: str
    settings: ImageSettings
    rgba: np.ndarray
    png: bytes
    record: GenerationRecord


@dataclass(frozen=True, eq=False)
class ImageResult:
    """The images of request ``request_id`` (in the order of its items); ``model_s``: seconds in the
    worker."""

    request_id: int
    purpose: Purpose
    images: tuple[GeneratedImage, ...]
    model_s: float = 0.0


@dataclass(frozen=True, eq=False)
class AnimationResult:
    """An encoded animation of ``frames`` frames."""

    request_id: int
    fmt: str
    data: bytes
    frames: int


@dataclass(frozen=True)
class ImageFailure:
    """Request ``request_id`` on ``purpose`` failed: ``message`` says why."""

    request_id: int
    purpose: Purpose
    message: str


class ImageWorker(QObject):
    """Owns the image generator; lives in the host's worker thread (see the module docstring).

    ``latest`` is written by the UI thread: the number of the newest request of each channel."""

    models_listed = Signal(list)
    """The installed image models were listed: carries a list of :class:`ModelInfo`."""

    model_ready = Signal(object)
    """An image model was loaded: carries its :class:`ImageModelSpec`."""

    result_ready = Signal(object)
    """A request's images were computed: carries an :class:`ImageResult`."""

    animation_ready = Signal(object)
    """An animation was encoded: carries an :class:`AnimationResult`."""

    failed = Signal(object)
    """A request failed: carries an :class:`ImageFailure`."""

    def __init__(self, host: ModelHostWorker) -> None:
        super().__init__()
        self.latest: dict[Purpose, int] = {}
        self.computed = 0
        """Images computed (for tests and the benchmark)."""
        self._host = host
        self._generator: ImageGeneratorLike | None = None

    def _stale(self, purpose: Purpose, request_id: int) -> bool:
        return self.latest.get(purpose, 0) != request_id

    @Slot()
    def list_models(self) -> None:
        """List the installed image models again (:attr:`models_listed`)."""
        try:
            models = list(self._host.backend.list_image_models())
        except Exception as error:  # noqa: BLE001 - errors are data
            log.warning("listing the image models failed: %s", error)
            models = []
        self.models_listed.emit(models)

    def _ensure(self, name: str) -> ImageGeneratorLike:
        generator = self._generator
        if generator is not None and (not name or generator.spec.name == name):
            return generator
        self._generator = None
        generator = self._host.backend.create_image(name)
        self._generator = generator
        self.model_ready.emit(generator.spec)
        return generator

    @Slot(str)
    def load(self, name: str) -> None:
        """Load the image model ``name`` ("" the default) unless it is loaded (:attr:`model_ready`)."""
        try:
            generator = self._ensure(name)
        except Exception as error:  # noqa: BLE001 - errors are data
            self.failed.emit(ImageFailure(0, Purpose.MODEL, f"cannot load image model {name!r}: {error}"))
            return
        self.model_ready.emit(generator.spec)

    @Slot(object)
    def generate(self, request: ImageRequest) -> None:
        """Compute ``request``'s images unless a newer request on its channel replaced it."""
        if self._stale(request.purpose, request.request_id):
            return  # superseded before it started: never computed
        started = time.perf_counter()
        try:
            generator = self._ensure(request.model)
            images = []
            for settings in request.items:
                if self._stale(request.purpose, request.request_id):
                    return
                rgba, record = generator.generate(settings)
                self.computed += 1
                images.append(GeneratedImage(generator.spec.name, settings, rgba,
                                             generator.png(rgba, record), record.with_pixels(rgba)))
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("image request failed:\n%s", traceback.format_exc())
            self.failed.emit(ImageFailure(request.request_id, request.purpose, _message(error)))
            return
        self.result_ready.emit(ImageResult(request.request_id, request.purpose, tuple(images),
                                           time.perf_counter() - started))

    @Slot(object)
    def animate(self, request: AnimationRequest) -> None:
        """Compute and encode ``request``'s frames."""
        if self._stale(Purpose.ANIMATION, request.request_id):
            return
        try:
            from aigc_studio.runtime.image_files import encode_animation

            generator = self._ensure(request.model)
            frames = generator.interpolate(request.start, request.end, request.frames)
            self.computed += len(frames)
            data = encode_animation(frames, request.fmt)
        except Exception as error:  # noqa: BLE001 - errors are data
            log.debug("animation failed:\n%s", traceback.format_exc())
            self.failed.emit(ImageFailure(request.request_id, Purpose.ANIMATION, _message(error)))
            return
        self.animation_ready.emit(AnimationResult(request.request_id, request.fmt, data, len(frames)))

    @Slot()
    def unload(self) -> None:
        """Drop the image generator (it is freed in this thread)."""
        self._generator = None


def _message(error: Exception) -> str:
    return str(error) if isinstance(error, ValueError) and str(error) else f"{type(error).__name__}: {error}"


class ImageService(QObject):
    """Numbered, coalesced image requests on the image models of ``host``'s backend.

    The worker runs in ``host.worker_thread`` (the host starts and stops it); call :meth:`shutdown`
    before the host's. Results for anything but the latest request of their channel are dropped.
    """

    models_changed = Signal(list)
    """The installed image models were listed: carries a list of :class:`ModelInfo`."""

    model_ready = Signal(object)
    """An image model was loaded: carries its :class:`ImageModelSpec`."""

    image_ready = Signal(object)
    """Images for the latest request of a channel: carries an :class:`ImageResult`."""

    animation_ready = Signal(object)
    """The latest animation was encoded: carries an :class:`AnimationResult`."""

    request_failed = Signal(object)
    """The latest request of a channel (or a model load) failed: carries an :class:`ImageFailure`."""

    _send_list = Signal()
    _send_load = Signal(str)
    _send_generate = Signal(object)
    _send_animate = Signal(object)
    _send_unload = Signal()

    def __init__(self, host: ModelHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = ImageWorker(host.worker)
        """The worker, in the host's thread (tests read its counters)."""
        self.worker.moveToThread(host.worker_thread)
        self._send_list.connect(self.worker.list_models)
        self._send_load.connect(self.worker.load)
        self._send_generate.connect(self.worker.generate)
        self._send_animate.connect(self.worker.animate)
        self._send_unload.connect(self.worker.unload)
        self.worker.models_listed.connect(self._on_worker_models_listed)
        self.worker.model_ready.connect(self._on_worker_model_ready)
        self.worker.result_ready.connect(self._on_worker_result_ready)
        self.worker.animation_ready.connect(self._on_worker_animation_ready)
        self.worker.failed.connect(self._on_worker_failed)
        self._last_id = 0
        self._latest: dict[Purpose, int] = {}
        self._models: list[ModelInfo] = []
        self._spec: ImageModelSpec | None = None
        self.sent = 0
        """Requests sent to the worker (for tests and the benchmark)."""
        self.stale_dropped = 0
        """Results that arrived for a request that was no longer the latest of its channel."""

    # -- models -----------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """List the installed image models again (:attr:`models_changed`): a package installed while
        the app runs appears."""
        self._send_list.emit()

    def load(self, name: str) -> None:
        """Load the image model ``name`` in the background (:attr:`model_ready`)."""
        self._send_load.emit(name)

    @property
    def models(self) -> list[ModelInfo]:
        """The installed image models as last listed."""
        return list(self._models)

    @property
    def spec(self) -> ImageModelSpec | None:
        """The loaded image model, as last reported."""
        return self._spec

    # -- requests ---------------------------------------------------------------------------------

    def _next_id(self, purpose: Purpose) -> int:
        self._last_id += 1
        self._latest[purpose] = self._last_id
        self.worker.latest[purpose] = self._last_id  # the worker skips what this replaces
        return self._last_id

    def latest_id(self, purpose: Purpose) -> int:
        """The number of the newest request on ``purpose`` (0: none)."""
        return self._latest.get(purpose, 0)

    def request(self, model: str, items: tuple[ImageSettings, ...] | ImageSettings,
                purpose: Purpose = Purpose.PREVIEW) -> int:
        """Ask for the images of ``items`` (replacing the channel's pending request); return its number."""
        batch = (items,) if isinstance(items, ImageSettings) else tuple(items)
        request_id = self._next_id(purpose)
        self.sent += 1
        self._send_generate.emit(ImageRequest(request_id, model, batch, purpose))
        return request_id

    def animate(self, model: str, start: ImageSettings, end: ImageSettings, frames: int,
                fmt: str = "GIF") -> int:
        """Ask for an encoded interpolation from ``start`` to ``end``; return the request's number."""
        request_id = self._next_id(Purpose.ANIMATION)
        self._send_animate.emit(AnimationRequest(request_id, model, start, end, int(frames), fmt.upper()))
        return request_id

    def cancel(self, purpose: Purpose) -> None:
        """Forget the channel's request: it is skipped if not started, and its result dropped."""
        self._next_id(purpose)

    def shutdown(self) -> None:
        """Cancel every channel and free the generator (idempotent); the host then stops the thread."""
        for purpose in Purpose:
            self._next_id(purpose)
        self._send_unload.emit()

    # -- results ----------------------------------------------------------------------------------

    @Slot(list)
    def _on_worker_models_listed(self, models: list[ModelInfo]) -> None:
        self._models = list(models)
        self.models_changed.emit(self.models)

    @Slot(object)
    def _on_worker_model_ready(self, spec: ImageModelSpec) -> None:
        if spec != self._spec:
            self._spec = spec
            self.model_ready.emit(spec)

    @Slot(object)
    def _on_worker_result_ready(self, result: ImageResult) -> None:
        if result.request_id != self._latest.get(result.purpose):
            self.stale_dropped += 1
            return
        self.image_ready.emit(result)

    @Slot(object)
    def _on_worker_animation_ready(self, result: AnimationResult) -> None:
        if result.request_id != self._latest.get(Purpose.ANIMATION):
            self.stale_dropped += 1
            return
        self.animation_ready.emit(result)

    @Slot(object)
    def _on_worker_failed(self, failure: ImageFailure) -> None:
        if failure.purpose is Purpose.MODEL or failure.request_id == self._latest.get(failure.purpose):
            self.request_failed.emit(failure)

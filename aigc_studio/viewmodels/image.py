"""The Design workspace's generation state: what the generation panel binds to.

:class:`GenerationViewModel` holds the chosen image model and its :class:`ImageSettings` (seed, ψ,
style mixing, directions, description), the image on show, the variations grid, the history (with
each image's lineage) and the messages. Every change of a setting asks the
:class:`~aigc_studio.services.image_service.ImageService` for a new preview at once; the service
coalesces them, so a slider drag stays live. Properties signal only on a real change. An image that
stays on show for :data:`HISTORY_SETTLE_MS` enters the history (a drag's intermediate images do not).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_studio.core.latents import MAX_FRAMES, SEED_MAX, condition_words
from aigc_studio.core.png_record import GenerationRecord, RecordError, read_png_file, read_record, record_from_json
from aigc_studio.runtime.registry import DEFAULT_MODELS
from aigc_studio.services.image_models import ImageModelSpec, ImageSettings, describe_message, usable_text
from aigc_studio.services.image_service import (
    AnimationResult,
    GeneratedImage,
    ImageFailure,
    ImageResult,
    ImageService,
    Purpose,
)
from aigc_studio.services.models import ModelInfo

from .image_history import HistoryEntry, history_from_json, history_to_json

__all__ = ["DEFAULT_FRAMES", "DIRECTION_RANGE", "DIRECTION_SLIDERS", "HISTORY_LIMIT", "HISTORY_SETTLE_MS",
           "MAX_FRAMES", "MIN_FRAMES", "GenerationViewModel", "HistoryEntry"]

HISTORY_SETTLE_MS = 600   # an image on show this long enters the history
HISTORY_LIMIT = 1000      # the oldest entries go beyond this (a project keeps the history: it stays small)
DEFAULT_FRAMES = 24       # an interpolation's frames unless the user chooses (MIN_FRAMES..MAX_FRAMES)
MIN_FRAMES = 2
DIRECTION_SLIDERS = 6     # the first principal directions offered as sliders
DIRECTION_RANGE = 3.0     # a direction slider's range, ± standard deviations of w along it
GRID = 4                  # the variations grid is GRID x GRID seeds around the current one
ANIMATION_SUFFIXES = {".gif": "GIF", ".webp": "WEBP"}


class GenerationViewModel(QObject):
    """Observable generation settings and results (see the module docstring)."""

    models_changed = Signal(list)
    """The installed image models: carries their names."""
    model_changed = Signal(str)
    """The chosen image model: carries its name."""
    spec_changed = Signal(object)
    """The loaded model's :class:`ImageModelSpec` (directions, layer groups, description)."""
    settings_changed = Signal(object)
    """The settings changed: carries the new :class:`ImageSettings`."""
    describe_message_changed = Signal(str)
    """What the model makes of the description: carries the message ("" for none)."""
    smooth_changed = Signal(bool)
    """The preview's scaling: carries True for smooth, False for nearest."""
    image_changed = Signal(object)
    """A new image is on show: carries a :class:`GeneratedImage`."""
    variations_changed = Signal(list)
    """The grid: carries a list of :class:`GeneratedImage` (variations or a brood of children)."""
    history_changed = Signal(list)
    """The history: carries a list of :class:`HistoryEntry`, oldest first."""
    message_changed = Signal(str)
    """A message for the user (an error, or what an action did): carries the text ("" clears it)."""
    animation_exported = Signal(str)
    """An animation was written: carries its path."""

    def __init__(self, service: ImageService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._models: list[str] = []
        self._model = ""
        self._spec: ImageModelSpec | None = None
        self._settings = ImageSettings()
        self._describe_message = ""
        self._smooth = False
        self._message = ""
        self._current: GeneratedImage | None = None
        self._variations: list[GeneratedImage] = []
        self._history: list[HistoryEntry] = []
        self._breed_parents: tuple[int, ...] = ()
        self._export_path = ""
        self._history_timer = QTimer(self)
        self._history_timer.setSingleShot(True)
        self._history_timer.setInterval(HISTORY_SETTLE_MS)
        self._history_timer.timeout.connect(self.keep)
        service.models_changed.connect(self._on_models_changed)
        service.model_ready.connect(self._on_model_ready)
        service.image_ready.connect(self._on_image_ready)
        service.animation_ready.connect(self._on_animation_ready)
        service.request_failed.connect(self._on_request_failed)

    def shutdown(self) -> None:
        """Stop the history timer (before the service shuts down)."""
        self._history_timer.stop()

    # -- read-only state --------------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        return list(self._models)

    @property
    def model(self) -> str:
        return self._model

    @property
    def spec(self) -> ImageModelSpec | None:
        return self._spec

    @property
    def settings(self) -> ImageSettings:
        return self._settings

    @property
    def describe_message(self) -> str:
        return self._describe_message

    @property
    def describe_known(self) -> bool | None:
        """Whether any word of the description is known to the model (None: the model cannot tell)."""
        spec = self._spec
        if spec is None or not spec.conditional or spec.words is None:
            return None
        return any(word in spec.words for word in condition_words(self._settings.text))

    @property
    def message(self) -> str:
        return self._message

    @property
    def current(self) -> GeneratedImage | None:
        return self._current

    @property
    def variations(self) -> list[GeneratedImage]:
        return list(self._variations)

    @property
    def history(self) -> list[HistoryEntry]:
        return list(self._history)

    @property
    def smooth(self) -> bool:
        return self._smooth

    def direction_count(self) -> int:
        """How many direction sliders the model offers."""
        return min(DIRECTION_SLIDERS, len(self._spec.direction_stds)) if self._spec else 0

    def mix_choices(self) -> list[str]:
        """The named layer groups of the model (a range "A:B" is accepted too)."""
        return [name for name, _ in self._spec.layer_groups] if self._spec else []

    # -- models -----------------------------------------------------------------------------------

    def refresh_models(self) -> None:
        """List the installed image models again (a package installed meanwhile appears)."""
        self._service.refresh_models()

    def set_model(self, name: str) -> None:
        """Choose the image model ``name``; it loads in the background and the preview follows."""
        if name == self._model:
            return
        self._model = name
        self.model_changed.emit(name)
        self._service.load(name)
        self._request_preview()

    @Slot(list)
    def _on_models_changed(self, infos: list[ModelInfo]) -> None:
        names = [info.name for info in infos]
        if names != self._models:
            self._models = names
            self.models_changed.emit(list(names))
        if names and self._model not in names:
            preferred = [name for name in DEFAULT_MODELS["image-gan"] if name in names]
            self.set_model((preferred or names)[0])  # the shipped default first, as the CLI does

    @Slot(object)
    def _on_model_ready(self, spec: ImageModelSpec) -> None:
        if spec.name != self._model or spec == self._spec:
            return
        self._spec = spec
        self.spec_changed.emit(spec)
        self._update_describe_message()

    # -- settings ---------------------------------------------------------------------------------

    def set_settings(self, settings: ImageSettings) -> None:
        """Replace every setting; a change asks for a new preview."""
        if settings == self._settings:
            return
        text_changed = settings.text != self._settings.text
        self._settings = settings
        self.settings_changed.emit(settings)
        if text_changed:
            self._update_describe_message()
        self._request_preview()

    def set_seed(self, seed: int) -> None:
        self.set_settings(self._settings.with_(seed=max(0, min(int(seed), SEED_MAX))))

    def randomize_seed(self) -> None:
        """A random seed (and a random mix seed when mixing is on)."""
        changes: dict[str, int] = {"seed": secrets.randbelow(SEED_MAX + 1)}
        if self._settings.mix_seed is not None:
            changes["mix_seed"] = secrets.randbelow(SEED_MAX + 1)
        self.set_settings(self._settings.with_(**changes))

    def set_psi(self, psi: float) -> None:
        self.set_settings(self._settings.with_(psi=round(float(psi), 3)))

    def set_mixing(self, mix_seed: int | None, layers: str | None) -> None:
        """Style mixing from ``mix_seed`` on ``layers`` ("coarse", "middle", "fine" or "A:B"); None
        turns it off."""
        if mix_seed is None or not layers:
            mix_seed, layers = None, None
        self.set_settings(self._settings.with_(mix_seed=mix_seed, mix_layers=layers))

    def set_direction(self, index: int, value: float) -> None:
        """Offset along principal direction ``index``, in standard deviations (clamped to the range)."""
        value = max(-DIRECTION_RANGE, min(DIRECTION_RANGE, round(float(value), 3)))
        self.set_settings(self._settings.with_direction(index, value))

    def set_text(self, text: str) -> None:
        self.set_settings(self._settings.with_(text=text))

    def set_smooth(self, smooth: bool) -> None:
        if bool(smooth) != self._smooth:
            self._smooth = bool(smooth)
            self.smooth_changed.emit(self._smooth)

    def _update_describe_message(self) -> None:
        message = describe_message(self._spec, self._settings.text)
        if message != self._describe_message:
            self._describe_message = message
            self.describe_message_changed.emit(message)

    def _effective(self, settings: ImageSettings) -> ImageSettings:
        """The settings as sent: no description to a model that takes none, nor one it cannot read."""
        text = usable_text(self._spec, settings.text)
        return settings.with_(text=text) if text != settings.text else settings

    # -- preview ----------------------------------------------------------------------------------

    def _request_preview(self) -> None:
        if self._model:
            self._history_timer.stop()
            self._service.request(self._model, self._effective(self._settings), Purpose.PREVIEW)

    @Slot(object)
    def _on_image_ready(self, result: ImageResult) -> None:
        if result.purpose is Purpose.PREVIEW and result.images:
            self._current = result.images[0]
            self._set_message("")
            self.image_changed.emit(self._current)
            self._history_timer.start()
        elif result.purpose is Purpose.VARIATIONS:
            self._variations = list(result.images)
            self.variations_changed.emit(self.variations)
        elif result.purpose is Purpose.BREED:
            self._on_brood(result)
        elif result.purpose is Purpose.HISTORY:
            self._on_thumbnails(result)

    @Slot(object)
    def _on_request_failed(self, failure: ImageFailure) -> None:
        self._set_message(failure.message)

    def _set_message(self, text: str) -> None:
        if text != self._message:
            self._message = text
            self.message_changed.emit(text)

    # -- variations -------------------------------------------------------------------------------

    def request_variations(self) -> None:
        """Make the GRID x GRID grid of the seeds around the current one (the current one included)."""
        first = max(0, min(self._settings.seed - (GRID * GRID) // 2 + 1, SEED_MAX - GRID * GRID + 1))
        base = self._effective(self._settings)
        items = tuple(base.with_(seed=first + i) for i in range(GRID * GRID))
        if self._model:
            self._service.request(self._model, items, Purpose.VARIATIONS)

    def pick_variation(self, index: int) -> None:
        """Show the grid's image ``index`` (its settings become the current ones, with the description)."""
        if 0 <= index < len(self._variations):
            picked = self._variations[index].settings
            self.set_settings(picked.with_(text=self._settings.text) if not picked.text else picked)
            if self._breed_parents:
                self._keep(self._variations[index], self._breed_parents)

    # -- history ----------------------------------------------------------------------------------

    @Slot()
    def keep(self) -> None:
        """Put the image on show into the history (unless it is the newest entry already)."""
        self._history_timer.stop()
        if self._current is not None:
            self._keep(self._current, ())

    def _keep(self, image: GeneratedImage, parents: tuple[int, ...]) -> HistoryEntry:
        settings = image.settings
        for entry in self._history:
            if entry.model == image.model and entry.settings == settings and entry.parents == parents:
                return entry
        entry = HistoryEntry(self._next_entry_id(), image.model, settings, parents, image)
        self._history.append(entry)
        del self._history[:-HISTORY_LIMIT]
        self.history_changed.emit(self.history)
        return entry

    def _next_entry_id(self) -> int:
        return max((e.entry_id for e in self._history), default=0) + 1

    def entry(self, entry_id: int) -> HistoryEntry | None:
        return next((e for e in self._history if e.entry_id == entry_id), None)

    def restore(self, entry_id: int) -> None:
        """Restore every setting (and the model) of history entry ``entry_id``."""
        entry = self.entry(entry_id)
        if entry is None:
            return
        self.set_model(entry.model)
        self.set_settings(entry.settings)

    def history_json(self) -> str:
        """The history as JSON text for the project file."""
        return history_to_json(self._history)

    def load_history_json(self, text: str) -> bool:
        """Replace the history from the project file's JSON; the current model's images are made again.
        False (and a message) when the text cannot be read."""
        try:
            entries = history_from_json(text)
        except ValueError as error:
            self._set_message(str(error))
            return False
        self._history = entries
        self.history_changed.emit(self.history)
        mine = tuple(e.settings for e in entries if e.model == self._model)
        if mine:
            self._service.request(self._model, mine, Purpose.HISTORY)
        return True

    def _on_thumbnails(self, result: ImageResult) -> None:
        by_settings = {(img.model, img.settings): img for img in result.images}
        self._history = [e.with_image(by_settings.get((e.model, e.settings), e.image)) for e in self._history]
        self.history_changed.emit(self.history)

    # -- PNG drop ---------------------------------------------------------------------------------

    def restore_from_png_file(self, path: str) -> bool:
        """:meth:`restore_from_png` of the file ``path`` (read with a size bound)."""
        try:
            data = read_png_file(path)
        except (OSError, RecordError) as error:
            self._set_message(f"Cannot read {path}: {error}")
            return False
        return self.restore_from_png(data)

    def restore_from_png(self, data: bytes) -> bool:
        """Restore the settings from an app PNG's generation record; False with a message when the
        PNG has no sound record (none, damaged, edited) or its model is not installed."""
        try:
            record = read_record(data)
        except RecordError as error:
            self._set_message(f"Cannot restore from this PNG: {error}")
            return False
        return self._restore_record(record)

    def restore_from_record(self, record_json: str) -> bool:
        """Restore the settings from a generation record's JSON (a generated layer's); False with a
        message when the record is damaged or edited, or its model is not installed."""
        try:
            record = record_from_json(record_json)
        except RecordError as error:
            self._set_message(f"Cannot restore this image's settings: {error}")
            return False
        return self._restore_record(record)

    def _restore_record(self, record: GenerationRecord) -> bool:
        if self._models and record.model not in self._models:
            self._set_message(f"This PNG was made by model '{record.model}', which is not installed "
                              f"(installed: {', '.join(self._models)}).")
            return False
        self.set_model(record.model)
        self.set_settings(ImageSettings.from_record(record))
        note = f" (a {record.grid[0]}x{record.grid[1]} grid: its first image)" if record.grid else ""
        self._set_message(f"Restored seed {record.seed} of {record.model}{note}.")
        return True

    # -- breeding ---------------------------------------------------------------------------------

    def breed(self, a_id: int, b_id: int) -> bool:
        """Children of history entries ``a_id`` and ``b_id``: each parent with one layer group (coarse,
        middle, fine) taken from the other parent's seed. They enter the grid and the history, with
        both parents as their lineage. False (and a message) when breeding is not possible."""
        a, b = self.entry(a_id), self.entry(b_id)
        spec = self._spec
        if a is None or b is None or a_id == b_id:
            self._set_message("Breeding needs two different images of the history.")
            return False
        if spec is None or not spec.style_based or a.model != b.model or a.model != self._model:
            self._set_message("Breeding needs two images of the current StyleGAN-style model.")
            return False
        children = tuple(first.settings.with_(mix_seed=second.settings.seed, mix_layers=group)
                         for first, second in ((a, b), (b, a)) for group in self.mix_choices())
        self._breed_parents = (a_id, b_id)
        self._service.request(self._model, tuple(self._effective(c) for c in children), Purpose.BREED)
        return True

    def _on_brood(self, result: ImageResult) -> None:
        for image in result.images:
            self._keep(image, self._breed_parents)
        self._variations = list(result.images)
        self.variations_changed.emit(self.variations)

    # -- interpolation ----------------------------------------------------------------------------

    def export_animation(self, path: str, a_id: int, b_id: int, frames: int = DEFAULT_FRAMES) -> bool:
        """Write the ``frames`` (MIN_FRAMES..MAX_FRAMES) images of the interpolation between history
        entries ``a_id`` and ``b_id`` to ``path`` (.gif or .webp) once computed
        (:attr:`animation_exported`); False (and a message) when it cannot start."""
        fmt = ANIMATION_SUFFIXES.get(Path(path).suffix.lower())
        a, b = self.entry(a_id), self.entry(b_id)
        if isinstance(frames, bool) or not isinstance(frames, int) or not MIN_FRAMES <= frames <= MAX_FRAMES:
            self._set_message(f"An animation has {MIN_FRAMES} to {MAX_FRAMES} frames, not {frames!r}.")
            return False
        if fmt is None:
            self._set_message(f"Export an animation as {' or '.join(ANIMATION_SUFFIXES)}, not {path!r}.")
            return False
        if a is None or b is None or a.model != b.model:
            self._set_message("Interpolation needs two images of the same model from the history.")
            return False
        self._export_path = path
        self._service.animate(a.model, self._effective(a.settings), self._effective(b.settings), frames, fmt)
        self._set_message(f"Making {frames} frames…")
        return True

    @Slot(object)
    def _on_animation_ready(self, result: AnimationResult) -> None:
        path, self._export_path = self._export_path, ""
        if not path:
            return
        try:
            Path(path).write_bytes(result.data)
        except OSError as error:
            self._set_message(f"Cannot write {path}: {error.strerror or error}")
            return
        self._set_message(f"Wrote {result.frames} frames to {path}.")
        self.animation_exported.emit(path)

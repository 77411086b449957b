"""Application settings: each one declared once, with its type, persisted with QSettings.

Every setting is a :class:`~aigc_studio.core.sampling.Setting` (the same declaration the decoding
settings use): a group and a name (the key, ``"group/name"``), a type, a default, a title, a help
text and bounds. The decoding settings come from :data:`aigc_studio.core.sampling.FIELDS` (declared
there once, shared with the CLI) and are filed under the group "sampling" (:data:`SAMPLING`); the
others are declared here, one constant each, so that a read is typed:
``settings.get(AUTOSAVE_DELAY)`` is an ``int``. The preferences dialog and the sampling panel are
built from these declarations. A stored value that is unknown, of the wrong type or out of bounds
falls back to the default with a log line; the file is never trusted.

Values are stored as text (an INI file), so the file reads the same in every process and platform.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QSettings, Signal

from aigc_studio.core.sampling import FIELDS, PRESETS, SamplingConfig, Setting

__all__ = [
    "AUTOSAVE_DELAY",
    "CONTEXT_CHARS",
    "CONTINUE_STOP",
    "CONTINUE_STYLE",
    "CONTINUE_TOKENS",
    "DEBOUNCE_DELAY",
    "FONT_SIZE",
    "INLINE_SUGGESTIONS",
    "LONG_WORDS",
    "MAX_WORDS",
    "MODEL_DEVICE",
    "MODEL_NAME",
    "MODEL_SETTINGS",
    "MODEL_SPIN",
    "MODEL_THREADS",
    "OPTIONS",
    "PANEL_ADVANCED",
    "PRESET_FIELDS",
    "SAMPLING",
    "WRAP_LINES",
    "Setting",
    "Settings",
    "sampling_key",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RECENT_FILES = 10
ORGANIZATION = "AIGC Studio"
APPLICATION = "aigc-studio"

INLINE_SUGGESTIONS: Setting[bool] = Setting(
    "enabled", bool, True, "Inline suggestions",
    "Show the model's suggestion as grey text after the cursor while you type.",
    group="completion")
DEBOUNCE_DELAY: Setting[int] = Setting(
    "debounce_ms", int, 30, "Pause before suggesting",
    "How long typing must pause before a suggestion is asked for.",
    minimum=0, maximum=1000, step=10, suffix=" ms", group="completion")
MAX_WORDS: Setting[int] = Setting(
    "max_words", int, 4, "Suggestion length",
    "The most words a suggestion has; it ends earlier at the end of a clause or sentence.",
    minimum=1, maximum=30, step=1, suffix=" words", group="completion")
LONG_WORDS: Setting[int] = Setting(
    "long_words", int, 30, "Long suggestion length",
    "The most words of a longer suggestion (press Alt+\\ while a suggestion is shown).",
    minimum=2, maximum=200, step=1, suffix=" words", group="completion")
CONTEXT_CHARS: Setting[int] = Setting(
    "context_chars", int, 1600, "Context",
    "How much of the text before the cursor the model reads (it may read less if its "
    "context is shorter).",
    minimum=256, maximum=100_000, step=256, suffix=" characters", group="completion")
CONTINUE_TOKENS: Setting[int] = Setting(
    "max_new_tokens", int, 200, "Continue length",
    "The most tokens Continue (Ctrl+Enter) writes at once.",
    minimum=1, maximum=4096, step=10, suffix=" tokens", group="continue")
CONTINUE_STOP: Setting[str] = Setting(
    "stop", str, "none", "Continue stops at",
    "Where Continue stops by itself: never (only at its length), at the end of the "
    "paragraph, or at the end of a sentence.",
    choices=("none", "newline", "sentence"),
    choice_titles=("Length only", "End of paragraph", "End of sentence"), group="continue")
CONTINUE_STYLE: Setting[str] = Setting(
    "style", str, "Balanced", "Continue decoding",
    "How Continue picks its words. Suggestions are a few words and are best predictable "
    "(the Sampling panel, greedy by default), but a long passage decoded greedily soon repeats "
    f"itself: by default Continue samples (Balanced: {PRESETS['Balanced'].describe()}; "
    f"Creative: {PRESETS['Creative'].describe()}). The panel's seed applies either way.",
    choices=("Balanced", "Creative", "panel"),
    choice_titles=("Balanced", "Creative", "As the Sampling panel"), group="continue")
MODEL_NAME: Setting[str] = Setting(
    "name", str, "", "Model",
    "The installed text model that writes suggestions; empty means the first one found.",
    group="model")
MODEL_DEVICE: Setting[str] = Setting(
    "device", str, "auto", "Device",
    "Where the model runs: Auto uses a GPU when onnxruntime can use one, else the CPU.",
    choices=("auto", "cpu", "gpu"), choice_titles=("Auto", "CPU", "GPU"), group="model")
MODEL_THREADS: Setting[int] = Setting(
    "threads", int, 0, "Threads",
    "CPU threads for the model; 0 lets onnxruntime choose.",
    minimum=0, maximum=256, step=1, group="model")
MODEL_SPIN: Setting[bool] = Setting(
    "spin", bool, True, "Busy-wait",
    "The model's threads wait for work without sleeping: faster on an otherwise idle computer "
    "(the writer about 20% on two threads), slower while other programs keep the cores busy.",
    group="model")
PANEL_ADVANCED: Setting[bool] = Setting(
    "advanced", bool, False, "Advanced settings",
    "Show the Sampling panel's advanced settings: the decoding strategy and its parameters, "
    "the pause before a suggestion, threads and busy-waiting.", group="panel")
FONT_SIZE: Setting[int] = Setting(
    "font_size", int, 13, "Font size",
    "The size of the editor's text.", minimum=6, maximum=72, step=1, suffix=" pt", group="editor")
WRAP_LINES: Setting[bool] = Setting(
    "wrap", bool, True, "Wrap lines", "Wrap long lines at the window's edge.", group="editor")
AUTOSAVE_DELAY: Setting[int] = Setting(
    "autosave_s", int, 3, "Autosave after",
    "Seconds after the last change when unsaved text is copied to the recovery folder.",
    minimum=1, maximum=300, step=1, suffix=" s", group="documents")

MODEL_SETTINGS: tuple[Setting[Any], ...] = (MODEL_NAME, MODEL_DEVICE, MODEL_THREADS, MODEL_SPIN)
"""The settings that choose the model and where it runs (a change reloads it)."""


def sampling_key(name: str) -> str:
    """The settings key of the decoding setting ``name`` (a field of ``SamplingConfig``)."""
    return f"sampling/{name}"


SAMPLING: dict[str, Setting[Any]] = {
    name: dataclasses.replace(setting, group="sampling") for name, setting in FIELDS.items()}
"""The decoding settings of :data:`aigc_studio.core.sampling.FIELDS`, filed under "sampling"."""

OPTIONS: dict[str, Setting[Any]] = {setting.key: setting for setting in (
    INLINE_SUGGESTIONS, DEBOUNCE_DELAY, MAX_WORDS, LONG_WORDS, CONTEXT_CHARS,
    CONTINUE_TOKENS, CONTINUE_STOP, CONTINUE_STYLE,
    MODEL_NAME, MODEL_DEVICE, MODEL_THREADS, MODEL_SPIN, PANEL_ADVANCED,
    FONT_SIZE, WRAP_LINES, AUTOSAVE_DELAY, *SAMPLING.values())}
"""Every setting of the application by key, declared once, in the order the preferences list them."""

PRESET_FIELDS: tuple[str, ...] = tuple(name for name in FIELDS
                                       if name not in ("seed", "max_new_tokens", "num_return",
                                                       "stop"))
"""The decoding settings a preset sets; the seed, the length and the stop mode are the user's."""


class Settings(QObject):
    """The application's settings, validated on the way in and out and persisted in an INI file.

    ``path`` is the INI file (tests pass a temporary one); without it the user's configuration
    folder is used (``QSettings`` with the organisation "AIGC Studio" and application "aigc-studio").
    """

    changed = Signal(str, object)
    """A setting changed: carries its key and its new value."""

    recent_files_changed = Signal(list)
    """The recent-files list changed: carries the paths, most recent first."""

    def __init__(self, path: str | Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if path is None:
            self._store = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                    ORGANIZATION, APPLICATION)
        else:
            self._store = QSettings(str(path), QSettings.Format.IniFormat)
        self._values: dict[str, Any] = {}
        for option in OPTIONS.values():
            self._values[option.key] = self._load(option)

    @property
    def path(self) -> str:
        """The INI file the settings live in."""
        return self._store.fileName()

    def _load(self, option: Setting[Any]) -> Any:
        raw = self._store.value(option.key)
        if raw is None:
            return option.default
        try:
            return option.parse(raw if isinstance(raw, str) else str(raw))
        except ValueError as error:
            log.warning("settings %s: %s; using the default %r", self.path, error, option.default)
            return option.default

    # -- declared settings ------------------------------------------------------------------------

    def get(self, setting: Setting[T]) -> T:
        """The current value of a declared setting, of its declared type."""
        value: T = self._values[self._declared(setting.key).key]
        return value

    def set(self, setting: Setting[T], value: T) -> bool:
        """Change a declared setting; return whether it changed. A bad value raises ``ValueError``."""
        return self.set_value(setting.key, value)

    @staticmethod
    def _declared(key: str) -> Setting[Any]:
        try:
            return OPTIONS[key]
        except KeyError:
            raise KeyError(f"unknown setting {key!r}; known: {', '.join(OPTIONS)}") from None

    def value(self, key: str) -> object:
        """The current value of the setting ``key`` (for code that goes over many settings by key,
        such as a form; typed code uses :meth:`get`); ``KeyError`` lists the known keys."""
        return self._values[self._declared(key).key]

    def set_value(self, key: str, value: object) -> bool:
        """Change the setting ``key``; return whether it changed. A bad value raises ``ValueError``,
        an unknown key ``KeyError``."""
        option = self._declared(key)
        value = option.check(value)
        if self._values[key] == value and type(self._values[key]) is type(value):
            return False
        self._values[key] = value
        self._store.setValue(key, option.format(value))
        self.changed.emit(key, value)
        return True

    def reset(self, keys: Iterable[str] | None = None) -> None:
        """Put settings (all by default) back to their defaults."""
        for key in list(OPTIONS) if keys is None else keys:
            self.set_value(key, OPTIONS[key].default)

    def sampling_config(self) -> SamplingConfig:
        """The decoding settings as a :class:`SamplingConfig` (always valid)."""
        values = {name: self.get(setting) for name, setting in SAMPLING.items()}
        return SamplingConfig.from_mapping(values)

    def set_sampling_config(self, config: SamplingConfig, names: Iterable[str] | None = None) -> None:
        """Store the decoding settings of ``config`` (only ``names`` if given)."""
        values = config.to_dict()
        for name in FIELDS if names is None else names:
            self.set_value(sampling_key(name), values[name])

    def apply_preset(self, name: str) -> None:
        """Set the decoding settings of preset ``name`` (see :data:`PRESET_FIELDS`)."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
        self.set_sampling_config(PRESETS[name], PRESET_FIELDS)

    def matching_preset(self) -> str:
        """The preset the current decoding settings equal, or ``""``."""
        for name, preset in PRESETS.items():
            values = preset.to_dict()
            if all(self._values[sampling_key(f)] == values[f] for f in PRESET_FIELDS):
                return name
        return ""

    # -- free-form state --------------------------------------------------------------------------

    def recent_files(self) -> list[str]:
        """The recently opened or saved files, most recent first."""
        raw = self._store.value("files/recent")
        try:
            paths = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            log.warning("settings %s: the recent files list is not valid; starting afresh", self.path)
            paths = []
        if not isinstance(paths, list):
            return []
        return [p for p in paths if isinstance(p, str)][:MAX_RECENT_FILES]

    def add_recent_file(self, path: str | Path) -> None:
        """Move ``path`` to the top of the recent files."""
        text = str(Path(path).absolute())
        paths = [text] + [p for p in self.recent_files() if p != text]
        self._store_recent(paths[:MAX_RECENT_FILES])

    def remove_recent_file(self, path: str | Path) -> None:
        """Forget ``path`` (for example a file that no longer exists)."""
        text = str(Path(path).absolute())
        self._store_recent([p for p in self.recent_files() if p != text])

    def _store_recent(self, paths: list[str]) -> None:
        if paths == self.recent_files():
            return
        self._store.setValue("files/recent", json.dumps(paths))
        self.recent_files_changed.emit(paths)

    def state(self, key: str) -> bytes | None:
        """Opaque state saved with :meth:`set_state` (window geometry, dock layout)."""
        raw = self._store.value(f"state/{key}")
        if isinstance(raw, str):
            try:
                return bytes.fromhex(raw)
            except ValueError:
                return None
        return None

    def set_state(self, key: str, data: bytes) -> None:
        """Save opaque state (stored as hex text)."""
        self._store.setValue(f"state/{key}", bytes(data).hex())

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._store.sync()

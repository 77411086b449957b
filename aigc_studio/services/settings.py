"""Application settings: each one declared once, persisted with QSettings.

Every setting has a key, a type, a default, a title, a help text and bounds (an :class:`Option`).
The decoding settings come from :data:`aigc_studio.core.sampling.FIELDS` (declared there once, shared
with the CLI); the others are declared here in :data:`OPTIONS`. The preferences dialog and the
sampling panel are built from these declarations. A stored value that is unknown, of the wrong type or
out of bounds falls back to the default with a log line; the file is never trusted.

Values are stored as text (an INI file), so the file reads the same in every process and platform.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from aigc_studio.core.sampling import FIELDS, PRESETS, SamplingConfig
from aigc_studio.core.sampling import Setting as SamplingSetting

__all__ = [
    "OPTIONS",
    "PRESET_FIELDS",
    "Option",
    "Settings",
    "sampling_key",
]

log = logging.getLogger(__name__)

MAX_RECENT_FILES = 10
ORGANIZATION = "AIGC Studio"
APPLICATION = "aigc-studio"


@dataclass(frozen=True)
class Option:
    """The declaration of one setting.

    ``kind`` is ``bool``, ``int``, ``float`` or ``str``. Numbers are bounded by ``minimum`` and
    ``maximum`` (inclusive); a ``str`` with ``choices`` must be one of them (``choice_titles`` are
    what a GUI shows for them). ``optional`` settings also accept ``None``.
    """

    key: str                              # "group/name", as stored
    kind: type
    default: Any
    title: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    choice_titles: tuple[str, ...] = ()
    optional: bool = False
    step: float | None = None
    suffix: str = ""                      # a unit a spin box shows, e.g. " ms"

    @property
    def group(self) -> str:
        """The part of the key before the slash."""
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The part of the key after the slash."""
        return self.key.split("/", 1)[-1]

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, or ``None`` if it is."""
        if value is None:
            return None if self.optional else "must not be empty"
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind is str:
            if not isinstance(value, str):
                return "must be text"
            if self.choices and value not in self.choices:
                return f"must be one of {', '.join(self.choices)}"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        if self.kind is int and not isinstance(value, int):
            return "must be a whole number"
        if math.isnan(value):
            return "must not be NaN"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        return None

    def check(self, value: object) -> Any:
        """Return ``value`` (ints accepted for floats) or raise ``ValueError`` saying what is wrong."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        why = self.problem(value)
        if why is not None:
            raise ValueError(f"{self.key}={value!r} {why}")
        return value

    def parse(self, text: str) -> Any:
        """A stored text back to a value; raise ``ValueError`` if it is not acceptable."""
        raw = text.strip()
        value: Any
        if self.optional and raw.lower() in ("", "none"):
            value = None
        elif self.kind is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(f"{self.key}={text!r} must be true or false")
            value = lowered in ("true", "1")
        elif self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{self.key}={text!r} is not a whole number") from None
        elif self.kind is float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{self.key}={text!r} is not a number") from None
        else:
            value = text
        return self.check(value)

    def format(self, value: Any) -> str:
        """The text a value is stored as."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    @classmethod
    def from_sampling(cls, setting: SamplingSetting) -> Option:
        """The option for one decoding setting of :data:`aigc_studio.core.sampling.FIELDS`."""
        return cls(key=sampling_key(setting.name), kind=setting.kind, default=setting.default,
                   title=setting.title, help=setting.help, minimum=setting.minimum,
                   maximum=setting.maximum, choices=tuple(setting.choices),
                   optional=setting.optional, step=setting.step)


def sampling_key(name: str) -> str:
    """The settings key of the decoding setting ``name`` (a field of ``SamplingConfig``)."""
    return f"sampling/{name}"


def _options(*items: Option) -> dict[str, Option]:
    return {item.key: item for item in items}


OPTIONS: dict[str, Option] = _options(
    Option("completion/enabled", bool, True, "Inline suggestions",
           "Show the model's suggestion as grey text after the cursor while you type."),
    Option("completion/debounce_ms", int, 30, "Pause before suggesting",
           "How long typing must pause before a suggestion is asked for.",
           minimum=0, maximum=1000, step=10, suffix=" ms"),
    Option("completion/max_words", int, 4, "Suggestion length",
           "The most words a suggestion has; it ends earlier at the end of a clause or sentence.",
           minimum=1, maximum=30, step=1, suffix=" words"),
    Option("completion/long_words", int, 30, "Long suggestion length",
           "The most words of a longer suggestion (press Alt+\\ while a suggestion is shown).",
           minimum=2, maximum=200, step=1, suffix=" words"),
    Option("completion/context_chars", int, 1600, "Context",
           "How much of the text before the cursor the model reads (it may read less if its "
           "context is shorter).",
           minimum=256, maximum=100_000, step=256, suffix=" characters"),
    Option("continue/max_new_tokens", int, 200, "Continue length",
           "The most tokens Continue (Ctrl+Enter) writes at once.",
           minimum=1, maximum=4096, step=10, suffix=" tokens"),
    Option("continue/stop", str, "none", "Continue stops at",
           "Where Continue stops by itself: never (only at its length), at the end of the "
           "paragraph, or at the end of a sentence.",
           choices=("none", "newline", "sentence"),
           choice_titles=("Length only", "End of paragraph", "End of sentence")),
    Option("continue/style", str, "Balanced", "Continue decoding",
           "How Continue picks its words. Suggestions are a few words and are best predictable "
           "(the Sampling panel, greedy by default), but a long passage decoded greedily soon repeats "
           f"itself: by default Continue samples (Balanced: {PRESETS['Balanced'].describe()}; "
           f"Creative: {PRESETS['Creative'].describe()}). The panel's seed applies either way.",
           choices=("Balanced", "Creative", "panel"),
           choice_titles=("Balanced", "Creative", "As the Sampling panel")),
    Option("model/name", str, "", "Model",
           "The installed text model that writes suggestions; empty means the first one found."),
    Option("model/device", str, "auto", "Device",
           "Where the model runs: Auto uses a GPU when onnxruntime can use one, else the CPU.",
           choices=("auto", "cpu", "gpu"), choice_titles=("Auto", "CPU", "GPU")),
    Option("model/threads", int, 0, "Threads",
           "CPU threads for the model; 0 lets onnxruntime choose.",
           minimum=0, maximum=256, step=1),
    Option("model/spin", bool, True, "Busy-wait",
           "The model's threads wait for work without sleeping: faster on an otherwise idle computer "
           "(the writer about 20% on two threads), slower while other programs keep the cores busy."),
    Option("panel/advanced", bool, False, "Advanced settings",
           "Show the Sampling panel's advanced settings: the decoding strategy and its parameters, "
           "the pause before a suggestion, threads and busy-waiting."),
    Option("editor/font_size", int, 13, "Font size",
           "The size of the editor's text.", minimum=6, maximum=72, step=1, suffix=" pt"),
    Option("editor/wrap", bool, True, "Wrap lines",
           "Wrap long lines at the window's edge."),
    Option("documents/autosave_s", int, 3, "Autosave after",
           "Seconds after the last change when unsaved text is copied to the recovery folder.",
           minimum=1, maximum=300, step=1, suffix=" s"),
    *(Option.from_sampling(setting) for setting in FIELDS.values()),
)
"""Every setting of the application, declared once, in the order the preferences list them."""

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

    def _load(self, option: Option) -> Any:
        raw = self._store.value(option.key)
        if raw is None:
            return option.default
        try:
            return option.parse(raw if isinstance(raw, str) else str(raw))
        except ValueError as error:
            log.warning("settings %s: %s; using the default %r", self.path, error, option.default)
            return option.default

    # -- declared settings ------------------------------------------------------------------------

    def value(self, key: str) -> Any:
        """The current value of the setting ``key``; ``KeyError`` lists the known keys."""
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown setting {key!r}; known: {', '.join(OPTIONS)}") from None

    def set_value(self, key: str, value: Any) -> bool:
        """Change a setting; return whether it changed. A bad value raises ``ValueError``."""
        option = OPTIONS.get(key)
        if option is None:
            raise KeyError(f"unknown setting {key!r}; known: {', '.join(OPTIONS)}")
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
        values = {name: self._values[sampling_key(name)] for name in FIELDS}
        return SamplingConfig.from_mapping(values)

    def set_sampling_config(self, config: SamplingConfig, names: Iterable[str] | None = None) -> None:
        """Store the decoding settings of ``config`` (only ``names`` if given)."""
        for name in FIELDS if names is None else names:
            self.set_value(sampling_key(name), getattr(config, name))

    def apply_preset(self, name: str) -> None:
        """Set the decoding settings of preset ``name`` (see :data:`PRESET_FIELDS`)."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
        self.set_sampling_config(PRESETS[name], PRESET_FIELDS)

    def matching_preset(self) -> str:
        """The preset the current decoding settings equal, or ``""``."""
        for name, preset in PRESETS.items():
            if all(self._values[sampling_key(f)] == getattr(preset, f) for f in PRESET_FIELDS):
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

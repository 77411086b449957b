"""Declared settings, and the decoding settings of the language model.

A :class:`Setting` declares one setting once, with its default, title, help text and bounds; it checks,
parses and formats values. Each decoding setting is declared in :data:`FIELDS`;
:class:`SamplingConfig` takes its defaults from there, and the preferences dialog and the CLI are built
from the same table. :data:`PRESETS` are named starting points. The logits processors and the sampler
that use a config live in :mod:`aigc_studio.core.sampling`, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_TOP_P",
    "FIELDS",
    "PRESETS",
    "STOP_MODES",
    "STRATEGIES",
    "SamplingConfig",
    "Setting",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

STRATEGIES: tuple[str, ...] = ("greedy", "sample", "top-k", "top-p", "beam")
"""Decoding strategies, in the order a GUI lists them."""

STOP_MODES: tuple[str, ...] = ("none", "newline", "sentence")
"""Where a generated suggestion is cut (see :func:`aigc_studio.core.text.stop_index`)."""

DEFAULT_TOP_K = 40
"""The ``top_k`` used by the "top-k" strategy when ``top_k`` is 0 (off)."""

DEFAULT_TOP_P = 0.9
"""The ``top_p`` used by the "top-p" strategy when ``top_p`` is 1.0 (off)."""


# --------------------------------------------------------------------------------------------------
# Settings table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting(Generic[T]):
    """The declaration of one setting: what it is called, what it does and what it may be.

    Decoding settings (:data:`FIELDS`) and the application's settings
    (:mod:`aigc_studio.services.settings`) are both declared with it, so a preferences dialog, a CLI
    and a settings file are built from one kind of declaration. ``T`` is the type of its values.

    ``kind`` is ``bool``, ``int``, ``float`` or ``str``. Numbers are bounded by ``minimum`` and
    ``maximum`` (inclusive); a ``str`` with ``choices`` must be one of them (``choice_titles`` are what
    a GUI shows for them). ``optional`` settings also accept ``None`` (shown as "random" or "off" by
    the GUI). ``group`` is where a settings file keeps it: the key is ``"group/name"``.
    """

    name: str
    kind: type
    default: T
    title: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    step: float | None = None  # a sensible spin-box / slider increment for the GUI
    choice_titles: tuple[str, ...] = ()
    suffix: str = ""           # a unit a spin box shows, e.g. " ms"
    group: str = ""

    @property
    def key(self) -> str:
        """``"group/name"`` (just the name without a group): how errors and settings files name it."""
        return f"{self.group}/{self.name}" if self.group else self.name

    def range_text(self) -> str:
        """The allowed values in words, e.g. ``"0.0 to 5.0"`` or ``"one of 'none', 'newline'"``."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "text"
        else:
            low = "-inf" if self.minimum is None else _fmt(self.minimum, self.kind)
            high = "inf" if self.maximum is None else _fmt(self.maximum, self.kind)
            text = f"{self.kind.__name__} from {low} to {high}"
        return text + (", or None" if self.optional else "")

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable for this setting, or ``None`` if it is."""
        if value is None:
            return None if self.optional else "must not be None"
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                return "is not allowed"
            return None
        if isinstance(value, bool):
            return "must be a number, not a bool"
        if self.kind is int and not isinstance(value, (int, np.integer)):
            return "must be an integer"
        if self.kind is float and not isinstance(value, (int, float, np.integer, np.floating)):
            return "must be a number"
        # Whole numbers are compared exactly: as floats, 2**63 - 1 rounds up past its own maximum.
        number = int(value) if isinstance(value, (int, np.integer)) else float(value)  # type: ignore[arg-type]
        if isinstance(number, float) and math.isnan(number):
            return "must not be NaN"
        if self.minimum is not None and number < self.minimum:
            return "is too small"
        if self.maximum is not None and number > self.maximum:
            return "is too large"
        return None

    def check(self, value: object) -> T:
        """Return ``value`` (a whole number as a float for a float setting), or raise ``ValueError``
        naming the setting, the value and the allowed range."""
        if (self.kind is float and isinstance(value, (int, np.integer))
                and not isinstance(value, bool)):
            value = float(value)
        why = self.problem(value)
        if why is not None:
            raise ValueError(f"{self.key}={value!r} {why}: expected {self.range_text()}")
        return value  # type: ignore[return-value]

    def parse(self, text: str) -> T:
        """Convert a string (a CLI argument, a settings file entry) and check it; raise ``ValueError``."""
        raw = text.strip()
        value: Any
        if self.optional and raw.lower() in ("", "none", "random", "off"):
            value = None
        elif self.kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{self.key}={text!r} is not true or false")
            value = raw.lower() in ("true", "1")
        elif self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{self.key}={text!r} is not an integer: "
                                 f"expected {self.range_text()}") from None
        elif self.kind is float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{self.key}={text!r} is not a number: "
                                 f"expected {self.range_text()}") from None
        else:
            value = raw if self.choices else text
        return self.check(value)

    def format(self, value: object) -> str:
        """The text a value is stored as (what :meth:`parse` reads back)."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _fmt(number: float, kind: type) -> str:
    return str(int(number)) if kind is int else repr(float(number))


def _settings(*items: Setting) -> dict[str, Setting]:
    return {item.name: item for item in items}


FIELDS: dict[str, Setting] = _settings(
    Setting("strategy", str, "greedy", "Strategy",
            "How the next token is chosen: greedy takes the most likely token; sample draws from the "
            "filtered distribution; top-k and top-p sample with that filter on; beam keeps several "
            "candidate continuations and returns the best.",
            choices=STRATEGIES),
    Setting("temperature", float, 1.0, "Temperature",
            "Divides the logits before sampling: below 1 is more focused, above 1 more varied; "
            "0 means greedy.",
            minimum=0.0, maximum=5.0, step=0.05),
    Setting("top_k", int, 0, "Top-k",
            f"Sample only among the k most likely tokens; 0 turns the filter off (the top-k "
            f"strategy then uses {DEFAULT_TOP_K}).",
            minimum=0, maximum=100_000, step=1),
    Setting("top_p", float, 1.0, "Top-p (nucleus)",
            f"Sample only among the most likely tokens whose probabilities add up to p; 1 turns the "
            f"filter off (the top-p strategy then uses {DEFAULT_TOP_P}).",
            minimum=0.0, maximum=1.0, step=0.01),
    Setting("min_p", float, 0.0, "Min-p",
            "Drop tokens less likely than this fraction of the most likely token; 0 turns it off.",
            minimum=0.0, maximum=1.0, step=0.01),
    Setting("repetition_penalty", float, 1.0, "Repetition penalty",
            "Makes tokens that already occur in the recent text less likely (positive logits are "
            "divided by it, negative ones multiplied); 1 turns it off.",
            minimum=1.0, maximum=5.0, step=0.05),
    Setting("repetition_window", int, 256, "Repetition window",
            "How many of the most recent tokens the repetition penalty looks at; 0 means all.",
            minimum=0, maximum=1_000_000, step=16),
    Setting("num_beams", int, 4, "Beams",
            "How many candidate continuations beam search keeps at each step.",
            minimum=1, maximum=64, step=1),
    Setting("length_penalty", float, 1.0, "Length penalty",
            "Beam scores are the summed log-probability divided by length to this power: above 0 "
            "favours longer continuations, below 0 shorter ones.",
            minimum=-2.0, maximum=5.0, step=0.1),
    Setting("num_return", int, 1, "Suggestions",
            "How many suggestions to return: the size of the beam n-best list, or the number of "
            "samples.",
            minimum=1, maximum=64, step=1),
    Setting("max_new_tokens", int, 32, "Maximum length",
            "The most tokens one suggestion may have.",
            minimum=1, maximum=4096, step=1),
    Setting("seed", int, None, "Seed",
            "Fixes the random choices so the same text and seed give the same suggestion; empty "
            "means a fresh random seed each time.",
            minimum=0, maximum=2**63 - 1, optional=True, step=1),
    Setting("stop", str, "none", "Stop at",
            "Where a suggestion ends early: never, at the end of the line, or at the end of the "
            "first sentence.",
            choices=STOP_MODES),
)
"""Every decoding setting, declared once, in the order the preferences dialog shows them."""


def _default(name: str) -> Any:
    return FIELDS[name].default


# --------------------------------------------------------------------------------------------------
# The configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingConfig:
    """Every decoding setting, immutable, so a snapshot can be handed to a worker thread.

    The defaults, titles, help texts and bounds live in :data:`FIELDS`. Construction does not check
    the values; call :meth:`validated` (or build from untrusted data with :meth:`from_mapping`).
    """

    strategy: str = _default("strategy")
    temperature: float = _default("temperature")
    top_k: int = _default("top_k")
    top_p: float = _default("top_p")
    min_p: float = _default("min_p")
    repetition_penalty: float = _default("repetition_penalty")
    repetition_window: int = _default("repetition_window")
    num_beams: int = _default("num_beams")
    length_penalty: float = _default("length_penalty")
    num_return: int = _default("num_return")
    max_new_tokens: int = _default("max_new_tokens")
    seed: int | None = _default("seed")
    stop: str = _default("stop")

    def validated(self) -> SamplingConfig:
        """Return ``self`` if every setting is within its bounds, else raise ``ValueError``.

        The message names the field, its value and the allowed range, e.g.
        ``"top_p=1.5 is too large: expected float from 0.0 to 1.0"``.
        """
        for name, setting in FIELDS.items():
            setting.check(getattr(self, name))
        if self.strategy == "beam" and self.num_return > self.num_beams:
            raise ValueError(f"num_return={self.num_return} is too large for beam search: expected "
                             f"at most num_beams={self.num_beams}")
        return self

    def with_(self, **changes: Any) -> SamplingConfig:
        """A copy with some settings changed (``dataclasses.replace``); unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict, in :data:`FIELDS` order (for settings files and metadata)."""
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, strict: bool = False) -> SamplingConfig:
        """Build a config from stored settings; strings are parsed as on a command line.

        With ``strict=False`` an unknown key is ignored and a bad value falls back to the default,
        each with a log warning; with ``strict=True`` both raise ``ValueError``.
        """
        values: dict[str, Any] = {}
        for key, raw in data.items():
            setting = FIELDS.get(key)
            if setting is None:
                if strict:
                    raise ValueError(f"unknown sampling setting {key!r}: expected one of "
                                     f"{', '.join(FIELDS)}")
                log.warning("ignoring unknown sampling setting %r", key)
                continue
            try:
                if isinstance(raw, str) and setting.kind is not str:
                    value = setting.parse(raw)
                else:
                    setting.check(raw)
                    value = raw
                    if setting.kind is float and value is not None:
                        value = float(value)
                    elif setting.kind is int and value is not None:
                        value = int(value)
            except ValueError as error:
                if strict:
                    raise
                log.warning("%s; using the default %r", error, setting.default)
                continue
            values[key] = value
        config = cls(**values)
        if config.strategy == "beam" and config.num_return > config.num_beams:
            if strict:
                config.validated()
            log.warning("num_return=%d exceeds num_beams=%d; using num_return=%d",
                        config.num_return, config.num_beams, config.num_beams)
            config = config.with_(num_return=config.num_beams)
        return config

    # -- what the strategy means ------------------------------------------------------------------

    @property
    def is_beam(self) -> bool:
        """Whether this config asks for beam search."""
        return self.strategy == "beam"

    @property
    def is_greedy(self) -> bool:
        """Whether the next token is the arg-max: strategy "greedy", or sampling at temperature 0."""
        return self.strategy == "greedy" or (self.strategy != "beam" and self.temperature == 0.0)

    @property
    def effective_top_k(self) -> int:
        """The top-k filter in force when sampling (0 = off); "top-k" turns 0 into the default 40."""
        if self.strategy == "top-k" and self.top_k == 0:
            return DEFAULT_TOP_K
        return self.top_k

    def describe(self) -> str:
        """The strategy in a few words, e.g. "top-p 0.9, temperature 0.8, repetition penalty 1.1"."""
        if self.is_beam:
            return f"beam search, {self.num_beams} beams"
        if self.is_greedy:
            parts = ["greedy"]
        else:
            first = {"top-p": f"top-p {self.effective_top_p:g}",
                     "top-k": f"top-k {self.effective_top_k}"}.get(self.strategy, "sampling")
            parts = [first, f"temperature {self.temperature:g}"]
        if self.repetition_penalty != 1:
            parts.append(f"repetition penalty {self.repetition_penalty:g}")
        return ", ".join(parts)

    @property
    def effective_top_p(self) -> float:
        """The top-p filter in force when sampling (1.0 = off); "top-p" turns 1.0 into 0.9."""
        if self.strategy == "top-p" and self.top_p >= 1.0:
            return DEFAULT_TOP_P
        return self.top_p


PRESETS: dict[str, SamplingConfig] = {
    # The most likely token each step: one model run per token, the suggestions' default (the
    # keystroke savings in the README were measured with it).
    "Fast": SamplingConfig(strategy="greedy"),
    "Precise": SamplingConfig(strategy="beam", num_beams=4, length_penalty=1.0),
    "Balanced": SamplingConfig(strategy="top-p", top_p=0.9, temperature=0.8, repetition_penalty=1.1),
    "Creative": SamplingConfig(strategy="top-p", top_p=0.95, temperature=1.1),
}
"""Named starting points for the settings, in the order the GUI lists them."""


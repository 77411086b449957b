"""Decoding settings and logits processors for the language model.

Everything here is pure numpy over a 1-D array of logits, shape ``(V,)``: the runtime feeds the last
position's logits of the model and gets back a token id. The processors return a new array and mark
removed tokens with ``-inf``; probabilities are computed in float64.

Each decoding setting is declared once, in :data:`FIELDS`, with its default, title, help text and bounds;
:class:`SamplingConfig` takes its defaults from there, and the preferences dialog and the CLI are built
from the same table.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FIELDS",
    "PRESETS",
    "STOP_MODES",
    "STRATEGIES",
    "Sampler",
    "SamplingConfig",
    "Setting",
    "apply_repetition_penalty",
    "apply_temperature",
    "apply_repetition_penalty",
    "log_softmax",
    "min_p_filter",
    "process_logits",
    "softmax",
    "top_k_filter",
    "top_p_filter",
]

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
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


# --------------------------------------------------------------------------------------------------
# Logits processors
# --------------------------------------------------------------------------------------------------


def _as_logits(logits: NDArray[Any], *, finite: bool = False) -> FloatArray:
    """A float64 copy of a 1-D logits array; raise ``ValueError`` on a bad shape, NaN or +inf, and
    with ``finite`` also when no entry is finite (no token is possible)."""
    array = np.array(logits, dtype=np.float64)  # always a copy
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array, got shape {array.shape}")
    nan = np.isnan(array)
    if nan.any():
        where = np.flatnonzero(nan)
        raise ValueError(f"logits contain NaN at {where.size} of {array.size} positions "
                         f"(first at token {int(where[0])}); the model output is broken")
    posinf = np.isposinf(array)
    if posinf.any():
        raise ValueError(f"logits contain +inf at token {int(np.flatnonzero(posinf)[0])}; "
                         f"the model output is broken")
    if finite and not np.isfinite(array).any():
        raise ValueError("logits have no finite entry: every token is masked")
    return array


def log_softmax(logits: NDArray[Any], *, dead_rows: bool = False) -> FloatArray:
    """Log-probabilities in float64, numerically stable; ``-inf`` logits stay ``-inf``.

    Works along the last axis, so a ``(B, V)`` batch is fine too. Raises ``ValueError`` if a row
    contains NaN, or has no finite logit (no token is possible) unless ``dead_rows``, which leaves such
    a row all ``-inf`` (a dead beam).
    """
    array = np.asarray(logits, dtype=np.float64)
    if np.isnan(array).any():
        raise ValueError("logits contain NaN")
    peak = np.max(array, axis=-1, keepdims=True)
    if not np.all(np.isfinite(peak)):
        if not dead_rows:
            raise ValueError("logits have no finite entry (every token is masked) or contain +inf")
        peak = np.where(np.isfinite(peak), peak, 0.0)
    shifted: FloatArray = array - peak
    with np.errstate(divide="ignore"):
        shifted -= np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return shifted


def softmax(logits: NDArray[Any]) -> FloatArray:
    """Probabilities in float64 along the last axis; masked (``-inf``) tokens get exactly 0."""
    return np.exp(log_softmax(logits))


def _penalise(x: FloatArray, history: Sequence[int] | NDArray[Any], penalty: float,
              window: int) -> None:
    """`apply_repetition_penalty` in place: the one implementation sampling and beam search use."""
    if penalty <= 0 or math.isnan(penalty):
        raise ValueError(f"repetition penalty must be positive, got {penalty!r}")
    if window < 0:
        raise ValueError(f"repetition window must be >= 0, got {window!r}")
    ids = np.asarray(history, dtype=np.int64).reshape(-1)
    if penalty == 1.0 or ids.size == 0:
        return
    if window > 0:
        ids = ids[-window:]
    ids = np.unique(ids)
    if ids[0] < 0 or ids[-1] >= x.size:
        bad = int(ids[0]) if ids[0] < 0 else int(ids[-1])
        raise ValueError(f"history token {bad} is outside the vocabulary of {x.size}")
    chosen = x[ids]
    x[ids] = np.where(chosen > 0, chosen / penalty, chosen * penalty)


def _temper(x: FloatArray, t: float) -> None:
    if t < 0 or math.isnan(t):
        raise ValueError(f"temperature must be >= 0, got {t!r}")
    if t == 0:
        best = int(np.argmax(x))
        keep = x[best]
        x[:] = -np.inf
        x[best] = keep
    elif t != 1.0:
        x /= t


def _top_k(x: FloatArray, k: int) -> None:
    if k <= 0 or k >= x.size:
        return
    # O(V): the k-th largest value v; keep everything above it and the lowest-id ties at v.
    v = x[np.argpartition(-x, k - 1)[k - 1]]
    keep = x > v
    ties = np.flatnonzero(x == v)[: k - int(keep.sum())]
    keep[ties] = True
    x[~keep] = -np.inf


def _softmax_1d(x: FloatArray) -> FloatArray:
    e: FloatArray = np.exp(x - x.max())
    e /= e.sum()
    return e


def _keep_count_top_p(sorted_probs: FloatArray, p: float) -> int:
    """How many of the descending ``sorted_probs`` form the smallest prefix whose sum reaches ``p``."""
    cumulative = np.cumsum(sorted_probs)
    # A tiny tolerance so that a prefix summing to p up to rounding counts as reaching it.
    reach = int(np.searchsorted(cumulative, p - _TOP_P_TOLERANCE, side="left"))
    return min(reach + 1, sorted_probs.size)


_TOP_P_TOLERANCE = 1e-12
_TOP_P_FIRST_GUESS = 64  # candidates looked at before sorting more of the vocabulary


def _top_p(x: FloatArray, p: float) -> None:
    if math.isnan(p):
        raise ValueError("top_p must not be NaN")
    if p >= 1.0:
        return
    probs = _softmax_1d(x)
    size = x.size
    # The nucleus is usually small: sort only the best m candidates, growing m until they reach p,
    # instead of sorting the whole vocabulary for every token.
    m = min(_TOP_P_FIRST_GUESS, size)
    while m < size:
        candidates = np.argpartition(-x, m - 1)[:m]
        if probs[candidates].sum() >= p - _TOP_P_TOLERANCE:
            order = candidates[np.lexsort((candidates, -x[candidates]))]
            keep = _keep_count_top_p(probs[order], p)
            # Ties with the m-th value may have been cut arbitrarily; then sort everything instead.
            if x[order[keep - 1]] > x[order[-1]]:
                mask = np.ones(size, dtype=np.bool_)
                mask[order[:keep]] = False
                x[mask] = -np.inf
                return
            break
        m *= 8
    order = np.argsort(-x, kind="stable")  # ties by token id
    keep = _keep_count_top_p(probs[order], p)
    x[order[keep:]] = -np.inf


def _min_p(x: FloatArray, p: float) -> None:
    if math.isnan(p):
        raise ValueError("min_p must not be NaN")
    if p <= 0:
        return
    ratio = np.exp(x - x.max())  # each token's probability over the largest one
    x[ratio < p] = -np.inf


def apply_repetition_penalty(logits: NDArray[Any], history: Sequence[int] | NDArray[Any],
                             penalty: float, window: int = 0) -> FloatArray:
    """CTRL-style penalty for the tokens that occur in the last ``window`` tokens of ``history``.

    A repeated token's positive logit is divided by ``penalty`` and a negative one multiplied, so it
    becomes less likely either way (for ``penalty > 1``). Each token is penalised once however often
    it occurs. ``window`` 0 means the whole history; ``penalty`` 1 leaves the logits unchanged.
    """
    result = _as_logits(logits)
    _penalise(result, history, penalty, window)
    return result


def apply_temperature(logits: NDArray[Any], t: float) -> FloatArray:
    """Divide the logits by temperature ``t``.

    ``t == 0`` is the limit of a vanishing temperature: only the most likely token (the first one on a
    tie) keeps its logit and every other becomes ``-inf``, so sampling from the result is greedy.
    """
    result = _as_logits(logits)
    _temper(result, t)
    return result


def top_k_filter(logits: NDArray[Any], k: int) -> FloatArray:
    """Keep exactly the ``k`` highest logits (ties broken by the lower token id), the rest ``-inf``.

    ``k <= 0`` or ``k >= V`` leaves the logits unchanged.
    """
    result = _as_logits(logits)
    _top_k(result, k)
    return result


def top_p_filter(logits: NDArray[Any], p: float) -> FloatArray:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches ``p``.

    Tokens are taken in order of decreasing probability (ties by token id) until their cumulative
    probability is at least ``p``; at least one token is always kept. ``p >= 1`` leaves the logits
    unchanged.
    """
    result = _as_logits(logits, finite=True)
    _top_p(result, p)
    return result


def min_p_filter(logits: NDArray[Any], p: float) -> FloatArray:
    """Keep the tokens whose probability is at least ``p`` times that of the most likely token.

    ``p <= 0`` leaves the logits unchanged; the most likely token is always kept.
    """
    result = _as_logits(logits, finite=True)
    _min_p(result, p)
    return result


def _apply_allowed(x: FloatArray, allowed: NDArray[Any] | None) -> None:
    if allowed is None:
        return
    mask = np.asarray(allowed)
    if mask.dtype != np.bool_ or mask.shape != x.shape:
        raise ValueError(f"allowed must be a boolean mask of shape {x.shape}, "
                         f"got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise ValueError("allowed mask permits no token")
    x[~mask] = -np.inf


def process_logits(logits: NDArray[Any], config: SamplingConfig,
                   history: Sequence[int] | NDArray[Any] = (),
                   allowed: NDArray[Any] | None = None) -> FloatArray:
    """Apply the config's processors to one step's logits, in the standard order.

    The order is: ``allowed`` mask, repetition penalty, then, only when sampling, temperature, top-k,
    top-p and min-p. For greedy decoding and beam search the sampling filters are skipped (they would
    not change the arg-max, and beam search needs the full distribution), so the result is the masked,
    penalised logits. Returns a new float64 array with removed tokens at ``-inf``.

    Raises ``ValueError`` for NaN logits, a bad ``allowed`` mask, or when no token is left.
    """
    result = _as_logits(logits)
    _apply_allowed(result, allowed)
    if not np.isfinite(result).any():
        raise ValueError("no token is possible: every allowed token has a logit of -inf")
    _penalise(result, history, config.repetition_penalty, config.repetition_window)
    if not config.is_greedy and not config.is_beam:
        _temper(result, config.temperature)
        _top_k(result, config.effective_top_k)
        _top_p(result, config.effective_top_p)
        _min_p(result, config.min_p)
    return result


# --------------------------------------------------------------------------------------------------
# Sampler
# --------------------------------------------------------------------------------------------------


class Sampler:
    """Chooses next tokens according to a :class:`SamplingConfig`, with its own seeded generator.

    The generator is ``numpy.random.Generator(PCG64(config.seed))``; a ``None`` seed draws fresh
    entropy. The same seed, logits and history give the same tokens. Beam search is not done here
    (see :func:`aigc_studio.core.beam.beam_search`); with strategy "beam" :meth:`next_token` is
    greedy. Not thread-safe: one sampler per generation.
    """

    def __init__(self, config: SamplingConfig) -> None:
        self.config: SamplingConfig = config.validated()
        self.rng: np.random.Generator = np.random.Generator(np.random.PCG64(config.seed))

    def probabilities(self, logits: NDArray[Any], history: Sequence[int] | NDArray[Any] = (),
                      allowed: NDArray[Any] | None = None) -> FloatArray:
        """The float64 distribution :meth:`next_token` draws from (one-hot on the arg-max if greedy)."""
        processed = process_logits(logits, self.config, history, allowed)
        if self.config.is_greedy or self.config.is_beam:
            probs = np.zeros_like(processed)
            probs[int(np.argmax(processed))] = 1.0
            return probs
        return softmax(processed)

    def next_token(self, logits: NDArray[Any], history: Sequence[int] | NDArray[Any] = (),
                   allowed: NDArray[Any] | None = None) -> int:
        """The next token id for these logits ``(V,)``, given the token ``history`` (prompt + output).

        ``allowed`` is an optional boolean mask ``(V,)`` of the tokens that may be chosen. Raises
        ``ValueError`` for NaN logits or when no token is allowed.
        """
        processed = process_logits(logits, self.config, history, allowed)
        if self.config.is_greedy or self.config.is_beam:
            return int(np.argmax(processed))
        return self._draw(softmax(processed))

    def _draw(self, probs: FloatArray) -> int:
        """Inverse-CDF draw of one index; never returns a zero-probability token."""
        cumulative = np.cumsum(probs)
        u = self.rng.random() * cumulative[-1]
        index = int(np.searchsorted(cumulative, u, side="right"))
        if index >= probs.size or probs[index] == 0.0:  # u rounded onto the total
            index = int(np.flatnonzero(probs)[-1])
        return index

"""Logits processors and the seeded sampler for the language model.

Everything here is pure numpy over a 1-D array of logits, shape ``(V,)``: the runtime feeds the last
position's logits of the model and gets back a token id. The processors return a new array and mark
removed tokens with ``-inf``; probabilities are computed in float64.

The decoding settings (:class:`SamplingConfig`, the :data:`FIELDS` table, :data:`PRESETS`) and the
:class:`Setting` declaration are in :mod:`aigc_studio.core.options`; they are re-exported here, so
``from aigc_studio.core.sampling import SamplingConfig`` keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aigc_studio.core.options import (
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    FIELDS,
    PRESETS,
    STOP_MODES,
    STRATEGIES,
    SamplingConfig,
    Setting,
)

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_TOP_P",
    "FIELDS",
    "PRESETS",
    "STOP_MODES",
    "STRATEGIES",
    "Sampler",
    "SamplingConfig",
    "Setting",
    "apply_repetition_penalty",
    "apply_temperature",
    "log_softmax",
    "min_p_filter",
    "process_logits",
    "softmax",
    "top_k_filter",
    "top_p_filter",
]

FloatArray = NDArray[np.float64]


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

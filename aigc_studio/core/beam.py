"""Beam search over a step function, for the n-best list of completions.

The search never touches the model: the caller passes the logits of the prompt's last position and a
``step(parents, tokens)`` callable. For every live beam of the next step, ``parents[i]`` is the index
of the beam it extends among the previous step's live beams (on the first call all parents are 0, the
prompt) and ``tokens[i]`` is the token it appends. The caller reorders its KV cache by ``parents``
(``cache[:, parents]``), runs the model on ``tokens`` and returns the logits ``(n_live, V)``.

Scores are length-penalised as in GNMT / Hugging Face: ``sum of log-probabilities / length **
length_penalty``, where the length counts the end-of-sequence token when there is one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aigc_studio.core.sampling import apply_repetition_penalty, log_softmax

__all__ = ["Hypothesis", "StepFn", "beam_search", "length_penalised"]

StepFn = Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[Any]]
"""``step(parents, tokens) -> logits (n_live, V)``; see the module docstring."""


@dataclass(frozen=True)
class Hypothesis:
    """One candidate continuation.

    ``tokens`` are the generated token ids (without the end-of-sequence token; with the token that made
    ``is_finished`` true). ``logprob`` is their summed log-probability (including the end-of-sequence
    token's), ``score`` the length-penalised ``logprob`` the n-best list is sorted by, and ``finished``
    says whether it ended naturally (end of sequence or ``is_finished``) rather than being cut by
    ``max_new_tokens`` or a cancellation.
    """

    tokens: tuple[int, ...]
    score: float
    logprob: float
    finished: bool


def length_penalised(logprob: float, length: int, length_penalty: float) -> float:
    """``logprob / length ** length_penalty``; a length below 1 counts as 1."""
    return float(logprob / (max(length, 1) ** length_penalty))


def _check_logits(logits: NDArray[Any], shape: tuple[int, ...], what: str) -> NDArray[np.float64]:
    array = np.array(logits, dtype=np.float64)  # a copy we may modify
    if array.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{what} contain NaN; the model output is broken")
    if np.isposinf(array).any():
        raise ValueError(f"{what} contain +inf; the model output is broken")
    return array


def _penalise_rows(logits: NDArray[np.float64], beams: Sequence[tuple[int, ...]],
                   history: NDArray[np.int64], penalty: float, window: int) -> None:
    """The repetition penalty, in place, each row over the history followed by its own beam."""
    for r, beam in enumerate(beams):
        ids = np.concatenate([history, np.asarray(beam, dtype=np.int64)])
        logits[r] = apply_repetition_penalty(logits[r], ids, penalty, window)


def beam_search(
    first_logits: NDArray[Any],
    step: StepFn,
    *,
    num_beams: int,                         # live beams kept at every step
    max_new_tokens: int,                    # the longest hypothesis, in tokens
    eos_id: int | None,                     # ends a hypothesis, not included in its tokens
    length_penalty: float = 1.0,            # exponent of the length in the score
    num_return: int = 1,                    # size of the n-best list, at most num_beams
    allowed_first: NDArray[Any] | None = None,  # boolean mask (V,) of permitted first tokens
    is_finished: Callable[[tuple[int, ...]], bool] | None = None,  # ends it, last token included
    should_stop: Callable[[], bool] | None = None,  # True cancels; checked before every step call
    repetition_penalty: float = 1.0,        # CTRL-style, over history + the beam's own tokens
    history: Sequence[int] | NDArray[Any] = (),  # prompt token ids, for the repetition penalty
    repetition_window: int = 0,             # only the last N tokens count for the penalty; 0 = all
) -> list[Hypothesis]:
    """Beam search from the prompt's last logits; returns the n-best list, best first.

    At every step each live beam's log-probabilities are added to its score, the best ``2 *
    num_beams`` of all ``n_live * V`` candidates are found with one ``argpartition``, and taken in
    order: a candidate ending in ``eos_id``, or for which ``is_finished(tokens)`` is true, becomes a
    finished hypothesis if it ranks within the first ``num_beams``; the others become the next live
    beams until there are ``num_beams`` of them. The search ends when no beam is live, at
    ``max_new_tokens``, when ``should_stop()`` returns True (the best so far is returned, live beams as
    unfinished hypotheses), or as soon as no live beam can reach the score of the ``num_return``-th
    best finished hypothesis.

    Returns at most ``num_return`` hypotheses with distinct token sequences, sorted by decreasing
    score. Raises ``ValueError`` for bad arguments, NaN logits or a step result of the wrong shape.
    """
    _check_arguments(num_beams=num_beams, max_new_tokens=max_new_tokens, num_return=num_return,
                     length_penalty=length_penalty, repetition_penalty=repetition_penalty,
                     repetition_window=repetition_window)
    logits = _first_logits(first_logits, allowed_first)
    search = _BeamSearch(vocab=logits.shape[1], num_beams=num_beams, max_new_tokens=max_new_tokens,
                         eos_id=eos_id, length_penalty=length_penalty, num_return=num_return,
                         is_finished=is_finished, repetition_penalty=repetition_penalty,
                         history=history, repetition_window=repetition_window)
    return search.run(logits, step, should_stop)


def _check_arguments(*, num_beams: int, max_new_tokens: int, num_return: int, length_penalty: float,
                     repetition_penalty: float, repetition_window: int) -> None:
    """Raise ``ValueError`` for a setting of :func:`beam_search` out of its range."""
    if num_beams < 1:
        raise ValueError(f"num_beams={num_beams!r} must be at least 1")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be at least 1")
    if not 1 <= num_return <= num_beams:
        raise ValueError(f"num_return={num_return!r} must be from 1 to num_beams={num_beams}")
    if math.isnan(length_penalty):
        raise ValueError("length_penalty must not be NaN")
    if not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty={repetition_penalty!r} must be positive")
    if repetition_window < 0:
        raise ValueError(f"repetition_window={repetition_window!r} must be >= 0")


def _first_logits(first_logits: NDArray[Any], allowed_first: NDArray[Any] | None) -> NDArray[np.float64]:
    """The prompt's last logits as a checked ``(1, V)`` float64 copy, with ``allowed_first`` applied."""
    first = np.asarray(first_logits)
    if first.ndim != 1 or first.size == 0:
        raise ValueError(f"first_logits must be a non-empty 1-D array, got shape {first.shape}")
    vocab = first.size
    logits = _check_logits(first[None, :], (1, vocab), "first_logits")
    if allowed_first is not None:
        mask = np.asarray(allowed_first)
        if mask.dtype != np.bool_ or mask.shape != (vocab,):
            raise ValueError(f"allowed_first must be a boolean mask of shape ({vocab},), "
                             f"got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise ValueError("allowed_first permits no token")
        logits[0, ~mask] = -np.inf
    if not np.isfinite(logits).any():
        raise ValueError("no first token is possible (every logit is -inf)")
    return logits


class _BeamSearch:
    """The state of one :func:`beam_search`: the live beams, their log-probabilities and the finished
    hypotheses, with one method per part of a step."""

    def __init__(self, *, vocab: int, num_beams: int, max_new_tokens: int, eos_id: int | None,
                 length_penalty: float, num_return: int,
                 is_finished: Callable[[tuple[int, ...]], bool] | None, repetition_penalty: float,
                 history: Sequence[int] | NDArray[Any], repetition_window: int) -> None:
        self.vocab = vocab
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.eos_id = eos_id
        self.length_penalty = length_penalty
        self.num_return = num_return
        self.is_finished = is_finished
        self.repetition_penalty = repetition_penalty
        self.repetition_window = repetition_window
        self.penalise = repetition_penalty != 1.0
        history_ids = np.asarray(history, dtype=np.int64).reshape(-1)
        if self.penalise and repetition_window > 0:
            history_ids = history_ids[-repetition_window:]
        self.history_ids = history_ids
        self.live: list[tuple[int, ...]] = [()]  # the prompt is the only beam before the first token
        self.live_logprob = np.zeros(1)          # (n_live,)
        self.done: dict[tuple[int, ...], Hypothesis] = {}

    def run(self, logits: NDArray[np.float64], step: StepFn,
            should_stop: Callable[[], bool] | None) -> list[Hypothesis]:
        """Search from the first ``logits`` ``(1, V)``, calling ``step`` between steps; the n-best list."""
        for t in range(self.max_new_tokens):
            if self.penalise:
                _penalise_rows(logits, self.live, self.history_ids, self.repetition_penalty,
                               self.repetition_window)
            candidates = self._candidates(logits)
            if candidates is None:
                break  # every live beam is dead
            parents, tokens = self._advance(*candidates)
            if not self.live or t == self.max_new_tokens - 1:
                break
            if self._cannot_improve():
                self.live = []  # nothing live can enter the n-best list any more
                break
            if should_stop is not None and should_stop():
                break
            parents_array = np.asarray(parents, dtype=np.int64)
            tokens_array = np.asarray(tokens, dtype=np.int64)
            logits = _check_logits(step(parents_array, tokens_array), (len(self.live), self.vocab),
                                   "step logits")
        return self._ranked()

    def _candidates(self, logits: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp]] | None:
        """The flat scores ``(n_live * V,)`` and the indices of the best ``2 * num_beams`` of them, best
        first (ties by parent, then token); ``None`` when no candidate has a finite score."""
        scores = self.live_logprob[:, None] + log_softmax(logits, dead_rows=True)  # (n_live, V)
        flat = scores.ravel()
        k = min(2 * self.num_beams, int(np.isfinite(flat).sum()))
        if k == 0:
            return None
        top = np.argpartition(-flat, k - 1)[:k]
        return flat, top[np.lexsort((top, -flat[top]))]

    def _advance(self, flat: NDArray[np.float64], top: NDArray[np.intp]) -> tuple[list[int], list[int]]:
        """Take the ranked candidates in order: finish those that end, make the others the next live
        beams (at most ``num_beams``); return the parent index and token of each new live beam."""
        next_beams: list[tuple[int, ...]] = []
        parents: list[int] = []
        tokens: list[int] = []
        logprobs: list[float] = []
        for rank, index in enumerate(top.tolist()):
            parent, token = divmod(index, self.vocab)
            logprob = float(flat[index])
            if self.eos_id is not None and token == self.eos_id:
                if rank < self.num_beams:
                    self._finish(self.live[parent], logprob, len(self.live[parent]) + 1, True)
                continue
            beam = self.live[parent] + (token,)
            if self.is_finished is not None and self.is_finished(beam):
                if rank < self.num_beams:
                    self._finish(beam, logprob, len(beam), True)
                continue
            next_beams.append(beam)
            parents.append(parent)
            tokens.append(token)
            logprobs.append(logprob)
            if len(next_beams) == self.num_beams:
                break
        self.live = next_beams
        self.live_logprob = np.asarray(logprobs, dtype=np.float64)
        return parents, tokens

    def _cannot_improve(self) -> bool:
        """Whether no live beam can reach the score of the ``num_return``-th best finished hypothesis."""
        if len(self.done) < self.num_return:
            return False
        worst_kept = sorted((h.score for h in self.done.values()), reverse=True)[self.num_return - 1]
        return max(self._best_reachable(lp, len(b))
                   for lp, b in zip(self.live_logprob.tolist(), self.live)) <= worst_kept

    def _best_reachable(self, logprob: float, length: int) -> float:
        """The length-penalised score a live beam can still reach: its log-probability can only fall,
        so with a positive exponent the best case is the longest length, otherwise the current one."""
        reach = self.max_new_tokens if self.length_penalty > 0 else length
        return length_penalised(logprob, reach, self.length_penalty)

    def _finish(self, tokens: tuple[int, ...], logprob: float, length: int, finished: bool) -> None:
        """Record a hypothesis, keeping the better score when the same tokens end twice."""
        hypothesis = Hypothesis(tokens, length_penalised(logprob, length, self.length_penalty), logprob,
                                finished)
        old = self.done.get(tokens)
        if old is None or hypothesis.score > old.score:
            self.done[tokens] = hypothesis

    def _ranked(self) -> list[Hypothesis]:
        """The live beams as unfinished hypotheses, then the ``num_return`` best, best first."""
        for beam, logprob in zip(self.live, self.live_logprob.tolist()):
            self._finish(beam, logprob, len(beam), False)
        ranked = sorted(self.done.values(), key=lambda h: (-h.score, not h.finished, h.tokens))
        return ranked[:self.num_return]

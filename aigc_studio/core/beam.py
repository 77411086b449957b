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

    penalise = repetition_penalty != 1.0
    history_ids = np.asarray(history, dtype=np.int64).reshape(-1)
    if penalise and repetition_window > 0:
        history_ids = history_ids[-repetition_window:]

    # The length-penalised score a live beam can still reach: its log-probability can only fall, so
    # with a positive exponent the best case is the longest length, otherwise the current one.
    def best_reachable(logprob: float, length: int) -> float:
        reach = max_new_tokens if length_penalty > 0 else length
        return length_penalised(logprob, reach, length_penalty)

    live: list[tuple[int, ...]] = [()]      # the prompt is the only beam before the first token
    live_logprob = np.zeros(1)              # (n_live,)
    done: dict[tuple[int, ...], Hypothesis] = {}

    def finish(hypothesis: Hypothesis) -> None:
        old = done.get(hypothesis.tokens)
        if old is None or hypothesis.score > old.score:
            done[hypothesis.tokens] = hypothesis

    n_candidates = 2 * num_beams
    for t in range(max_new_tokens):
        if penalise:
            _penalise_rows(logits, live, history_ids, repetition_penalty, repetition_window)
        scores = live_logprob[:, None] + log_softmax(logits, dead_rows=True)  # (n_live, V)
        flat = scores.ravel()
        k = min(n_candidates, int(np.isfinite(flat).sum()))
        if k == 0:
            break  # every live beam is dead
        top = np.argpartition(-flat, k - 1)[:k]
        top = top[np.lexsort((top, -flat[top]))]  # best first, ties by (parent, token)

        next_beams: list[tuple[int, ...]] = []
        parents: list[int] = []
        tokens: list[int] = []
        logprobs: list[float] = []
        for rank, index in enumerate(top.tolist()):
            parent, token = divmod(index, vocab)
            logprob = float(flat[index])
            if eos_id is not None and token == eos_id:
                if rank < num_beams:
                    beam = live[parent]
                    finish(Hypothesis(beam, length_penalised(logprob, len(beam) + 1, length_penalty),
                                      logprob, True))
                continue
            beam = live[parent] + (token,)
            if is_finished is not None and is_finished(beam):
                if rank < num_beams:
                    finish(Hypothesis(beam, length_penalised(logprob, len(beam), length_penalty),
                                      logprob, True))
                continue
            next_beams.append(beam)
            parents.append(parent)
            tokens.append(token)
            logprobs.append(logprob)
            if len(next_beams) == num_beams:
                break

        live = next_beams
        live_logprob = np.asarray(logprobs, dtype=np.float64)
        if not live or t == max_new_tokens - 1:
            break
        if len(done) >= num_return:
            worst_kept = sorted((h.score for h in done.values()), reverse=True)[num_return - 1]
            if max(best_reachable(lp, len(b)) for lp, b in zip(logprobs, live)) <= worst_kept:
                live = []  # nothing live can enter the n-best list any more
                break
        if should_stop is not None and should_stop():
            break
        parents_array = np.asarray(parents, dtype=np.int64)
        tokens_array = np.asarray(tokens, dtype=np.int64)
        logits = _check_logits(step(parents_array, tokens_array), (len(live), vocab),
                               "step logits")

    for beam, logprob in zip(live, live_logprob.tolist()):
        finish(Hypothesis(beam, length_penalised(logprob, len(beam), length_penalty), logprob, False))
    ranked = sorted(done.values(), key=lambda h: (-h.score, not h.finished, h.tokens))
    return ranked[:num_return]

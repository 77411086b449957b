"""Scoring text with a model: the negative log-likelihood that perplexity is made of."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aigc_studio.core.sampling import log_softmax
from aigc_studio.runtime.model_step import ModelStep


def negative_log_likelihood(step: ModelStep, ids: Sequence[int], context_length: int) -> float:
    """Sum of the negative log-likelihoods of ids[1:] given the earlier tokens (no cache reuse), in
    windows of the context length with half-window overlap: every token after the first window is
    scored with at least half a context before it."""
    ids = list(ids)
    total = 0.0
    stride = context_length // 2
    scored_upto = 1
    start = 0
    while scored_upto < len(ids):
        end = min(start + context_length, len(ids))
        logits, _ = step.forward(np.asarray([ids[start:end]], dtype=np.int64), 0, step.empty_cache())
        logp = log_softmax(logits[0])
        for t in range(max(scored_upto, start + 1), end):
            total -= float(logp[t - start - 1, ids[t]])
        scored_upto = end
        start = max(start + stride, end - context_length)
        if end == len(ids):
            break
    return total

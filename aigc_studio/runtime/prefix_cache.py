"""The KV cache of the last call, kept for the next one: a keystroke costs only the tokens that changed.

The cache holds the last call's tokens (prompt and generated path), their keys/values, and the logits
known after some of its prefixes, so that a call that walks the last call's tokens again needs no model
run for them (a letter typed inside a word gives the same backed-off prompt as the keystroke before).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from aigc_studio.runtime.kv_cache import KVCache
from aigc_studio.runtime.model_step import ModelStep

PREFILL_CHUNK = 128
"""Prompt tokens per model run of a prefill: shorter runs were faster overall on the CPU (measured in
docs/benchmarks.md), and each run is a cancellation point whose result the cache keeps."""
LOGITS_MEMO = 32
"""Positions of a call's generated path whose logits the cache keeps (besides the prompt's end), so that
the next keystroke's call walks the same tokens again without model runs (at most 32 x V floats)."""
LOGITS_BEHIND = 4
"""Known logits kept this many positions before a reused prefix's end (the back-off is at most 3 tokens)."""


@dataclass
class CachedPath:
    """The KV cache of the tokens `ids`, and the logits known after some of its prefixes:
    `logits[n]` is the next-token distribution after ids[:n]."""

    ids: list[int] = field(default_factory=list)
    kv: KVCache | None = None  # batch 1
    logits: dict[int, np.ndarray] = field(default_factory=dict)

    def logits_after(self, ids: Sequence[int]) -> np.ndarray | None:
        """The logits after `ids` if they are a prefix of the cache's tokens whose logits are known."""
        n = len(ids)
        found = self.logits.get(n)
        if found is None or n > len(self.ids) or self.ids[:n] != list(ids):
            return None
        return found

    def common_prefix(self, ids: Sequence[int]) -> int:
        """How many leading tokens of `ids` the cache holds."""
        n, limit = 0, min(len(ids), len(self.ids))
        while n < limit and ids[n] == self.ids[n]:
            n += 1
        return n

    def recent(self, end: int) -> dict[int, np.ndarray]:
        """The known logits at positions end - LOGITS_BEHIND .. end (valid for any token list that shares
        the first `end` tokens)."""
        return {k: v for k, v in self.logits.items() if end - LOGITS_BEHIND <= k <= end}


class PromptCache:
    """The cached path of the last call, and the prefill that reuses it."""

    def __init__(self) -> None:
        self.path = CachedPath()

    def reset(self) -> None:
        self.path = CachedPath()

    def common_prefix(self, ids: Sequence[int]) -> int:
        return self.path.common_prefix(ids)

    def keep_prompt(self, ids: Sequence[int], kv: KVCache, logits: np.ndarray) -> None:
        """Keep only the prompt's part (after a search whose rows copied and reordered the cache)."""
        self.path = CachedPath(ids=list(ids), kv=kv.truncated(len(ids)), logits={len(ids): logits})

    def prefill(self, step: ModelStep, ids: list[int], check: Callable[[], None],
                reused: Callable[[int], None]) -> tuple[np.ndarray, KVCache]:
        """Logits after `ids` (V,) and the KV cache for them (batch 1); `reused` is told at once how
        many of the tokens the cache held. The rest goes in runs of PREFILL_CHUNK tokens; the cache
        keeps every finished run, and `check` (which raises to cancel) is called between runs, so a
        cancelled prefill leaves its part for the next call."""
        path = self.path
        common = path.common_prefix(ids)
        if common == len(ids) and path.kv is not None and common in path.logits:
            # The prompt is a prefix of the cached tokens whose logits are known (the same prompt
            # again, or a keystroke inside a word: the backed-off prompt is the last one's): no run.
            reused(common)
            return path.logits[common], path.kv.truncated(common)
        common = min(common, len(ids) - 1)  # at least one token is fed to get logits
        if common > 0 and path.kv is not None:
            kv = path.kv.truncated(common)  # shares the buffer: the runs below overwrite its tail
        else:
            common = 0
            kv = step.empty_cache()
        reused(common)
        kv = step.reserve(kv, len(ids))  # room for the whole prompt at once, not one copy per run
        pos = common
        kept = path.recent(common) if common else {}
        while True:
            end = min(len(ids), pos + PREFILL_CHUNK)
            logits, kv = step.forward(np.asarray([ids[pos:end]], dtype=np.int64), pos, kv, last_only=True)
            last = logits[0, -1].astype(np.float32)
            self.path = CachedPath(ids=list(ids[:end]), kv=kv, logits={**kept, end: last})
            pos = end
            if pos == len(ids):
                return last, kv
            check()

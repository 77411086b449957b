"""The KV cache of a text model and its three layouts, one object each, chosen once from the manifest
(`graphs.kv_cache`):

- "concat" (packages without the field): `present` is the past and the new keys/values concatenated;
  the graph returns whole arrays.
- "buffer": the past tensors are a fixed-capacity buffer (B, H_kv, capacity, D) whose first
  `position_ids[0, 0]` slots are valid; `present` holds only the new tokens' keys/values, which the
  runtime writes into its buffer in place (grown in buckets of KV_BUCKET slots). A step costs no copy.
- "shared": past and present are one buffer (B, H_kv, capacity, D), bound to the same memory through
  onnxruntime's IOBinding; the graph (onnxruntime's GroupQueryAttention) writes the new tokens'
  keys/values at their positions itself and reads the slots before them. No copy, no write-back.

A graph variant may keep its cache in int8 (`graphs.kv_dtype`, "shared" only): the graph quantises keys
and values with per-channel scales fixed at export, and the runtime only allocates int8 buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KV_BUCKET = 64
"""A "buffer" or "shared" cache grows by this many slots, so growing (one copy) is rare."""


@dataclass
class KVCache:
    """The keys/values of `length` tokens for a batch: per layer key, value arrays (B, Hkv, capacity, D)
    whose first `length` slots are valid. In the "concat" layout capacity == length."""

    arrays: list[np.ndarray]
    length: int

    @property
    def batch(self) -> int:
        return self.arrays[0].shape[0]

    @property
    def capacity(self) -> int:
        return self.arrays[0].shape[2]

    def valid(self) -> list[np.ndarray]:
        """The valid part of every array (views), (B, Hkv, length, D)."""
        return [a[:, :, :self.length] for a in self.arrays]

    def truncated(self, n: int) -> KVCache:
        """The first n tokens, sharing memory: a later write after slot n may overwrite this cache's tail."""
        return KVCache(self.arrays, min(n, self.length))

    def reordered(self, rows: np.ndarray | Sequence[int]) -> KVCache:
        """A copy with batch rows picked by `rows` (beam search's parents); batch 1 is repeated."""
        rows = np.asarray(rows, dtype=np.intp)
        return KVCache([a[rows] for a in self.arrays], self.length)


@dataclass(frozen=True)
class CacheShape:
    """What a cache array looks like: layers, key/value heads, head size and element type."""

    n_layer: int
    kv_heads: int
    head_dim: int
    dtype: type[np.generic]


class CacheLayout:
    """The "concat" layout, and the interface of the others: how a step gets its past arrays and how
    its presents become the next cache."""

    name = "concat"
    bound = False
    """Whether past and present share memory through an IOBinding (the graph writes the cache)."""

    def __init__(self, shape: CacheShape) -> None:
        self.shape = shape

    def empty(self, batch: int = 1) -> KVCache:
        """A cache of no tokens."""
        s = self.shape
        return KVCache([np.zeros((batch, s.kv_heads, 0, s.head_dim), dtype=s.dtype)
                        for _ in range(2 * s.n_layer)], 0)

    def reserve(self, kv: KVCache, need: int) -> KVCache:
        """`kv` with room for `need` tokens (only buffers reserve room)."""
        return kv

    def past(self, kv: KVCache, steps: int) -> list[np.ndarray]:
        """The arrays fed as `past_key_values.*` to a run of `steps` tokens after `kv`."""
        return kv.valid()

    def after(self, kv: KVCache, presents: list[np.ndarray], start: int, steps: int) -> KVCache:
        """The cache after a run of `steps` tokens at `start` that returned `presents`."""
        return KVCache(presents, start + steps)


class BufferLayout(CacheLayout):
    """The "buffer" layout: new slots are written in place by the runtime."""

    name = "buffer"

    def reserve(self, kv: KVCache, need: int) -> KVCache:
        """The same arrays when they have room, else copies into new buffers of a whole number of buckets
        (zeros: masked slots must hold finite values)."""
        if kv.capacity >= need:
            return kv
        cap = -(-need // KV_BUCKET) * KV_BUCKET
        B, H, _, D = kv.arrays[0].shape
        arrays = []
        for a in kv.arrays:
            b = np.zeros((B, H, cap, D), dtype=a.dtype)
            b[:, :, :kv.length] = a[:, :, :kv.length]
            arrays.append(b)
        return KVCache(arrays, kv.length)

    def past(self, kv: KVCache, steps: int) -> list[np.ndarray]:
        # A step attends over the whole buffer (its free slots are masked: at most a bucket of waste,
        # and no copy). A prompt gets just the valid part: masked slots would cost it T x capacity
        # attention scores, far more than copying the past once.
        return kv.arrays if steps == 1 else kv.valid()

    def after(self, kv: KVCache, presents: list[np.ndarray], start: int, steps: int) -> KVCache:
        for a, new in zip(kv.arrays, presents):
            a[:, :, start:start + steps] = new
        return KVCache(kv.arrays, start + steps)


class SharedLayout(BufferLayout):
    """The "shared" layout: the graph writes the cache it reads, bound to one array per tensor."""

    name = "shared"
    bound = True

    def past(self, kv: KVCache, steps: int) -> list[np.ndarray]:
        return kv.arrays

    def after(self, kv: KVCache, presents: list[np.ndarray], start: int, steps: int) -> KVCache:
        return KVCache(kv.arrays, start + steps)


LAYOUTS: dict[str, type[CacheLayout]] = {"concat": CacheLayout, "buffer": BufferLayout, "shared": SharedLayout}
"""manifest graphs.kv_cache -> its layout"""

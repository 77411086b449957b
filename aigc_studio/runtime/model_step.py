"""One run of a text model's decoder graph: `forward(ids, start, kv) -> (logits, kv)`.

The graph (written by the workshop's export) takes `input_ids`, `position_ids` and
`past_key_values.{i}.key/value` (and, in newer graphs, `logits_keep`) and returns `logits` and
`present.{i}.key/value`. The step knows nothing of tokens or text: the decoding strategies, the export's
validation and the benchmarks all run the model through it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from aigc_studio.core.cancel import Cancelled
from aigc_studio.runtime.kv_cache import CacheLayout, KVCache

_ONE = np.ones(1, dtype=np.int64)  # logits_keep: the last position
_ZERO = np.zeros(1, dtype=np.int64)  # logits_keep: every position


@dataclass
class _Binding:
    """A cached IOBinding of the "shared" layout: every past/present pair bound to one cache array and
    the logits to `logits`, valid while the step's shape and the arrays stay the same."""

    key: tuple[int, int, bool]  # (batch, tokens, last position only)
    binding: Any                # onnxruntime.IOBinding
    logits: np.ndarray          # (B, T or 1, V), overwritten by every run
    values: list[Any]           # the OrtValues sharing the arrays' memory
    arrays: list[np.ndarray]    # kept so that the bound pointers stay valid

    def fits(self, key: tuple[int, int, bool], past: list[np.ndarray]) -> bool:
        return (self.key == key and len(self.arrays) == len(past)
                and all(a is b for a, b in zip(self.arrays, past)))


class ModelStep:
    """Runs a decoder session. Not thread-safe, except `terminate()`, which may be called from any
    thread to abort the running call."""

    def __init__(self, session: Any, layout: CacheLayout, *, vocab_size: int, name: str = "model") -> None:
        self.session = session
        self.layout = layout
        self.vocab_size = vocab_size
        self.name = name
        n = layout.shape.n_layer
        self.past_names = [f"past_key_values.{i}.{w}" for i in range(n) for w in ("key", "value")]
        self.present_names = [f"present.{i}.{w}" for i in range(n) for w in ("key", "value")]
        self.logits_keep = any(i.name == "logits_keep" for i in session.get_inputs())
        """Whether the graph can compute the last position's logits only (graphs since 2026-12-02)."""
        self._binding: _Binding | None = None
        self._run_options: Any = None
        self._terminate = threading.Event()

    def empty_cache(self, batch: int = 1) -> KVCache:
        """A cache of no tokens for `batch` rows."""
        return self.layout.empty(batch)

    def reserve(self, kv: KVCache, need: int) -> KVCache:
        """`kv` with room for `need` tokens, so that runs up to there copy nothing."""
        return self.layout.reserve(kv, need)

    # ------------------------------------------------------------------ cancellation

    def terminate(self) -> None:
        """Abort the running call and make the next `check()` raise (thread-safe)."""
        self._terminate.set()
        opts = self._run_options
        if opts is not None:
            opts.terminate = True

    def clear_terminate(self) -> None:
        """Start a new request: a terminate from before no longer counts."""
        self._terminate.clear()

    @property
    def terminated(self) -> bool:
        return self._terminate.is_set()

    def release(self) -> None:
        """Drop the cached binding and the arrays it holds."""
        self._binding = None

    # ------------------------------------------------------------------ the run

    def forward(self, ids: np.ndarray, start: int, kv: KVCache,
                last_only: bool = False) -> tuple[np.ndarray, KVCache]:
        """Feed `ids` (B, T) at positions start..start+T-1 after `kv` (which holds `start` tokens);
        return logits (B, T, V) and the cache of start+T tokens. In the "buffer" and "shared" layouts the
        returned cache shares (or grows) `kv`'s arrays: slots from `start` on are overwritten.
        `last_only` asks for the last position's logits, (B, 1, V), where the graph can skip the others.
        Raises `Cancelled` after `terminate()`, RuntimeError when onnxruntime fails."""
        import onnxruntime as ort

        B, T = ids.shape
        if kv.length != start or kv.batch != B:
            raise ValueError(f"KV cache of {kv.length} tokens x batch {kv.batch} does not fit a step at "
                             f"position {start} with batch {B}")
        kv = self.layout.reserve(kv, start + T)
        past = self.layout.past(kv, T)
        pos = np.arange(start, start + T, dtype=np.int64)
        ids = ids.astype(np.int64, copy=False)
        keep = last_only and self.logits_keep and T > 1
        positions = pos[None] if B == 1 else np.ascontiguousarray(np.broadcast_to(pos, (B, T)))
        opts = ort.RunOptions()
        self._run_options = opts
        if self._terminate.is_set():
            raise Cancelled()
        try:
            if self.layout.bound:
                out = [self._run_bound(past, ids, positions, keep, opts)]
            else:
                feed = dict(zip(self.past_names, past))
                feed["input_ids"] = ids
                feed["position_ids"] = positions
                if self.logits_keep:
                    feed["logits_keep"] = _ONE if keep else _ZERO
                out = self.session.run(None, feed, opts)
        except Exception as exc:  # onnxruntime raises its own types; a terminate shows up here too
            if self._terminate.is_set():
                raise Cancelled() from None
            raise RuntimeError(f"{self.name}: model run failed: {exc}") from exc
        finally:
            self._run_options = None
        return out[0], self.layout.after(kv, out[1:], start, T)

    def _run_bound(self, past: list[np.ndarray], ids: np.ndarray, positions: np.ndarray, keep: bool,
                   opts: Any) -> np.ndarray:
        binding = self._bind(past, ids.shape[0], ids.shape[1], keep)
        binding.binding.bind_cpu_input("input_ids", ids)
        binding.binding.bind_cpu_input("position_ids", positions)
        self.session.run_with_iobinding(binding.binding, opts)
        return binding.logits.copy()  # the bound array is overwritten by the next step

    def _bind(self, past: list[np.ndarray], B: int, T: int, keep: bool) -> _Binding:
        """The IOBinding of a "shared" step. Binding 2 x layers arrays costs about 15 us a layer, so the
        binding is kept while the arrays and the step's shape stay the same (every decode step between
        two cache growths)."""
        import onnxruntime as ort

        key = (B, T, keep)
        if self._binding is not None and self._binding.fits(key, past):
            return self._binding
        self._binding = None  # release the old arrays before the new logits buffer is made
        binding = self.session.io_binding()
        logits = np.empty((B, 1 if keep else T, self.vocab_size), dtype=np.float32)
        binding.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        if self.logits_keep:
            binding.bind_cpu_input("logits_keep", _ONE if keep else _ZERO)
        values = []
        for name, present, array in zip(self.past_names, self.present_names, past):
            value = ort.OrtValue.ortvalue_from_numpy(array)  # shares the array's memory
            binding.bind_ortvalue_input(name, value)
            binding.bind_ortvalue_output(present, value)
            values.append(value)
        self._binding = _Binding(key, binding, logits, values, list(past))
        return self._binding

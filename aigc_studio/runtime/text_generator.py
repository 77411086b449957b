"""Text generation through onnxruntime: prefill, then one step per token with the KV cache.

The decoder graph (written by export/export_lm.py) takes `input_ids`, `position_ids` and
`past_key_values.{i}.key/value` and returns `logits` and `present.{i}.key/value`; every shape and id comes
from the package manifest, and so does the cache layout (`graphs.kv_cache`):
- "buffer": the past tensors are a fixed-capacity buffer (B, H_kv, capacity, D) whose first
  `position_ids[0, 0]` slots are valid; `present` holds only the new tokens' keys/values, which the runtime
  writes into its buffer in place (grown in buckets of 64 slots). A step costs no copy of the cache.
- "shared": past and present are one buffer (B, H_kv, capacity, D), bound to the same memory through
  onnxruntime's IOBinding; the graph (onnxruntime's GroupQueryAttention) writes the new tokens' keys/values
  at their positions itself and reads the slots before them. No copy of the cache either, and no
  write-back by the runtime.
- "concat" (packages without the field): `present` is the past and the new keys/values concatenated.

A graph variant may keep its cache in int8 (`graphs.kv_dtype`, per variant, "float32" when absent; only
the "shared" layout): the graph quantises keys and values with per-channel scales fixed at export, and the
runtime only allocates int8 buffers, a quarter of the bytes a step reads at long contexts.

Two things make it fit for completion as the user types:
- The generator keeps the KV cache of the last call and reuses the longest common token prefix on the
  next one, so a keystroke costs only the tokens that changed; with it the logits after the prompt and
  the generated tokens, so a call that walks the last call's tokens again needs no model run for them.
- A prompt that ends inside a word is handled by backing off its last token(s) and constraining the
  first generated tokens to re-type those characters, which the returned text then leaves out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from aigc_studio.core.beam import beam_search
from aigc_studio.core.sampling import Sampler, SamplingConfig, process_logits
from aigc_studio.core.text import stop_index
from aigc_studio.runtime.package import ModelPackage, PackageError
from aigc_studio.runtime.session import SessionInfo, create_session
from aigc_studio.runtime.prompt import TokenConstraints, split_prompt
from aigc_studio.runtime.tokenizer import load_tokenizer

Cancel = Callable[[], bool] | None


class Cancelled(Exception):
    """Raised inside the generator when a request is cancelled between two steps."""


@dataclass(frozen=True)
class Completion:
    """One suggestion: its text (without the characters the user already typed), tokens and score."""

    text: str
    token_ids: tuple[int, ...]
    score: float = 0.0


@dataclass
class GenerationStats:
    """Figures of the last call: tokens in the prompt window, of which reused from the KV cache, tokens
    generated, time to the first generated token and total time (seconds)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    new_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0


KV_LAYOUTS = ("concat", "buffer", "shared")
KV_DTYPES = {"float32": (np.float32, "tensor(float)"), "int8": (np.int8, "tensor(int8)")}
"""manifest graphs.kv_dtype[variant] -> (the cache arrays' dtype, the graph's input type)"""
PREFILL_CHUNK = 128
"""Prompt tokens per model run of a prefill. Shorter runs are faster overall on the CPU (the writer read
1,379 tokens in 2.0 s in runs of 128, 2.1 s in runs of 64 or 256, 2.9 s at once), and each run is a
cancellation point whose result the cache keeps."""
_ONE = np.ones(1, dtype=np.int64)  # logits_keep: the last position
_ZERO = np.zeros(1, dtype=np.int64)  # logits_keep: every position
KV_BUCKET = 64  # a "buffer" cache grows by this many slots, so growing (one copy) is rare


@dataclass
class KVCache:
    """The keys/values of `length` tokens for a batch: per layer key, value arrays (B, Hkv, capacity, D)
    whose first `length` slots are valid. In the "concat" layout capacity == length (the graph returns
    whole arrays); in the "buffer" layout the runtime writes new slots in place."""

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

    def truncated(self, n: int) -> "KVCache":
        """The first n tokens, sharing memory: a later write after slot n may overwrite this cache's tail."""
        return KVCache(self.arrays, min(n, self.length))

    def reordered(self, rows: np.ndarray | Sequence[int]) -> "KVCache":
        """A copy with batch rows picked by `rows` (beam search's parents); batch 1 is repeated."""
        rows = np.asarray(rows, dtype=np.intp)
        return KVCache([a[rows] for a in self.arrays], self.length)


LOGITS_MEMO = 32
"""Positions of a call's generated path whose logits the cache keeps (besides the prompt's end), so that
the next keystroke's call walks the same tokens again without model runs (at most 32 x V floats)."""


@dataclass
class _Cache:
    """The KV cache of the last call's tokens `ids`, and the logits known after some of its prefixes:
    `logits[n]` is the next-token distribution after ids[:n] (the prompt's end and the generated
    path's first LOGITS_MEMO positions)."""

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


LOGITS_BEHIND = 4
"""Known logits kept this many positions before a reused prefix's end (the back-off is at most 3 tokens)."""


def _recent(logits: dict[int, np.ndarray], end: int) -> dict[int, np.ndarray]:
    """The entries of a logits memo at positions end - LOGITS_BEHIND .. end (valid for any token list
    that shares the first `end` tokens)."""
    return {k: v for k, v in logits.items() if end - LOGITS_BEHIND <= k <= end}


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log p(token) under softmax(logits)."""
    lg = logits.astype(np.float64)
    top = lg.max()
    return float(lg[token] - top - np.log(np.exp(lg - top).sum()))


def _utf8_complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 character."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b & 0x80 == 0:
            return n
        if b & 0xC0 == 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4
            return n if back >= need else n - back
    return n


class TextGenerator:
    """Generates text from a `text-lm` package. Not thread-safe: one worker thread owns one instance;
    `terminate()` may be called from any thread to abort a long model run."""

    def __init__(self, package: ModelPackage, *, device: str = "auto", threads: int = 0,
                 variant: str | None = None, spin: bool = True) -> None:
        if package.kind != "text-lm":
            raise PackageError(f"{package.path}: kind '{package.kind}' is not a text model")
        self.package = package
        self.name = package.name
        m = package.manifest
        cfg = m["config"]
        self.n_layer = int(cfg["n_layer"])
        self.kv_heads = int(cfg["kv_heads"])
        self.head_dim = int(cfg["head_dim"])
        self.context_length = int(cfg["context_length"])
        self.vocab_size = int(cfg["vocab_size"])
        self.eos_id = m["tokens"].get("eos")
        self.tokenizer = load_tokenizer(package)
        if self.tokenizer.vocab_size != int(cfg["vocab_size"]):
            raise PackageError(f"{package.path}: tokenizer has {self.tokenizer.vocab_size} tokens, "
                               f"the manifest says {cfg['vocab_size']}")
        self._io = m["graphs"]
        self._kv_layout = self._io.get("kv_cache", "concat")
        if self._kv_layout not in KV_LAYOUTS:
            raise PackageError(f"{package.path}: manifest graphs.kv_cache is {self._kv_layout!r}; this "
                               f"version reads {' or '.join(KV_LAYOUTS)}")
        self._past_names = [f"past_key_values.{i}.{w}" for i in range(self.n_layer) for w in ("key", "value")]
        self._present_names = [f"present.{i}.{w}" for i in range(self.n_layer) for w in ("key", "value")]
        self.session_info: SessionInfo = create_session(package, device=device, threads=threads,
                                                        variant=variant, spin=spin)
        self._session = self.session_info.session
        self.provider = self.session_info.provider
        self.device_note = self.session_info.note
        self.variant = self.session_info.variant
        kv_dtype = self._io.get("kv_dtype", {}).get(self.variant, "float32")
        if kv_dtype not in KV_DTYPES or (kv_dtype != "float32" and self._kv_layout != "shared"):
            raise PackageError(f"{package.path}: manifest graphs.kv_dtype of variant {self.variant!r} is "
                               f"{kv_dtype!r}; this version reads {' or '.join(KV_DTYPES)} (int8 only with the "
                               f"'shared' cache layout)")
        self.kv_dtype, onnx_type = KV_DTYPES[kv_dtype]
        self._check_config_against_graph()
        past_types = {i.type for i in self._session.get_inputs() if i.name.startswith("past_key_values.")}
        if past_types - {onnx_type}:
            raise PackageError(f"{package.path}: the {self.variant} graph's cache is {', '.join(sorted(past_types))}, "
                               f"but the manifest says {kv_dtype} (graphs.kv_dtype)")
        # Graphs from export/graph_fused.py since 2026-12-02 can compute the last position's logits only.
        self._logits_keep = "logits_keep" in self._io["inputs"]
        self._constraints = TokenConstraints(self.tokenizer, self.eos_id)
        self._banned = self._constraints.banned
        self._cache = _Cache()
        self._run_options = None
        self._binding: tuple | None = None  # ((B, T, keep), IOBinding, logits, OrtValues, arrays): _shared_binding
        self._terminate = threading.Event()
        self.last_stats = GenerationStats()

    def _check_config_against_graph(self) -> None:
        """The manifest's config must describe the graph: as many cache inputs as 2 x n_layer, and the
        cache's heads and head size and the vocabulary where the graph states them."""
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        layers = sum(1 for name in inputs if name.startswith("past_key_values.")) // 2
        found = {"n_layer": layers}
        past = inputs.get("past_key_values.0.key")
        if past is not None and len(past.shape) == 4:
            found["kv_heads"], found["head_dim"] = past.shape[1], past.shape[3]
        if "logits" in outputs and outputs["logits"].shape:
            found["vocab_size"] = outputs["logits"].shape[-1]
        for key, actual in found.items():
            stated = getattr(self, key)
            if isinstance(actual, int) and actual != stated:
                raise PackageError(f"{self.package.path}: manifest config.{key} is {stated}, but the graph "
                                   f"{self.package.graph(self.variant)[1].name} has {actual}")

    # ------------------------------------------------------------------ model steps

    def _empty_kv(self, batch: int = 1) -> KVCache:
        shape = (batch, self.kv_heads, 0, self.head_dim)
        return KVCache([np.zeros(shape, dtype=self.kv_dtype) for _ in range(2 * self.n_layer)], 0)

    def _grown(self, kv: KVCache, need: int) -> KVCache:
        """`kv` with room for `need` tokens: the same arrays when they have it, else copies into new
        buffers of a whole number of buckets (zeros: masked slots must hold finite values)."""
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

    def _run(self, ids: np.ndarray, start: int, kv: KVCache,
             last_only: bool = False) -> tuple[np.ndarray, KVCache]:
        """Feed `ids` (B, T) at positions start..start+T-1 after `kv` (which holds `start` tokens);
        return logits (B, T, V) and the cache of start+T tokens. In the "buffer" and "shared" layouts the
        returned cache shares (or grows) `kv`'s arrays: slots from `start` on are overwritten.
        `last_only` asks for the last position's logits, (B, 1, V), where the graph can skip the others
        (a graph without the `logits_keep` input returns all T)."""
        import onnxruntime as ort

        B, T = ids.shape
        if kv.length != start or kv.batch != B:
            raise ValueError(f"KV cache of {kv.length} tokens x batch {kv.batch} does not fit a step at "
                             f"position {start} with batch {B}")
        layout = self._kv_layout
        if layout == "buffer":
            kv = self._grown(kv, start + T)
            # A step attends over the whole buffer (its free slots are masked: at most a bucket of
            # waste, and no copy). A prompt gets just the valid part: masked slots would cost it
            # T x capacity attention scores, far more than copying the past once.
            past = kv.arrays if T == 1 else kv.valid()
        elif layout == "shared":
            kv = self._grown(kv, start + T)
            past = kv.arrays
        else:
            past = kv.valid()
        pos = np.arange(start, start + T, dtype=np.int64)
        ids = ids.astype(np.int64, copy=False)
        keep = last_only and self._logits_keep and T > 1
        positions = pos[None] if B == 1 else np.ascontiguousarray(np.broadcast_to(pos, (B, T)))
        opts = ort.RunOptions()
        self._run_options = opts
        if self._terminate.is_set():
            raise Cancelled()
        try:
            if layout == "shared":
                binding, logits = self._shared_binding(past, B, T, keep)
                binding.bind_cpu_input("input_ids", ids)
                binding.bind_cpu_input("position_ids", positions)
                self._session.run_with_iobinding(binding, opts)
                out = [logits.copy()]  # the bound array is overwritten by the next step
            else:
                feed = dict(zip(self._past_names, past))
                feed["input_ids"] = ids
                feed["position_ids"] = positions
                if self._logits_keep:
                    feed["logits_keep"] = _ONE if keep else _ZERO
                out = self._session.run(None, feed, opts)
        except Exception as exc:  # onnxruntime raises its own types; a terminate shows up here too
            if self._terminate.is_set():
                raise Cancelled() from None
            raise RuntimeError(f"{self.name}: model run failed: {exc}") from exc
        finally:
            self._run_options = None
        if layout == "concat":
            return out[0], KVCache(out[1:], start + T)
        if layout == "buffer":
            for a, new in zip(kv.arrays, out[1:]):
                a[:, :, start:start + T] = new
        return out[0], KVCache(kv.arrays, start + T)

    def _shared_binding(self, past: list[np.ndarray], B: int, T: int, keep: bool = False):
        """The IOBinding of a "shared" step: every past/present pair bound to one cache array, logits to a
        (B, T, V) array ((B, 1, V) with `keep`: the last position's). Binding 2 x layers arrays costs about 15 us a layer, so the binding is kept while
        the arrays and the step's shape stay the same (every decode step between two cache growths)."""
        import onnxruntime as ort

        cached = self._binding
        # the same array objects (held by the cache, so never another array's memory) and step shape
        if (cached is None or cached[0] != (B, T, keep) or len(cached[4]) != len(past)
                or not all(a is b for a, b in zip(cached[4], past))):
            self._binding = None  # release the old arrays before the new logits buffer is made
            binding = self._session.io_binding()
            logits = np.empty((B, 1 if keep else T, self.vocab_size), dtype=np.float32)
            binding.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
            if self._logits_keep:
                binding.bind_cpu_input("logits_keep", _ONE if keep else _ZERO)
            values = []
            for name, present, array in zip(self._past_names, self._present_names, past):
                value = ort.OrtValue.ortvalue_from_numpy(array)  # shares the array's memory
                binding.bind_ortvalue_input(name, value)
                binding.bind_ortvalue_output(present, value)
                values.append(value)
            # the arrays are kept with the binding: its pointers stay valid while it is cached
            self._binding = ((B, T, keep), binding, logits, values, list(past))
        return self._binding[1], self._binding[2]

    def terminate(self) -> None:
        """Abort the running model call and the current request (thread-safe)."""
        self._terminate.set()
        opts = self._run_options
        if opts is not None:
            opts.terminate = True

    # ------------------------------------------------------------------ prompt handling

    def _window(self, ids: list[int], reserve: int) -> list[int]:
        """The last tokens that fit the context with room for `reserve` new ones. The start moves in
        hops of an eighth of the context, so that successive keystrokes keep the same prefix."""
        keep = max(1, self.context_length - reserve)
        if len(ids) <= keep:
            return ids
        hop = max(1, self.context_length // 8)
        start = -(-(len(ids) - keep) // hop) * hop
        return ids[start:]

    def _split_prompt(self, prompt: str, reserve: int) -> tuple[list[int], bytes]:
        """Tokens to feed and the bytes the generation must re-type first (the backed-off tail)."""
        ids, rest, _ = self._split_prompt_tail(prompt, reserve)
        return ids, rest

    def _split_prompt_tail(self, prompt: str, reserve: int) -> tuple[list[int], bytes, list[int]]:
        """`_split_prompt`, and the backed-off tokens themselves."""
        split = split_prompt(self.tokenizer, prompt)  # backs off a half-typed word (runtime/prompt.py)
        ids, rest, tail = split.ids, split.rest, split.tail
        ids = self._window(ids, reserve + 8)
        if not ids and self.eos_id is not None:
            ids = [int(self.eos_id)]  # an empty prompt starts after an end-of-text token
        return ids, rest, tail

    def _prefill(self, ids: list[int], cancel: Cancel = None) -> tuple[np.ndarray, KVCache]:
        """Logits after `ids` (V,) and the KV cache for them (batch 1), reusing the cached prefix. The
        rest goes in runs of PREFILL_CHUNK tokens; the cache keeps every finished run, and `cancel` is
        checked between runs (a cancelled prefill leaves its part for the next call)."""
        cache = self._cache
        common = self._cached_prefix(ids)
        if common == len(ids) and cache.kv is not None and common in cache.logits:
            # The prompt is a prefix of the cached tokens whose logits are known (the same prompt
            # again, or a keystroke inside a word: the backed-off prompt is the last one's): no run.
            self.last_stats.reused_tokens = common
            return cache.logits[common], cache.kv.truncated(common)
        common = min(common, len(ids) - 1)  # at least one token is fed to get logits
        if common > 0 and cache.kv is not None:
            kv = cache.kv.truncated(common)  # shares the buffer: the runs below overwrite its tail
        else:
            common = 0
            kv = self._empty_kv()
        self.last_stats.reused_tokens = common
        if self._kv_layout in ("buffer", "shared"):
            kv = self._grown(kv, len(ids))  # room for the whole prompt at once, not one copy per run
        pos = common
        kept = _recent(cache.logits, common) if common else {}
        while True:
            end = min(len(ids), pos + PREFILL_CHUNK)
            logits, kv = self._run(np.asarray([ids[pos:end]], dtype=np.int64), pos, kv, last_only=True)
            last = logits[0, -1].astype(np.float32)
            self._cache = _Cache(ids=list(ids[:end]), kv=kv, logits={**kept, end: last})
            pos = end
            if pos == len(ids):
                return last, kv
            self._check(cancel)

    # ------------------------------------------------------------------ public API

    def prime(self, prompt: str, config: SamplingConfig, cancel: Cancel = None) -> int:
        """Fill the KV cache for `prompt` as `stream` and `complete` with `config` would read it, without
        generating: the writing pane does this when the cursor comes to rest somewhere new, so that the
        first keystroke there costs only its own tokens. A cancelled priming keeps the runs it finished
        (see `_prefill`). Returns how many of the prompt's tokens the cache holds."""
        config = config.validated()
        ids, _, tail = self._split_prompt_tail(prompt, config.max_new_tokens)
        self._terminate.clear()
        self.last_stats = GenerationStats(prompt_tokens=len(ids))
        t0 = time.perf_counter()
        try:
            self._check(cancel)
            self._prefill(ids, cancel)
            reused = self.last_stats.reused_tokens
            if tail and len(ids) + len(tail) < self.context_length:
                # Then the backed-off tokens, keeping the logits at both ends: the next keystroke
                # either extends the last token (its prompt is `ids`) or starts a new one (its prompt
                # begins with `ids + tail`), and neither needs a run for what was here already.
                self._check(cancel)
                try:
                    self._prefill(ids + tail, cancel)
                finally:
                    self.last_stats.reused_tokens = reused  # the figures are the prompt's
        except Cancelled:
            pass
        finally:
            self.last_stats.total_s = time.perf_counter() - t0
        return self._cached_prefix(ids)

    def _cached_prefix(self, ids: Sequence[int]) -> int:
        """How many leading tokens of `ids` the KV cache holds."""
        cached = self._cache.ids
        n, limit = 0, min(len(ids), len(cached))
        while n < limit and ids[n] == cached[n]:
            n += 1
        return n

    def stream(self, prompt: str, config: SamplingConfig, cancel: Cancel = None) -> Iterator[str]:
        """Yield the continuation of `prompt` piece by piece (greedy or sampling; a beam config
        yields its best hypothesis at once). Every step checks `cancel`."""
        config = config.validated()
        if config.is_beam:
            best = self.complete(prompt, config.with_(num_return=1), cancel)
            if best and best[0].text:
                yield best[0].text
            return
        yield from self._sample_stream(prompt, config, cancel, seed_offset=0, out_tokens=[])

    def _check(self, cancel: Cancel) -> None:
        if self._terminate.is_set() or (cancel is not None and cancel()):
            raise Cancelled()

    def generate_tokens(self, ids: Sequence[int], config: SamplingConfig, cancel: Cancel = None,
                        retype: bytes = b"") -> Iterator[tuple[int, float]]:
        """Token-level loop after the prompt token ids: yields (token, log-probability) until
        end-of-sequence, `max_new_tokens` or the context end. The first tokens are constrained to spell
        `retype`. Raises `Cancelled` when cancelled."""
        self._terminate.clear()
        t0 = time.perf_counter()
        self.last_stats = GenerationStats(prompt_tokens=len(ids))
        sampler = Sampler(config)
        ids = list(ids)
        previous = self._cache  # the last call's path: the same tokens again need no model run
        try:
            self._check(cancel)
            logits, kv = self._prefill(ids, cancel)
            history = list(ids)
            memo = {**_recent(self._cache.logits, len(ids)), len(ids): logits}
            # No model run yet: the cache's slots after the prompt still hold the last call's path.
            on_path = previous.kv is not None and self.last_stats.reused_tokens == len(ids)
            typed = 0
            utf8 = TokenConstraints.START
            pos = len(ids)
            n = 0       # tokens generated
            counted = 0  # of which count towards max_new_tokens (re-typing the backed-off word is free)
            while True:
                retyping = typed < len(retype)
                allowed = self._constraints.allowed(utf8, retype[typed:])
                tok = sampler.next_token(logits, history, allowed)
                logprob = _log_softmax_at(logits, tok)
                if tok == self.eos_id:
                    return
                history.append(tok)
                piece = self.tokenizer.token_bytes(tok)
                typed += len(piece)
                utf8 = self._constraints.advance(utf8, piece)
                if n == 0:
                    self.last_stats.ttft_s = time.perf_counter() - t0
                n += 1
                counted += 0 if retyping and typed <= len(retype) else 1
                self.last_stats.new_tokens = n
                yield tok, logprob
                if counted >= config.max_new_tokens or pos + 1 >= self.context_length:
                    return
                self._check(cancel)
                known = previous.logits_after(history) if on_path else None
                if known is not None and pos + 1 <= previous.kv.length:  # type: ignore[union-attr]
                    # The last call generated this token here too: its KV slot and logits are kept.
                    logits, kv = known, KVCache(kv.arrays, pos + 1)
                else:
                    on_path = False  # the run below overwrites the old path's slots
                    step_logits, kv = self._run(np.asarray([[tok]], dtype=np.int64), pos, kv)
                    logits = step_logits[0, -1]
                pos += 1
                if len(memo) <= LOGITS_MEMO:
                    memo[pos] = logits
                # The cache now also holds the generated tokens; the next keystroke usually shares them.
                self._cache = _Cache(ids=history.copy(), kv=kv, logits=memo)
        finally:
            self.last_stats.total_s = time.perf_counter() - t0

    def _sample_stream(self, prompt: str, config: SamplingConfig, cancel: Cancel, seed_offset: int,
                       out_tokens: list[int], out_score: list[float] | None = None) -> Iterator[str]:
        if config.seed is not None and seed_offset:
            config = config.with_(seed=(config.seed + seed_offset) % 2**63)  # the largest seed wraps
        ids, rest = self._split_prompt(prompt, config.max_new_tokens)
        generated = bytearray()
        emitted = 0
        skip = len(rest)
        logprob = 0.0
        try:
            for tok, lp in self.generate_tokens(ids, config, cancel, retype=rest):
                out_tokens.append(tok)
                logprob += lp
                generated += self.tokenizer.token_bytes(tok)
                if len(generated) < skip:
                    continue
                ready = _utf8_complete_prefix(bytes(generated))
                text = bytes(generated[skip:ready]).decode("utf-8", errors="replace")
                cut = stop_index(text, config.stop) if config.stop != "none" else None
                if cut is not None:
                    text = text[:cut]
                if len(text) > emitted:
                    yield text[emitted:]
                    emitted = len(text)
                if cut is not None:
                    break
        except Cancelled:
            return
        if out_score is not None:
            out_score.append(logprob)

    def complete(self, prompt: str, config: SamplingConfig, cancel: Cancel = None) -> list[Completion]:
        """The n-best list (beam search) or `config.num_return` samples, best first, distinct texts.
        A cancelled request returns what it has (possibly an empty list)."""
        config = config.validated()
        if config.is_beam:
            return self._beam(prompt, config, cancel)
        results: list[Completion] = []
        seen: set[str] = set()
        n = 1 if config.is_greedy else config.num_return
        for i in range(n):
            tokens: list[int] = []
            score: list[float] = []
            text = "".join(self._sample_stream(prompt, config, cancel, i, tokens, score))
            if self._terminate.is_set() or (cancel is not None and cancel()):
                break
            if text not in seen:
                seen.add(text)
                results.append(Completion(text, tuple(tokens), score[0] if score else 0.0))
        return results

    def branches(self, prompt: str, config: SamplingConfig, n: int, cancel: Cancel = None,
                 done: Callable[[str], bool] | None = None) -> list[Completion]:
        """Up to `n` continuations that start differently: the most likely first tokens (after the
        config's repetition penalty and the re-typing of a backed-off word), each continued greedily,
        all in one batch; in that order, so the first is the greedy continuation, and distinct texts. A row stops at
        end-of-sequence, at `config.max_new_tokens` new tokens, or when `done(text)` says its text is
        enough. Alternatives to a short suggestion need this: beam search's n-best list mostly shares
        its first words, which are all a short suggestion shows. A cancelled call returns []."""
        config = config.validated().with_(strategy="greedy", num_return=1)
        self._terminate.clear()
        t0 = time.perf_counter()
        ids, rest = self._split_prompt(prompt, config.max_new_tokens)
        self.last_stats = GenerationStats(prompt_tokens=len(ids))
        sampler = Sampler(config)
        try:
            self._check(cancel)
            logits, kv0 = self._prefill(ids, cancel)
        except Cancelled:
            return []
        first = process_logits(logits, config, ids, self._constraints.allowed(TokenConstraints.START, rest))
        # Twice as many rows as asked: a first token that spells the start of another's word (" ren"
        # and " renown") often ends up with the same text, which is dropped.
        order = [int(t) for t in np.argsort(-first, kind="stable")[:2 * max(1, n)]
                 if np.isfinite(first[t])]
        tb = self.tokenizer.token_bytes
        rows = [[t] for t in order]
        data = [bytearray(tb(t)) for t in order]
        utf8 = [self._constraints.advance(TokenConstraints.START, tb(t)) for t in order]
        logprob = [_log_softmax_at(logits, t) for t in order]
        # tokens per row that count towards max_new_tokens (re-typing the backed-off word is free)
        counted = [int(len(d) > len(rest)) for d in data]

        def text_of(i: int) -> str:
            raw = bytes(data[i][:_utf8_complete_prefix(bytes(data[i]))])
            return raw[len(rest):].decode("utf-8", errors="replace") if len(raw) >= len(rest) else ""

        def enough(i: int) -> bool:  # the caller's policy says the row's text is complete
            return bool(done and len(data[i]) >= len(rest) and done(text_of(i)))

        finished = [enough(i) for i in range(len(order))]
        kv, pos = kv0.reordered([0] * len(order)), len(ids)
        try:
            while not all(finished) and pos + 1 < self.context_length:
                self._check(cancel)
                out, kv = self._run(np.asarray([[r[-1]] for r in rows], dtype=np.int64), pos, kv)
                pos += 1
                for i, row in enumerate(rows):
                    if finished[i]:
                        continue
                    mask = self._constraints.allowed(utf8[i], rest[len(data[i]):])
                    step = out[i, -1]
                    tok = sampler.next_token(step, ids + row, mask)
                    if tok == self.eos_id:
                        finished[i] = True
                        continue
                    row.append(tok)
                    logprob[i] += _log_softmax_at(step, tok)
                    data[i] += tb(tok)
                    counted[i] += len(data[i]) > len(rest)
                    utf8[i] = self._constraints.advance(utf8[i], tb(tok))
                    finished[i] = counted[i] >= config.max_new_tokens or enough(i)
        except Cancelled:
            return []
        finally:
            # The rows copied the prompt's cache; keep only the prompt's part for the next request.
            self._cache = _Cache(ids=list(ids), kv=kv0.truncated(len(ids)), logits={len(ids): logits})
            self.last_stats.new_tokens = max((len(r) for r in rows), default=0)
            self.last_stats.total_s = time.perf_counter() - t0
        results, seen = [], set()
        for i in range(len(order)):
            text = text_of(i)
            if config.stop != "none" and (cut := stop_index(text, config.stop)) is not None:
                text = text[:cut]
            if text not in seen:
                seen.add(text)
                results.append(Completion(text, tuple(rows[i]), logprob[i]))
        return results[:max(1, n)]

    def _beam(self, prompt: str, config: SamplingConfig, cancel: Cancel) -> list[Completion]:
        self._terminate.clear()
        t0 = time.perf_counter()
        self.last_stats = GenerationStats()
        ids, rest = self._split_prompt(prompt, config.max_new_tokens)
        self.last_stats.prompt_tokens = len(ids)
        try:
            logits, kv0 = self._prefill(ids, cancel)
        except Cancelled:
            return []
        state = {"kv": kv0, "pos": len(ids), "tokens": [()]}
        tb = self.tokenizer.token_bytes

        def text_of(tokens: Sequence[int]) -> bytes:
            return b"".join(tb(t) for t in tokens)

        def allowed_for(tokens: Sequence[int]) -> np.ndarray:
            done = text_of(tokens)
            state = self._constraints.advance(TokenConstraints.START, done)
            return self._constraints.allowed(state, rest[len(done):])

        def step(parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
            self._check(cancel)
            kv = state["kv"].reordered(parents)  # a copy: the prompt's cache (kv0) stays intact
            logits, kv = self._run(tokens.reshape(-1, 1), state["pos"], kv)
            if state["pos"] == len(ids):
                self.last_stats.ttft_s = time.perf_counter() - t0
            state["kv"], state["pos"] = kv, state["pos"] + 1
            seqs = [state["tokens"][p] + (int(t),) for p, t in zip(parents, tokens)]
            state["tokens"] = seqs
            out = logits[:, -1].astype(np.float64)
            for r, seq in enumerate(seqs):  # no control token, valid UTF-8, the backed-off word re-typed
                out[r, ~allowed_for(seq)] = -np.inf
            return out

        def finished(tokens: tuple[int, ...]) -> bool:
            data = text_of(tokens)
            if len(data) < len(rest):
                return False
            text = data[len(rest):_utf8_complete_prefix(data)].decode("utf-8", errors="replace")
            return config.stop != "none" and stop_index(text, config.stop) is not None

        first = logits.astype(np.float64).copy()
        first[self._banned] = -np.inf
        budget = min(config.max_new_tokens, self.context_length - len(ids) - 1)
        hyps = []
        try:
            hyps = beam_search(first, step, num_beams=config.num_beams, max_new_tokens=max(1, budget),
                               eos_id=self.eos_id, length_penalty=config.length_penalty,
                               num_return=max(config.num_return, 1), allowed_first=allowed_for(()),
                               is_finished=finished, should_stop=lambda: self._terminate.is_set() or
                               bool(cancel and cancel()), repetition_penalty=config.repetition_penalty,
                               history=ids)
        except Cancelled:
            pass
        finally:
            # Beams reorder the cache; keep only the prompt's part for the next request.
            self._cache = _Cache(ids=list(ids), kv=kv0.truncated(len(ids)),
                                 logits={len(ids): logits})
            self.last_stats.total_s = time.perf_counter() - t0
        results, seen = [], set()
        for h in hyps:
            data = text_of(h.tokens)
            text = data[len(rest):_utf8_complete_prefix(data)].decode("utf-8", errors="replace")
            if config.stop != "none" and (cut := stop_index(text, config.stop)) is not None:
                text = text[:cut]
            if text not in seen:
                seen.add(text)
                results.append(Completion(text, tuple(h.tokens), float(h.score)))
        self.last_stats.new_tokens = max((len(h.tokens) for h in hyps), default=0)
        return results

    def reset_cache(self) -> None:
        self._cache = _Cache()
        self._binding = None

    # ------------------------------------------------------------------ evaluation

    def score(self, ids: Sequence[int]) -> float:
        """Sum of the negative log-likelihoods of ids[1:] given the earlier tokens (no cache reuse),
        in windows of the context length with half-window overlap."""
        ids = list(ids)
        total, n = 0.0, 0
        ctx = self.context_length
        stride = ctx // 2
        scored_upto = 1
        start = 0
        while scored_upto < len(ids):
            end = min(start + ctx, len(ids))
            logits, _ = self._run(np.asarray([ids[start:end]], dtype=np.int64), 0, self._empty_kv())
            lg = logits[0].astype(np.float64)
            lse = np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1)) + lg.max(-1)
            for t in range(max(scored_upto, start + 1), end):
                total += lse[t - start - 1] - lg[t - start - 1, ids[t]]
                n += 1
            scored_upto = end
            start = max(start + stride, end - ctx)
            if end == len(ids):
                break
        return total

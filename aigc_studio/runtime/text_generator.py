"""Text generation through onnxruntime: prefill, then one step per token with the KV cache.

The generator is assembled from parts, each in its own module:
- `model_step.ModelStep`: one run of the decoder graph, `forward(ids, start, kv) -> (logits, kv)`;
- `kv_cache`: the cache and its layout ("concat", "buffer", "shared"), chosen once from the manifest;
- `prefix_cache.PromptCache`: the last call's tokens and cache, so a keystroke costs only what changed;
- `prompt`: the back-off of a half-typed word and the masks that keep tokens valid;
- `decoding`: the search strategies (branches, beam) and the one text assembly all strategies share;
- `scoring`: the negative log-likelihood of a text.
Every shape and id comes from the package manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from aigc_studio.core.cancel import Cancel, Cancelled
from aigc_studio.core.sampling import Sampler, SamplingConfig
from aigc_studio.runtime import decoding
from aigc_studio.runtime.decoding import Completion, GenerationStats, assemble, distinct, logprob_of
from aigc_studio.runtime.kv_cache import LAYOUTS, CacheShape, KVCache
from aigc_studio.runtime.model_step import ModelStep
from aigc_studio.runtime.package import ModelPackage, PackageError
from aigc_studio.runtime.prefix_cache import LOGITS_MEMO, CachedPath, PromptCache
from aigc_studio.runtime.prompt import TokenConstraints, split_prompt
from aigc_studio.runtime.scoring import negative_log_likelihood
from aigc_studio.runtime.session import SessionInfo, create_session
from aigc_studio.runtime.tokenizer import load_tokenizer

__all__ = ["Cancelled", "Completion", "GenerationStats", "KVCache", "TextGenerator"]

KV_DTYPES = {"float32": (np.float32, "tensor(float)"), "int8": (np.int8, "tensor(int8)")}
"""manifest graphs.kv_dtype[variant] -> (the cache arrays' dtype, the graph's input type)"""


class TextGenerator:
    """Generates text from a `text-lm` package. Not thread-safe: one worker thread owns one instance;
    `terminate()` may be called from any thread to abort a long model run."""

    def __init__(self, package: ModelPackage, *, device: str = "auto", threads: int = 0,
                 variant: str | None = None, spin: bool = True) -> None:
        if package.kind != "text-lm":
            raise PackageError(f"{package.path}: kind '{package.kind}' is not a text model")
        self.package = package
        self.name = package.name
        spec = package.spec.text
        assert spec is not None  # a text-lm manifest always has one
        self.spec = spec
        self.n_layer, self.kv_heads, self.head_dim = spec.n_layer, spec.kv_heads, spec.head_dim
        self.context_length, self.vocab_size = spec.context_length, spec.vocab_size
        self.eos_id: int | None = spec.eos_id
        self.tokenizer = load_tokenizer(package)
        if self.tokenizer.vocab_size != self.vocab_size:
            raise PackageError(f"{package.path}: tokenizer has {self.tokenizer.vocab_size} tokens, "
                               f"the manifest says {spec.vocab_size}")
        self.kv_layout: str = spec.kv_cache
        if self.kv_layout not in LAYOUTS:
            raise PackageError(f"{package.path}: manifest graphs.kv_cache is {self.kv_layout!r}; this "
                               f"version reads {' or '.join(LAYOUTS)}")
        self.session_info: SessionInfo = create_session(package, device=device, threads=threads,
                                                        variant=variant, spin=spin)
        self.provider = self.session_info.provider
        self.device_note = self.session_info.note
        self.variant = self.session_info.variant
        self.kv_dtype = self._cache_dtype()
        self._check_config_against_graph()
        shape = CacheShape(self.n_layer, self.kv_heads, self.head_dim, self.kv_dtype)
        self.step = ModelStep(self.session_info.session, LAYOUTS[self.kv_layout](shape),
                              vocab_size=self.vocab_size, name=self.name)
        self.constraints = TokenConstraints(self.tokenizer, self.eos_id)
        self._prompts = PromptCache()
        self.last_stats = GenerationStats()

    def _cache_dtype(self) -> type[np.generic]:
        """The cache's element type for the chosen variant, checked against the graph's inputs."""
        kv_dtype = self.spec.kv_dtype.get(self.variant, "float32")
        if kv_dtype not in KV_DTYPES or (kv_dtype != "float32" and self.kv_layout != "shared"):
            raise PackageError(f"{self.package.path}: manifest graphs.kv_dtype of variant {self.variant!r} "
                               f"is {kv_dtype!r}; this version reads {' or '.join(KV_DTYPES)} (int8 only "
                               f"with the 'shared' cache layout)")
        dtype, onnx_type = KV_DTYPES[kv_dtype]
        past_types = {i.type for i in self.session_info.session.get_inputs()
                      if i.name.startswith("past_key_values.")}
        if past_types - {onnx_type}:
            raise PackageError(f"{self.package.path}: the {self.variant} graph's cache is "
                               f"{', '.join(sorted(past_types))}, but the manifest says {kv_dtype} "
                               f"(graphs.kv_dtype)")
        return dtype

    def _check_config_against_graph(self) -> None:
        """The manifest's config must describe the graph: as many cache inputs as 2 x n_layer, and the
        cache's heads and head size and the vocabulary where the graph states them."""
        session = self.session_info.session
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name: o for o in session.get_outputs()}
        found = {"n_layer": sum(1 for name in inputs if name.startswith("past_key_values.")) // 2}
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

    # ------------------------------------------------------------------ the model step

    def forward(self, ids: np.ndarray, start: int, kv: KVCache,
                last_only: bool = False) -> tuple[np.ndarray, KVCache]:
        """One model run (see `ModelStep.forward`): logits (B, T, V) and the cache after `ids`."""
        return self.step.forward(ids, start, kv, last_only)

    def empty_cache(self, batch: int = 1) -> KVCache:
        """A KV cache of no tokens in this model's layout."""
        return self.step.empty_cache(batch)

    def terminate(self) -> None:
        """Abort the running model call and the current request (thread-safe)."""
        self.step.terminate()

    def check(self, cancel: Cancel | None) -> None:
        """Raise `Cancelled` if the request was terminated or `cancel()` says so."""
        if self.step.terminated or (cancel is not None and cancel()):
            raise Cancelled()

    # ------------------------------------------------------------------ prompts and the cache

    def window(self, ids: list[int], reserve: int) -> list[int]:
        """The last tokens that fit the context with room for `reserve` new ones. The start moves in
        hops of an eighth of the context, so that successive keystrokes keep the same prefix."""
        keep = max(1, self.context_length - reserve)
        if len(ids) <= keep:
            return ids
        hop = max(1, self.context_length // 8)
        start = -(-(len(ids) - keep) // hop) * hop
        return ids[start:]

    def split_prompt(self, prompt: str, reserve: int) -> tuple[list[int], bytes, list[int]]:
        """(tokens to feed, the bytes generation re-types first, the backed-off tokens): the prompt's
        tokens without a half-typed word (see `prompt.split_prompt`), cut to the context window."""
        split = split_prompt(self.tokenizer, prompt)
        ids = self.window(split.ids, reserve + 8)
        if not ids and self.eos_id is not None:
            ids = [int(self.eos_id)]  # an empty prompt starts after an end-of-text token
        return ids, split.rest, split.tail

    def prefill(self, ids: list[int], cancel: Cancel | None = None) -> tuple[np.ndarray, KVCache]:
        """Logits after `ids` (V,) and their KV cache (batch 1), reusing what the last call left; see
        `PromptCache.prefill`."""
        def reused(n: int) -> None:
            self.last_stats.reused_tokens = n

        return self._prompts.prefill(self.step, ids, lambda: self.check(cancel), reused)

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose keys/values the cache holds (the last call's prompt and path)."""
        return list(self._prompts.path.ids)

    def reset_cache(self) -> None:
        self._prompts.reset()
        self.step.release()

    def _begin(self, prompt_tokens: int) -> float:
        """Start a request: clear an old terminate and the figures; return the start time."""
        self.step.clear_terminate()
        self.last_stats = GenerationStats(prompt_tokens=prompt_tokens)
        return time.perf_counter()

    # ------------------------------------------------------------------ public API

    def prime(self, prompt: str, config: SamplingConfig, cancel: Cancel | None = None) -> int:
        """Fill the KV cache for `prompt` as `stream` and `complete` with `config` would read it, without
        generating: the writing pane does this when the cursor comes to rest somewhere new, so that the
        first keystroke there costs only its own tokens. A cancelled priming keeps the runs it finished.
        Returns how many of the prompt's tokens the cache holds."""
        config = config.validated()
        ids, _, tail = self.split_prompt(prompt, config.max_new_tokens)
        t0 = self._begin(len(ids))
        try:
            self.check(cancel)
            self.prefill(ids, cancel)
            reused = self.last_stats.reused_tokens
            if tail and len(ids) + len(tail) < self.context_length:
                # Then the backed-off tokens, keeping the logits at both ends: the next keystroke
                # either extends the last token (its prompt is `ids`) or starts a new one (its prompt
                # begins with `ids + tail`), and neither needs a run for what was here already.
                self.check(cancel)
                try:
                    self.prefill(ids + tail, cancel)
                finally:
                    self.last_stats.reused_tokens = reused  # the figures are the prompt's
        except Cancelled:
            pass
        finally:
            self.last_stats.total_s = time.perf_counter() - t0
        return self._prompts.common_prefix(ids)

    def stream(self, prompt: str, config: SamplingConfig, cancel: Cancel | None = None) -> Iterator[str]:
        """Yield the continuation of `prompt` piece by piece (greedy or sampling; a beam config
        yields its best hypothesis at once). Every step checks `cancel`."""
        config = config.validated()
        if config.is_beam:
            best = self.complete(prompt, config.with_(num_return=1), cancel)
            if best and best[0].text:
                yield best[0].text
            return
        yield from self._sample_stream(prompt, config, cancel, [])

    def generate_tokens(self, ids: Sequence[int], config: SamplingConfig, cancel: Cancel | None = None,
                        retype: bytes = b"") -> Iterator[tuple[int, float]]:
        """Token-level loop after the prompt token ids: yields (token, log-probability) until
        end-of-sequence, `max_new_tokens` or the context end. The first tokens are constrained to spell
        `retype`. Raises `Cancelled` when cancelled."""
        t0 = self._begin(len(ids))
        sampler = Sampler(config)
        ids = list(ids)
        previous = self._prompts.path  # the last call's path: the same tokens again need no model run
        try:
            self.check(cancel)
            logits, kv = self.prefill(ids, cancel)
            history = list(ids)
            memo = {**previous.recent(len(ids)), len(ids): logits}
            # No model run yet: the cache's slots after the prompt still hold the last call's path.
            on_path = previous.kv is not None and self.last_stats.reused_tokens == len(ids)
            typed, utf8, pos, counted = 0, TokenConstraints.START, len(ids), 0
            while True:
                retyping = typed < len(retype)
                tok = sampler.next_token(logits, history, self.constraints.allowed(utf8, retype[typed:]))
                if tok == self.eos_id:
                    return
                history.append(tok)
                piece = self.tokenizer.token_bytes(tok)
                typed += len(piece)
                utf8 = self.constraints.advance(utf8, piece)
                if self.last_stats.new_tokens == 0:
                    self.last_stats.ttft_s = time.perf_counter() - t0
                self.last_stats.new_tokens += 1
                # re-typing the backed-off word is free
                counted += 0 if retyping and typed <= len(retype) else 1
                yield tok, logprob_of(logits, tok)
                if counted >= config.max_new_tokens or pos + 1 >= self.context_length:
                    return
                self.check(cancel)
                logits, kv, on_path = self._next_logits(previous, history, kv, pos, tok, on_path)
                pos += 1
                if len(memo) <= LOGITS_MEMO:
                    memo[pos] = logits
                # The cache now also holds the generated tokens; the next keystroke usually shares them.
                self._prompts.path = CachedPath(ids=history.copy(), kv=kv, logits=memo)
        finally:
            self.last_stats.total_s = time.perf_counter() - t0

    def _next_logits(self, previous: CachedPath, history: list[int], kv: KVCache, pos: int, tok: int,
                     on_path: bool) -> tuple[np.ndarray, KVCache, bool]:
        """The logits after `history` (whose last token `tok` is at `pos`): from the last call's path
        while this call walks it, else from a model run (which overwrites the old path's slots)."""
        known = previous.logits_after(history) if on_path else None
        if known is not None and previous.kv is not None and pos + 1 <= previous.kv.length:
            return known, KVCache(kv.arrays, pos + 1), True
        step_logits, kv = self.step.forward(np.asarray([[tok]], dtype=np.int64), pos, kv)
        return step_logits[0, -1], kv, False

    def _sample_stream(self, prompt: str, config: SamplingConfig, cancel: Cancel | None,
                       out_tokens: list[int], out_score: list[float] | None = None) -> Iterator[str]:
        ids, rest, _ = self.split_prompt(prompt, config.max_new_tokens)
        generated = bytearray()
        emitted = 0
        logprob = 0.0
        try:
            for tok, lp in self.generate_tokens(ids, config, cancel, retype=rest):
                out_tokens.append(tok)
                logprob += lp
                generated += self.tokenizer.token_bytes(tok)
                text, stopped = assemble(bytes(generated), rest, config.stop)
                if len(text) > emitted:
                    yield text[emitted:]
                    emitted = len(text)
                if stopped:
                    break
        except Cancelled:
            return
        if out_score is not None:
            out_score.append(logprob)

    def complete(self, prompt: str, config: SamplingConfig, cancel: Cancel | None = None) -> list[Completion]:
        """The n-best list (beam search) or `config.num_return` samples, best first, distinct texts.
        A cancelled request returns what it has (possibly an empty list)."""
        config = config.validated()
        if config.is_beam:
            return self._beam(prompt, config, cancel)
        results: list[Completion] = []
        for i in range(1 if config.is_greedy else config.num_return):
            sample = config
            if config.seed is not None and i:
                sample = config.with_(seed=(config.seed + i) % 2**63)  # the largest seed wraps
            tokens: list[int] = []
            score: list[float] = []
            text = "".join(self._sample_stream(prompt, sample, cancel, tokens, score))
            if self.step.terminated or (cancel is not None and cancel()):
                break
            results.append(Completion(text, tuple(tokens), score[0] if score else 0.0))
        return distinct(results)

    def branches(self, prompt: str, config: SamplingConfig, n: int, cancel: Cancel | None = None,
                 done: Callable[[str], bool] | None = None) -> list[Completion]:
        """Up to `n` continuations that start differently: the most likely first tokens (after the
        config's repetition penalty and the re-typing of a backed-off word), each continued greedily,
        all in one batch; in that order, so the first is the greedy continuation, and distinct texts.
        A row stops at end-of-sequence, at `config.max_new_tokens` new tokens, or when `done(text)`
        says its text is enough. Alternatives to a short suggestion need this: beam search's n-best
        list mostly shares its first words, which are all a short suggestion shows. A cancelled call
        returns []."""
        config = config.validated().with_(strategy="greedy", num_return=1)
        ids, rest, _ = self.split_prompt(prompt, config.max_new_tokens)
        t0 = self._begin(len(ids))
        try:
            self.check(cancel)
            logits, kv0 = self.prefill(ids, cancel)
        except Cancelled:
            return []
        try:
            return decoding.branches(self, ids, rest, logits, kv0, config, n, cancel, done)
        except Cancelled:
            return []
        finally:
            # The rows copied the prompt's cache; keep only the prompt's part for the next request.
            self._prompts.keep_prompt(ids, kv0, logits)
            self.last_stats.total_s = time.perf_counter() - t0

    def _beam(self, prompt: str, config: SamplingConfig, cancel: Cancel | None) -> list[Completion]:
        ids, rest, _ = self.split_prompt(prompt, config.max_new_tokens)
        t0 = self._begin(len(ids))
        try:
            logits, kv0 = self.prefill(ids, cancel)
        except Cancelled:
            return []
        try:
            return decoding.beam(self, ids, rest, logits, kv0, config, cancel, t0)
        finally:
            # Beams reorder the cache; keep only the prompt's part for the next request.
            self._prompts.keep_prompt(ids, kv0, logits)
            self.last_stats.total_s = time.perf_counter() - t0

    def score(self, ids: Sequence[int]) -> float:
        """Sum of the negative log-likelihoods of ids[1:] given the earlier tokens (see `scoring`)."""
        return negative_log_likelihood(self.step, ids, self.context_length)

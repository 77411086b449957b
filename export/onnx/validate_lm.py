"""Validation of an exported text-lm package against PyTorch, through aigc_studio.runtime (the code the
app uses): output names, dynamic axes, logits within tolerance for several prompt and past lengths,
teacher-forced agreement and perplexity on held-out text, and greedy tokens and decoded text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import load_package
from aigc_studio.runtime.text_generator import TextGenerator
from export.models.lm import TransformerLM, greedy


@torch.no_grad()
def validate(folder: Path, model: TransformerLM, variant: str, prompts: list[str],
             val_ids: list[int], val_tokens: int | None = None) -> dict[str, Any]:
    """Check the graph `variant` in the package at `folder` against PyTorch, through the runtime."""
    gen = TextGenerator(load_package(folder), device="cpu", variant=variant)
    report: dict[str, Any] = {"variant": variant}
    # Output names and dynamic axes: batch 2, several prompt lengths, with and without a past.
    sess = gen.session_info.session
    report["inputs"] = [i.name for i in sess.get_inputs()]
    report["outputs"] = [o.name for o in sess.get_outputs()]
    report["max_abs_logit_diff"], report["random_top1_agreement"] = _random_ids(gen, model)
    # Teacher-forced agreement and perplexity on held-out text.
    ctx = model.cfg.block_size
    window = val_ids[: ctx]
    ref, _ = model(torch.tensor([window]))
    got, _ = gen.forward(np.asarray([window]), 0, gen.empty_cache())
    report["val_top1_agreement"] = float((got[0].argmax(-1) == ref[0].numpy().argmax(-1)).mean())
    n_eval = min(len(val_ids), val_tokens or 20 * ctx)
    nll = gen.score(val_ids[:n_eval])
    report["val_ppl"] = math.exp(nll / (n_eval - 1))
    matches = [_greedy_match(gen, model, prompt) for prompt in prompts]
    report["greedy"] = matches
    report["greedy_all_equal"] = all(m["tokens_equal"] for m in matches)
    return report


def _random_ids(gen: TextGenerator, model: TransformerLM) -> tuple[float, float]:
    """Logits of random ids for several prompt and past lengths: the largest |difference| from PyTorch's
    and the top-1 agreement."""
    max_diff, agree, total = 0.0, 0, 0
    rng = np.random.default_rng(0)
    V, ctx = model.cfg.vocab_size, model.cfg.block_size
    for T in sorted({1, 7, min(64, ctx - 8), min(200, ctx - 8)}):
        for P in (0, 5, ctx // 2):
            if P + T > ctx:
                continue
            # Batch 2, except several new tokens after a past: the runtime only asks that of batch 1
            # (prompt continuation), and the fused graph's GroupQueryAttention only does batch 1 there.
            B = 1 if P and T > 1 else 2
            ids = rng.integers(4, V, size=(B, P + T))
            ref, _ = model(torch.from_numpy(ids))
            kv = gen.empty_cache(B)
            if P:
                _, kv = gen.forward(ids[:, :P], 0, kv)
            got, kv = gen.forward(ids[:, P:], P, kv)
            assert got.shape == (B, T, V), got.shape
            assert kv.length == P + T
            assert kv.valid()[0].shape == (B, model.cfg.kv_heads, P + T, model.cfg.head_dim)
            diff = np.abs(got - ref[:, P:].numpy())
            max_diff = max(max_diff, float(diff.max()))
            agree += int((got.argmax(-1) == ref[:, P:].numpy().argmax(-1)).sum())
            total += got.shape[0] * got.shape[1]
    return max_diff, agree / total


def _greedy_match(gen: TextGenerator, model: TransformerLM, prompt: str) -> dict[str, Any]:
    """Greedy tokens and decoded text of one prompt, through the generator's own loop (cache and all)."""
    tok, ctx = gen.tokenizer, model.cfg.block_size
    ids = tok.encode(prompt)[-(ctx // 2):]
    n = min(24, ctx - len(ids) - 1)
    cfg = SamplingConfig(strategy="greedy", max_new_tokens=n)
    want = greedy(model, ids, n)
    gen.reset_cache()
    # A prompt ending in a space is backed off and re-typed by the generator; compare on prompts
    # that end in a full token so both sides see the same context.
    got_tokens = [t for t, _ in gen.generate_tokens(ids, cfg)]
    return {"prompt": prompt, "tokens_equal": got_tokens == want,
            "common_prefix": next((i for i, (a, b) in enumerate(zip(got_tokens, want)) if a != b),
                                  min(len(got_tokens), len(want))),
            "torch_text": tok.decode(want), "onnx_text": tok.decode(got_tokens)}

"""The text-lm decoder as an ONNX graph through torch.onnx.export (the explicit-attention reference path),
for export.onnx.lm: the graph's names, the KV cache layouts it can be written with, and the tied-weight
dedupe that keeps one copy of a tied output matrix in the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from export.models.lm import TransformerLM

KV_CACHE_LAYOUTS = {  # manifest graphs.kv_cache -> its meaning (also written to the manifest)
    "buffer": "past_key_values.* are buffers (batch, kv_heads, capacity, head_dim) whose first "
              "position_ids[:, 0] slots hold the past (later slots are ignored); present.* hold only the "
              "new tokens' keys/values (batch, kv_heads, sequence, head_dim), to be stored at those positions",
    "concat": "present.* = past_key_values.* followed by the new tokens' keys/values",
    "shared": "past_key_values.* and present.* are one buffer (batch, kv_heads, capacity, head_dim) bound to "
              "the same memory: the graph writes the new tokens' keys/values at position_ids and attends "
              "over the slots up to them (an unbound present is the buffer with those slots filled in)",
}


class _CachedDecoder(torch.nn.Module):
    """Flat-argument wrapper of `forward_buffered` ("buffer") or `forward_cached` ("concat")."""

    def __init__(self, model: TransformerLM, kv_cache: str = "buffer") -> None:
        super().__init__()
        self.model = model
        self.kv_cache = kv_cache

    def forward(self, input_ids, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        if self.kv_cache == "buffer":
            logits, presents = self.model.forward_buffered(input_ids, position_ids, past)
        else:
            logits, presents = self.model.forward_cached(input_ids, position_ids, past)
        return (logits, *[t for kv in presents for t in kv])


def io_names(n_layer: int, logits_keep: bool = False) -> tuple[list[str], list[str]]:
    """The graph's input and output names in order; `logits_keep` for the fused graph (export.onnx.fused)."""
    inputs = ["input_ids", "position_ids"]
    outputs = ["logits"]
    for i in range(n_layer):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs + (["logits_keep"] if logits_keep else []), outputs


def export_onnx(model: TransformerLM, path: Path, opset: int = 17, kv_cache: str = "buffer") -> None:
    if kv_cache not in KV_CACHE_LAYOUTS:
        raise ValueError(f"kv_cache must be one of {', '.join(KV_CACHE_LAYOUTS)}, not {kv_cache!r}")
    cfg = model.cfg
    B, T, P = 1, 3, 2
    S = P + 5 if kv_cache == "buffer" else P  # a buffer with spare slots, so capacity is a free axis
    ids = torch.randint(0, cfg.vocab_size, (B, T))
    pos = torch.arange(P, P + T).unsqueeze(0)
    past = [torch.randn(B, cfg.kv_heads, S, cfg.head_dim) for _ in range(2 * cfg.n_layer)]
    inputs, outputs = io_names(cfg.n_layer)
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "sequence"},
                                       "position_ids": {0: "batch", 1: "sequence"},
                                       "logits": {0: "batch", 1: "sequence"}}
    for name in inputs[2:]:
        axes[name] = {0: "batch", 2: "past_capacity" if kv_cache == "buffer" else "past_sequence"}
    for name in outputs[1:]:
        axes[name] = {0: "batch", 2: "sequence" if kv_cache == "buffer" else "total_sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_CachedDecoder(model, kv_cache).eval(), (ids, pos, *past), str(path), dynamo=False,
                          input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=opset, do_constant_folding=True)


def dedupe_tied_weights(path: Path) -> int:
    """Constant folding stores a tied output matrix twice (W for the embedding Gather, W^T for the
    output MatMul). Replace each such W^T by a Transpose node of W, which onnxruntime folds again at
    load time, so the file holds one copy. Returns the bytes saved."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    big = {n: numpy_helper.to_array(i) for n, i in inits.items() if len(i.dims) == 2 and i.dims[0] * i.dims[1] > 4096}
    saved = 0
    replaced: set[str] = set()
    for name_t, arr_t in big.items():
        for name, arr in big.items():
            if name in replaced or name_t in replaced:
                continue
            if name != name_t and arr.shape == arr_t.shape[::-1] and np.array_equal(arr.T, arr_t):
                m.graph.initializer.remove(inits[name_t])
                m.graph.node.insert(0, helper.make_node("Transpose", [name], [name_t], perm=[1, 0],
                                                        name=f"tied_transpose_{name_t}"))
                saved += arr_t.nbytes
                replaced |= {name, name_t}
                break
    if saved:
        onnx.save(m, str(path))
    return saved

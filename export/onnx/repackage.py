"""Re-export a text-lm package through today's exporter, from the weights in its own fp32 graph.

    python -m export.onnx.repackage resources/models/writer-tiny --val-text runs/data/text/val.txt

A package exported with `torch.onnx.export` (KV-cache layout "buffer" or "concat") holds every weight of
the model in its fp32 graph, under the node names the model code gives (`/blocks.3/attn/q/MatMul`, the
LayerNorm parameters as `model.blocks.3.ln1.weight`, ...). When the training checkpoint is not kept,
this rebuilds the `TransformerLM` from those weights, checks it against the package's own
`reference.npz` (the PyTorch logits recorded at the first export: the rebuilt model must reproduce them),
and runs `export.onnx.lm.export_package` again with the manifest's description, licence, sources, training
summary, special tokens and graph variants, so the package gets the fused-operator graph and the
validation of today's exporter. The weights do not change.

A package that already has the fused graph (export/onnx/fused.py, cache layout "shared") is read back
from that graph's named weights, to write other quantised variants:

    python -m export.onnx.repackage resources/models/writer-tiny --quant int8,q8 --val-text runs/data/text/val.txt
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from aigc_studio.runtime.package import load_package
from export.models.lm import LMConfig, TransformerLM
from export.onnx.lm import TOKENIZER_FILES, export_package, parse_quant_list

REFERENCE_TOL = 1e-4  # rebuilt model against the logits recorded at the first export


def model_from_graph(path: Path, cfg: LMConfig) -> TransformerLM:
    """The TransformerLM whose weights are in the torch-exported fp32 graph at `path`."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Transpose" and n.input[0] in inits}
    nodes = {n.name: n for n in g.node}

    def weight(name: str) -> np.ndarray:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:  # a tied output matrix stored once: Transpose(W) of the embedding
            return numpy_helper.to_array(inits[consts[name].input[0]]).T
        raise ValueError(f"{path.name}: no weight named {name!r}")

    def linear(node_name: str) -> np.ndarray:  # MatMul(x, W^T) -> nn.Linear's (out, in)
        if node_name not in nodes:
            raise ValueError(f"{path.name}: no node {node_name!r}; only graphs written by "
                             "torch.onnx.export of export/models/lm.py can be read back")
        return weight(nodes[node_name].input[1]).T

    if cfg.bias:
        raise ValueError("reading back biases is not implemented (no shipped package has them)")
    model = TransformerLM(cfg).eval()
    sd: dict[str, np.ndarray] = {"wte.weight": weight(nodes["/wte/Gather"].input[0])}
    if cfg.pos == "learned":
        sd["wpe.weight"] = weight(nodes["/wpe/Gather"].input[0])
    for i in range(cfg.n_layer):
        p = f"blocks.{i}."
        for part in ("q", "k", "v", "o"):
            sd[f"{p}attn.{part}.weight"] = linear(f"/blocks.{i}/attn/{part}/MatMul")
        for part in ("up", "down") + (("gate",) if cfg.mlp == "swiglu" else ()):
            sd[f"{p}mlp.{part}.weight"] = linear(f"/blocks.{i}/mlp/{part}/MatMul")
    for key in model.state_dict():
        if ".ln1." in key or ".ln2." in key or key.startswith("ln_f."):
            sd[key] = weight("model." + key)
    if not cfg.tie_embeddings:
        sd["lm_head.weight"] = linear("/lm_head/MatMul")
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}  # writable copies
    if cfg.tie_embeddings:
        state["lm_head.weight"] = state["wte.weight"]
        head = linear("/lm_head/MatMul")
        if not np.array_equal(head, sd["wte.weight"]):
            raise ValueError(f"{path.name}: the manifest says tied embeddings, but the output matrix differs")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("rope_")]
    if missing or unexpected:
        raise ValueError(f"{path.name}: weights missing {missing}, unexpected {unexpected}")
    return model


def model_from_fused_graph(path: Path, cfg: LMConfig) -> TransformerLM:
    """The TransformerLM whose weights are in an fp32 graph written by export/onnx/fused.py (named by
    the model's own state-dict keys: q|k|v and gate|up concatenated, linear weights as (in, out))."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Transpose" and n.input[0] in inits}

    def weight(name: str) -> np.ndarray:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:  # a tied matrix stored once: Transpose of the other
            return numpy_helper.to_array(inits[consts[name]]).T
        raise ValueError(f"{path.name}: no weight named {name!r}; only graphs written by "
                         "export/onnx/fused.py can be read back this way")

    model = TransformerLM(cfg).eval()
    sd: dict[str, np.ndarray] = {"wte.weight": weight("wte")}
    if cfg.pos == "learned":
        sd["wpe.weight"] = weight("wpe")
    q_out, kv_out = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    for i in range(cfg.n_layer):
        p = f"blocks.{i}."
        qkv = weight(p + "attn.qkv.weight").T  # (q + k + v, in)
        sd[p + "attn.q.weight"], sd[p + "attn.k.weight"], sd[p + "attn.v.weight"] = np.split(
            qkv, [q_out, q_out + kv_out])
        sd[p + "attn.o.weight"] = weight(p + "attn.o.weight").T
        if cfg.mlp == "swiglu":
            sd[p + "mlp.gate.weight"], sd[p + "mlp.up.weight"] = np.split(weight(p + "mlp.gate_up.weight").T, 2)
        else:
            sd[p + "mlp.up.weight"] = weight(p + "mlp.up.weight").T
        sd[p + "mlp.down.weight"] = weight(p + "mlp.down.weight").T
        if cfg.bias:  # a concatenated layer's bias is stored under its first part's name
            sd[p + "attn.q.bias"], sd[p + "attn.k.bias"], sd[p + "attn.v.bias"] = np.split(
                weight(p + "attn.q.bias"), [q_out, q_out + kv_out])
            first = "gate" if cfg.mlp == "swiglu" else "up"
            parts = np.split(weight(p + f"mlp.{first}.bias"), 2) if cfg.mlp == "swiglu" else [weight(p + "mlp.up.bias")]
            for part, b in zip(("gate", "up") if cfg.mlp == "swiglu" else ("up",), parts):
                sd[p + f"mlp.{part}.bias"] = b
            for key in ("attn.o.bias", "mlp.down.bias"):
                sd[p + key] = weight(p + key)
    for key in model.state_dict():
        if ".ln1." in key or ".ln2." in key or key.startswith("ln_f."):
            sd[key] = weight(key)
    head = weight("lm_head.weight_t").T
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}  # writable copies
    if cfg.tie_embeddings:
        if not np.array_equal(head, sd["wte.weight"]):
            raise ValueError(f"{path.name}: the manifest says tied embeddings, but the output matrix differs")
        state["lm_head.weight"] = state["wte.weight"]
    else:
        state["lm_head.weight"] = torch.from_numpy(np.array(head, dtype=np.float32))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("rope_")]
    if missing or unexpected:
        raise ValueError(f"{path.name}: weights missing {missing}, unexpected {unexpected}")
    return model


def check_reference(model: TransformerLM, folder: Path, tol: float = REFERENCE_TOL) -> float:
    """Max |logit difference| of the rebuilt model against the package's reference.npz."""
    ref = np.load(folder / "reference.npz", allow_pickle=False)
    with torch.no_grad():
        logits = model(torch.from_numpy(ref["input_ids"]))[0].numpy()
    n = ref["logits"].shape[1]
    diff = float(np.abs(logits[:, -n:] - ref["logits"]).max())
    if diff > tol:
        raise SystemExit(f"the weights read back from {folder} give logits {diff:.2e} away from its "
                         f"reference.npz (tolerance {tol}); not re-exporting")
    return diff


def repackage(folder: Path, out: Path, val_text: str, *, graph: str = "auto", verbose: bool = True,
              quant: Sequence[str] = ()) -> dict:
    """Read the package's weights back, check them against its reference.npz and export them again,
    with the quantised variants `quant` (default: the ones the package has)."""
    package = load_package(folder)
    m = package.manifest
    conf = m["config"]
    cfg = LMConfig(**{f.name: conf[f.name] for f in fields(LMConfig) if f.name in conf})
    variants = m["graphs"]["variants"]
    if "fp32" not in variants:
        raise SystemExit(f"{folder} has no fp32 graph to read the weights from")
    fused = m["graphs"].get("kv_cache", "concat") == "shared"
    if fused and not quant:
        raise SystemExit(f"{folder} already has the fused-operator graph (name other variants with --quant)")
    read = model_from_fused_graph if fused else model_from_graph
    model = read(folder / variants["fp32"], cfg)
    diff = check_reference(model, folder)
    if verbose:
        print(f"read {model.num_params() / 1e6:.2f}M parameters from {folder / variants['fp32']}; "
              f"reference logits within {diff:.1e}")
    quants = tuple(quant) or tuple(v for v in variants if v != "fp32") or ("int8",)
    tok_type = m["tokenizer"]["type"]
    checks = m.get("validation", {}).get("tolerance", {})
    least = min((float(checks[f"{q}_min_top1_agreement"]) for q in quants if f"{q}_min_top1_agreement" in checks),
                default=0.9)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = Path(tmp) / TOKENIZER_FILES[tok_type]
        shutil.copy(folder / m["tokenizer"]["file"], tokenizer)
        return export_package(
            model, tokenizer, out, name=m["name"], description=m.get("description", ""),
            licence=m.get("licence", "unspecified"), sources=m.get("sources", ()),
            training={**(m.get("training") or {}), "reexported": (
                f"{datetime.date.today().isoformat()}: the same weights, read back from the fp32 graph of "
                "the earlier package by export/onnx/repackage.py and exported again")},
            val_text=val_text, variants=("fp32", *quants) if "fp32" in variants else quants, verbose=verbose,
            graph=graph, tokenizer_type=tok_type, tokens=m.get("tokens"), quant=quants,
            fp32_tol=float(checks.get("fp32_max_abs_logit_diff", 1e-3)), int8_min_agree=least)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.onnx.repackage", description=__doc__.split("\n")[0])
    ap.add_argument("package", type=Path, help="the package folder to read")
    ap.add_argument("--out", type=Path, help="where to write the new package (default: in place)")
    ap.add_argument("--val-text", type=Path, help="held-out text for the perplexity check")
    ap.add_argument("--graph", choices=("auto", "fused", "torch"), default="auto")
    ap.add_argument("--quant", type=parse_quant_list, default=(),
                    help="the quantised variants to write, comma-separated (default: the package's own)")
    args = ap.parse_args(argv)
    val = args.val_text.read_text(encoding="utf-8") if args.val_text else "The end."
    reports = repackage(args.package, args.out or args.package, val, graph=args.graph, quant=args.quant)
    print(json.dumps({v: {k: r[k] for k in ("max_abs_logit_diff", "val_top1_agreement", "val_ppl")}
                      for v, r in reports.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Export a trained TransformerLM as a model package: export, validate, write.

    python -m export.onnx.lm --checkpoint runs/writer-tiny/ckpt.pt \
        --tokenizer runs/tokenizer/tokenizer.model --out resources/models/writer-tiny \
        --name writer-tiny --sources runs/data/text/sources.json --val-text runs/data/text/val.txt

1. Export the decoder with a KV cache to ONNX (standard opset, the explicit-attention reference path):
   `input_ids`, `position_ids`, `past_key_values.{i}.key/value` in; `logits`, `present.{i}.key/value`
   out; dynamic batch, sequence and past lengths. The cache layout is "buffer" (see KV_CACHE_LAYOUTS): the
   past is a fixed-capacity buffer that the runtime fills in place and `present` holds only the new
   tokens, so a decode step does not copy the cache. `kv_cache="concat"` writes the older layout.
2. Quantise a copy: int8 with onnxruntime's dynamic quantisation (`quant="int8"`), or weight-only
   MatMulNBits blocks (`"q8"`: 8-bit blocks of 128 with integer zero points; `"q4"`: 4-bit blocks of 32
   with a float offset per block; embedding tables as GatherBlockQuantized: q8 all of them, q4 a tied one).
3. Validate both through `aigc_studio.runtime` (the code the app uses): output names, dynamic axes,
   logits within a stated tolerance of PyTorch's for several prompt lengths and past lengths, greedy
   tokens and decoded text equal to PyTorch's (fp32) or their agreement (int8), perplexity on held-out
   text. A failed fp32 check stops the export.
4. Write the package: graphs, tokenizer (SentencePiece `tokenizer.model`, or with `--tokenizer-type bpe`
   a byte-level BPE `tokenizer.json` such as export/train/from_gguf.py writes), `reference.npz` (input ids and
   expected logits, for runtime parity tests without torch) and the manifest with checksums and the
   validation figures.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import write_package
from export.models.lm import TransformerLM, greedy
from export.onnx import fused
from export.onnx.lm_graph import KV_CACHE_LAYOUTS, dedupe_tied_weights, export_onnx, io_names
from export.onnx.validate_lm import validate
from export.quant.formats import KV_INT8_NOTE, QUANT_FORMATS, calibration_batches, quantize
from export.train.lm import load_checkpoint, model_from_checkpoint

FP32_TOL = 1e-3     # max |logit difference| between onnxruntime fp32 and PyTorch
INT8_MIN_AGREE = 0.90  # teacher-forced top-1 agreement of int8 with PyTorch, at least
DEFAULT_ORDER = ("q8", "int8", "q4", "fp32")  # a package's default graph: its quantised one, for the CPU
REFERENCE_MAX_LOGITS = 1 << 18  # reference.npz keeps every position's logits up to this many floats
TOKENIZER_FILES = {  # tokenizer type -> its file name in a package (aigc_studio.runtime.tokenizer reads both)
    "sentencepiece": "tokenizer.model",  # export/data/tokenizer.py
    "bpe": "tokenizer.json",             # byte-level BPE of the `tokenizers` library (export/train/from_gguf.py)
}
DEFAULT_PROMPTS = ("It is a truth universally acknowledged, that", "And God said,", "The weather was",
                   "She looked at him and")  # the greedy checks' prompts
DEFAULT_TOKENS = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}  # export/data/tokenizer.py's special ids
def _tokenizer_library(tokenizer_type: str) -> dict[str, str]:
    if tokenizer_type == "sentencepiece":
        import sentencepiece as spm

        return {"sentencepiece_version": spm.__version__}
    import tokenizers

    return {"tokenizers_version": tokenizers.__version__}


def _encoder(tokenizer_type: str, path: Path):
    """The tokenizer's encode function (ids for a str), as the runtime will encode."""
    if tokenizer_type == "sentencepiece":
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(path)).encode
    if tokenizer_type == "bpe":
        from aigc_studio.runtime.tokenizer import HFTokenizer

        return HFTokenizer(path).encode
    raise ValueError(f"tokenizer_type must be one of {', '.join(TOKENIZER_FILES)}, not {tokenizer_type!r}")


def text_manifest(model: TransformerLM, name: str, tokenizer_file: str, variants: dict[str, str],
                  extra: dict[str, Any], kv_cache: str = "buffer", tokenizer_type: str = "sentencepiece",
                  tokens: dict[str, int | None] | None = None,
                  kv_dtype: dict[str, str] | None = None) -> dict[str, Any]:
    cfg = model.cfg
    inputs, outputs = io_names(cfg.n_layer, logits_keep=kv_cache == "shared")  # the fused graph's
    return {
        "name": name,
        "kind": "text-lm",
        "architecture": "transformer-lm",
        "config": {**cfg.to_dict(), "kv_heads": cfg.kv_heads, "head_dim": cfg.head_dim,
                   "context_length": cfg.block_size, "parameters": model.num_params()},
        "tokens": dict(tokens or DEFAULT_TOKENS),
        "tokenizer": {"type": tokenizer_type, "file": tokenizer_file},
        "graphs": {"variants": variants, "default": next((v for v in DEFAULT_ORDER if v in variants), "fp32"),
                   "inputs": inputs, "outputs": outputs, "opset": 17,
                   "kv_cache": kv_cache, "kv_cache_semantics": KV_CACHE_LAYOUTS[kv_cache],
                   # every variant's cache element type (required since manifest format version 2)
                   "kv_dtype": {v: (kv_dtype or {}).get(v, "float32") for v in variants}},
        "sampling": SamplingConfig(strategy="top-p", top_p=0.9, temperature=0.8,
                                   repetition_penalty=1.1).to_dict(),
        "reference": "reference.npz",
        **_tokenizer_library(tokenizer_type),
        **extra,
    }


def export_package(model: TransformerLM, tokenizer: Path, out: Path, *, name: str, description: str = "",
                   licence: str = "unspecified", sources: Any = (), training: dict | None = None,
                   val_text: str = "The end.", variants: Sequence[str] = ("fp32", "int8"),
                   prompts: Sequence[str] | None = None, verbose: bool = True,
                   kv_cache: str = "buffer", graph: str = "auto", tokenizer_type: str = "sentencepiece",
                   tokens: dict[str, int | None] | None = None, fp32_tol: float = FP32_TOL,
                   int8_min_agree: float = INT8_MIN_AGREE, int8_per_channel: bool = False,
                   int8_op_types: Sequence[str] = ("MatMul", "Gather"),
                   int8_exclude: Sequence[str] = (), quant: str | Sequence[str] = "int8",
                   val_tokens: int | None = None, kv_int8: bool = False) -> dict[str, Any]:
    """Export, validate and write the package folder `out`; return the validation reports.
    `kv_cache` picks the graph's cache layout (KV_CACHE_LAYOUTS; the runtime reads both).
    `graph` is "torch" (torch.onnx.export of the model code), "fused" (export/onnx/fused.py: onnxruntime's
    fused attention and norms, about ten nodes a layer, "shared" cache) or "auto" (fused where it applies).
    `tokenizer_type` is "sentencepiece" (a .model file) or "bpe" (a `tokenizers` tokenizer.json);
    `tokens` the special ids for the manifest (default: export/data/tokenizer.py's). `fp32_tol` and
    `int8_min_agree` are the validation thresholds (a deep model accumulates more float error);
    `int8_per_channel` quantises weights per output channel, `int8_op_types` and `int8_exclude` pick the
    nodes quantised (see `quantize_int8`). `quant` names the quantised variant (QUANT_FORMATS), or
    several ("int8", "q8"); each is validated, its least agreement `int8_min_agree` whatever the format.
    `val_tokens` bounds the held-out tokens of the perplexity check (default 20 context lengths).
    `kv_int8` gives the quantised variant an int8 KV cache (fused graph only; per-channel scales calibrated
    on the end of `val_text`, which the validation, reading from its start, reaches only when the text is
    short).
    Raises SystemExit when the fp32 graph disagrees with PyTorch or the quantised graph agrees too little."""
    quants = _quant_names(quant)
    encode = _encoder(tokenizer_type, Path(tokenizer))
    tokenizer_file = TOKENIZER_FILES[tokenizer_type]
    model = model.eval()
    prompts = list(prompts or DEFAULT_PROMPTS)
    say = print if verbose else (lambda *a, **k: None)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / name
        stage.mkdir()
        val_ids = encode(val_text)
        kv_cache, qfiles, kv_dtype = _write_graphs(
            model, stage, graph=graph, kv_cache=kv_cache, quants=quants, kv_int8=kv_int8,
            calibration_ids=val_ids, say=say,
            quant_options=dict(per_channel=int8_per_channel, op_types=int8_op_types, exclude=int8_exclude))
        _copy_tokenizer(Path(tokenizer), stage / tokenizer_file, tokenizer_type)
        _write_reference(model, stage, encode(prompts[0]), fp32_tol)
        extra = {"description": description, "licence": licence, "sources": sources,
                 "training": training or {}}
        write_package(stage, text_manifest(model, name, tokenizer_file,
                                           {"fp32": "model.onnx", **qfiles}, extra, kv_cache,
                                           tokenizer_type, tokens, kv_dtype))
        reports = _validate_variants(stage, model, ("fp32", *quants), prompts, val_ids, val_tokens, say)
        _check_reports(reports, quants, fp32_tol, int8_min_agree)
        files = _drop_unshipped(stage, {"fp32": "model.onnx", **qfiles}, variants)
        validation = _validation_summary(reports, quants, fp32_tol, int8_min_agree, kv_int8=bool(kv_dtype))
        write_package(stage, text_manifest(model, name, tokenizer_file, files,
                                           {**extra, "validation": validation}, kv_cache,
                                           tokenizer_type, tokens,
                                           {v: t for v, t in (kv_dtype or {}).items() if v in files} or None))
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(stage, out)
    size = sum(p.stat().st_size for p in out.iterdir())
    say(f"wrote {out} ({size / 1e6:.1f} MB)")
    return reports


def _quant_names(quant: str | Sequence[str]) -> tuple[str, ...]:
    quants = (quant,) if isinstance(quant, str) else tuple(quant)
    if not quants or any(q not in QUANT_FORMATS for q in quants):
        raise ValueError(f"quant must name one or more of {', '.join(QUANT_FORMATS)}, not {quant!r}")
    return quants


def _validate_variants(stage: Path, model: TransformerLM, variants: Sequence[str], prompts: list[str],
                       val_ids: list[int], val_tokens: int | None, say) -> dict[str, dict[str, Any]]:
    """Each variant's validation report (export.onnx.validate_lm), printed as it comes."""
    reports = {}
    for variant in variants:
        reports[variant] = validate(stage, model, variant, prompts, val_ids, val_tokens)
        _say_report(say, reports[variant])
    return reports


def _drop_unshipped(stage: Path, files: dict[str, str], variants: Sequence[str]) -> dict[str, str]:
    """Delete the graphs of the variants not shipped; return the files of those that are."""
    for v in list(files):
        if v not in variants:
            (stage / files.pop(v)).unlink()
    return files


def _write_graphs(model: TransformerLM, stage: Path, *, graph: str, kv_cache: str, quants: tuple[str, ...],
                  kv_int8: bool, calibration_ids: list[int], say, quant_options: dict[str, Any],
                  ) -> tuple[str, dict[str, str], dict[str, str] | None]:
    """Write model.onnx (fused or torch.onnx.export) and the quantised model.{q}.onnx into `stage`;
    return the cache layout written, the quantised files and their KV dtypes (None: float caches)."""
    if graph == "fused" or (graph == "auto" and fused.supports(model)):
        fused.build(model, stage / "model.onnx")
        kv_cache = "shared"
    else:
        export_onnx(model, stage / "model.onnx", kv_cache=kv_cache)
    qfiles = {q: f"model.{q}.onnx" for q in quants}
    for q, qfile in qfiles.items():
        quantize(q, stage / "model.onnx", stage / qfile, **quant_options)
    kv_dtype = None
    if kv_int8:
        if kv_cache != "shared":
            raise SystemExit("an int8 KV cache needs the fused graph (--graph fused or auto)")
        calib = calibration_batches(calibration_ids, model.cfg.block_size)
        scales = fused.kv_cache_scales(model, calib)
        for _q, qfile in qfiles.items():
            fused.int8_kv_cache(stage / qfile, stage / qfile, scales)
        kv_dtype = {q: "int8" for q in quants}
        say(f"[{', '.join(quants)}] int8 KV cache, scales from {sum(map(len, calib))} tokens")
    if model.cfg.tie_embeddings:
        dedupe_tied_weights(stage / "model.onnx")
    return kv_cache, qfiles, kv_dtype


def _copy_tokenizer(src: Path, dst: Path, tokenizer_type: str) -> None:
    if tokenizer_type == "bpe":  # tokenizers writes pretty JSON; compact is half the size
        data = json.loads(src.read_text(encoding="utf-8"))
        dst.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    else:
        shutil.copy(src, dst)


def _write_reference(model: TransformerLM, stage: Path, prompt_ids: list[int], fp32_tol: float) -> None:
    """reference.npz: a prompt's ids, PyTorch's logits and greedy tokens, for runtime parity tests."""
    ref_ids = np.asarray([prompt_ids[-(model.cfg.block_size // 2):]], dtype=np.int64)
    with torch.no_grad():
        ref_logits = model(torch.from_numpy(ref_ids))[0].numpy()
    n_ref = min(16, model.cfg.block_size - ref_ids.shape[1] - 1)
    ref_greedy = greedy(model, ref_ids[0].tolist(), n_ref)
    # Logits of every position when they are small, else of the last one only (a 49,152-token
    # vocabulary makes 0.2 MB a position); `top1` holds every position's best token either way.
    keep = ref_logits.shape[1] if ref_logits.size <= REFERENCE_MAX_LOGITS else 1
    np.savez(stage / "reference.npz", input_ids=ref_ids, logits=ref_logits[:, -keep:].astype(np.float32),
             top1=ref_logits.argmax(-1).astype(np.int64),
             greedy=np.asarray(ref_greedy, dtype=np.int64),
             tolerance=np.asarray([fp32_tol], dtype=np.float32))


def _say_report(say, rep: dict[str, Any]) -> None:
    say(f"[{rep['variant']}] max |logit diff| {rep['max_abs_logit_diff']:.2e}, "
        f"top-1 agreement {rep['val_top1_agreement']:.3f} (held-out) / "
        f"{rep['random_top1_agreement']:.3f} (random ids), val ppl {rep['val_ppl']:.2f}, "
        f"greedy equal: {rep['greedy_all_equal']}")
    for g in rep["greedy"]:
        say(f"    {g['prompt']!r} -> {g['onnx_text']!r} (equal: {g['tokens_equal']})")


def _check_reports(reports: dict[str, dict[str, Any]], quants: tuple[str, ...], fp32_tol: float,
                   int8_min_agree: float) -> None:
    """SystemExit when the fp32 graph disagrees with PyTorch or a quantised one agrees too little."""
    fp = reports["fp32"]
    if fp["max_abs_logit_diff"] > fp32_tol or not fp["greedy_all_equal"]:
        raise SystemExit(f"fp32 validation failed: max diff {fp['max_abs_logit_diff']:.2e} "
                         f"(tolerance {fp32_tol}), greedy equal {fp['greedy_all_equal']}")
    for q in quants:
        if reports[q]["val_top1_agreement"] < int8_min_agree:
            raise SystemExit(f"{q} validation failed: top-1 agreement "
                             f"{reports[q]['val_top1_agreement']:.3f} < {int8_min_agree}")


def _validation_summary(reports: dict[str, dict[str, Any]], quants: tuple[str, ...], fp32_tol: float,
                        int8_min_agree: float, kv_int8: bool) -> dict[str, Any]:
    """The manifest's `validation`: each variant's figures, the thresholds and the quantisation notes."""
    validation: dict[str, Any] = {
        v: {k: r[k] for k in ("max_abs_logit_diff", "val_top1_agreement", "random_top1_agreement",
                              "val_ppl", "greedy_all_equal")} for v, r in reports.items()}
    validation["tolerance"] = {"fp32_max_abs_logit_diff": fp32_tol,
                               **{f"{q}_min_top1_agreement": int8_min_agree for q in quants}}
    validation["quantisation"] = {q: QUANT_FORMATS[q] + (KV_INT8_NOTE if kv_int8 else "") for q in quants}
    return validation


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.onnx.lm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--tokenizer-type", choices=tuple(TOKENIZER_FILES),
                    help="default: bpe for a .json file, else sentencepiece")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="writer-tiny")
    ap.add_argument("--description", default="A small Transformer trained on public-domain prose.")
    ap.add_argument("--sources", type=Path, help="sources.json written by export.data.text")
    ap.add_argument("--val-text", type=Path, help="held-out text for perplexity and agreement")
    ap.add_argument("--quant", type=parse_quant_list, default="int8",
                    help="the quantised variant(s), comma-separated: "
                         + "; ".join(f"{k}: {v}" for k, v in QUANT_FORMATS.items()))
    ap.add_argument("--variants", default="", help="graph variants to ship (default: fp32 and the --quant ones)")
    ap.add_argument("--licence", default="Apache-2.0 (weights); training texts public domain")
    ap.add_argument("--fp32-tol", type=float, default=FP32_TOL, help="max |logit diff| of the fp32 graph")
    ap.add_argument("--int8-min-agree", type=float, default=INT8_MIN_AGREE,
                    help="least teacher-forced top-1 agreement of the int8 graph")
    ap.add_argument("--int8-per-channel", action="store_true", help="quantise weights per output channel")
    ap.add_argument("--int8-op-types", default="MatMul,Gather", help="node types whose weights are quantised")
    ap.add_argument("--int8-exclude", default="", help="comma-separated node names to keep in float")
    ap.add_argument("--val-tokens", type=int, help="held-out tokens for the perplexity check "
                    "(default: 20 context lengths)")
    ap.add_argument("--kv-cache-int8", action="store_true",
                    help="the quantised variant keeps its KV cache in int8 (per-channel scales calibrated on "
                         "--val-text): a quarter of the bytes a long-context step reads")
    ap.add_argument("--graph", choices=("auto", "fused", "torch"), default="auto",
                    help="fused: onnxruntime's fused attention/norm operators (Llama-style models); "
                         "torch: torch.onnx.export of the model code; auto: fused where it applies")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    model = model_from_checkpoint(args.checkpoint)
    ck = load_checkpoint(args.checkpoint)
    history = json.loads(ck.get("history", "[]"))
    val_loss = float(ck.get("val_loss", -1))
    training = {"steps": int(ck["step"]), "history": history[-3:], "val_loss": val_loss,
                "val_ppl": round(math.exp(val_loss), 2) if val_loss > 0 else None}
    sources: Any = json.loads(args.sources.read_text()) if args.sources else []
    if isinstance(sources, dict):
        sources = _summarise_sources(sources)
    if isinstance(ck.get("source"), str):  # a pretrained model (export.train.from_gguf), fine-tuned or not
        pre = json.loads(ck["source"])
        package, _, version = str(pre.get("wheel", "")).partition("==")
        sources = [{"id": "pretrained", "package": package, "version": version, "registry": "pypi",
                    "member": pre.get("member"),
                    "model": pre.get("name"), "licence": pre.get("licence"),
                    "fine_tuned": bool(isinstance(ck.get("init"), str) and int(ck["step"]) > 0)}, *sources]
    val_text = args.val_text.read_text(encoding="utf-8")[:200_000] if args.val_text else "The end."
    tokenizer_type = args.tokenizer_type or ("bpe" if args.tokenizer.suffix == ".json" else "sentencepiece")
    tokens = json.loads(ck["tokens"]) if isinstance(ck.get("tokens"), str) else None  # export.train.from_gguf's
    export_package(model, args.tokenizer, args.out, name=args.name, description=args.description,
                   licence=args.licence, sources=sources, training=training, val_text=val_text,
                   variants=[v.strip() for v in args.variants.split(",") if v.strip()] or ["fp32", *args.quant],
                   quant=args.quant, graph=args.graph, val_tokens=args.val_tokens,
                   tokenizer_type=tokenizer_type, tokens=tokens, fp32_tol=args.fp32_tol,
                   int8_min_agree=args.int8_min_agree, int8_per_channel=args.int8_per_channel,
                   int8_op_types=[t for t in args.int8_op_types.split(",") if t],
                   int8_exclude=[n for n in args.int8_exclude.split(",") if n], kv_int8=args.kv_cache_int8)
    return 0


def parse_quant_list(text: str) -> tuple[str, ...]:
    """--quant: one or more QUANT_FORMATS names, comma-separated."""
    names = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    bad = [x for x in names if x not in QUANT_FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown quantisation {', '.join(bad) or repr(text)} "
                                         f"(known: {', '.join(QUANT_FORMATS)})")
    return names


def _summarise_sources(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's list of data sources from export.data.text's sources.json."""
    out = []
    for key, src in data.get("sources", {}).items():
        works = src.get("works", [])
        out.append({"id": key, "package": src.get("package"), "registry": src.get("package_type"),
                    "version": src.get("version"), "licence": src.get("licence"),
                    "train_works": [w["id"] for w in works if w.get("split") == "train"],
                    "val_works": [w["id"] for w in works if w.get("split") == "val"]})
    return out


if __name__ == "__main__":
    raise SystemExit(main())

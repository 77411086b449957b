"""Tiny models for tests, built with the workshop in seconds (never the shipped packages).

`build_tiny_text_package(folder)` trains a SentencePiece tokenizer and a 2-layer TransformerLM on a small
repetitive corpus for a few hundred steps (so that it has learned a few phrases), then exports, validates
and writes a model package through the same code as the real models.
"""

from __future__ import annotations

import random
from pathlib import Path

PHRASES = [
    "the quick brown fox jumps over the lazy dog.",
    "a stitch in time saves nine.",
    "she walked to the window and looked at the garden.",
    "it is a truth universally acknowledged.",
    "and god said, let there be light.",
]


def tiny_corpus(n: int = 600, seed: int = 0) -> str:
    rng = random.Random(seed)
    paras = []
    for _ in range(n):
        paras.append(" ".join(rng.choice(PHRASES).capitalize() for _ in range(rng.randint(1, 3))))
    return "\n\n".join(paras) + "\n"


def train_tiny_lm(cfg, ids, steps: int, seed: int):
    """A TransformerLM of config `cfg` trained for `steps` AdamW steps on random windows of the token
    tensor `ids`; returns (model in eval mode, last loss)."""
    import torch

    from export.models.lm import TransformerLM

    torch.manual_seed(seed)
    model = TransformerLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    block = cfg.block_size
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - block - 1, (16,), generator=g)
        x = torch.stack([ids[s:s + block] for s in starts])
        y = torch.stack([ids[s + 1:s + 1 + block] for s in starts])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), loss.detach()


def build_tiny_text_package(folder: Path, *, name: str = "tiny-writer", steps: int = 200,
                            block_size: int = 64, seed: int = 0) -> Path:
    """Train and export a tiny text model into `folder/name`; return the package path."""
    import torch

    from export.data.tokenizer import train_tokenizer
    from export.models.lm import LMConfig
    from export.onnx.lm import export_package

    folder.mkdir(parents=True, exist_ok=True)
    text = tiny_corpus(seed=seed)
    tok_path = train_tokenizer(text, folder / "tokenizer", vocab_size=320, seed=seed)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok_path))
    ids = torch.tensor(sp.encode(text), dtype=torch.long)
    cfg = LMConfig(vocab_size=sp.vocab_size(), block_size=block_size, n_layer=2, n_head=2, n_embd=48,
                   ffn_hidden=96, norm_first=True, tie_embeddings=True, bias=False)
    model, loss = train_tiny_lm(cfg, ids, steps, seed)
    out = folder / name
    export_package(model.eval(), tok_path, out, name=name, description="tiny test model",
                   licence="test", sources=[{"package": "tests", "version": "0"}],
                   training={"steps": steps, "final_loss": float(loss)}, val_text=tiny_corpus(40, seed + 1),
                   prompts=["The quick brown", "A stitch in"], verbose=False)
    return out

"""Train the SentencePiece tokenizer of the writing models.

The settings make encoding a pure, lossless function of the text, which the completion policy relies on:
- identity normalisation and no whitespace folding, so `decode(encode(s)) == s` for every string;
- no dummy "▁" prefix, so a window cut from the middle of a document encodes like the document does;
- byte fallback, so any Unicode input (emoji, CJK, control characters) encodes without an unknown token.

    python -m export.data.tokenizer --data runs/data/text --out runs/tokenizer --vocab 8000
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

import sentencepiece as spm

# Special ids, in this order, written into the manifest of every package built on this tokenizer.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def _sentences(text: str, limit_chars: int, seed: int) -> list[str]:
    """Paragraph-sized training sentences; SentencePiece reads one sentence per line."""
    paras = [p for p in text.split("\n") if p.strip()]
    random.Random(seed).shuffle(paras)
    out, total = [], 0
    for p in paras:
        p = p[:4000]  # SentencePiece skips sentences above max_sentence_length bytes
        out.append(p)
        total += len(p)
        if total >= limit_chars:
            break
    return out


def train_tokenizer(text: str, out_dir: Path, vocab_size: int = 8000, seed: int = 1234,
                    sample_chars: int = 8_000_000) -> Path:
    """Train on `text` and write `out_dir/tokenizer.model`; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_sentences(text, sample_chars, seed)),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=0.9995,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        max_sentence_length=16384,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        user_defined_symbols=["\n"],
        hard_vocab_limit=False,  # a tiny corpus may have fewer pieces than asked for
        num_threads=2,
        minloglevel=2,
    )
    path = out_dir / "tokenizer.model"
    path.write_bytes(model.getvalue())
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.data.tokenizer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/data/text"), help="folder with train.txt")
    ap.add_argument("--out", type=Path, default=Path("runs/tokenizer"))
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    text = (args.data / "train.txt").read_text(encoding="utf-8")
    path = train_tokenizer(text, args.out, args.vocab, args.seed)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    sample = text[:2000]
    ids = sp.encode(sample)
    assert sp.decode(ids) == sample, "tokenizer round trip failed"
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, vocab {sp.vocab_size()}, "
          f"{len(sample) / len(ids):.2f} chars/token on a sample)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

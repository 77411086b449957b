"""A tiny byte-level BPE tokenizer (trained in milliseconds with `tokenizers`) and an independent
reference of the GGUF "smollm" tokenizer (llama.cpp's pre-tokenizer regexes, GPT-2's byte alphabet and
merge loop), so the BPE tokenizer type is tested without the 98 MB pretrained model.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny_models import tiny_corpus, train_tiny_lm

CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM: each number character alone, then GPT-2's regex.
SMOLLM_SPLITS = [r"\p{N}", r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""]
TRICKY = [
    "Hello world", "In 1984, 42 apples cost $3.50 (12%).", "tab\there\t\tand  two spaces   ",
    "café naïve résumé Ångström", "“curly quotes” and ‘single’ — dashes…", "emoji 😀👍🏽 and 🇬🇧",
    "中文字符和日本語のテキスト", "line\nbreaks\r\n\n  indented", "don't we'll I'm they've",
    "x²+y³=z¹⁰ ½ ⅓ ٣٤ ", "<|endoftext|> typed as text", "", " ", "\t", "a",
]


def _byte_chars() -> dict[int, str]:
    """GPT-2's bytes_to_unicode, written out here independently of the runtime's version."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def reference_bpe(text: str, tokens: list[str], merges: list[str]) -> list[int]:
    """Token ids of `text` by the textbook algorithm: split with each regex in turn (keeping the text
    between matches), map bytes to the alphabet, then merge the lowest-ranked adjacent pair until none
    is left. Control tokens are never produced (text that spells one is plain text)."""
    import regex

    pieces = [text] if text else []
    for pattern in SMOLLM_SPLITS:
        out = []
        for p in pieces:
            pos = 0
            for m in regex.finditer(pattern, p):
                if m.start() > pos:
                    out.append(p[pos:m.start()])
                out.append(m.group())
                pos = m.end()
            if pos < len(p):
                out.append(p[pos:])
        pieces = out
    chars = _byte_chars()
    vocab = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    ids: list[int] = []
    for piece in pieces:
        word = [chars[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            rank, i = min((ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(word, word[1:])))
            if rank == float("inf"):
                break
            word = word[:i] + [word[i] + word[i + 1]] + word[i + 2:]
        ids += [vocab[w] for w in word]
    return ids


def train_tiny_bpe(folder: Path, vocab_size: int = 420) -> Path:
    """Train a byte-level BPE on the tiny corpus (plus a few digits, accents and emoji) and save it as
    `folder/tokenizer.json`: control tokens 0-2, the 256 byte characters, then merged tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=CONTROL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = tiny_corpus(300) + "In 1984 she paid 12 pounds. Café, naïve — “quoted” 😀 中文.\n" * 5
    tok.train_from_iterator(text.split("\n"), trainer)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def gguf_like_vocabulary(path: Path) -> dict[str, list]:
    """tokens, token types (3 = control) and "a b" merges of a tokenizer.json, as a GGUF stores them."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    vocab = dict(spec["model"]["vocab"])
    for added in spec["added_tokens"]:
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    special = {a["id"] for a in spec["added_tokens"] if a["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return {"tokens": tokens, "token_types": [3 if i in special else 1 for i in range(len(tokens))],
            "merges": merges}


def build_tiny_bpe_package(folder: Path, *, name: str = "tiny-bpe-writer", steps: int = 200,
                           block_size: int = 64, seed: int = 0) -> Path:
    """Train a 2-layer model on the tiny corpus with the tiny BPE tokenizer and export it as a package
    whose tokenizer type is "bpe" (the path an imported GGUF model takes)."""
    import torch

    from aigc_studio.runtime.tokenizer import HFTokenizer

    tok_path = train_tiny_bpe(folder / "bpe")
    tok = HFTokenizer(tok_path)
    text = tiny_corpus(seed=seed)
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend
    try:
        return _train_and_export(folder, tok_path, ids, name, steps, block_size, seed, tok.vocab_size)
    finally:
        torch.set_num_threads(threads)


def _train_and_export(folder: Path, tok_path: Path, ids, name: str, steps: int, block_size: int, seed: int,
                      vocab_size: int) -> Path:
    from export.models.lm import LMConfig
    from export.onnx.lm import export_package

    cfg = LMConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=4, n_kv_head=2,
                   n_embd=48, ffn_hidden=96, norm_first=True, norm="rms", pos="rope", mlp="swiglu",
                   tie_embeddings=True, bias=False)
    model, _ = train_tiny_lm(cfg, ids, steps, seed)
    out = folder / name
    export_package(model.eval(), tok_path, out, name=name, description="tiny BPE test model",
                   licence="test", sources=[{"package": "tests", "version": "0"}],
                   training={"steps": steps}, val_text=tiny_corpus(40, seed + 1),
                   prompts=["The quick brown", "A stitch in"], verbose=False, tokenizer_type="bpe",
                   tokens={"pad": 0, "unk": None, "bos": None, "eos": 0})
    return out

"""The SentencePiece tokenizer round-trips any Unicode text and exposes token bytes."""

from __future__ import annotations

import random
from pathlib import Path

from aigc_studio.runtime.package import load_package
from aigc_studio.runtime.tokenizer import PrefixIndex, load_tokenizer, utf8_pending

RANGES = [(0x20, 0x7E), (0x09, 0x0A), (0xA0, 0x17F), (0x370, 0x3FF), (0x4E00, 0x4FFF), (0x1F300, 0x1F64F),
          (0x2000, 0x206F), (0x0, 0x1F), (0x10000, 0x10FFF)]


def random_text(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        lo, hi = rng.choice(RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def test_round_trip_on_random_unicode(tiny_text_package: Path) -> None:
    tok = load_tokenizer(load_package(tiny_text_package))
    rng = random.Random(0)
    for _ in range(200):
        s = random_text(rng, rng.randint(0, 40))
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert b"".join(tok.token_bytes(i) for i in ids) == s.encode("utf-8")
    for s in ["  leading spaces", "trailing  ", "\n\nparagraphs\n", "tab\there", "“curly” café 😀 中文 12345"]:
        assert tok.decode(tok.encode(s)) == s


def test_prefix_index_prefers_tokens_that_cover_the_typed_rest(tiny_text_package: Path) -> None:
    tok = load_tokenizer(load_package(tiny_text_package))
    index = PrefixIndex(tok)
    rest = b" th"
    every = index.allowed(rest, prefer_covering=False)
    assert every.any()
    for i in every.nonzero()[0]:
        b = tok.token_bytes(int(i))
        assert b.startswith(rest) or rest.startswith(b)
    assert not any(tok.token_bytes(int(i)).startswith(rest) for i in (~every).nonzero()[0])
    covering = index.allowed(rest)
    assert covering.any() and covering.sum() < every.sum()
    assert all(tok.token_bytes(int(i)).startswith(rest) for i in covering.nonzero()[0])
    # With no covering token, the prefixes are the fallback.
    odd = " q" + "\u00e9" * 3
    assert (index.allowed(odd.encode()) == index.allowed(odd.encode(), prefer_covering=False)).all()
    assert index.allowed(odd.encode()).any()


def test_prefix_index_equals_a_scan_of_the_vocabulary(tiny_text_package: Path) -> None:
    tok = load_tokenizer(load_package(tiny_text_package))
    index = PrefixIndex(tok)
    vocab = [tok.token_bytes(i) for i in range(tok.vocab_size)]

    def scan(rest: bytes, prefer_covering: bool) -> list[int]:
        covering = [i for i, b in enumerate(vocab) if b and b.startswith(rest)]
        if prefer_covering and covering:
            return covering
        return sorted(covering + [i for i, b in enumerate(vocab) if b and rest.startswith(b)
                                  and not b.startswith(rest)])

    rng = random.Random(3)
    rests = [b" th", b"\xff", b"a\xff\xff", "é".encode()[:1], " café".encode(), b"\n", b" zzqx"]
    rests += [rng.choice([b for b in vocab if b]) + bytes(rng.choices(range(256), k=rng.randint(0, 2)))
              for _ in range(150)]
    rests += [random_text(rng, rng.randint(1, 4)).encode() for _ in range(50)]
    for rest in rests:
        for prefer in (True, False):
            assert index.allowed(rest, prefer).nonzero()[0].tolist() == scan(rest, prefer), rest


def test_utf8_pending() -> None:
    assert utf8_pending(b"abc") == 0
    assert utf8_pending("é".encode()[:1]) == 1
    assert utf8_pending("中".encode()[:1]) == 2
    assert utf8_pending("中".encode()[:2]) == 1
    assert utf8_pending("😀".encode()) == 0

"""Prompts of any Unicode, and a check that a tokenizer's prompt back-off and next-token masks hold for
them: used by the fault tests on tiny tokenizers and by the shipped-model test on the real ones."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np

from aigc_studio.runtime.prompt import TokenConstraints, split_prompt
from aigc_studio.runtime.tokenizer import Tokenizer

HARD_ENDINGS = [
    "I love pizza 🍕", "I had coffee at the café", "Der Bär", "naïve", "€", "中文", "日本語のテキスト",
    "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🧑🏿‍🚀", "e\u0301", "a\u0308\u0323", "שלום", "مرحبا بالعالم", "Ελληνικά",
    "🇫🇷", "ｆｕｌｌ", "\u200b", "\ufeff", "�", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ŉ", "Ⅻ", "\U0010fffd",
]
"""Endings the issue names: accented Latin, currency, CJK, emoji with skin tones and ZWJ sequences,
combining marks, right-to-left scripts, and a few odd ones (zero-width, BOM, replacement character)."""

_BLOCKS = [(0x20, 0x7E), (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x590, 0x6FF),
           (0x900, 0x97F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF),
           (0x1F3FB, 0x1F3FF), (0x200B, 0x200F), (0xFE00, 0xFE0F), (0x0, 0x1F), (0x10000, 0x10FFFF)]


def _char(rng: random.Random) -> str:
    lo, hi = rng.choice(_BLOCKS)
    c = rng.randint(lo, hi)
    return chr(c if not 0xD800 <= c <= 0xDFFF else 0xFFFD)


def random_prompt(rng: random.Random) -> str:
    """Some words, then an ending of random characters, a hard ending, or both joined by a ZWJ."""
    words = " ".join(rng.choice(["The", "cat", "sat", "on", "a", "mat", "and", "said"])
                     for _ in range(rng.randint(0, 6)))
    tail = "".join(_char(rng) for _ in range(rng.randint(1, 6)))
    kind = rng.randrange(4)
    if kind == 0:
        tail = rng.choice(HARD_ENDINGS)
    elif kind == 1:
        tail = rng.choice(HARD_ENDINGS) + tail
    elif kind == 2:
        tail = tail + "\u200d" + rng.choice(HARD_ENDINGS)
    return words + rng.choice(["", " "]) + tail


def prompts(n: int, seed: int = 0) -> Iterator[str]:
    """`n` prompts: random ones, each cut at every byte of its last 8 UTF-8 bytes (a cut inside a
    character ends the prompt with U+FFFD, as text decoded with replacement does); the hard endings
    first."""
    rng = random.Random(seed)
    made = 0
    base_prompts = iter(HARD_ENDINGS)
    while made < n:
        base = next(base_prompts, None) or random_prompt(rng)
        data = base.encode("utf-8")
        for cut in range(max(1, len(data) - 8), len(data) + 1):
            yield data[:cut].decode("utf-8", errors="replace")
            made += 1
            if made >= n:
                return


def check_prompt_constraints(tokenizer: Tokenizer, constraints: TokenConstraints, prompt: str,
                             rng: random.Random, extra_steps: int = 2) -> None:
    """Split `prompt`, then re-type its backed-off bytes with random allowed tokens and go on for a few
    tokens more: every mask must allow some token, every chosen token must spell the next re-typed
    bytes, and the split must be the prompt's bytes, cut at a character boundary."""
    split = split_prompt(tokenizer, prompt)
    # The prompt's bytes as the tokenizer spells them: SmolLM2's vocabulary has no token for a few
    # bytes (six control characters, and the lead bytes 0xF1 and 0xF2 of the unassigned planes 4-11),
    # which its encoder drops.
    data = b"".join(tokenizer.token_bytes(i) for i in tokenizer.encode(prompt))
    fed = b"".join(tokenizer.token_bytes(i) for i in split.ids)
    assert fed + split.rest == data, (prompt, fed, split.rest)
    assert not split.rest or not 0x80 <= split.rest[0] <= 0xBF, (prompt, split.rest)
    assert b"".join(tokenizer.token_bytes(i) for i in split.tail) == split.rest
    state, typed = TokenConstraints.START, b""
    steps = 0
    while len(typed) < len(split.rest) or steps < extra_steps:
        left = split.rest[len(typed):] if len(typed) < len(split.rest) else b""
        allowed = np.flatnonzero(constraints.allowed(state, left))
        assert allowed.size, (prompt, typed, state)
        token = int(allowed[rng.randrange(allowed.size)])
        piece = tokenizer.token_bytes(token)
        if left:
            assert piece.startswith(left) or left.startswith(piece), (prompt, left, piece)
        else:
            steps += 1
        typed += piece
        state = constraints.advance(state, piece)

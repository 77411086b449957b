"""From a prompt to the tokens a model reads, and the masks that keep generated tokens valid.

Two things every decoding strategy shares, kept apart from the model so that they can be tested (and
fuzzed) with a tokenizer alone:
- `split_prompt`: a prompt that ends inside a word is fed without its last token(s), and the generation
  must first re-type those bytes (the model then picks the tokenisation of the whole word itself). The
  cut is always at a character boundary: byte-level tokenizers split an emoji or a CJK character over
  several tokens, and a cut inside one would ask the first generated token to start with a UTF-8
  continuation byte, which no valid token from a character boundary does.
- `TokenConstraints.allowed`: the tokens that may come next: never a control token (end-of-text
  excepted), never one that makes the text invalid UTF-8, and, while re-typing, one that spells the next
  re-typed bytes (a token covering them all when there is one, else a token spelling a part of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aigc_studio.runtime.tokenizer import PrefixIndex, Tokenizer, Utf8Guard, valid_utf8_prefix

MAX_BACK_OFF_TOKENS = 3
"""Tokens of a half-typed word backed off at most (and MAX_BACK_OFF_BYTES bytes)."""
MAX_BACK_OFF_BYTES = 24
_MAX_CHARACTER_TOKENS = 4
"""Further tokens backed off to reach a character boundary (a UTF-8 character has at most 4 bytes)."""

Utf8State = tuple[int, int, int]


class PromptError(ValueError):
    """A prompt the tokenizer cannot read (text that is not valid Unicode); the message says where."""


def check_prompt(prompt: str) -> None:
    """Raise `PromptError` when `prompt` holds a lone surrogate (text decoded from invalid UTF-8 with
    `surrogateescape`, or a broken UTF-16 pair), which has no UTF-8 form."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = prompt[exc.start]
        what = (f"byte 0x{ord(bad) - 0xDC00:02X} that is not UTF-8" if 0xDC80 <= ord(bad) <= 0xDCFF
                else f"lone surrogate U+{ord(bad):04X}")
        raise PromptError(f"the prompt is not valid UTF-8 text: {what} at character {exc.start}; "
                          "convert it to UTF-8 first") from None


@dataclass(frozen=True)
class PromptSplit:
    """A prompt as the model reads it: `ids` to feed, the bytes `rest` the generation re-types first,
    and the backed-off tokens `tail` (whose bytes are `rest`)."""

    ids: list[int]
    rest: bytes
    tail: list[int]


def _is_continuation(b: int) -> bool:
    return 0x80 <= b <= 0xBF


def split_prompt(tokenizer: Tokenizer, prompt: str) -> PromptSplit:
    """Encode `prompt` and back off its half-typed last word (see the module docstring).

    The last token is backed off, and the one before it while both continue a word (ASCII letters and
    digits), at most MAX_BACK_OFF_TOKENS tokens and MAX_BACK_OFF_BYTES bytes; then more tokens while the
    cut is inside a UTF-8 character. A cut that cannot reach a character boundary, or a backed-off part
    that is not valid UTF-8, backs off nothing.
    Raises `PromptError` for text that is not valid Unicode."""
    check_prompt(prompt)
    full = tokenizer.encode(prompt)
    ids, rest = full, b""
    for _ in range(MAX_BACK_OFF_TOKENS):
        if not ids:
            break
        tail = tokenizer.token_bytes(ids[-1])
        if not tail:
            break
        rest = tail + rest
        ids = ids[:-1]
        if rest[:1].isspace() or not rest[:1].isalnum() or len(rest) > MAX_BACK_OFF_BYTES or not ids:
            break
        prev = tokenizer.token_bytes(ids[-1])
        if not prev or not prev[-1:].isalnum():
            break
    for _ in range(_MAX_CHARACTER_TOKENS):
        if not rest or not _is_continuation(rest[0]) or not ids:
            break
        tail = tokenizer.token_bytes(ids[-1])
        if not tail:
            break
        rest = tail + rest
        ids = ids[:-1]
    if rest and (_is_continuation(rest[0]) or not valid_utf8_prefix(rest)):
        # No character boundary within reach, or bytes that are not UTF-8 (SmolLM2's vocabulary has no
        # token for the lead bytes 0xF1 and 0xF2, which its encoder drops): generate after it all.
        ids, rest = full, b""
    return PromptSplit(ids=list(ids), rest=rest, tail=list(full[len(ids):]))


class TokenConstraints:
    """The allowed-token masks of one tokenizer (built once per model: the indexes scan the vocabulary)."""

    START: Utf8State = Utf8Guard.START

    def __init__(self, tokenizer: Tokenizer, eos_id: int | None) -> None:
        self.tokenizer = tokenizer
        self._prefix = PrefixIndex(tokenizer)
        self._utf8 = Utf8Guard(tokenizer)
        self._banned = np.zeros(tokenizer.vocab_size, dtype=bool)
        self._banned[[i for i in tokenizer.special_ids() if i != eos_id]] = True

    @property
    def banned(self) -> np.ndarray:
        """Boolean mask (V,) of the control tokens generation never produces (a read-only view)."""
        view = self._banned.view()
        view.flags.writeable = False
        return view

    def advance(self, state: Utf8State, piece: bytes) -> Utf8State:
        """The UTF-8 state after the bytes `piece`."""
        return self._utf8.advance(state, piece)

    def allowed(self, state: Utf8State = Utf8Guard.START, retype: bytes = b"") -> np.ndarray:
        """Boolean mask (V,) of the tokens that may come next in UTF-8 state `state`, while the bytes
        `retype` are still to be re-typed. Never empty for the rest of a `split_prompt` and the tokens
        that re-typed its start (a token that spells a part of the rest is the fallback when no token
        covering it is valid UTF-8 here); raises `ValueError` otherwise."""
        base = ~self._banned & self._utf8.mask(state)
        if not retype:
            return base
        mask = base & self._prefix.allowed(retype)
        if not mask.any():
            mask = base & self._prefix.allowed(retype, prefer_covering=False)
        if not mask.any():
            raise ValueError(f"no token can re-type {retype[:16]!r} here (UTF-8 state {state})")
        return mask

"""Tokenizers behind one interface.

Two types: SentencePiece (the writing models trained here) and byte-level BPE in the `tokenizers`
library's format (imported models such as SmolLM2); a package's manifest names its type.
Generation works on the *surface bytes* of tokens (what each token adds to the text), which makes three
things simple and exact for every tokenizer type: streaming text while a multi-byte character is still
incomplete, constraining the first tokens of a completion to extend a half-typed word, and decoding.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from aigc_studio.runtime.package import ModelPackage, PackageError


class Tokenizer(Protocol):
    """What the runtime needs of a tokenizer."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token adds to the text (b"" for control tokens)."""
        ...

    def special_ids(self) -> list[int]:
        """Control tokens that generation must never produce (end-of-sequence excepted)."""
        ...


class SentencePieceTokenizer:
    """A SentencePiece model trained with identity normalisation, no dummy prefix and byte fallback
    (see export/data/tokenizer.py), so that encoding is lossless."""

    def __init__(self, path: Path) -> None:
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(str(path))
        except (OSError, RuntimeError) as exc:
            raise PackageError(f"{path.name}: not a readable SentencePiece model ({exc})") from None
        self.vocab_size = int(self._sp.GetPieceSize())
        self._bytes = [self._piece_bytes(i) for i in range(self.vocab_size)]

    def _piece_bytes(self, i: int) -> bytes:
        sp = self._sp
        if sp.IsControl(i) or sp.IsUnknown(i):
            return b""
        piece = sp.IdToPiece(i)
        if sp.IsByte(i):
            return bytes([int(piece[3:5], 16)])  # "<0xAB>"
        return piece.replace("\u2581", " ").encode("utf-8")

    def encode(self, text: str) -> list[int]:
        return list(self._sp.EncodeAsIds(text))

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]

    def special_ids(self) -> list[int]:
        return [i for i in range(self.vocab_size) if self._sp.IsControl(i) or self._sp.IsUnknown(i)]


def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte -> the byte.
    Printable Latin-1 bytes stand for themselves; the others are shifted to U+0100 and up."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = dict(zip(keep, keep))
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 0x100 + shifted
            shifted += 1
    return {chr(c): b for b, c in chars.items()}


class HFTokenizer:
    """A byte-level BPE tokenizer in the `tokenizers` library's `tokenizer.json` format (GPT-2 style: each
    token is a string over the 256-character byte alphabet of :func:`byte_level_alphabet`). Encoding is
    lossless when the file has no normaliser; no BOS is added. Control tokens (the file's special added
    tokens) add no bytes, and text that spells one (``<|endoftext|>`` typed in a document) is encoded as
    ordinary text, never as the control token."""

    def __init__(self, path: Path) -> None:
        import json

        from tokenizers import Tokenizer as _Tokenizer

        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
            self._tok = _Tokenizer.from_file(str(path))
        except Exception as exc:  # OSError, JSON errors, the library's own exception type
            raise PackageError(f"{Path(path).name}: not a readable tokenizers file ({exc})") from None
        decoder = (spec.get("decoder") or {}).get("type")
        if decoder != "ByteLevel" or (spec.get("model") or {}).get("type") != "BPE":
            raise PackageError(f"{Path(path).name}: only byte-level BPE tokenizers are supported "
                               f"(model {(spec.get('model') or {}).get('type')!r}, decoder {decoder!r})")
        self._tok.encode_special_tokens = True  # a typed "<|endoftext|>" is text, not a control token
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))
        self._special = sorted(i for i, t in self._tok.get_added_tokens_decoder().items() if t.special)
        alphabet = byte_level_alphabet()
        special = set(self._special)
        self._bytes: list[bytes] = []
        for i in range(self.vocab_size):
            piece = self._tok.id_to_token(i)
            if piece is None:
                raise PackageError(f"{Path(path).name}: token ids are not contiguous (no token {i})")
            if i in special:
                self._bytes.append(b"")
            elif all(c in alphabet for c in piece):
                self._bytes.append(bytes(alphabet[c] for c in piece))
            else:  # a non-special added token stored as plain text
                self._bytes.append(piece.encode("utf-8"))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]

    def special_ids(self) -> list[int]:
        return list(self._special)


TOKENIZER_TYPES = {  # manifest tokenizer.type -> its class
    "sentencepiece": SentencePieceTokenizer,
    "bpe": HFTokenizer,          # byte-level BPE, tokenizer.json of the `tokenizers` library
    "tokenizers": HFTokenizer,   # an alias
}


def load_tokenizer(package: ModelPackage) -> Tokenizer:
    spec = package.spec.text
    if spec is None:
        raise PackageError(f"{package.path}: a {package.kind} package has no tokenizer")
    path = package.file(spec.tokenizer_file)
    kind = TOKENIZER_TYPES.get(spec.tokenizer_type)
    if kind is None:
        raise PackageError(f"{package.path}: tokenizer type '{spec.tokenizer_type}' is not supported "
                           f"(supported: {', '.join(TOKENIZER_TYPES)})")
    return kind(path)


class PrefixIndex:
    """Which tokens may come next when the text must start with a given byte string.

    A token fits when its bytes start with the remaining bytes (it covers them), or are a non-empty
    prefix of them. Covering tokens are preferred: when one exists, only covering tokens are allowed,
    so "It is a tru" continues with one in-vocabulary token such as "▁truth" rather than spelling
    "▁t", "r", "u" one piece at a time, a tokenisation the model never saw in training and continues
    badly. Prefix tokens are the fallback for words that no single token covers."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        token_bytes = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
        # Tokens sorted by their bytes: those that start with `rest` are one slice of this order.
        self._order = np.asarray(sorted(range(len(token_bytes)), key=token_bytes.__getitem__),
                                 dtype=np.int64)
        self._sorted = [token_bytes[i] for i in self._order]
        self._by_bytes: dict[bytes, list[int]] = {}
        for i, b in enumerate(token_bytes):
            if b:
                self._by_bytes.setdefault(b, []).append(i)
        self.vocab_size = tokenizer.vocab_size

    def allowed(self, rest: bytes, prefer_covering: bool = True) -> np.ndarray:
        """Boolean mask (V,) of tokens compatible with `rest` (which must be non-empty)."""
        mask = np.zeros(self.vocab_size, dtype=bool)
        lo = bisect.bisect_left(self._sorted, rest)
        stripped = rest.rstrip(b"\xff")  # the first byte string after every one that starts with rest
        hi = (bisect.bisect_left(self._sorted, stripped[:-1] + bytes([stripped[-1] + 1]))
              if stripped else len(self._sorted))
        mask[self._order[lo:hi]] = True
        if prefer_covering and lo < hi:
            return mask
        for k in range(1, len(rest)):
            mask[self._by_bytes.get(rest[:k], [])] = True
        return mask


def utf8_pending(data: bytes) -> int:
    """How many continuation bytes the end of `data` still needs to complete a UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0x80 == 0:
            return 0
        if b & 0xC0 == 0xC0:
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4
            return max(0, need - back)
    return 0


_FIRST_CONTINUATION = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def _lead(b: int) -> tuple[int, int, int]:
    """(continuation bytes needed, lowest and highest first continuation byte) after lead byte `b`."""
    return (1 if b < 0xE0 else 2 if b < 0xF0 else 3, *_FIRST_CONTINUATION.get(b, (0x80, 0xBF)))


def valid_utf8_prefix(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 apart from an incomplete last character (RFC 3629: no overlong
    forms, no surrogates, nothing above U+10FFFF)."""
    pending, lo, hi = 0, 0x80, 0xBF
    for b in data:
        if pending:
            if not lo <= b <= hi:
                return False
            pending, lo, hi = pending - 1, 0x80, 0xBF
        elif b >= 0x80:
            if not 0xC2 <= b <= 0xF4:
                return False
            pending, lo, hi = _lead(b)
    return True


def _leading_continuations(data: bytes) -> int:
    n = 0
    while n < len(data) and 0x80 <= data[n] <= 0xBF:
        n += 1
    return n


class Utf8Guard:
    """Keeps generated tokens from producing invalid UTF-8. A token's bytes need not be whole characters:
    SentencePiece's byte-fallback tokens are single bytes, and byte-level BPE tokens may begin or end in
    the middle of a character. The state is (continuation bytes still needed, lowest and highest byte
    allowed next); a token fits when it supplies exactly the continuation bytes still needed (or fewer,
    if it ends there), within range, and the rest of it is valid UTF-8 that may stop inside a character."""

    START = (0, 0x80, 0xBF)
    _FIRST = _FIRST_CONTINUATION  # the first continuation byte after these lead bytes has a narrower range

    def __init__(self, tokenizer: Tokenizer) -> None:
        pieces = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
        self.first_byte = np.asarray([p[0] if p else -1 for p in pieces], dtype=np.int32)
        self.start_ok = np.asarray([valid_utf8_prefix(p) for p in pieces], dtype=bool)  # control tokens too
        lead = [_leading_continuations(p) for p in pieces]
        # after[k]: fits while k continuation bytes are pending (the first one's range is checked in mask)
        self._after = {k: np.asarray([bool(p) and lead[i] >= min(k, len(p)) and valid_utf8_prefix(p[k:])
                                      for i, p in enumerate(pieces)], dtype=bool) for k in (1, 2, 3)}

    def mask(self, state: tuple[int, int, int]) -> np.ndarray:
        pending, lo, hi = state
        if pending == 0:
            return self.start_ok
        return self._after[pending] & (self.first_byte >= lo) & (self.first_byte <= hi)

    def advance(self, state: tuple[int, int, int], piece: bytes) -> tuple[int, int, int]:
        pending, lo, hi = state
        for b in piece:
            if pending:
                pending, lo, hi = pending - 1, 0x80, 0xBF
            elif b >= 0xC2:
                pending, lo, hi = _lead(b)
        return (pending, lo, hi) if pending else self.START

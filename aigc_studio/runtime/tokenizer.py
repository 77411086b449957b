"""Tokenizers behind one interface.

Generation works on the *surface bytes* of tokens (what each token adds to the text), which makes three
things simple and exact for every tokenizer type: streaming text while a multi-byte character is still
incomplete, constraining the first tokens of a completion to extend a half-typed word, and decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

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
    (see export/tokenizer_text.py), so that encoding is lossless."""

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


def load_tokenizer(package: ModelPackage) -> Tokenizer:
    spec = package.manifest["tokenizer"]
    path = package.file(spec["file"])
    if spec["type"] == "sentencepiece":
        return SentencePieceTokenizer(path)
    raise PackageError(f"{package.path}: tokenizer type '{spec['type']}' is not supported "
                       "(supported: sentencepiece)")


class PrefixIndex:
    """Which tokens may come next when the text must start with a given byte string: a token fits when
    its bytes start with the remaining bytes, or are a non-empty prefix of them."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._bytes = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
        by_first: dict[int, list[int]] = {}
        for i, b in enumerate(self._bytes):
            if b:
                by_first.setdefault(b[0], []).append(i)
        self._by_first = {k: np.asarray(v) for k, v in by_first.items()}
        self.vocab_size = tokenizer.vocab_size

    def allowed(self, rest: bytes) -> np.ndarray:
        """Boolean mask (V,) of tokens compatible with `rest` (which must be non-empty)."""
        mask = np.zeros(self.vocab_size, dtype=bool)
        for i in self._by_first.get(rest[0], ()):
            b = self._bytes[i]
            if b.startswith(rest) or rest.startswith(b):
                mask[i] = True
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


class Utf8Guard:
    """Keeps byte-fallback tokens from producing invalid UTF-8. The state is (continuation bytes still
    needed, lowest and highest byte allowed next); while a character is incomplete only fitting
    continuation bytes may follow, otherwise no stray continuation byte or invalid lead byte."""

    START = (0, 0x80, 0xBF)
    # The first continuation byte after these lead bytes has a narrower range (RFC 3629).
    _FIRST = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}

    def __init__(self, tokenizer: Tokenizer) -> None:
        V = tokenizer.vocab_size
        self.byte_value = np.full(V, -1, dtype=np.int32)
        for i in range(V):
            b = tokenizer.token_bytes(i)
            if len(b) == 1 and b[0] >= 0x80:
                self.byte_value[i] = b[0]
        bv = self.byte_value
        self.start_ok = (bv < 0) | ((bv >= 0xC2) & (bv <= 0xF4))

    def mask(self, state: tuple[int, int, int]) -> np.ndarray:
        pending, lo, hi = state
        if pending == 0:
            return self.start_ok
        return (self.byte_value >= lo) & (self.byte_value <= hi)

    def advance(self, state: tuple[int, int, int], piece: bytes) -> tuple[int, int, int]:
        pending = state[0]
        for b in piece:
            if pending:
                pending -= 1
            elif b >= 0xC2:
                pending = 1 if b < 0xE0 else 2 if b < 0xF0 else 3
                return (pending, *self._FIRST.get(b, (0x80, 0xBF))) if len(piece) == 1 else (0, 0x80, 0xBF)
        return (pending, 0x80, 0xBF)

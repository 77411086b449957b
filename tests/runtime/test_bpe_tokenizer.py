"""The byte-level BPE tokenizer type ("bpe", a `tokenizers` tokenizer.json) behind the runtime's
tokenizer interface, and a text package that declares it. No pretrained model needed: the tokenizer
and the model are tiny and built here."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import PackageError, load_package
from aigc_studio.runtime.tokenizer import HFTokenizer, PrefixIndex, byte_level_alphabet, load_tokenizer
from tests.runtime.test_tokenizer import random_text
from tests.tiny_bpe import CONTROL_TOKENS, TRICKY, gguf_like_vocabulary, reference_bpe, train_tiny_bpe


@pytest.fixture(scope="module")
def bpe_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_bpe(tmp_path_factory.mktemp("bpe"))


@pytest.fixture
def bpe_package(tiny_bpe_package: Path) -> Path:
    return tiny_bpe_package


def test_byte_level_alphabet_covers_every_byte_once() -> None:
    alphabet = byte_level_alphabet()
    assert sorted(alphabet.values()) == list(range(256))
    assert alphabet["A"] == ord("A") and alphabet["\u0120"] == ord(" ") and alphabet["\u010a"] == ord("\n")


def test_round_trip_on_random_unicode(bpe_json: Path) -> None:
    tok = HFTokenizer(bpe_json)
    rng = random.Random(0)
    for _ in range(300):
        s = random_text(rng, rng.randint(0, 40))
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert b"".join(tok.token_bytes(i) for i in ids) == s.encode("utf-8")
    for s in TRICKY:
        assert tok.decode(tok.encode(s)) == s


def test_ids_match_the_reference_bpe(bpe_json: Path) -> None:
    pytest.importorskip("regex")
    tok = HFTokenizer(bpe_json)
    vocab = gguf_like_vocabulary(bpe_json)
    for s in TRICKY + ["The quick brown fox jumps over the lazy dog. 2024-01-31"]:
        assert tok.encode(s) == reference_bpe(s, vocab["tokens"], vocab["merges"]), s
    # digits are one token each, and no BOS is added
    assert [tok.token_bytes(i) for i in tok.encode("1984")] == [b"1", b"9", b"8", b"4"]


def test_control_tokens_add_no_bytes_and_are_never_parsed_from_text(bpe_json: Path) -> None:
    tok = HFTokenizer(bpe_json)
    assert tok.special_ids() == [0, 1, 2]
    assert all(tok.token_bytes(i) == b"" for i in tok.special_ids())
    ids = tok.encode(CONTROL_TOKENS[0])
    assert len(ids) > 1 and not set(ids) & set(tok.special_ids())
    assert tok.decode(ids) == CONTROL_TOKENS[0]


def test_prefix_index_works_on_bpe_bytes(bpe_json: Path) -> None:
    tok = HFTokenizer(bpe_json)
    mask = PrefixIndex(tok).allowed(b" qu")
    assert mask.any()
    for i in mask.nonzero()[0]:
        b = tok.token_bytes(int(i))
        assert b.startswith(b" qu") or b" qu".startswith(b)


def test_not_byte_level_or_broken_files_are_refused(tmp_path: Path, bpe_json: Path) -> None:
    spec = json.loads(bpe_json.read_text())
    spec["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    bad = tmp_path / "metaspace.json"
    bad.write_text(json.dumps(spec))
    with pytest.raises(PackageError, match="byte-level BPE"):
        HFTokenizer(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PackageError, match="not a readable"):
        HFTokenizer(broken)


# ------------------------------------------------------------------------ a package with a BPE tokenizer


def test_package_declares_bpe_and_the_runtime_loads_it(bpe_package: Path) -> None:
    package = load_package(bpe_package)
    assert package.manifest["tokenizer"] == {"type": "bpe", "file": "tokenizer.json"}
    assert "tokenizers_version" in package.manifest and "sentencepiece_version" not in package.manifest
    assert package.manifest["tokens"]["eos"] == 0
    tok = load_tokenizer(package)
    assert isinstance(tok, HFTokenizer) and tok.vocab_size == package.manifest["config"]["vocab_size"]
    v = package.manifest["validation"]
    assert v["fp32"]["greedy_all_equal"] and v["fp32"]["max_abs_logit_diff"] < 1e-3


def test_text_generator_completes_with_a_bpe_package(bpe_package: Path) -> None:
    from aigc_studio.runtime.text_generator import TextGenerator

    gen = TextGenerator(load_package(bpe_package), device="cpu")
    greedy = SamplingConfig(strategy="greedy", max_new_tokens=6)
    assert gen.complete("The quick bro", greedy)[0].text.startswith("wn")  # a half-typed word is completed
    assert "".join(gen.stream("A stitch in", greedy)).startswith(" time")
    assert gen.complete("", greedy)  # an empty prompt starts after the end-of-text token


def test_unknown_tokenizer_type_lists_the_supported_ones(bpe_package: Path, tmp_path: Path) -> None:
    from aigc_studio.runtime.package import write_package

    dst = tmp_path / "pkg"
    shutil.copytree(bpe_package, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["tokenizer"]["type"] = "wordpiece"
    manifest.pop("files", None)
    write_package(dst, manifest)
    with pytest.raises(PackageError, match="sentencepiece, bpe"):
        load_tokenizer(load_package(dst))


class _Pieces:
    """A tokenizer stand-in with given token bytes."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.vocab_size = len(pieces)

    def token_bytes(self, i: int) -> bytes:
        return self.pieces[i]


def test_utf8_guard_allows_tokens_that_split_characters() -> None:
    """Byte-level BPE tokens may start or end inside a character ("中" is E4 B8 AD)."""
    from aigc_studio.runtime.tokenizer import Utf8Guard, valid_utf8_prefix

    pieces = [b"a", b"\xe4\xb8", b"\xad", b"\xe4", b"\xb8\xad", b"\xad\xe4", b"\xb8", b"\xe4\xb8\xad", b"",
              b"\xc0\x80", b"\xad a", b"\xed\xa0\x80", b"\xb8\xad\xe4\xb8"]
    guard = Utf8Guard(_Pieces(pieces))
    allowed = lambda state: {pieces[i] for i in guard.mask(state).nonzero()[0]}  # noqa: E731
    start = guard.START
    assert allowed(start) == {b"a", b"\xe4\xb8", b"\xe4", b"\xe4\xb8\xad", b""}  # no stray continuation
    after_e4 = guard.advance(start, b"\xe4")
    assert after_e4[0] == 2
    assert allowed(after_e4) == {b"\xb8\xad", b"\xb8", b"\xad", b"\xb8\xad\xe4\xb8"}
    after_e4b8 = guard.advance(start, b"\xe4\xb8")
    assert after_e4b8[0] == 1
    assert allowed(after_e4b8) == {b"\xad", b"\xb8", b"\xad\xe4", b"\xad a"}  # not b"\xb8\xad"
    assert guard.advance(after_e4b8, b"\xad\xe4")[0] == 2
    assert guard.advance(after_e4b8, b"\xad a") == start
    assert valid_utf8_prefix("中文 😀".encode()[:-1]) and not valid_utf8_prefix(b"\xed\xa0\x80")

"""Fault tests of text generation: prompts of any Unicode (issue #16, findings 1 and 8)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import load_package
from aigc_studio.runtime.prompt import PromptError, TokenConstraints, split_prompt
from aigc_studio.runtime.text_generator import TextGenerator
from aigc_studio.runtime.tokenizer import load_tokenizer
from tests.prompt_fuzz import HARD_ENDINGS, check_prompt_constraints, prompts


@pytest.fixture(params=["sentencepiece", "bpe"])
def tiny_package(request: pytest.FixtureRequest) -> Path:
    name = "tiny_text_package" if request.param == "sentencepiece" else "tiny_bpe_package"
    return request.getfixturevalue(name)


def test_back_off_never_cuts_inside_a_character(tiny_bpe_package: Path) -> None:
    """Finding 1: the BPE tokenizer spells 🍕 with tokens that end inside it; the back-off used to keep
    the lead bytes and ask the first token to start with a continuation byte."""
    tok = load_tokenizer(load_package(tiny_bpe_package))
    for prompt in ["I love pizza 🍕", "I had coffee at the café", "中文", "👩‍👩‍👧‍👦"]:
        split = split_prompt(tok, prompt)
        assert split.rest and not 0x80 <= split.rest[0] <= 0xBF, (prompt, split.rest)
        assert b"".join(tok.token_bytes(i) for i in split.ids) + split.rest == prompt.encode()


def test_fuzzed_prompts_keep_every_mask_satisfiable(tiny_package: Path) -> None:
    """Finding 1, fuzzed: 10,000 prompts of random Unicode cut at every byte of their end, through the
    tokenizer, the back-off and the re-typing masks (random allowed tokens until re-typed, and on)."""
    tok = load_tokenizer(load_package(tiny_package))
    constraints = TokenConstraints(tok, eos_id=None)
    rng = random.Random(1)
    n = 0
    for prompt in prompts(10_000, seed=2):
        check_prompt_constraints(tok, constraints, prompt, rng)
        n += 1
    assert n == 10_000


@pytest.mark.parametrize("strategy", ["greedy", "top-p", "beam"])
def test_generation_after_any_ending(tiny_package: Path, strategy: str) -> None:
    """Finding 1 end to end: suggestions and Continue after multi-byte endings, every decoding path."""
    gen = TextGenerator(load_package(tiny_package), threads=1)
    config = SamplingConfig(strategy=strategy, max_new_tokens=6, seed=3, num_beams=2)
    for prompt in HARD_ENDINGS[:12]:
        results = gen.complete("The cat " + prompt, config)
        assert results and all("\ufffd" not in r.text for r in results), (prompt, results)
        "".join(gen.stream("The cat " + prompt, config))  # Continue's path
    for prompt in HARD_ENDINGS[:6]:
        assert gen.branches("The cat " + prompt, SamplingConfig(max_new_tokens=4), 3)


def test_invalid_unicode_prompt_gets_a_clear_message(tiny_text_package: Path) -> None:
    """Finding 8: lone surrogates (argv that is not UTF-8) ended in a traceback from the tokenizer."""
    gen = TextGenerator(load_package(tiny_text_package), threads=1)
    with pytest.raises(PromptError, match=r"not valid UTF-8 text: byte 0xE9 .* at character 3"):
        gen.complete("caf\udce9 ", SamplingConfig(max_new_tokens=3))
    with pytest.raises(PromptError, match=r"lone surrogate U\+D800"):
        list(gen.stream("a\ud800", SamplingConfig(max_new_tokens=3)))


def test_cli_refuses_a_prompt_that_is_not_utf8(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 8: `complete "$(printf 'caf\\xe9 ')"` and the same bytes on standard input ended in a
    traceback; now a message like the one documents get, exit code 2, and nothing on stdout."""
    import io
    import sys

    from aigc_studio.cli import main

    assert main(["complete", "caf\udce9 "]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not valid UTF-8" in err and "0xE9" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 ")))
    assert main(["complete", "-"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "standard input is not valid UTF-8" in err


def test_the_largest_seed_is_accepted(tiny_text_package: Path) -> None:
    """Finding 10: `--seed 9223372036854775807` was refused with a message that named it as the upper
    limit (the check compared it as a float, which rounds up to 2**63)."""
    from aigc_studio.core.sampling import FIELDS

    top = 2**63 - 1
    assert SamplingConfig(seed=top).validated().seed == top
    assert FIELDS["seed"].parse(str(top)) == top
    with pytest.raises(ValueError, match="seed=9223372036854775808 is too large"):
        SamplingConfig(seed=top + 1).validated()
    with pytest.raises(ValueError, match="seed=-1 is too small"):
        SamplingConfig(seed=-1).validated()
    gen = TextGenerator(load_package(tiny_text_package), threads=1)
    samples = gen.complete("The", SamplingConfig(strategy="top-p", seed=top, num_return=3, max_new_tokens=3))
    assert samples

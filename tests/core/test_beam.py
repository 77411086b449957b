"""Tests for aigc_studio.core.beam: beam search over a toy model with its own reordered "KV cache"."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest

from aigc_studio.core.beam import Hypothesis, beam_search, length_penalised
from aigc_studio.core.sampling import Sampler, SamplingConfig

EOS = 0


class ToyModel:
    """A tiny language model: ``next_probs(sequence) -> (V,)``, driven like the real runtime.

    ``step`` keeps one "cache" entry per live beam (the tokens it has seen), reorders it by ``parents``
    exactly as the runtime reorders its KV cache, and computes the next logits from the cache alone,
    so a search that passes the wrong parents gets the wrong logits.
    """

    def __init__(self, next_probs: Callable[[tuple[int, ...]], np.ndarray]) -> None:
        self.next_probs = next_probs
        self.cache: list[tuple[int, ...]] = [()]
        self.calls: list[tuple[list[int], list[int]]] = []

    def first_logits(self) -> np.ndarray:
        return self.logits(())

    def logits(self, sequence: tuple[int, ...]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.next_probs(sequence))

    def step(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        assert parents.dtype == np.int64 and tokens.dtype == np.int64
        assert parents.shape == tokens.shape
        assert all(0 <= p < len(self.cache) for p in parents.tolist())
        self.calls.append((parents.tolist(), tokens.tolist()))
        self.cache = [self.cache[p] + (t,) for p, t in zip(parents.tolist(), tokens.tolist())]
        return np.stack([self.logits(seq) for seq in self.cache])


def trap_model(sequence: tuple[int, ...]) -> np.ndarray:
    """V = 4 (0 = EOS, 1 = a, 2 = b, 3 = c). Greedy takes "a" (0.6) but every continuation of "a" is
    a third at best; "b" (0.4) is followed by "c" with 0.9: P(b c) = 0.36 > P(a x) = 0.2."""
    if not sequence:
        return np.array([0.0, 0.6, 0.4, 0.0])
    if sequence[-1] == 1:
        return np.array([0.01, 0.33, 0.33, 0.33])
    if sequence[-1] == 2:
        return np.array([0.02, 0.04, 0.04, 0.9])
    return np.array([0.7, 0.1, 0.1, 0.1])  # after "c": end


def greedy_decode(model: ToyModel, max_new_tokens: int) -> tuple[int, ...]:
    sampler = Sampler(SamplingConfig(strategy="greedy"))
    sequence: tuple[int, ...] = ()
    for _ in range(max_new_tokens):
        token = sampler.next_token(model.logits(sequence), list(sequence))
        if token == EOS:
            break
        sequence += (token,)
    return sequence


def brute_force(next_probs: Callable[[tuple[int, ...]], np.ndarray], vocab: int, max_new_tokens: int,
                length_penalty: float) -> list[Hypothesis]:
    """Every hypothesis exhaustive search can produce, best first."""
    found: list[Hypothesis] = []

    def grow(prefix: tuple[int, ...], logprob: float) -> None:
        probs = next_probs(prefix)
        for token in range(vocab):
            if probs[token] == 0:
                continue
            lp = logprob + math.log(probs[token])
            if token == EOS:
                found.append(Hypothesis(prefix, length_penalised(lp, len(prefix) + 1, length_penalty),
                                        lp, True))
            elif len(prefix) + 1 == max_new_tokens:
                seq = prefix + (token,)
                found.append(Hypothesis(seq, length_penalised(lp, len(seq), length_penalty), lp, False))
            else:
                grow(prefix + (token,), lp)

    grow((), 0.0)
    return sorted(found, key=lambda h: -h.score)


def random_markov(vocab: int, seed: int) -> Callable[[tuple[int, ...]], np.ndarray]:
    """A random model whose next distribution depends on the last token and the length."""
    rng = np.random.default_rng(seed)
    tables = rng.dirichlet(np.full(vocab, 0.5), size=(8, vocab + 1))

    def next_probs(sequence: tuple[int, ...]) -> np.ndarray:
        last = sequence[-1] if sequence else vocab
        return tables[len(sequence) % 8, last]

    return next_probs


def run(model: ToyModel, **kwargs: object) -> list[Hypothesis]:
    options: dict = {"num_beams": 2, "max_new_tokens": 2, "eos_id": None}
    options.update(kwargs)
    return beam_search(model.first_logits(), model.step, **options)


# -- finding better sequences -------------------------------------------------------------------


def test_beam_finds_the_sequence_greedy_misses() -> None:
    model = ToyModel(trap_model)
    assert greedy_decode(model, 2)[0] == 1  # greedy falls into the trap
    [best] = run(model, num_beams=2, max_new_tokens=2, length_penalty=0.0)
    assert best.tokens == (2, 3)
    assert math.isclose(best.logprob, math.log(0.36))
    assert math.isclose(best.score, math.log(0.36))
    assert best.finished is False  # cut at max_new_tokens, no end-of-sequence


def test_one_beam_is_greedy() -> None:
    # Without a length bonus a single beam follows greedy decoding, EOS included (a longer
    # continuation can only lose log-probability against the EOS greedy chose).
    for seed in range(5):
        probs = random_markov(6, seed)
        model = ToyModel(probs)
        [best] = beam_search(model.first_logits(), model.step, num_beams=1, max_new_tokens=6,
                             eos_id=EOS, length_penalty=0.0)
        assert best.tokens == greedy_decode(ToyModel(probs), 6)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0, -0.5])
@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_equals_exhaustive_search(length_penalty: float, seed: int) -> None:
    vocab, length = 4, 3
    probs = random_markov(vocab, seed)
    expected = brute_force(probs, vocab, length, length_penalty)[:5]
    model = ToyModel(probs)
    got = beam_search(model.first_logits(), model.step, num_beams=vocab ** length,
                      max_new_tokens=length, eos_id=EOS, length_penalty=length_penalty, num_return=5)
    assert [h.tokens for h in got] == [h.tokens for h in expected]
    for g, e in zip(got, expected):
        assert math.isclose(g.score, e.score, rel_tol=1e-9)
        assert math.isclose(g.logprob, e.logprob, rel_tol=1e-9)
        assert g.finished == e.finished


# -- the step protocol ----------------------------------------------------------------------------


def test_step_protocol_parents_and_cache() -> None:
    model = ToyModel(random_markov(5, 0))
    hyps = beam_search(model.first_logits(), model.step, num_beams=3, max_new_tokens=4,
                       eos_id=None, num_return=3)
    first_parents, first_tokens = model.calls[0]
    assert first_parents == [0] * len(first_tokens)  # all extend the prompt
    assert len(model.calls) == 3  # no model call after the last token
    # The model's own cache, reordered by parents, holds exactly the surviving prefixes.
    prefixes = {h.tokens[:3] for h in hyps}
    assert prefixes <= set(model.cache)


def test_n_best_is_sorted_distinct_and_bounded() -> None:
    for seed in range(10):
        model = ToyModel(random_markov(6, seed))
        hyps = beam_search(model.first_logits(), model.step, num_beams=5, max_new_tokens=5,
                           eos_id=EOS, num_return=4)
        assert 1 <= len(hyps) <= 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({h.tokens for h in hyps}) == len(hyps)
        for h in hyps:
            assert EOS not in h.tokens
            assert math.isclose(h.score, length_penalised(
                h.logprob, len(h.tokens) + (1 if h.finished else 0), 1.0))


# -- how hypotheses end -----------------------------------------------------------------------------


def test_eos_ends_a_hypothesis_without_being_included() -> None:
    model = ToyModel(trap_model)
    [best] = run(model, num_beams=2, max_new_tokens=6, eos_id=EOS, length_penalty=0.0)
    assert best.tokens == (2, 3)
    assert best.finished
    assert math.isclose(best.logprob, math.log(0.4 * 0.9 * 0.7))
    assert math.isclose(best.score, best.logprob)


def test_eos_counts_in_the_length_penalty() -> None:
    def probs(sequence: tuple[int, ...]) -> np.ndarray:
        return np.array([0.5, 0.5]) if len(sequence) < 2 else np.array([1.0, 0.0])
    model = ToyModel(probs)
    hyps = beam_search(model.first_logits(), model.step, num_beams=3, max_new_tokens=5,
                       eos_id=EOS, length_penalty=1.0, num_return=3)
    by_tokens = {h.tokens: h for h in hyps}
    assert set(by_tokens) == {(), (1,), (1, 1)}
    assert math.isclose(by_tokens[()].score, math.log(0.5) / 1)
    assert math.isclose(by_tokens[(1,)].score, 2 * math.log(0.5) / 2)
    assert math.isclose(by_tokens[(1, 1)].score, 2 * math.log(0.5) / 3)
    assert hyps[0].tokens == (1, 1)  # the longer one wins with the same log-probability


def test_is_finished_ends_a_hypothesis_with_its_token() -> None:
    model = ToyModel(trap_model)
    [best] = run(model, num_beams=2, max_new_tokens=6, eos_id=EOS, length_penalty=0.0,
                 is_finished=lambda tokens: tokens[-1] == 3)
    assert best.tokens == (2, 3) and best.finished
    assert math.isclose(best.logprob, math.log(0.36))


def test_max_new_tokens_cuts_unfinished_hypotheses() -> None:
    model = ToyModel(lambda seq: np.array([0.0, 0.5, 0.5]))
    hyps = run(model, num_beams=3, max_new_tokens=3, eos_id=EOS, num_return=3)
    assert len(hyps) == 3
    assert all(len(h.tokens) == 3 and not h.finished for h in hyps)
    assert len(model.calls) == 2


def test_should_stop_cancels_and_returns_the_best_so_far() -> None:
    model = ToyModel(random_markov(5, 1))
    stop_after = 2
    hyps = beam_search(model.first_logits(), model.step, num_beams=3, max_new_tokens=50,
                       eos_id=None, num_return=2,
                       should_stop=lambda: len(model.calls) >= stop_after)
    assert len(model.calls) == stop_after
    assert 1 <= len(hyps) <= 2
    assert all(len(h.tokens) == stop_after + 1 and not h.finished for h in hyps)


def test_should_stop_before_any_model_call() -> None:
    model = ToyModel(trap_model)
    [best] = run(model, num_beams=2, max_new_tokens=5, should_stop=lambda: True)
    assert model.calls == []
    assert best.tokens == (1,)


def test_stops_early_once_nothing_live_can_win() -> None:
    # EOS first is almost certain; nothing longer can beat it with length_penalty 0.
    model = ToyModel(lambda seq: np.array([0.99, 0.005, 0.005]))
    [best] = run(model, num_beams=2, max_new_tokens=100, eos_id=EOS, length_penalty=0.0)
    assert best.tokens == () and best.finished
    assert len(model.calls) <= 1


# -- constraints ----------------------------------------------------------------------------------


def test_allowed_first_constrains_only_the_first_token() -> None:
    model = ToyModel(trap_model)
    allowed = np.array([False, True, False, False])
    hyps = run(model, num_beams=3, max_new_tokens=3, eos_id=EOS, allowed_first=allowed,
               num_return=3)
    assert all(h.tokens[:1] == (1,) for h in hyps)
    assert any(len(set(h.tokens[1:]) - {1}) > 0 for h in hyps)  # later tokens are free
    with pytest.raises(ValueError, match="no token"):
        run(ToyModel(trap_model), allowed_first=np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="boolean mask"):
        run(ToyModel(trap_model), allowed_first=np.ones(3, dtype=bool))


def test_repetition_penalty_discourages_repeats() -> None:
    def loop(sequence: tuple[int, ...]) -> np.ndarray:
        return np.array([0.0, 0.6, 0.4])  # "1 1 1" is the most likely
    [plain] = run(ToyModel(loop), num_beams=2, max_new_tokens=3)
    assert plain.tokens == (1, 1, 1)
    [penalised] = run(ToyModel(loop), num_beams=2, max_new_tokens=3, repetition_penalty=3.0,
                      history=[1])
    assert penalised.tokens.count(1) < 3
    # With a window of 1 only the most recent token counts.
    [windowed] = run(ToyModel(loop), num_beams=2, max_new_tokens=3, repetition_penalty=3.0,
                     history=[2, 1], repetition_window=1)
    assert windowed.tokens[0] == 2


def test_bad_arguments_and_bad_logits() -> None:
    model = ToyModel(trap_model)
    with pytest.raises(ValueError, match="num_return"):
        run(model, num_beams=2, num_return=3)
    with pytest.raises(ValueError, match="num_beams"):
        run(model, num_beams=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        run(model, max_new_tokens=0)
    with pytest.raises(ValueError, match="NaN"):
        beam_search(np.array([0.0, np.nan]), model.step, num_beams=2, max_new_tokens=2, eos_id=None)
    with pytest.raises(ValueError, match="NaN"):
        beam_search(np.zeros(4), lambda p, t: np.full((len(t), 4), np.nan), num_beams=2,
                    max_new_tokens=3, eos_id=None)
    with pytest.raises(ValueError, match="shape"):
        beam_search(np.zeros(4), lambda p, t: np.zeros((1, 4)), num_beams=2, max_new_tokens=3,
                    eos_id=None)


def test_scales_to_a_real_vocabulary() -> None:
    vocab = 50_000
    rng = np.random.default_rng(0)
    table = rng.normal(size=(4, vocab)).astype(np.float32)

    def step(parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return table[tokens % 4]

    hyps = beam_search(table[0], step, num_beams=8, max_new_tokens=16, eos_id=None, num_return=8)
    assert len(hyps) == 8
    assert all(len(h.tokens) == 16 for h in hyps)


def test_itertools_sanity_of_brute_force() -> None:
    # The exhaustive reference itself: every 2-token sequence of a 3-token model without EOS.
    probs = lambda seq: np.array([0.0, 0.3, 0.7])  # noqa: E731
    hyps = brute_force(probs, 3, 2, 0.0)
    assert {h.tokens for h in hyps} == set(itertools.product([1, 2], repeat=2))
    assert math.isclose(sum(math.exp(h.logprob) for h in hyps), 1.0)

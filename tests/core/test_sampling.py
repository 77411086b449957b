"""Tests for aigc_studio.core.sampling: settings, logits processors and the seeded sampler."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest

from aigc_studio.core.sampling import (
    FIELDS,
    PRESETS,
    Sampler,
    SamplingConfig,
    apply_repetition_penalty,
    apply_temperature,
    log_softmax,
    min_p_filter,
    process_logits,
    softmax,
    top_k_filter,
    top_p_filter,
)


def kept(logits: np.ndarray) -> set[int]:
    return set(np.flatnonzero(np.isfinite(logits)).tolist())


def logits_of(probs: list[float]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


# -- settings -------------------------------------------------------------------------------------


def test_fields_declare_every_setting_once_with_the_dataclass_defaults() -> None:
    names = [f.name for f in dataclasses.fields(SamplingConfig)]
    assert list(FIELDS) == names
    config = SamplingConfig()
    for name, setting in FIELDS.items():
        assert setting.name == name
        assert getattr(config, name) == setting.default
        assert setting.title and setting.help
        assert setting.problem(setting.default) is None
        if setting.kind is str:
            assert setting.choices
        else:
            assert setting.minimum is not None and setting.maximum is not None


def test_defaults_and_presets_are_valid() -> None:
    assert SamplingConfig().validated() == SamplingConfig()
    assert list(PRESETS) == ["Fast", "Precise", "Balanced", "Creative"]
    assert PRESETS["Fast"] == SamplingConfig()  # the default settings show as a named preset
    for preset in PRESETS.values():
        assert preset.validated() is preset
    balanced = PRESETS["Balanced"]
    assert (balanced.top_p, balanced.temperature, balanced.repetition_penalty) == (0.9, 0.8, 1.1)
    assert PRESETS["Creative"].top_p == 0.95 and PRESETS["Creative"].temperature == 1.1
    assert PRESETS["Precise"].strategy in ("greedy", "beam")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"top_p": 1.5}, ["top_p", "1.5", "0.0", "1.0"]),
        ({"temperature": -0.1}, ["temperature", "-0.1", "0.0", "5.0"]),
        ({"temperature": math.nan}, ["temperature", "nan"]),
        ({"top_k": -1}, ["top_k", "-1", "0", "100000"]),
        ({"top_k": 2.5}, ["top_k", "2.5", "integer"]),
        ({"num_beams": True}, ["num_beams", "True"]),
        ({"strategy": "nucleus"}, ["strategy", "'nucleus'", "'greedy'", "'beam'"]),
        ({"stop": "paragraph"}, ["stop", "'paragraph'", "'sentence'"]),
        ({"max_new_tokens": 0}, ["max_new_tokens", "0", "1", "4096"]),
        ({"seed": -3}, ["seed", "-3", "None"]),
        ({"repetition_penalty": 0.5}, ["repetition_penalty", "0.5", "1.0"]),
        ({"strategy": "beam", "num_beams": 2, "num_return": 3}, ["num_return", "3", "num_beams=2"]),
    ],
)
def test_validated_names_the_field_the_value_and_the_range(changes: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        SamplingConfig(**changes).validated()
    for word in words:
        assert word in str(info.value)


def test_with_returns_a_changed_copy() -> None:
    base = SamplingConfig()
    changed = base.with_(temperature=0.7, seed=3)
    assert (changed.temperature, changed.seed) == (0.7, 3)
    assert base.temperature == 1.0 and base.seed is None
    with pytest.raises(TypeError):
        base.with_(tempreature=0.7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.temperature = 2.0  # type: ignore[misc]


def test_from_mapping_parses_strings_and_falls_back_on_bad_values(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = SamplingConfig.from_mapping(
            {"top_p": "0.8", "seed": "none", "top_k": "lots", "colour": "red", "temperature": 9.0})
    assert config.top_p == 0.8 and config.seed is None
    assert config.top_k == FIELDS["top_k"].default
    assert config.temperature == FIELDS["temperature"].default
    assert "top_k" in caplog.text and "colour" in caplog.text and "temperature" in caplog.text
    assert SamplingConfig.from_mapping(SamplingConfig(seed=5).to_dict()) == SamplingConfig(seed=5)
    with pytest.raises(ValueError, match="top_k"):
        SamplingConfig.from_mapping({"top_k": "lots"}, strict=True)
    with pytest.raises(ValueError, match="colour"):
        SamplingConfig.from_mapping({"colour": "red"}, strict=True)


def test_setting_parse_for_the_cli() -> None:
    assert FIELDS["top_k"].parse(" 12 ") == 12
    assert FIELDS["seed"].parse("random") is None
    assert FIELDS["strategy"].parse("beam") == "beam"
    with pytest.raises(ValueError, match=r"min_p=2.0 is too large"):
        FIELDS["min_p"].parse("2")


def test_strategy_semantics() -> None:
    assert SamplingConfig(strategy="top-k").effective_top_k == 40
    assert SamplingConfig(strategy="top-k", top_k=5).effective_top_k == 5
    assert SamplingConfig(strategy="top-p").effective_top_p == 0.9
    assert SamplingConfig(strategy="top-p", top_p=0.5).effective_top_p == 0.5
    assert SamplingConfig(strategy="sample").effective_top_k == 0
    assert SamplingConfig(strategy="sample").effective_top_p == 1.0
    assert SamplingConfig(strategy="greedy").is_greedy
    assert SamplingConfig(strategy="sample", temperature=0.0).is_greedy
    assert not SamplingConfig(strategy="sample").is_greedy
    assert SamplingConfig(strategy="beam").is_beam and not SamplingConfig(strategy="beam").is_greedy


# -- processors ---------------------------------------------------------------------------------


def test_log_softmax_is_stable_and_keeps_minus_inf() -> None:
    out = log_softmax(np.array([1000.0, 1001.0, -np.inf, 999.0]))
    assert np.isfinite(out[[0, 1, 3]]).all() and out[2] == -np.inf
    assert math.isclose(np.exp(out).sum(), 1.0)
    assert math.isclose(out[1] - out[0], 1.0)
    batch = log_softmax(np.array([[0.0, 0.0], [0.0, -np.inf]]))
    np.testing.assert_allclose(np.exp(batch), [[0.5, 0.5], [1.0, 0.0]])
    assert softmax(np.array([0.0, -np.inf]))[1] == 0.0
    with pytest.raises(ValueError):
        log_softmax(np.array([-np.inf, -np.inf]))
    with pytest.raises(ValueError, match="NaN"):
        log_softmax(np.array([0.0, np.nan]))


def test_processors_return_new_arrays() -> None:
    logits = np.array([3.0, 1.0, 2.0, 0.5], dtype=np.float32)
    before = logits.copy()
    for out in (top_k_filter(logits, 2), top_p_filter(logits, 0.5), min_p_filter(logits, 0.5),
                apply_temperature(logits, 0.5), apply_repetition_penalty(logits, [0, 1], 1.5)):
        assert out is not logits and out.dtype == np.float64
    np.testing.assert_array_equal(logits, before)


def test_top_k_keeps_exactly_the_k_largest() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        logits = rng.normal(size=50)
        k = int(rng.integers(1, 50))
        assert kept(top_k_filter(logits, k)) == set(np.argsort(-logits)[:k].tolist())
    logits = rng.normal(size=10)
    np.testing.assert_array_equal(top_k_filter(logits, 0), logits)
    np.testing.assert_array_equal(top_k_filter(logits, 10), logits)
    # Ties are broken by the lower token id, and never more than k survive.
    assert kept(top_k_filter(np.array([1.0, 2.0, 2.0, 2.0]), 2)) == {1, 2}


def test_top_p_hand_computed() -> None:
    logits = logits_of([0.5, 0.2, 0.2, 0.1])
    assert kept(top_p_filter(logits, 0.5)) == {0}          # 0.5 reaches 0.5 exactly
    assert kept(top_p_filter(logits, 0.6)) == {0, 1}       # 0.7 is the first sum >= 0.6
    assert kept(top_p_filter(logits, 0.75)) == {0, 1, 2}   # 0.9
    assert kept(top_p_filter(logits, 0.95)) == {0, 1, 2, 3}
    assert kept(top_p_filter(logits, 0.0)) == {0}          # always at least one
    assert kept(top_p_filter(logits, 1.0)) == {0, 1, 2, 3}
    # Kept logits are untouched.
    np.testing.assert_array_equal(top_p_filter(logits, 0.6)[:2], logits[:2])


def test_top_p_keeps_the_smallest_set_reaching_p_for_random_logits() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        logits = rng.normal(scale=2.0, size=30)
        p = float(rng.uniform(0.05, 0.99))
        probs = softmax(logits)
        keep = sorted(kept(top_p_filter(logits, p)))
        removed = sorted(set(range(30)) - set(keep))
        mass = probs[keep].sum()
        assert mass >= p - 1e-12
        # The smallest such set: dropping its least likely member falls below p ...
        assert mass - probs[keep].min() < p
        # ... and it is made of the most likely tokens.
        if removed:
            assert probs[keep].min() >= probs[removed].max()


def reference_top_p(logits: np.ndarray, p: float) -> set[int]:
    """The nucleus by a full stable sort: most likely first, ties by token id."""
    probs = softmax(logits)
    order = np.argsort(-logits, kind="stable")
    total = 0.0
    for count, token in enumerate(order.tolist(), start=1):
        total += probs[token]
        if total >= p - 1e-12:
            return set(order[:count].tolist())
    return set(order.tolist())


@pytest.mark.parametrize("scale", [0.3, 2.0, 8.0])
@pytest.mark.parametrize("quantise", [False, True])
def test_top_p_on_a_large_vocabulary_matches_a_full_sort(scale: float, quantise: bool) -> None:
    # Peaky logits take the partial-sort path; flat ones and rounded (tied) ones the full sort.
    rng = np.random.default_rng(int(scale * 10) + quantise)
    for _ in range(30):
        logits = rng.normal(scale=scale, size=3000)
        if quantise:
            logits = np.round(logits)
        p = float(rng.uniform(0.1, 0.99))
        assert kept(top_p_filter(logits, p)) == reference_top_p(logits, p)


def test_top_k_ties_on_a_large_vocabulary() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        logits = np.round(rng.normal(size=2000))
        k = int(rng.integers(1, 2000))
        assert kept(top_k_filter(logits, k)) == set(np.argsort(-logits, kind="stable")[:k].tolist())


def test_min_p_threshold() -> None:
    logits = logits_of([0.5, 0.3, 0.15, 0.05])
    assert kept(min_p_filter(logits, 0.2)) == {0, 1, 2}    # threshold 0.1
    assert kept(min_p_filter(logits, 0.5)) == {0, 1}       # threshold 0.25
    assert kept(min_p_filter(logits, 1.0)) == {0}
    assert kept(min_p_filter(logits, 0.0)) == {0, 1, 2, 3}
    rng = np.random.default_rng(2)
    for _ in range(100):
        logits = rng.normal(size=20)
        p = float(rng.uniform(0.01, 1.0))
        probs = softmax(logits)
        assert kept(min_p_filter(logits, p)) == set(np.flatnonzero(probs >= p * probs.max()).tolist())


def test_temperature() -> None:
    logits = np.array([2.0, -1.0, 0.5])
    np.testing.assert_allclose(apply_temperature(logits, 2.0), logits / 2)
    np.testing.assert_array_equal(apply_temperature(logits, 1.0), logits)
    zero = apply_temperature(logits, 0.0)
    assert kept(zero) == {0} and zero[0] == 2.0
    # A lower temperature sharpens the distribution.
    assert softmax(apply_temperature(logits, 0.5))[0] > softmax(logits)[0]
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(logits, -1.0)


def test_repetition_penalty_lowers_repeated_tokens_of_both_signs() -> None:
    logits = np.array([2.0, -1.0, 0.5, 1.0])
    out = apply_repetition_penalty(logits, [0, 1, 0, 0], penalty=2.0)
    np.testing.assert_array_equal(out, [1.0, -2.0, 0.5, 1.0])  # once per token, not per occurrence
    before, after = softmax(logits), softmax(out)
    assert after[0] < before[0] and after[1] < before[1]
    assert after[2] > before[2] and after[3] > before[3]
    np.testing.assert_array_equal(apply_repetition_penalty(logits, [0, 1], 1.0), logits)
    np.testing.assert_array_equal(apply_repetition_penalty(logits, [], 2.0), logits)


def test_repetition_window_counts_only_recent_tokens() -> None:
    logits = np.array([2.0, 2.0, 2.0, 2.0])
    out = apply_repetition_penalty(logits, [0, 1, 2, 3, 2], penalty=2.0, window=2)
    np.testing.assert_array_equal(out, [2.0, 2.0, 1.0, 1.0])
    out = apply_repetition_penalty(logits, np.array([0, 1, 2, 3, 2]), penalty=2.0, window=0)
    np.testing.assert_array_equal(out, [1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        apply_repetition_penalty(logits, [7], penalty=2.0)


def test_process_logits_applies_the_standard_order() -> None:
    logits = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
    allowed = np.array([False, True, True, True, True])
    config = SamplingConfig(strategy="sample", temperature=0.5, top_k=2, repetition_penalty=2.0)
    out = process_logits(logits, config, history=[1], allowed=allowed)
    # Token 0 is masked; token 1 is penalised to 1.5; temperature doubles; top-2 keeps 2 and 1.
    assert kept(out) == {1, 2}
    np.testing.assert_allclose(out[[1, 2]], [3.0, 4.0])
    # Greedy and beam skip the sampling filters: only mask and penalty.
    greedy = process_logits(logits, config.with_(strategy="greedy"), history=[1], allowed=allowed)
    np.testing.assert_allclose(greedy, [-np.inf, 1.5, 2.0, 1.0, 0.0])


def test_process_logits_rejects_bad_input() -> None:
    config = SamplingConfig(strategy="sample")
    with pytest.raises(ValueError, match="NaN"):
        process_logits(np.array([0.0, np.nan]), config, [])
    with pytest.raises(ValueError, match="permits no token"):
        process_logits(np.zeros(3), config, [], allowed=np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="boolean mask"):
        process_logits(np.zeros(3), config, [], allowed=np.ones(3, dtype=int))
    with pytest.raises(ValueError, match="boolean mask"):
        process_logits(np.zeros(3), config, [], allowed=np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="1-D"):
        process_logits(np.zeros((2, 3)), config, [])
    with pytest.raises(ValueError, match="-inf"):
        process_logits(np.array([0.0, -np.inf]), config, [], allowed=np.array([False, True]))


# -- sampler ------------------------------------------------------------------------------------


def draw(config: SamplingConfig, logits: np.ndarray, n: int = 200, **kwargs: object) -> list[int]:
    sampler = Sampler(config)
    return [sampler.next_token(logits, [], **kwargs) for _ in range(n)]  # type: ignore[arg-type]


def test_greedy_and_temperature_zero_are_deterministic() -> None:
    logits = np.random.default_rng(3).normal(size=100)
    best = int(np.argmax(logits))
    assert set(draw(SamplingConfig(strategy="greedy"), logits, 20)) == {best}
    for seed in (None, 1, 2):
        config = SamplingConfig(strategy="sample", temperature=0.0, seed=seed)
        assert set(draw(config, logits, 20)) == {best}


def test_greedy_applies_the_repetition_penalty_first() -> None:
    sampler = Sampler(SamplingConfig(strategy="greedy", repetition_penalty=3.0))
    assert sampler.next_token(np.array([3.0, 2.0, 0.0]), history=[]) == 0
    assert sampler.next_token(np.array([3.0, 2.0, 0.0]), history=[0]) == 1


def test_same_seed_same_tokens_and_different_seeds_differ() -> None:
    logits = np.zeros(1000)
    config = SamplingConfig(strategy="sample", seed=1234)
    first = draw(config, logits, 50)
    assert draw(config, logits, 50) == first
    assert draw(config.with_(seed=1235), logits, 50) != first
    assert len(set(first)) > 10


def test_sampling_follows_the_distribution() -> None:
    probs = np.array([0.6, 0.3, 0.1])
    tokens = draw(SamplingConfig(strategy="sample", seed=7), np.log(probs), 5000)
    counts = np.bincount(tokens, minlength=3) / 5000
    np.testing.assert_allclose(counts, probs, atol=0.03)


def test_top_k_sampling_never_leaves_the_top_k() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=200)
    top5 = set(np.argsort(-logits)[:5].tolist())
    tokens = draw(SamplingConfig(strategy="top-k", top_k=5, temperature=3.0, seed=0), logits, 2000)
    assert set(tokens) == top5  # all reachable at a high temperature, nothing else
    top40 = set(np.argsort(-logits)[:40].tolist())
    assert set(draw(SamplingConfig(strategy="top-k", temperature=5.0, seed=1), logits, 2000)) <= top40


def test_top_p_sampling_stays_in_the_nucleus() -> None:
    logits = logits_of([0.5, 0.2, 0.2, 0.05, 0.05])
    assert set(draw(SamplingConfig(strategy="top-p", top_p=0.6, seed=0), logits, 500)) == {0, 1}
    # The top-p strategy turns 1.0 into 0.9: {0, 1, 2} is the nucleus.
    assert set(draw(SamplingConfig(strategy="top-p", seed=0), logits, 500)) == {0, 1, 2}


def test_sampling_respects_the_allowed_mask() -> None:
    logits = np.array([5.0, 4.0, 0.0, 0.1, -1.0])
    allowed = np.array([False, False, True, True, True])
    tokens = draw(SamplingConfig(strategy="sample", seed=0), logits, 500, allowed=allowed)
    assert set(tokens) == {2, 3, 4}
    assert Sampler(SamplingConfig()).next_token(logits, [], allowed=allowed) == 3


def test_sampler_rejects_nan_and_bad_configs() -> None:
    sampler = Sampler(SamplingConfig(strategy="sample", seed=0))
    with pytest.raises(ValueError, match="NaN"):
        sampler.next_token(np.array([0.0, np.nan, 1.0]), [])
    with pytest.raises(ValueError, match="top_p"):
        Sampler(SamplingConfig(top_p=2.0))


def test_probabilities_match_what_is_drawn() -> None:
    sampler = Sampler(SamplingConfig(strategy="top-k", top_k=2, seed=0))
    probs = sampler.probabilities(logits_of([0.5, 0.3, 0.2]), [])
    np.testing.assert_allclose(probs, [0.625, 0.375, 0.0])
    greedy = Sampler(SamplingConfig()).probabilities(np.array([0.0, 2.0, 1.0]))
    np.testing.assert_array_equal(greedy, [0.0, 1.0, 0.0])


def test_describe_says_what_the_strategy_does() -> None:
    assert PRESETS["Balanced"].describe() == "top-p 0.9, temperature 0.8, repetition penalty 1.1"
    assert PRESETS["Precise"].describe() == "beam search, 4 beams"
    assert SamplingConfig().describe() == "greedy"
    assert SamplingConfig(strategy="top-k", temperature=0.7).describe() == "top-k 40, temperature 0.7"
    assert SamplingConfig(strategy="sample", temperature=0.0).describe() == "greedy"  # arg-max at 0

"""TextGenerator on a tiny trained package: parity, cache reuse, decoding, mid-word completion,
cancellation and context handling."""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pytest

from aigc_studio.core.sampling import SamplingConfig
from aigc_studio.runtime.package import load_package
from aigc_studio.runtime.text_generator import TextGenerator

GREEDY = SamplingConfig(strategy="greedy", max_new_tokens=12)


@pytest.fixture(scope="module")
def gen(tiny_text_package: Path) -> TextGenerator:
    return TextGenerator(load_package(tiny_text_package), device="cpu", threads=1, variant="fp32")


def test_reports_provider_and_variant(gen: TextGenerator) -> None:
    assert gen.provider == "CPUExecutionProvider"
    assert gen.variant == "fp32"
    assert gen.context_length == 64


def test_reference_file_parity_without_torch(gen: TextGenerator, tiny_text_package: Path) -> None:
    ref = np.load(tiny_text_package / "reference.npz", allow_pickle=False)
    logits, _ = gen.forward(ref["input_ids"], 0, gen.empty_cache())
    n = ref["logits"].shape[1]  # the last positions' logits (all of them for a small vocabulary)
    assert np.abs(logits[:, -n:] - ref["logits"]).max() <= float(ref["tolerance"][0])
    assert (logits.argmax(-1) == ref["top1"]).all()
    gen.reset_cache()
    tokens = [t for t, _ in gen.generate_tokens(ref["input_ids"][0].tolist(),
                                                 GREEDY.with_(max_new_tokens=len(ref["greedy"])))]
    assert tokens == ref["greedy"].tolist()


def test_cached_steps_equal_one_full_pass(gen: TextGenerator) -> None:
    ids = np.asarray([[5, 9, 14, 30, 7, 22, 41, 3, 17, 60]])
    full, _ = gen.forward(ids, 0, gen.empty_cache())
    kv = gen.empty_cache()
    steps = []
    _, kv = gen.forward(ids[:, :4], 0, kv)
    for t in range(4, ids.shape[1]):
        step, kv = gen.forward(ids[:, t:t + 1], t, kv)
        steps.append(step[0, -1])
    np.testing.assert_allclose(np.stack(steps), full[0, 4:], atol=1e-4)


def test_kv_buffer_grows_across_buckets(gen: TextGenerator, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc_studio.runtime.kv_cache as tg

    assert gen.kv_layout == "shared"  # what export_lm writes (the fused graph); "buffer" grows alike
    monkeypatch.setattr(tg, "KV_BUCKET", 8)
    ids = np.random.default_rng(0).integers(4, 300, size=(1, 30))
    full, _ = gen.forward(ids, 0, gen.empty_cache())
    _, kv = gen.forward(ids[:, :5], 0, gen.empty_cache())
    assert kv.capacity == 8 and kv.length == 5
    steps = []
    for t in range(5, 30):
        step, kv = gen.forward(ids[:, t:t + 1], t, kv)
        steps.append(step[0, -1])
    assert kv.capacity == 32 and kv.length == 30
    np.testing.assert_allclose(np.stack(steps), full[0, 5:], atol=1e-4)
    with pytest.raises(ValueError):
        gen.forward(ids[:, :1], 3, kv)  # a cache of 30 tokens cannot be continued at position 3


def test_batch_rows_are_independent(gen: TextGenerator) -> None:
    ids = np.asarray([[5, 9, 14, 30], [8, 8, 2, 40]])
    both, _ = gen.forward(ids, 0, gen.empty_cache(2))
    one, _ = gen.forward(ids[1:], 0, gen.empty_cache(1))
    np.testing.assert_allclose(both[1], one[0], atol=1e-5)


def test_greedy_is_deterministic_and_learned(gen: TextGenerator) -> None:
    a = "".join(gen.stream("The quick brown", GREEDY))
    gen.reset_cache()
    b = "".join(gen.stream("The quick brown", GREEDY))
    assert a == b
    assert a.startswith(" fox")


def test_mid_word_prompt_continues_the_word(gen: TextGenerator) -> None:
    text = "".join(gen.stream("The quick bro", GREEDY))
    assert text.startswith("wn fox"), text
    (best, *_) = gen.complete("A stitch in ti", SamplingConfig(strategy="beam", num_beams=4, max_new_tokens=6))
    assert best.text.startswith("me"), best.text


def test_prompt_ending_in_space_gets_a_new_word(gen: TextGenerator) -> None:
    text = "".join(gen.stream("The quick brown ", GREEDY))
    assert text.startswith("fox"), text


def test_same_seed_same_sample_and_seeds_differ(gen: TextGenerator) -> None:
    cfg = SamplingConfig(strategy="sample", temperature=1.5, max_new_tokens=16, seed=7)
    runs = {"".join(gen.stream("She walked", cfg)) for _ in range(2)}
    assert len(runs) == 1
    others = {"".join(gen.stream("She walked", cfg.with_(seed=s))) for s in range(8)}
    assert len(others) > 1


def test_sampled_text_is_valid_utf8(gen: TextGenerator) -> None:
    cfg = SamplingConfig(strategy="sample", temperature=5.0, max_new_tokens=40)
    for seed in range(5):
        tokens: list[int] = []
        [sample] = gen.complete("x", cfg.with_(seed=seed))
        text, tokens = sample.text, sample.token_ids
        raw = b"".join(gen.tokenizer.token_bytes(t) for t in tokens)
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)  # strict; the end may be unfinished
        assert "\ufffd" not in text


def test_kv_cache_prefix_is_reused_and_results_unchanged(gen: TextGenerator, tiny_text_package: Path) -> None:
    prompt = "She walked to the window and looked at the garden. The quick"
    gen.reset_cache()
    first = "".join(gen.stream(prompt, GREEDY))
    assert gen.last_stats.reused_tokens == 0
    second = "".join(gen.stream(prompt + " brown", GREEDY))
    assert gen.last_stats.reused_tokens >= gen.last_stats.prompt_tokens - 3
    fresh = TextGenerator(load_package(tiny_text_package), device="cpu", variant="fp32")
    assert "".join(fresh.stream(prompt + " brown", GREEDY)) == second
    assert first


def test_a_keystroke_inside_a_word_walks_the_last_path_without_model_runs(
        gen: TextGenerator, tiny_text_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real_run = gen.step.forward

    def counted(ids: np.ndarray, *args: object, **kwargs: object) -> object:
        runs.append(ids.shape[1])
        return real_run(ids, *args, **kwargs)

    monkeypatch.setattr(gen.step, "forward", counted)
    fresh = TextGenerator(load_package(tiny_text_package), device="cpu", variant="fp32")
    gen.reset_cache()
    first = "".join(gen.stream("A stitch in time sa", GREEDY))
    first_runs, first_tokens = len(runs), gen.last_stats.new_tokens
    assert first.startswith("ves nine")
    runs.clear()
    # One more letter of the same word: the backed-off prompt is the last call's, and the word's
    # tokens are those the last call generated, so their logits come from the cache.
    second = "".join(gen.stream("A stitch in time sav", GREEDY))
    assert second == "".join(fresh.stream("A stitch in time sav", GREEDY)) == first[1:]
    assert gen.last_stats.reused_tokens == gen.last_stats.prompt_tokens
    assert gen.last_stats.new_tokens == first_tokens
    assert runs == []  # every token's logits were known: no prompt run, no step
    assert first_runs == first_tokens  # the prompt's run, then one per token but the last
    # A letter off the path: the prompt's logits still come from the cache, then runs resume where
    # the paths part (at the first token here: one step per token but the last).
    runs.clear()
    third = "".join(gen.stream("A stitch in time sew", GREEDY))
    assert third == "".join(fresh.stream("A stitch in time sew", GREEDY)) != second
    assert runs == [1] * (gen.last_stats.new_tokens - 1)


def test_long_prompt_uses_the_last_tokens(gen: TextGenerator) -> None:
    prompt = "A stitch in time saves nine. " * 60 + "The quick brown"
    assert len(gen.tokenizer.encode(prompt)) > 3 * gen.context_length
    text = "".join(gen.stream(prompt, GREEDY))
    assert gen.last_stats.prompt_tokens <= gen.context_length - GREEDY.max_new_tokens
    assert text.startswith(" fox")


def test_generation_stops_at_the_context_end(gen: TextGenerator) -> None:
    out = list(gen.generate_tokens([5] * 60, SamplingConfig(max_new_tokens=50)))
    assert len(out) == gen.context_length - 60


def test_cancel_stops_within_one_token(gen: TextGenerator) -> None:
    seen: list[str] = []
    cfg = SamplingConfig(strategy="sample", max_new_tokens=30, seed=1)
    at_cancel: list[int] = []

    def cancel() -> bool:
        if seen and not at_cancel:
            at_cancel.append(gen.last_stats.new_tokens)
        return bool(seen)

    for piece in gen.stream("The quick", cfg, cancel):
        seen.append(piece)
    assert len(seen) == 1
    assert gen.last_stats.new_tokens == at_cancel[0]  # no model step after the cancel


def test_terminate_from_outside_cancels(gen: TextGenerator) -> None:
    gen.terminate()  # a stale flag must not affect the next request
    assert "".join(gen.stream("The quick brown", GREEDY)).startswith(" fox")
    pieces = []
    for piece in gen.stream("The quick brown", GREEDY.with_(max_new_tokens=30)):
        pieces.append(piece)
        gen.terminate()
    assert len(pieces) == 1


def test_stop_at_sentence_and_newline(gen: TextGenerator) -> None:
    text = "".join(gen.stream("A stitch in time", GREEDY.with_(max_new_tokens=30, stop="sentence")))
    assert text == " saves nine.", text
    text = "".join(gen.stream("A stitch in time saves nine.", GREEDY.with_(max_new_tokens=30, stop="newline")))
    assert "\n" not in text


def test_beam_n_best_is_sorted_and_distinct(gen: TextGenerator) -> None:
    cfg = SamplingConfig(strategy="beam", num_beams=5, num_return=4, max_new_tokens=6)
    results = gen.complete("She walked to the", cfg)
    assert 2 <= len(results) <= 4
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len({r.text for r in results}) == len(results)
    assert results[0].text.startswith(" window")


def test_several_samples_as_alternatives(gen: TextGenerator) -> None:
    cfg = SamplingConfig(strategy="sample", temperature=2.0, num_return=4, max_new_tokens=6, seed=3)
    results = gen.complete("The", cfg)
    assert 1 < len(results) <= 4
    assert len({r.text for r in results}) == len(results)


def test_perplexity_score_matches_manual_sum(gen: TextGenerator) -> None:
    ids = gen.tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 6)
    total = gen.score(ids)
    logits, _ = gen.forward(np.asarray([ids[:64]]), 0, gen.empty_cache())
    lg = logits[0].astype(np.float64)
    lse = np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1)) + lg.max(-1)
    manual = sum(lse[t - 1] - lg[t - 1, ids[t]] for t in range(1, 64))
    if len(ids) <= 64:
        assert total == pytest.approx(manual, rel=1e-6)
    else:
        assert total > manual
    assert np.exp(total / (len(ids) - 1)) < 10  # the tiny model learned these phrases


def test_int8_variant_agrees_with_fp32(tiny_text_package: Path, gen: TextGenerator) -> None:
    q = TextGenerator(load_package(tiny_text_package), device="cpu", variant="int8")
    prompt = "The quick brown"
    assert "".join(q.stream(prompt, GREEDY))[:4] == "".join(gen.stream(prompt, GREEDY))[:4]


PRIME_TEXT = "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the"


def test_prefill_in_runs_equals_one_run(gen: TextGenerator, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc_studio.runtime.prefix_cache as tg

    ids = gen.tokenizer.encode(PRIME_TEXT)
    gen.reset_cache()
    whole, _ = gen.prefill(ids)
    monkeypatch.setattr(tg, "PREFILL_CHUNK", 3)
    gen.reset_cache()
    runs, kv = gen.prefill(ids)
    assert kv.length == len(ids) > 3
    np.testing.assert_allclose(runs, whole, atol=1e-4)


def test_prime_makes_the_next_keystroke_cheap(gen: TextGenerator) -> None:
    gen.reset_cache()
    cold = "".join(gen.stream(PRIME_TEXT + " l", GREEDY))
    gen.reset_cache()
    primed = gen.prime(PRIME_TEXT, GREEDY)
    assert primed == gen.last_stats.prompt_tokens > 10
    assert gen.prime(PRIME_TEXT, GREEDY) == primed  # already there: nothing to do
    assert gen.last_stats.reused_tokens == primed
    warm = "".join(gen.stream(PRIME_TEXT + " l", GREEDY))
    assert warm == cold
    # Everything before the word being typed came from the cache, with its logits: no prompt run,
    # whether the keystroke starts a new word (above) or continues the last one.
    assert gen.last_stats.reused_tokens == gen.last_stats.prompt_tokens > primed
    gen.prime(PRIME_TEXT, GREEDY)
    continued = "".join(gen.stream(PRIME_TEXT + "y", GREEDY))
    assert gen.last_stats.reused_tokens == gen.last_stats.prompt_tokens <= primed
    fresh = TextGenerator(gen.package, device="cpu", threads=1, variant="fp32")
    assert continued == "".join(fresh.stream(PRIME_TEXT + "y", GREEDY))


def test_cancelled_prime_keeps_its_finished_runs(gen: TextGenerator, monkeypatch: pytest.MonkeyPatch) -> None:
    import aigc_studio.runtime.prefix_cache as tg

    monkeypatch.setattr(tg, "PREFILL_CHUNK", 4)
    gen.reset_cache()
    checks = []

    def cancel() -> bool:  # checked before the first run and between runs: stop after two runs
        checks.append(1)
        return len(checks) > 2

    done = gen.prime(PRIME_TEXT, GREEDY, cancel)
    assert done == 8 == len(gen.cached_tokens)
    ids, _, _ = gen.split_prompt(PRIME_TEXT, GREEDY.max_new_tokens)  # the window stream() reads
    assert gen.cached_tokens == ids[:8]
    "".join(gen.stream(PRIME_TEXT, GREEDY))
    assert gen.last_stats.reused_tokens == 8  # the next call starts where the priming stopped


def test_threads_spin_unless_told_not_to(gen: TextGenerator, tiny_text_package: Path) -> None:
    key = "session.intra_op.allow_spinning"
    assert gen.session_info.session.get_session_options().get_session_config_entry(key) == "1"
    calm = TextGenerator(load_package(tiny_text_package), device="cpu", threads=2, variant="fp32", spin=False)
    assert calm.session_info.session.get_session_options().get_session_config_entry(key) == "0"
    assert "".join(calm.stream("The quick brown", GREEDY)) == "".join(gen.stream("The quick brown", GREEDY))


def test_branches_start_differently_and_the_first_is_greedy(gen: TextGenerator, tiny_text_package: Path) -> None:
    cfg = GREEDY.with_(max_new_tokens=8)
    greedy = "".join(gen.stream("The quick brown ", cfg))
    alternatives = gen.branches("The quick brown ", cfg, 3)
    assert len(alternatives) == 3
    assert alternatives[0].text == greedy
    assert len({a.text for a in alternatives}) == 3
    firsts = [a.token_ids[0] for a in alternatives]
    assert len(set(firsts)) == 3  # different first tokens, the most likely first
    ids, rest, _ = gen.split_prompt("The quick brown ", cfg.max_new_tokens)
    logits, _ = gen.prefill(ids)
    assert firsts == sorted(firsts, key=lambda t: -logits[t])
    # Each row is that first token's greedy continuation.
    fresh = TextGenerator(load_package(tiny_text_package), device="cpu", threads=1, variant="fp32")
    for alt in alternatives:
        forced = [t for t, _ in fresh.generate_tokens(ids + [alt.token_ids[0]],
                                                      cfg.with_(max_new_tokens=len(alt.token_ids) - 1))]
        assert list(alt.token_ids[1:]) == forced


def test_branches_retype_a_word_being_typed_and_stop_when_done(gen: TextGenerator) -> None:
    alternatives = gen.branches("A stitch in time sa", GREEDY.with_(max_new_tokens=10), 4,
                                done=lambda text: len(text.split()) >= 2)
    assert alternatives
    for alt in alternatives:
        raw = b"".join(gen.tokenizer.token_bytes(t) for t in alt.token_ids)
        assert raw.startswith(b" sa")  # every row re-types what was typed, which the text leaves out
        assert not alt.text.startswith(" ")
        assert len(alt.text.split()) <= 2
    assert alternatives[0].text == "".join(gen.stream("A stitch in time sa", GREEDY.with_(
        max_new_tokens=10)))[:len(alternatives[0].text)]
    assert gen.branches("A stitch", GREEDY, 3, cancel=lambda: True) == []

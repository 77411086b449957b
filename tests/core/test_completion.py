"""The completion policy: where suggestions appear, what the model sees and where suggestions end."""

from __future__ import annotations

import random

import pytest

from aigc_studio.core.completion import (
    CompletionPolicy,
    Site,
    context_start,
    context_window,
    count_words,
    is_settled,
    next_word,
    simulate_typing,
    suggestion_site,
    top_up,
    trim_context_start,
    trim_suggestion,
    type_through,
    wants_top_up,
)


@pytest.mark.parametrize(("before", "after", "site"), [
    ("", "", Site.NONE),
    ("   \n", "", Site.NONE),
    ("It was a ", "", Site.NEXT),
    ("It was a dark", "", Site.WORD),
    ("It was a dar", "", Site.WORD),
    ("The end.", "", Site.NEXT),
    ("The end.\n", "", Site.NEXT),
    ("It was a dar", "k night", Site.NONE),         # inside a word with letters after the cursor
    ("It was a ", "night", Site.NONE),              # the paragraph goes on after the cursor
    ("He said ", "\u201d", Site.NONE),              # punctuation follows on the line
    ("It was a ", "   \nNext paragraph", Site.NEXT),  # only spaces follow on this line
    ("It was a ", "\nNext paragraph", Site.NEXT),
])
def test_suggestion_site(before: str, after: str, site: Site) -> None:
    assert suggestion_site(before, after) is site


def test_context_start_moves_in_blocks() -> None:
    policy = CompletionPolicy(context_chars=1000, context_block=100)
    assert context_start(0, policy) == 0
    assert context_start(1000, policy) == 0
    assert context_start(1001, policy) == 100
    starts = {context_start(cursor, policy) for cursor in range(1001, 1101)}
    assert starts == {100}  # a hundred keystrokes with the same prompt start
    for cursor in range(0, 5000, 7):
        start = context_start(cursor, policy)
        assert start % 100 == 0
        assert policy.context_chars - policy.context_block < cursor - start <= policy.context_chars \
            or start == 0


def test_context_window_is_stable_while_typing() -> None:
    policy = CompletionPolicy(context_chars=300, context_block=64)
    words = [f"word{i}" for i in range(200)]
    document = " ".join(words)
    windows = [context_window(document[:cursor], policy) for cursor in range(700, 760)]
    # Each window extends the previous one while the start stays in the same block.
    same_block = [w for c, w in zip(range(700, 760), windows, strict=True)
                  if context_start(c, policy) == context_start(700, policy)]
    for shorter, longer in zip(same_block, same_block[1:], strict=False):
        assert longer.startswith(shorter)
    for window in windows:
        assert len(window) <= 300
        assert window.startswith("word")  # starts with a whole word


def test_trim_context_start() -> None:
    assert trim_context_start("ord two three", 0) == "ord two three"
    assert trim_context_start("ord two three", 64) == "two three"
    assert trim_context_start("x" * 100, 64) == "x" * 100


@pytest.mark.parametrize(("raw", "before", "words", "expected"), [
    (" cat sat on the mat and then", "The", 4, " cat sat"),           # no hanging "on the"
    (" cat sat quietly near the fire", "The", 4, " cat sat quietly near"),
    (" cat sat. Then it", "The", 4, " cat sat."),                      # sentence end
    (" man, who was tall and thin", "said the", 4, " man, who was tall"),  # clause too early
    (" old man, who was tall", "said the", 4, " old man,"),            # clause boundary
    ("ful day in the", "It was a wonder", 4, "ful day"),               # completes the word
    (" a lovely aftern", "It was", 8, " a lovely"),                    # dangling half word dropped
    ("cat sat", "The ", 4, "cat"),                                     # "sat" may be cut off
    (" cat sat", "The ", 4, "cat"),                                    # no double space
    (" he said.\nNext", "Yes,", 4, " he said."),
    ("\n\nChapter", "The end.", 4, ""),                                # no new paragraph
    (" tall\nand", "He was", 4, " tall"),                              # stops at the line break
    (" ...", "Well", 4, ""),                                           # punctuation saves nothing
    ("", "Well", 4, ""),
])
def test_trim_suggestion(raw: str, before: str, words: int, expected: str) -> None:
    assert trim_suggestion(raw, before, words) == expected


def test_trim_suggestion_finished_keeps_last_word() -> None:
    assert trim_suggestion(" a lovely afternoon", "It was", 8) == " a lovely"
    assert trim_suggestion(" a lovely afternoon", "It was", 8, finished=True) == " a lovely afternoon"


def test_trim_never_leaves_half_words() -> None:
    rng = random.Random(3)
    text = ("It is a truth universally acknowledged, that a single man in possession of a good "
            "fortune, must be in want of a wife. However little known the feelings or views of such "
            "a man may be on his first entering a neighbourhood")
    vocabulary = set(text.replace(",", "").replace(".", "").split())
    for _ in range(300):
        start = rng.randrange(len(text) - 20)
        end = rng.randrange(start + 1, len(text))
        before, raw = text[:start], text[start:end]
        cut = trim_suggestion(raw, before, 4)
        if not cut:
            continue
        assert raw.lstrip(" ").startswith(cut.lstrip(" "))
        last = cut.split()[-1].strip(",.;:")
        head = before.split()[-1] if before and not before[-1].isspace() and cut[0] != " " else ""
        if len(cut.split()) > 1 or not head:
            assert last in vocabulary, (before, raw, cut)
        assert len(cut.split()) <= 4


def test_is_settled() -> None:
    assert not is_settled(" cat", "The")
    assert not is_settled(" cat sat on", "The")
    assert is_settled(" cat sat on the mat", "The")  # five words seen: the first four are final
    assert is_settled(" cat sat.", "The")
    assert is_settled(" cat\n", "The")


def test_type_through_and_next_word() -> None:
    assert type_through(" cat sat", " ") == "cat sat"
    assert type_through(" cat sat", " ca") == "t sat"
    assert type_through(" cat sat", " cat sat") == ""
    assert type_through(" cat sat", "x") is None
    assert type_through(" cat sat", "") is None
    assert next_word(" cat sat") == " cat"
    assert next_word("ful day") == "ful"
    assert next_word(", she said") == ","
    assert next_word("") == ""


def test_count_words_matches_split() -> None:
    rng = random.Random(1)
    alphabet = "ab \n\t\u00a0\u2029.,\u3000x\u00e9\U0001f600"
    for size in (0, 5, 1000, 250_000):
        text = "".join(rng.choice(alphabet) for _ in range(size))
        assert count_words(text) == len(text.split())


def test_simulate_typing_with_a_perfect_model() -> None:
    text = "The cat sat on the mat. The dog lay by the door."

    def oracle(context: str) -> list[str]:
        return [text[len(context):]]

    report = simulate_typing(text, oracle)
    assert report.chars == len(text)
    assert report.accepted > 0
    assert report.keystrokes < len(text) / 2
    assert report.keystrokes_saved == report.chars - report.keystrokes
    assert report.accepted_chars + (report.keystrokes - report.accepted) >= len(text) - report.accepted
    assert 0 < report.saved_fraction < 1


def test_simulate_typing_with_a_useless_model() -> None:
    text = "The cat sat on the mat."
    report = simulate_typing(text, lambda context: [" zebra crossing"])
    assert report.keystrokes == len(text)
    assert report.accepted == 0 and report.extended == 0
    assert report.shown + report.top_ups == report.requests and report.shown > 0


def test_simulate_typing_uses_alternatives_and_words() -> None:
    text = "The cat sat on a chair"

    def model(context: str) -> list[str]:
        if context == "The":
            return [" dog ran", " cat sat on a sofa by the fire"]  # the second one, 4 words
        return []

    report = simulate_typing(text, model, CompletionPolicy(max_words=5))
    # Alt+] once, then Ctrl+Right four times accepts " cat sat on a" (13 characters for 5 keys).
    assert report.accepted == 1
    assert report.accepted_chars == len(" cat sat on a")
    assert report.keystrokes == len(text) - len(" cat sat on a") + 5


def test_top_up_lengthens_only_what_agrees_with_the_visible_rest() -> None:
    assert wants_top_up(" looked") and wants_top_up("ed") and not wants_top_up(" looked at")
    assert not wants_top_up("") and not wants_top_up("  ")
    assert top_up(" looked", [" looked", " stared out", " looked at the lady,"]) == " looked at the lady,"
    assert top_up(" looked", [" looked ", " gazed"]) is None  # nothing new, or a different word
    assert top_up("ed", ["ed at him"]) == "ed at him"


def test_simulate_typing_tops_up_a_suggestion_taken_down_to_its_last_word() -> None:
    """As in the editor: Ctrl+Right takes " zebra" of " zebra crossing", leaving " crossing"; the model,
    asked again there, answers " crossing the road", which lengthens the ghost text. (The simulated
    writer takes whatever matches at once, so a top-up never saves it keys; a writer who types on does.)"""
    text = "The cat zebras"
    asked = []

    def model(context: str) -> list[str]:
        asked.append(context)
        return {"The cat": [" zebra crossing the road"],
                "The cat zebra": [" crossing the road slowly"]}.get(context, [])

    report = simulate_typing(text, model)
    assert report.accepted == 1 and report.accepted_chars == len(" zebra")
    assert report.extended == 1 and report.top_ups == 1 and asked.count("The cat zebra") == 1
    asked.clear()
    without = simulate_typing(text, model, top_ups=False)
    assert without.extended == without.top_ups == 0 and "The cat zebra" not in asked
    assert without.keystrokes == report.keystrokes

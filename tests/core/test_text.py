"""Tests for aigc_studio.core.text.stop_index."""

from __future__ import annotations

import pytest

from aigc_studio.core.text import stop_index


def cut(text: str, mode: str = "sentence", context: str = "") -> str | None:
    index = stop_index(text, mode, context=context)
    return None if index is None else text[:index]


def test_none_never_cuts() -> None:
    assert stop_index("One. Two.\nThree", "none") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no line break yet", None),
        (" and so on\nNext line", " and so on"),
        ("\nat once", ""),
        ("windows\r\nline", "windows"),
        ("two\n\nbreaks", "two"),
    ],
)
def test_newline(text: str, expected: str | None) -> None:
    assert cut(text, "newline") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the sentence goes on", None),
        (" and then it ended. Then more", " and then it ended."),
        (" it ended.", " it ended."),                           # end of text counts
        ("Really? Yes.", "Really?"),
        ("Stop! Now.", "Stop!"),
        ("What?! No.", "What?!"),
        ('He said "Go home." Then he left.', 'He said "Go home."'),
        ("(As noted.) Next", "(As noted.)"),
        ("She said \u201cfine.\u201d And left", "She said \u201cfine.\u201d"),
        ("version 3.14 is out. Yes", "version 3.14 is out."),   # no space after the inner period
        ("a.b.c", None),
        ("Mr. Smith and Mrs. Jones met Dr. Who on St. Mary's Road. Then",
         "Mr. Smith and Mrs. Jones met Dr. Who on St. Mary's Road."),
        ("He met Mr.", None),                                   # wait for the name
        ("I met Mr. Smith. He waved", "I met Mr. Smith."),
        ("Ask Prof. Lee, e.g. now. Fine", "Ask Prof. Lee, e.g. now."),
        ("J. R. R. Tolkien wrote it. Later", "J. R. R. Tolkien wrote it."),
        ("Wait... what happened? Nothing", "Wait... what happened?"),
        ("Wait\u2026 what happened? Nothing", "Wait\u2026 what happened?"),
        ("He trailed off...", None),
        ("He was here.\nThen", "He was here."),
    ],
)
def test_sentence(text: str, expected: str | None) -> None:
    assert cut(text) == expected


def test_sentence_looks_back_into_the_context() -> None:
    # The prompt ended with "Mr": the generated period belongs to an abbreviation.
    assert cut(". Smith arrived. Then", context="I saw Mr") == ". Smith arrived."
    # The prompt ended a sentence already: that end does not count.
    assert cut(" Then it rained. More", context="It was dry.") == " Then it rained."
    # An ellipsis split between prompt and text is still an ellipsis.
    assert cut(". and on. Done", context="on and on..") == ". and on."
    # A sentence end right at the start of the generated text.
    assert cut(". Next", context="It was dry") == "."


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="paragraph"):
        stop_index("text", "paragraph")


def test_passages_split_in_halves_spread_over_the_text() -> None:
    from aigc_studio.core.text import passages

    text = " ".join(f"w{i}" for i in range(100)) + "\n"
    ps = passages(text, words=10, count=4)
    assert [p.start for p in ps] == [0, 30, 60, 90]
    assert ps[0].prompt == "w0 w1 w2 w3 w4 " and ps[0].reference == "w5 w6 w7 w8 w9"
    assert ps[-1].reference == "w95 w96 w97 w98 w99"
    assert len(passages(text, words=40, count=50)) == 2           # no more than the text holds
    with pytest.raises(ValueError, match="needs 200"):
        passages(text, words=200)
    with pytest.raises(ValueError, match="at least 2 words"):
        passages(text, words=1)

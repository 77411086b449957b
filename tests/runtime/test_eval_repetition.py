"""`aigc-studio eval repetition` and `--preset`: how much long continuations repeat themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_studio.cli import main
from aigc_studio.core.text import distinct_ngrams, repeated_ngrams
from tests.tiny_models import tiny_corpus


def test_repeated_and_distinct_ngrams() -> None:
    loop = "a b c d " * 3  # 9 four-grams, 4 of them distinct
    assert repeated_ngrams(loop, 4) == pytest.approx(5 / 9)
    assert repeated_ngrams("the cat sat on the mat", 4) == 0.0
    assert repeated_ngrams("too short", 4) == 0.0
    assert distinct_ngrams(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_ngrams(["a b", "a b"], 2) == pytest.approx(1 / 2)  # across texts
    assert distinct_ngrams([], 2) == 0.0
    with pytest.raises(ValueError):
        repeated_ngrams("a b", 0)


@pytest.fixture
def corpus(tiny_text_package: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tiny_text_package.parent))
    f = tmp_path / "text.txt"
    f.write_text(tiny_corpus(80, seed=5), encoding="utf-8")
    return f


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["eval", "repetition", "--model", "tiny-writer", "--threads", "1", "--json",
                 "--passages", "4", "--words", "12", "--tokens", "60", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_figures_come_from_the_continuations_and_are_deterministic(corpus: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    greedy = _json(capsys, str(corpus))
    balanced = _json(capsys, "--preset", "Balanced", str(corpus))
    assert greedy["passages"] == 4 and greedy["config"]["strategy"] == "greedy"
    assert balanced["config"]["strategy"] == "top-p" and balanced["config"]["repetition_penalty"] == 1.1
    assert balanced["config"]["seed"] == 0  # sampling is made reproducible
    for record in (greedy, balanced):
        texts = [c["text"] for c in record["continuations"]]
        assert len(texts) == 4 and all(texts)
        shares = [repeated_ngrams(t, 4) for t in texts]
        assert record["repeated_4grams"] == round(sum(shares) / 4, 4)
        assert record["worst_repeated_4grams"] == round(max(shares), 4)
        assert record["distinct_2"] == round(distinct_ngrams(texts, 2), 4)
    assert [c["text"] for c in greedy["continuations"]] != [c["text"] for c in balanced["continuations"]]
    again = _json(capsys, "--preset", "Balanced", str(corpus))
    assert again["continuations"] == balanced["continuations"]


def test_an_option_changes_the_preset(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = _json(capsys, "--preset", "Creative", "--temperature", "0.5", str(corpus))
    assert (record["config"]["top_p"], record["config"]["temperature"]) == (0.95, 0.5)
    assert main(["complete", "--model", "tiny-writer", "--preset", "Balanced", "--seed", "3", "--json",
                 "--max-tokens", "5", "It was"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["repetition_penalty"] == 1.1


def test_plain_report_and_errors(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "repetition", "--model", "tiny-writer", "--passages", "2", "--words", "12",
                 "--tokens", "20", "--repetition-penalty", "1.2", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "2 passages" in out and "greedy, repetition penalty 1.2" in out and "repeated 4-grams" in out
    assert main(["eval", "repetition", "--model", "tiny-writer", "--preset", "Precise", str(corpus)]) == 2
    assert "greedy or sampling" in capsys.readouterr().err
    assert main(["eval", "repetition", "--model", "tiny-writer", "--tokens", "0", str(corpus)]) == 2

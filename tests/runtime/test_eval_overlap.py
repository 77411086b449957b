"""`aigc-studio eval bleu|rouge`: continue the first half of held-out passages, score the second half."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from aigc_studio.cli import main
from tests.tiny_models import tiny_corpus

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")


@pytest.fixture
def models_env(tiny_text_package: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tiny_text_package.parent))
    return tiny_text_package


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["eval", *args, "--model", "tiny-writer", "--threads", "1", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_model_continues_its_own_kind_of_text_better(models_env: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    known = tmp_path / "known.txt"
    known.write_text(tiny_corpus(60, seed=9), encoding="utf-8")
    words = known.read_text().split()
    random.Random(0).shuffle(words)
    scrambled = tmp_path / "scrambled.txt"
    scrambled.write_text(" ".join(words), encoding="utf-8")
    args = ["--passages", "6", "--words", "24"]
    good = _json(["bleu", str(known), *args], capsys)
    bad = _json(["bleu", str(scrambled), *args], capsys)
    assert good["passages"] == 6 and good["words"] == 24
    assert good["bleu"] > bad["bleu"] and good["rouge1"] > bad["rouge1"]
    assert 0 <= bad["rougeL"] <= good["rougeL"] <= 100
    assert _json(["rouge", str(known), *args], capsys)["rouge2"] == good["rouge2"]   # deterministic
    assert "BLEU" in good["bleu_signature"] or "nrefs" in good["bleu_signature"]


def test_plain_reports(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.txt"
    f.write_text(tiny_corpus(30, seed=3), encoding="utf-8")
    assert main(["eval", "bleu", "--model", "tiny-writer", "--passages", "2", "--words", "16", str(f)]) == 0
    out = capsys.readouterr().out
    assert "2 passages of 16 words" in out and "BLEU" in out
    assert main(["eval", "rouge", "--model", "tiny-writer", "--passages", "2", "--words", "16", str(f)]) == 0
    out = capsys.readouterr().out
    assert "ROUGE-1" in out and "ROUGE-L" in out


def test_errors(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                monkeypatch: pytest.MonkeyPatch) -> None:
    short = tmp_path / "short.txt"
    short.write_text("Too short.", encoding="utf-8")
    assert main(["eval", "bleu", "--model", "tiny-writer", str(short)]) == 2
    assert "a passage needs 64" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    assert main(["eval", "rouge", "--model", "tiny-writer", str(latin1)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    assert main(["eval", "bleu", "--model", "tiny-writer", str(short)]) == 2
    assert "aigc-studio[eval]" in capsys.readouterr().err

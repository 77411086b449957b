"""`aigc-studio eval keystrokes`: a simulated writer typing a file with the app's inline suggestions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_studio.cli import main

TEXT = ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine.\n\n"
        "She walked to the window and looked at the garden. It is a truth universally acknowledged.\n")


@pytest.fixture
def models_env(tiny_text_package: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tiny_text_package.parent))
    return tiny_text_package


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "draft.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["eval", "keystrokes", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_suggestions_save_keystrokes_deterministically(models_env: Path, text_file: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(["--model", "tiny-writer", str(text_file)], capsys)
    assert first["chars"] == len(TEXT)
    assert first["keystrokes"] == first["chars"] - first["saved"]
    # The tiny model has learned these phrases: a writer accepts several suggestions.
    assert first["accepted"] >= 3 and first["shown"] >= first["accepted"]
    assert first["requests"] >= first["shown"]
    assert first["accepted_chars"] > first["saved"] > 0
    assert 0.3 < first["savings"] < 1.0
    assert first["config"]["strategy"] == "greedy"  # the app's default decoding
    second = run_json(["--model", "tiny-writer", str(text_file)], capsys)
    drop = ("seconds",)
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}


def test_plain_report_and_options(models_env: Path, text_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "keystrokes", "--model", "tiny-writer", "--max-chars", "44", str(text_file)]) == 0
    out = capsys.readouterr().out
    assert "44 chars" in out and "keystroke savings" in out and "accepted" in out and "shown" in out
    one = run_json(["--model", "tiny-writer", "--max-words", "1", str(text_file)], capsys)
    four = run_json(["--model", "tiny-writer", str(text_file)], capsys)
    assert one["policy"]["max_words"] == 1 and one["accepted"] >= four["accepted"]
    sampled = run_json(["--model", "tiny-writer", "--strategy", "top-k", str(text_file)], capsys)
    again = run_json(["--model", "tiny-writer", "--strategy", "top-k", str(text_file)], capsys)
    assert sampled["config"]["seed"] == 0 and sampled["saved"] == again["saved"]


def test_errors_are_clear(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "keystrokes", "--model", "tiny-writer", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    assert main(["eval", "keystrokes", "--model", "tiny-writer", str(bad)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_alternatives_save_more_keystrokes(models_env: Path, text_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--alternatives N: the writer cycles with Alt+] (one key each) to an alternative that matches."""
    one = run_json(["--model", "tiny-writer", str(text_file)], capsys)
    three = run_json(["--model", "tiny-writer", "--alternatives", "3", str(text_file)], capsys)
    assert one["alternatives"] == 1 and three["alternatives"] == 3
    assert three["saved"] >= one["saved"] and three["accepted"] >= one["accepted"]
    again = run_json(["--model", "tiny-writer", "--alternatives", "3", str(text_file)], capsys)
    assert {k: v for k, v in three.items() if k != "seconds"} == \
        {k: v for k, v in again.items() if k != "seconds"}

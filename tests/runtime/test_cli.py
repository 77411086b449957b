"""The command line: complete, models, eval perplexity, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_studio.cli import main


@pytest.fixture
def models_env(tiny_text_package: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(tiny_text_package.parent))
    return tiny_text_package


def test_complete_json(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["complete", "--model", "tiny-writer", "--strategy", "greedy", "--max-tokens", "6",
                 "--json", "The quick bro"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == "tiny-writer"
    assert record["completions"][0]["text"].startswith("wn")
    assert record["config"]["max_new_tokens"] == 6


def test_complete_streams_text(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["complete", "--model", "tiny-writer", "--max-tokens", "8", "--stop", "sentence",
                 "A stitch in time"]) == 0
    assert capsys.readouterr().out.strip() == "A stitch in time saves nine."


@pytest.mark.parametrize("strategy", ["top-k", "top-p", "sample"])
def test_sampling_strategies_are_reproducible(models_env: Path, capsys: pytest.CaptureFixture[str],
                                              strategy: str) -> None:
    outs = []
    for _ in range(2):
        assert main(["complete", "--model", "tiny-writer", "--strategy", strategy, "--seed", "11",
                     "--temperature", "1.3", "--max-tokens", "10", "The"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_beam_n_best(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["complete", "--model", "tiny-writer", "--strategy", "beam", "--beams", "4",
                 "--num-return", "3", "--max-tokens", "5", "She walked to"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 2 and lines[0].startswith("[1] She walked to the")


def test_prompt_from_stdin(models_env: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "aigc_studio", "complete", "--model", "tiny-writer",
                          "--max-tokens", "4", "-"], input="The quick brown", capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("The quick brown fox")


def test_models_lists_packages(models_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-writer" in out and "text-lm" in out and "test" in out
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(m["name"] == "tiny-writer" for m in listed)


def test_eval_perplexity(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "text.txt"
    f.write_text("The quick brown fox jumps over the lazy dog. A stitch in time saves nine. " * 4)
    assert main(["eval", "perplexity", "--model", "tiny-writer", str(f)]) == 0
    out = capsys.readouterr().out
    ppl = float(out.split("perplexity ")[1].split()[0])
    assert 1.0 < ppl < 10.0


def test_errors_are_clear(models_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["complete", "--model", "nope", "hi"]) == 2
    assert "no model package named 'nope' (installed: tiny-writer" in capsys.readouterr().err
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    assert main(["eval", "perplexity", "--model", "tiny-writer", str(bad)]) == 2
    assert "is not valid UTF-8" in capsys.readouterr().err
    assert main(["complete", "--model", "tiny-writer", "--top-p", "1.5", "hi"]) == 2
    assert "top_p" in capsys.readouterr().err

"""The command line: complete, models, eval perplexity, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_studio.cli import main
from tests.runtime import test_features

features_package = test_features.features_package  # a tiny feature package (a fixture)


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


def _progress_lines(err: str, what: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{what}: ")]


@pytest.mark.parametrize("metric, extra, unit", [
    ("perplexity", [], "tokens scored"),
    ("keystrokes", ["--max-chars", "120"], "characters typed"),
    ("bleu", ["--passages", "3", "--words", "16"], "passages"),
    ("repetition", ["--passages", "2", "--words", "8", "--tokens", "4"], "passages"),
])
def test_text_evals_report_progress_on_stderr(models_env: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], metric: str,
                                             extra: list[str], unit: str) -> None:
    """Issue: `aigc-studio eval ...` printed nothing for minutes. Progress goes to stderr, so stdout (the
    results, --json) reads as before."""
    f = tmp_path / "text.txt"
    f.write_text("The quick brown fox jumps over the lazy dog. A stitch in time saves nine. " * 8)
    as_json = [] if metric == "perplexity" else ["--json"]  # perplexity prints one line of results
    assert main(["eval", metric, "--model", "tiny-writer", *extra, *as_json, str(f)]) == 0
    captured = capsys.readouterr()
    if as_json:
        json.loads(captured.out)
    else:
        assert captured.out.startswith("model tiny-writer") and len(captured.out.splitlines()) == 1
    lines = _progress_lines(captured.err, metric)
    assert len(lines) >= 2, captured.err  # when it starts and when it ends
    done, total = lines[-1].split(": ", 1)[1].split(" ", 1)[0].split("/")
    assert done == total and lines[-1].endswith(" s") and unit in lines[-1]


def test_image_evals_report_progress_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str],
                                               features_package: Path) -> None:
    """Issue: `aigc-studio eval condition` printed nothing for 5 minutes."""
    import shutil

    from export.onnx.gan import export_package, tiny_generator

    models = tmp_path / "models"
    shutil.copytree(features_package, models / "tiny-features")
    export_package("stylegan", tiny_generator("stylegan", True), models / "tiny-gan", name="tiny-gan",
                   ganspace_samples=200, directions=2, verbose=False)
    monkeypatch.setenv("AIGC_STUDIO_MODELS", str(models))
    common = ["--model", "tiny-gan", "--features", "tiny-features", "--threads", "1", "--json"]
    assert main(["eval", "condition", *common, "--seeds", "2"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seeds"] == 2
    assert _progress_lines(captured.err, "condition")[-1].startswith("condition: 12/12 images, ")
    assert main(["eval", "fid", *common, "--samples", "70"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["samples"] == 70
    assert _progress_lines(captured.err, "fid")[-1].startswith("fid: 70/70 images, ")


def test_progress_is_throttled_and_rewritten_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from aigc_studio import cli

    now = [100.0]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, expected in ((io.StringIO(), ["condition: 0/400 images, 0 s",
                                              "condition: 400/400 images, 36 s"]),
                             (Terminal(), None)):
        monkeypatch.setattr(cli.sys, "stderr", stream)
        monkeypatch.setattr("time.monotonic", lambda: now[0])
        now[0] = 100.0
        progress = cli._Progress("condition", 400, "images")
        for step in range(1, 121):
            now[0] = 100.0 + 35.0 * step / 120  # many steps in 35 s
            progress.advance()
        for _ in range(280):
            progress.advance()  # no time passes: no line
        now[0] += 1.0
        progress.close()
        if expected is None:
            text = stream.getvalue()
            assert text.startswith("\rcondition: 0/400 images, 0 s") and text.endswith("\n")
            assert text.count("\n") == 1  # one line, rewritten in place
        else:
            lines = stream.getvalue().splitlines()
            assert len(lines) <= 2 + 35 // 2 + 1  # at most one every two seconds
            assert lines[0] == expected[0] and lines[-1] == expected[1]
            assert all(line.endswith(" s") for line in lines)

"""The composition root: the window opens fast, with FILE, while models load in the background."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
started = time.perf_counter()
from aigc_studio.app import main
code = main(sys.argv[1:])
print(f"elapsed {time.perf_counter() - started:.3f}", flush=True)
sys.exit(code)
"""


def run_app(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               AIGC_STUDIO_MODELS=str(tmp_path / "models"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    command = [sys.executable, "-c", CHILD, "--settings", str(tmp_path / "settings.ini"),
               "--data-dir", str(tmp_path / "data"), "--screenshot", str(tmp_path / "shot.png"),
               "--screenshot-after", "0", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_window_opens_with_a_new_file_and_leaves_nothing(tmp_path: Path) -> None:
    """How fast it opens is measured by bench/startup.py, not here."""
    result = run_app(tmp_path, str(tmp_path / "draft.md"))
    assert result.returncode == 0, result.stderr
    assert "elapsed " in result.stdout
    assert (tmp_path / "shot.png").stat().st_size > 1000
    assert not (tmp_path / "draft.md").exists()  # created on the first save only
    left = [f for f in (tmp_path / "data" / "recovery").rglob("*") if f.is_file()]
    assert left == []  # a clean exit leaves nothing (documents' or designs' recovery files)


def test_unknown_qt_arguments_go_to_qt(tmp_path: Path) -> None:
    result = run_app(tmp_path, "-style", "fusion")
    assert result.returncode == 0, result.stderr


def test_a_file_over_the_size_limit_is_refused_and_the_window_opens(tmp_path: Path) -> None:
    from aigc_studio.services.documents import MAX_DOCUMENT_BYTES

    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES + 1024 * 1024)  # sparse: nothing is written
    result = run_app(tmp_path, str(huge))
    assert result.returncode == 0, result.stderr
    assert "huge.txt is too large to open (51.0 MB; the editor opens files up to 50.0 MB)" in (
        result.stderr)
    assert (tmp_path / "shot.png").stat().st_size > 1000

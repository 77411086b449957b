"""The app is offline (issue #16, finding 2).

onnxruntime 1.32 on Linux starts a telemetry uploader about 9 s after `import onnxruntime`: it writes a
device id and an event queue to ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and resolves an events
host every few seconds, unless ORT_DISABLE_TELEMETRY=1 is set before the import. The CLI and the app
run here, each in a process with an empty HOME, for longer than that delay; the folder must not appear,
and, where strace is installed, no socket may connect to anything but a local (Unix or netlink) peer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UPLOADER_DELAY_S = 9
"""onnxruntime's uploader starts about this long after the import (measured with strace)."""
RUN_S = UPLOADER_DELAY_S + 4

_CLI = f"""
import sys, time
from aigc_studio.cli import main
code = main(["complete", "--model", "tiny-writer", "--max-tokens", "3", "The cat"])
time.sleep({RUN_S})  # stay alive past the uploader's start: what is tested is what happens meanwhile
sys.exit(code)
"""


def _env(home: Path, models: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), AIGC_STUDIO_MODELS=str(models), QT_QPA_PLATFORM="offscreen")
    return env


def _command(argv: list[str], trace: Path | None) -> list[str]:
    if trace is None:
        return argv
    return ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv]


def _remote_connects(trace: Path) -> list[str]:
    lines = trace.read_text(errors="replace").splitlines()
    return [line for line in lines if "connect(" in line
            and not re.search(r"sa_family=AF_(UNIX|LOCAL|NETLINK)", line)]


def _strace_works() -> bool:
    """strace is installed and may trace here (a container without ptrace rights refuses)."""
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0


def test_cli_and_app_make_no_network_attempt(tiny_text_package: Path, tmp_path: Path) -> None:
    strace = _strace_works()
    runs = {}
    for name in ("cli", "app"):
        home = tmp_path / name / "home"
        home.mkdir(parents=True)
        trace = tmp_path / name / "connect.trace" if strace else None
        if name == "cli":
            argv = [sys.executable, "-c", _CLI]
        else:
            settings = tmp_path / name / "settings.ini"
            settings.write_text("[model]\nname=tiny-writer\n", encoding="utf-8")
            argv = [sys.executable, "-m", "aigc_studio", "--settings", str(settings),
                    "--data-dir", str(tmp_path / name / "data"),
                    "--screenshot", str(tmp_path / name / "shot.png"), "--screenshot-after", str(RUN_S)]
        process = subprocess.Popen(_command(argv, trace), env=_env(home, tiny_text_package.parent),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        runs[name] = (process, home, trace)
    for name, (process, home, trace) in runs.items():
        output, _ = process.communicate(timeout=RUN_S + 120)
        assert process.returncode == 0, f"{name} failed:\n{output}"
        telemetry = home / ".cache" / "Microsoft"
        assert not telemetry.exists(), f"{name}: onnxruntime's telemetry wrote {sorted(telemetry.rglob('*'))}"
        if trace is not None:
            assert _remote_connects(trace) == [], f"{name} tried the network"
    if not strace:
        pytest.skip("strace is not installed or may not trace here: only the telemetry folder was checked")

"""How long the window takes to appear, against a bare Qt window started the same way.

    python bench/startup.py                 # 7 runs of each row (~40 s)
    python bench/startup.py --runs 15 --json out.json

Each row is a fresh Python process (offscreen Qt, a temporary settings file, data folder and user model
folder, so nothing of the user's is touched). Times are from the process's first line of Python to the
moment the window's `show()` returns, and to the end of the process. The app quits right after its first
frame; its process time includes waiting for the default model, which starts loading in the background
once the window shows, since a session being created cannot be interrupted:

  python only          `python -c` with nothing to do: the interpreter's own start, outside the figures
  bare Qt window       QApplication + a QMainWindow holding a QPlainTextEdit: what any Qt app pays
  the app              `aigc_studio.app.main`: settings, services, the main window with its menus and
                       panes (the models are listed and loaded in the background after the window shows)
  the app with a file  the same, opening a 1 MB Markdown document

The rows take turns run by run, so that the machine's drift spreads over all of them; medians and the
slowest run. The app's row is also given against the bare window's in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import sys, time
t0 = time.perf_counter()
def shown():
    print(f"shown {time.perf_counter() - t0:.4f}", flush=True)
"""

BARE = PRELUDE + """
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QPlainTextEdit
app = QApplication([sys.argv[0]])
w = QMainWindow()
w.setCentralWidget(QPlainTextEdit())
w.resize(1100, 720)
w.show()
shown()
QTimer.singleShot(0, app.quit)
app.exec()
"""

APP = PRELUDE + """
from aigc_studio.gui import main_window
original = main_window.MainWindow.show
def show(self):
    original(self)
    shown()
main_window.MainWindow.show = show
from aigc_studio.app import main
sys.exit(main(sys.argv[1:]))
"""


def run_once(code: str, args: list[str], env: dict) -> tuple[float, float]:
    """(seconds to the window shown, seconds to the end of the process) of one fresh process."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    total = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"the child failed ({out.returncode}):\n{out.stderr[-2000:]}")
    shown = next((float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("shown ")),
                 float("nan"))
    return shown, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the measurements here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        doc = tmp / "long.md"
        para = "It was a bright cold day in April, and the clocks were striking thirteen. " * 12 + "\n\n"
        doc.write_text(para * (1_000_000 // len(para)), encoding="utf-8")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
                   AIGC_STUDIO_MODELS=str(tmp / "models"), XDG_DATA_HOME=str(tmp / "xdg"))

        def app_args(run: int, *extra: str) -> list[str]:
            return ["--settings", str(tmp / f"settings{run}.ini"), "--data-dir", str(tmp / f"data{run}"),
                    "--screenshot", str(tmp / f"shot{run}.png"), "--screenshot-after", "0", *extra]

        rows = {"python only": ("pass", lambda r: []), "bare Qt window": (BARE, lambda r: []),
                "the app": (APP, lambda r: app_args(r)),
                "the app with a 1 MB file": (APP, lambda r: app_args(r, str(doc)))}
        shown: dict[str, list[float]] = {k: [] for k in rows}
        total: dict[str, list[float]] = {k: [] for k in rows}
        for name, (code, make) in rows.items():  # warm-up: the first start reads every file from disk
            run_once(code, make(-1 - len(shown[name])), env)
        for r in range(args.runs):
            for name, (code, make) in rows.items():
                s, t = run_once(code, make(r), env)
                shown[name].append(s)
                total[name].append(t)

    def med(xs: list[float]) -> float:
        xs = [x for x in xs if x == x]
        return statistics.median(xs) if xs else float("nan")

    base = med(shown["bare Qt window"])
    print(f"\nstart-up, {args.runs} runs each, offscreen Qt (seconds; 'shown' from the first line of Python)")
    print(f"{'':<26}{'shown p50':>10}{'slowest':>9}{'process p50':>13}{'vs bare Qt':>12}")
    for name in rows:
        s = med(shown[name])
        vs = f"{s / base:.2f}x" if s == s and name.startswith("the app") else ""
        slowest = max((x for x in shown[name] if x == x), default=float("nan"))
        cells = f"{s:10.3f}{slowest:9.3f}" if s == s else f"{'-':>10}{'-':>9}"
        print(f"{name:<26}{cells}{med(total[name]):13.3f}{vs:>12}")
    if args.json:
        args.json.write_text(json.dumps({"shown": shown, "process": total}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The writing editor with a long document: pasting it, and what a keystroke costs afterwards.

    python bench/editor.py                   # a 10 MB paste, 40 keystrokes after it (~1 min)
    python bench/editor.py --mb 2 --keys 100 --model writer

Offscreen Qt, one process. Each row pastes the same text (paragraphs of prose, `--mb` megabytes) at the
end of an empty editor, lets the event loop settle, then types `--keys` letters one by one, 100 ms apart
(`--pace-ms`). A keystroke's time is the key event and the events it causes right away (layout and
painting included); the event loop runs between keystrokes as well, uncounted. It prints the paste's
time and the median and slowest keystroke:

  bare QPlainTextEdit   Qt's own editor with nothing attached: the baseline
  the app's editor      the main window's writing editor (ghost text, word counts, autosave, undo
                        grouping), its model not loaded, so no suggestion is asked for
  ... and a model       the same with the model (--model, default the default writing model) loaded on
                        the completion service's worker thread, which it keeps busy while the letters
                        arrive: what the UI thread does per keystroke while suggestions are computed

The tests check that keystrokes after a 10 MB paste reach the model with a bounded prompt, not how fast.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARAGRAPH = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
             "age of foolishness, it was the epoch of belief, it was the epoch of incredulity. ") * 6 + "\n"


def measure(editor, text: str, keys: int, app, pace_s: float) -> dict:
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtTest import QTest

    def settle() -> None:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    editor.setFocus()
    settle()
    t = time.perf_counter()
    editor.insertPlainText(text)
    settle()
    paste = time.perf_counter() - t
    times = []
    for i in range(keys):
        letter = "abcdefghijklmnopqrstuvwxyz "[i % 27]
        t = time.perf_counter()
        QTest.keyClick(editor, letter if letter != " " else Qt.Key.Key_Space)
        settle()
        times.append(time.perf_counter() - t)
        until = time.perf_counter() + pace_s  # the writer's pace: the event loop runs in between
        while time.perf_counter() < until:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
    return {"paste_s": paste, "key_p50_ms": statistics.median(times) * 1e3, "key_max_ms": max(times) * 1e3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=10.0, help="megabytes of text to paste")
    ap.add_argument("--keys", type=int, default=40, help="letters typed after the paste")
    ap.add_argument("--pace-ms", type=int, default=100, help="time between keystrokes (not counted)")
    ap.add_argument("--model", default="", help="text model for the last row (default: the default one)")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication, QPlainTextEdit

    from aigc_studio.app import build_window
    from aigc_studio.services.documents import RecoveryStore
    from aigc_studio.services.models import ModelState, RuntimeBackend
    from aigc_studio.services.settings import Settings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    text = PARAGRAPH * max(1, int(args.mb * 1_000_000 / len(PARAGRAPH)))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bare = QPlainTextEdit()
        bare.resize(1100, 720)
        bare.show()
        rows["bare QPlainTextEdit"] = measure(bare, text, args.keys, app, args.pace_ms / 1e3)
        bare.close()

        for name, load in (("the app's editor, no model", False), ("the app's editor, model loaded", True)):
            settings = Settings(tmp / f"{load}.ini")
            if args.model:
                settings.set_value("model/name", args.model)
            window = build_window(settings, RuntimeBackend(), RecoveryStore(tmp / f"recovery{load}"))
            window.resize(1400, 900)
            window.show()
            window.host.start()
            model = ""
            if load:
                window.model.load()
                deadline = time.perf_counter() + 120
                done = (ModelState.READY, ModelState.FAILED)
                while window.host.status.state not in done and time.perf_counter() < deadline:
                    app.processEvents()
                    time.sleep(0.01)
                model = f" ({window.host.status.name}, {window.host.status.state})"
            rows[name + model] = measure(window.editor, text, args.keys, app, args.pace_ms / 1e3)
            window.shutdown()
            window.close()

    base = rows["bare QPlainTextEdit"]["key_p50_ms"]
    print(f"\na paste of {len(text) / 1e6:.1f} MB at the end of an empty editor, then {args.keys} keystrokes "
          f"{args.pace_ms} ms apart (offscreen Qt)")
    print(f"{'':<52}{'paste s':>9}{'key p50 ms':>12}{'key max ms':>12}{'p50 vs bare':>13}")
    for name, r in rows.items():
        print(f"{name:<52}{r['paste_s']:9.2f}{r['key_p50_ms']:12.2f}{r['key_max_ms']:12.1f}"
              f"{r['key_p50_ms'] / base:12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

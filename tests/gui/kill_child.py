"""A writer who types and saves until killed; run by test_main_window's SIGKILL test.

``python -m tests.gui.kill_child WORKDIR`` opens ``WORKDIR/novel.txt`` in a main window (offscreen,
fake model), types words through real key events, saves every few words, and prints what it did:
``typed N`` (characters in the editor), ``saved N`` and ``autosaved N``, one per line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from aigc_studio.app import build_window  # noqa: E402
from aigc_studio.services.documents import RecoveryStore  # noqa: E402
from aigc_studio.services.settings import Settings  # noqa: E402
from tests.services.fakes import FakeBackend  # noqa: E402


def words() -> str:
    """The text the writer types: numbered words, so any prefix can be checked."""
    return "".join(f"word{i} " for i in range(100_000))


def main() -> int:
    work = Path(sys.argv[1])
    app = QApplication([])
    settings = Settings(work / "settings.ini")
    settings.set_value("documents/autosave_s", 1)
    settings.set_value("completion/debounce_ms", 50)
    window = build_window(settings, FakeBackend(), RecoveryStore(work / "recovery"))
    window.document.autosave.max_wait_s = 0.4
    window.document.autosave.saved.connect(
        lambda _path: print(f"autosaved {len(window.editor.toPlainText())}", flush=True))
    window.open_file(work / "novel.txt")
    window.show()
    window.host.start()
    window.model.load()
    text = words()
    state = {"at": 0, "words": 0}

    def type_word() -> None:
        end = text.index(" ", state["at"]) + 1
        QTest.keyClicks(window.editor, text[state["at"]:end])
        state["at"] = end
        state["words"] += 1
        print(f"typed {len(window.editor.toPlainText())}", flush=True)
        if state["words"] % 60 == 0 and window.save():
            print(f"saved {len(window.editor.toPlainText())}", flush=True)

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(type_word)
    timer.start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

"""A writer killed at random moments; run by test_document_faults and bench/kill_probe.py.

``python -m tests.faults.document_kill_child WORKDIR MODE BASE_BYTES`` runs the real document
service (DocumentViewModel, AutosaveService, RecoveryStore) under a bare QCoreApplication on
``WORKDIR/novel.txt`` (created with BASE_BYTES of text if missing) and reports on stdout, one line
each, flushed:

- ``ready``: the document is open;
- ``typed N T``: N characters typed so far (after the base text), at ``time.monotonic()`` T;
- ``saved N``: the document was saved with N typed characters (MODE ``save`` saves every 40 words);
- ``saving K``: (MODE ``saveloop``) the K-th save in a tight loop of saves starts;
- ``half``: (MODE ``savehalf``) a save has written half the new text into its temporary file and
  waits there to be killed, so that a kill lands inside a save whatever the machine's speed.

MODE ``type`` only types (a word every 20 ms).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

from PySide6.QtCore import QCoreApplication, QTimer

from aigc_studio.services.documents import RecoveryStore, write_document
from aigc_studio.services.files import atomic_write, clean_stale_temporaries
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.document import DocumentViewModel

TICK_MS = 20


def word(index: int) -> str:
    """The ``index``-th typed word: numbered, so that any prefix can be checked."""
    return f"word{index} "


def base_text(size: int) -> str:
    """The document's text before typing starts (about ``size`` characters)."""
    line = "It was a bright cold day in April, and the clocks were striking thirteen.\n"
    return line * max(1, size // len(line))


def main() -> int:
    work, mode, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    app = QCoreApplication([])
    path = work / "novel.txt"
    if not path.exists():
        write_document(path, base_text(size))
    if mode == "savehalf":
        data = (path.read_text(encoding="utf-8")[:-1] + "X\n").encode("utf-8")

        def write_half(stream: IO[bytes]) -> None:
            stream.write(data[:len(data) // 2])
            stream.flush()
            print("half", flush=True)
            time.sleep(600)  # killed here by the parent, which waits for "half"
            stream.write(data[len(data) // 2:])

        clean_stale_temporaries(path.parent, path.name)  # as write_document does before a save
        atomic_write(path, write_half)
        return 0
    if mode == "saveloop":
        text = path.read_text(encoding="utf-8")
        for count in range(1_000_000):
            print(f"saving {count}", flush=True)
            write_document(path, text[:-1] + f"{count % 10}\n")
        return 0
    settings = Settings(work / "settings.ini")
    document = DocumentViewModel(settings, RecoveryStore(work / "recovery"))
    base = document.load(path).text
    typed: list[str] = []
    document.attach(lambda: base + "".join(typed))
    print("ready", flush=True)
    state = {"chars": 0}

    def type_word() -> None:
        typed.append(word(len(typed)))
        state["chars"] += len(typed[-1])
        document.set_modified(True)
        document.text_changed()
        print(f"typed {state['chars']} {time.monotonic():.4f}", flush=True)
        if mode == "save" and len(typed) % 40 == 0:
            document.save()
            print(f"saved {state['chars']}", flush=True)

    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(type_word)
    timer.start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

"""One regression test per defect the probe found in documents, saving and recovery.

Each docstring names the finding (the issue's numbering). The kill tests run the real document
service in a child process (tests/faults/document_kill_child.py) and SIGKILL it at random moments;
bench/kill_probe.py runs the same with many more kills and a 20 MB document.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_studio.services.documents import (
    MAX_DOCUMENT_BYTES,
    DiskChange,
    DocumentError,
    RecoverySnapshot,
    RecoveryStore,
    read_document,
    write_document,
)
from aigc_studio.services.recovery import JOURNAL_WAIT_S, AutosaveService
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.document import DocumentViewModel
from tests.faults.kill_harness import kill_while_saving, kill_while_typing, temporaries
from tests.gui.test_app import run_app

ROOT = Path(__file__).resolve().parents[2]
LOSS_BOUND_MS = 1000.0  # "a kill -9 at any moment loses at most about 1 s of typing"


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that cannot be created, even by root: its parent is a regular file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return blocker / "recovery"


# -- finding 5: the data folder is not writable -------------------------------------------------


def test_finding_5_store_in_an_unwritable_folder_is_off_not_fatal(qtbot, tmp_path: Path) -> None:
    """Finding 5: ``RecoveryStore.__init__`` raised when the data folder was not writable, so the app
    could not start. Now the store is unavailable, says why, and the autosave writes nothing."""
    store = RecoveryStore(unwritable_folder(tmp_path))
    assert not store.available
    assert "cannot write to" in (store.error or "") and "not-a-folder" in (store.error or "")
    autosave = AutosaveService(store, lambda: RecoverySnapshot("text"), delay_s=0)
    try:
        with qtbot.assertNotEmitted(autosave.failed), qtbot.assertNotEmitted(autosave.saved):
            autosave.document_changed()
            autosave.flush()
        assert store.pending() == []
    finally:
        autosave.shutdown()
        store.close()


def test_finding_5_documents_still_open_and_save(tmp_path: Path) -> None:
    """Finding 5: with recovery off, everything else works: open, edit, save, close."""
    document = DocumentViewModel(Settings(tmp_path / "settings.ini"),
                                 RecoveryStore(unwritable_folder(tmp_path)))
    try:
        assert document.recovery_error is not None
        path = tmp_path / "novel.txt"
        document.load(path)
        document.attach(lambda: "still writing")
        document.set_modified(True)
        document.text_changed()
        document.focus_lost()
        document.save()
        assert path.read_text() == "still writing"
    finally:
        document.close()


def test_finding_5_app_starts_and_says_autosave_is_off(tmp_path: Path) -> None:
    """Finding 5: ``aigc-studio`` with an unwritable data folder opens its window (the screenshot is
    taken) and says that autosave and recovery are off."""
    blocker = tmp_path / "data"
    blocker.write_text("")  # --data-dir/recovery cannot be created
    result = run_app(tmp_path, str(tmp_path / "draft.md"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "shot.png").stat().st_size > 1000
    assert "autosave and recovery are off" in result.stderr


# -- finding 6: typing lost on a kill ------------------------------------------------------------


def test_finding_6_a_kill_while_typing_loses_at_most_about_a_second(tmp_path: Path) -> None:
    """Finding 6 (typing lost on a kill): the autosave waited 3 s after the last keystroke, 20 s
    while typing on. Real SIGKILLs of the document service while it types (and saves): what
    recovery gives back is a prefix of what was typed and misses at most about 1 s of typing."""
    rng = random.Random(6)
    kills = [kill_while_typing(tmp_path / f"kill{i}", rng, mode="save" if i % 3 == 2 else "type",
                               after=(0.2, 0.9)) for i in range(8)]
    worst = max(kills, key=lambda kill: kill.lost_ms)
    assert worst.lost_ms <= LOSS_BOUND_MS, worst
    assert any(kill.source == "recovery" and kill.recovered > 0 for kill in kills)
    assert JOURNAL_WAIT_S <= LOSS_BOUND_MS / 2000


def test_finding_6_journal_replays_edits_and_ignores_a_torn_record(tmp_path: Path) -> None:
    """Finding 6 (typing lost on a kill): the journal of edits since the last snapshot is replayed
    on recovery; a record cut short by the kill is ignored, never half-applied."""
    store = RecoveryStore(tmp_path)
    store.record(RecoverySnapshot("Hello world", "/d/novel.md"))  # the first one is a snapshot
    store.record(RecoverySnapshot("Hello, wide world", "/d/novel.md"))
    store.record(RecoverySnapshot("Hello, wide world\u00e9!", "/d/novel.md"))
    assert store.journal.exists()
    with open(store.journal, "ab") as journal:
        journal.write(store.journal.read_bytes()[:12])  # a torn copy of the first record
    store.release()
    later = RecoveryStore(tmp_path)
    assert [e.text for e in later.pending()] == ["Hello, wide world\u00e9!"]
    later.close()


# -- finding 6: another program's changes, read-only files ----------------------------------------


def test_finding_6_a_change_on_disk_and_a_read_only_file_are_noticed(tmp_path: Path) -> None:
    """Finding 6 (silent overwrite): a file changed by another program after it was opened, or a
    read-only file, was replaced without a word. The document now tells before saving."""
    document = DocumentViewModel(Settings(tmp_path / "settings.ini"),
                                 RecoveryStore(tmp_path / "recovery"))
    try:
        path = tmp_path / "novel.txt"
        path.write_text("mine")
        document.load(path)
        assert document.disk_change() is DiskChange.UNCHANGED
        os.utime(path, ns=(1, 1))  # touched, same content: nothing to ask
        assert document.disk_change() is DiskChange.UNCHANGED
        path.write_text("theirs, longer")
        assert document.disk_change() is DiskChange.CHANGED
        document.keep_mine()
        assert document.disk_change() is DiskChange.UNCHANGED
        path.chmod(0o444)
        assert document.disk_change() is DiskChange.READ_ONLY
    finally:
        document.close()


# -- finding 6: line endings ---------------------------------------------------------------------


@pytest.mark.parametrize("original", [
    b"a\rb\n", b"one\r\ntwo\nthree\r\n", b"\xef\xbb\xbfx\r\ny\rz", b"\r\n\n\r", b"plain\n"])
def test_finding_6_an_unedited_document_is_saved_byte_for_byte(tmp_path: Path,
                                                                original: bytes) -> None:
    """Finding 6 (line endings rewritten): ``a\\rb\\n`` was saved as ``a\\rb\\r``, a lone LF in a
    CRLF file became CRLF. Saving unedited text writes the same bytes, BOM included."""
    path = tmp_path / "mixed.txt"
    path.write_bytes(original)
    loaded = read_document(path)
    write_document(path, loaded.text, text_format=loaded.format)
    assert path.read_bytes() == original


def test_finding_6_edited_lines_keep_their_neighbours_line_endings(tmp_path: Path) -> None:
    """Finding 6 (line endings rewritten): after an edit, unchanged lines keep their own breaks;
    new lines get the file's most common one."""
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"title\r\nunix line\nsecond\r\nthird\r\nlast\n")
    loaded = read_document(path)
    edited = loaded.text.replace("second", "second, edited\nan added line")
    write_document(path, edited, text_format=loaded.format)
    assert path.read_bytes() == (b"title\r\nunix line\nsecond, edited\r\nan added line\r\n"
                                 b"third\r\nlast\n")


# -- finding 6: temporary files left by a kill during a save ---------------------------------------


def test_finding_6_kills_mid_save_leave_no_temporary_files(tmp_path: Path) -> None:
    """Finding 6 (temporary files): every kill during a save left a hidden temporary file with
    partial text (294 MB after 50 kills). Temporary files carry the app's name and the writer's
    PID; those of dead writers are removed at the next save and at the next open."""
    rng = random.Random(60)
    work = tmp_path / "saves"
    left = []
    for _ in range(6):
        kill_while_saving(work, rng, base_bytes=1_000_000, halfway=True)
        left.append(len(temporaries(work)))
    assert left == [1] * 6, left  # each kill leaves one, the next save removes the last one
    assert all("aigc-studio-" in p.name for p in temporaries(work))
    loaded = read_document(work / "novel.txt")  # whole: the old or the new text, never half
    assert loaded.text.startswith("It was a bright cold day") and loaded.text.endswith("\n")
    assert temporaries(work) == []


def test_finding_6_stale_temporaries_are_removed_at_start(tmp_path: Path) -> None:
    """Finding 6 (temporary files): a recovery snapshot cut short by a kill is removed when the
    next session starts; a live writer's temporary file is left alone."""
    folder = tmp_path / "recovery"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = folder / f".s.recovery.aigc-studio-{dead.stdout.strip()}-x1.tmp"
    live = folder / f".s.recovery.aigc-studio-{os.getppid()}-x2.tmp"
    stale.write_text("partial")
    live.write_text("being written")
    store = RecoveryStore(folder)
    assert not stale.exists() and live.exists()
    store.close()


# -- finding 4: inputs without a bound -------------------------------------------------------------


def test_finding_4_devices_fifos_and_huge_files_are_refused_without_reading(tmp_path: Path) -> None:
    """Finding 4: ``/dev/zero`` was read without end and a FIFO hung the start. Only regular files
    up to MAX_DOCUMENT_BYTES are read; the message names the size and the limit."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES + 10 * 1024 * 1024)  # sparse: nothing is written
    code = ("import sys\nfrom aigc_studio.services.documents import read_document, DocumentError\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n        read_document(path)\n    except DocumentError as error:\n"
            "        print(error)\n")
    result = subprocess.run([sys.executable, "-c", code, "/dev/zero", str(fifo), str(huge)],
                            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result
    assert "/dev/zero is a device, not a text file" in lines[0]
    assert "is a named pipe (FIFO), not a text file" in lines[1]
    assert "huge.txt is too large to open (60.0 MB; the editor opens files up to 50.0 MB)" in lines[2]
    with pytest.raises(DocumentError, match="too large"):
        read_document(huge)


def test_finding_4_the_cli_refuses_dev_zero_and_a_fifo_and_opens_the_window(tmp_path: Path) -> None:
    """Finding 4: ``aigc-studio /dev/zero`` grew without limit and ``aigc-studio FIFO`` hung before
    any window. Both now open the window and say why the file was not opened."""
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for target, reason in (("/dev/zero", "is a device"), (str(fifo), "named pipe")):
        result = run_app(tmp_path, target)
        assert result.returncode == 0, result.stderr
        assert reason in result.stderr
        assert (tmp_path / "shot.png").stat().st_size > 1000

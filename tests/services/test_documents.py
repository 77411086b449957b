"""Atomic saves, strict UTF-8 and the recovery folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aigc_studio.services import documents
from aigc_studio.services.documents import (
    AutosaveService,
    DocumentError,
    RecoverySnapshot,
    RecoveryStore,
    TextFormat,
    encode_document,
    read_document,
    write_document,
)
from aigc_studio.services.files import clean_stale_temporaries
from aigc_studio.services.recovery import text_edit


def test_save_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "novel.md"
    write_document(path, "Chapter 1\n\nIt was a dark night. \u00e9\U0001f600\n")
    loaded = read_document(path)
    assert loaded.text == "Chapter 1\n\nIt was a dark night. \u00e9\U0001f600\n"
    assert loaded.exists and loaded.newline == "\n" and not loaded.bom
    assert [p.name for p in tmp_path.iterdir()] == ["novel.md"]  # no temporary file left


def test_line_endings_and_bom_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    loaded = read_document(path)
    assert loaded.text == "one\ntwo\n"
    assert loaded.newline == "\r\n" and loaded.bom
    write_document(path, loaded.text + "three\n", newline=loaded.newline, bom=loaded.bom)
    assert path.read_bytes() == b"\xef\xbb\xbfone\r\ntwo\r\nthree\r\n"


def test_missing_file_is_a_new_document(tmp_path: Path) -> None:
    loaded = read_document(tmp_path / "new.txt")
    assert loaded.text == "" and not loaded.exists


def test_non_utf8_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    original = "Caf\u00e9 au lait\nna\u00efve\n".encode("latin-1")
    path.write_bytes(original)
    with pytest.raises(DocumentError) as error:
        read_document(path)
    message = str(error.value)
    assert "latin1.txt is not a UTF-8 text file" in message
    assert "0xe9 at line 1, column 4" in message
    assert "nothing in it has changed" in message
    assert path.read_bytes() == original


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(b"abc\x00def")
    with pytest.raises(DocumentError, match="binary"):
        read_document(path)


def test_failed_save_leaves_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "novel.txt"
    path.write_text("the old text")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(DocumentError, match="No space left on device"):
        write_document(path, "the new text")
    assert path.read_text() == "the old text"
    assert [p.name for p in tmp_path.iterdir()] == ["novel.txt"]


def test_save_goes_through_a_temporary_file_and_rename(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "novel.txt"
    path.write_text("old")
    path.chmod(0o640)
    seen: list[tuple[str, str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        # At the moment of the rename the target is still whole and the new text is complete.
        seen.append((Path(dst).read_text(), Path(src).read_text(), str(Path(src).parent)))
        real_replace(src, dst)

    monkeypatch.setattr(documents.os, "replace", spy)
    write_document(path, "new")
    assert seen == [("old", "new", str(tmp_path))]
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_document(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_recovery_of_a_session_that_ended_without_saving(tmp_path: Path) -> None:
    crashed = RecoveryStore(tmp_path)
    crashed.write(RecoverySnapshot("unsaved words", "/home/writer/novel.md"))
    running = RecoveryStore(tmp_path)
    assert running.pending() == []  # the first session still holds its lock
    crashed._lock.release()  # what the OS does when the process dies
    entries = running.pending()
    assert [(e.text, e.document, e.title) for e in entries] == [
        ("unsaved words", "/home/writer/novel.md", "novel.md")]
    assert "novel.md: 2 words" in entries[0].describe()
    running.discard(entries[0])
    assert running.pending() == []
    running.close()


def test_clean_close_leaves_nothing(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    store.write(RecoverySnapshot("text"))
    store.close()
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_unreadable_recovery_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "junk.recovery").write_bytes(b"not a recovery file")
    store = RecoveryStore(tmp_path)
    assert store.pending() == []
    store.close()


def test_autosave_after_the_last_change_and_on_flush(qtbot, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    state = {"text": "draft one"}
    autosave = AutosaveService(store, lambda: RecoverySnapshot(state["text"]), delay_s=0.05)
    try:
        with qtbot.waitSignal(autosave.saved, timeout=2000):
            autosave.document_changed()
            autosave.document_changed()
        assert store.file.read_text().endswith("draft one")
        state["text"] = "draft two"
        autosave.delay_s = 60
        autosave.document_changed()
        assert autosave.pending
        with qtbot.waitSignal(autosave.saved, timeout=1000):
            autosave.flush()  # the window lost focus
        assert store.file.read_text().endswith("draft two")
        with qtbot.assertNotEmitted(autosave.saved):
            autosave.flush()  # nothing new
        autosave.clear()
        assert not store.file.exists()
    finally:
        autosave.shutdown()
        store.close()


def test_autosave_failure_is_reported(qtbot, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)

    def snapshot() -> RecoverySnapshot:
        raise OSError("disk full")

    autosave = AutosaveService(store, snapshot, delay_s=0)
    try:
        autosave.document_changed()
        with qtbot.waitSignal(autosave.failed, timeout=1000) as blocker:
            autosave.flush()
        assert "disk full" in blocker.args[0]
    finally:
        autosave.shutdown()
        store.close()


def test_autosave_while_typing_without_a_pause(qtbot, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    autosave = AutosaveService(store, lambda: RecoverySnapshot("text"), delay_s=60, max_wait_s=0.1)
    try:
        with qtbot.waitSignal(autosave.saved, timeout=2000):
            autosave.document_changed()
            qtbot.waitUntil(lambda: not autosave.pending or bool(autosave.document_changed()),
                            timeout=2000)
    finally:
        autosave.shutdown()
        store.close()


def test_release_keeps_the_text_for_the_next_start(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    store.write(RecoverySnapshot("kept"))
    store.release()
    later = RecoveryStore(tmp_path)
    assert [e.text for e in later.pending()] == ["kept"]
    later.close()


def test_a_10_mb_paste_is_kept_whole(qtbot, tmp_path: Path) -> None:
    """A huge insertion goes through the journal in one record and comes back whole."""
    store = RecoveryStore(tmp_path)
    text = {"value": "start "}
    autosave = AutosaveService(store, lambda: RecoverySnapshot(text["value"]), delay_s=60,
                               max_wait_s=0)
    try:
        with qtbot.waitSignal(autosave.saved, timeout=5000):
            autosave.document_changed()
        pasted = "0123456789abcdef\n" * (10 * 1024 * 1024 // 17)
        text["value"] = "start " + pasted + "end"
        with qtbot.waitSignal(autosave.saved, timeout=10000):
            autosave.document_changed()
        assert not autosave.pending
    finally:
        autosave.shutdown()
    store.release()
    later = RecoveryStore(tmp_path)
    assert [e.text for e in later.pending()] == [text["value"]]
    later.close()


@pytest.mark.parametrize(("old", "new"), [
    ("", ""), ("", "abc"), ("abc", ""), ("abc", "abc"), ("abc", "abxc"), ("hello", "help"),
    ("aaaa", "aaaaa"), ("x" * 200_000, "x" * 100_000 + "y" + "x" * 100_000),
    ("ab" * 70_000, "ab" * 35_000 + "ba" * 35_000)])
def test_text_edit_turns_old_into_new(old: str, new: str) -> None:
    position, removed, inserted = text_edit(old, new)
    assert old[:position] + inserted + old[position + removed:] == new
    assert len(inserted) <= len(new)


def test_journal_grows_until_a_quarter_of_the_text_then_a_snapshot(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    text = "x" * 100
    store.record(RecoverySnapshot(text))
    assert store.file.exists() and not store.journal.exists()
    for index in range(3):
        text += f" word{index}"
        assert store.record(RecoverySnapshot(text)) == store.journal
    assert store.journal.stat().st_size < 200
    store.record(RecoverySnapshot(text, "/elsewhere.txt"))  # another file: a fresh snapshot
    assert not store.journal.exists()
    store.release()
    later = RecoveryStore(tmp_path)
    assert [(e.text, e.document) for e in later.pending()] == [(text, "/elsewhere.txt")]
    later.close()


def test_encode_document_keeps_uniform_and_mixed_breaks() -> None:
    assert encode_document("a\nb", TextFormat("\r\n", True)) == b"\xef\xbb\xbfa\r\nb"
    mixed = TextFormat("\r\n", False, ("a", "b", "c"), ("\r\n", "\n"))
    assert encode_document("a\nb\nc", mixed) == b"a\r\nb\nc"
    assert encode_document("a\nb\nc\nd", mixed) == b"a\r\nb\nc\r\nd"
    assert encode_document("z\na\nb\nc", mixed) == b"z\r\na\r\nb\nc"


def test_only_dead_writers_temporaries_are_cleaned(tmp_path: Path) -> None:
    mine = tmp_path / f".novel.txt.aigc-studio-{os.getpid()}-abc.tmp"
    dead = tmp_path / ".novel.txt.aigc-studio-999999999-abc.tmp"
    other = tmp_path / ".novel.txt.swp"
    for file in (mine, dead, other):
        file.write_text("partial")
    assert clean_stale_temporaries(tmp_path, "novel.txt") == [dead]
    os.utime(mine, (0, 0))  # an hour old: stale even though the id is alive
    assert clean_stale_temporaries(tmp_path) == [mine]
    assert other.exists()


def test_save_returns_the_new_disk_state(tmp_path: Path) -> None:
    path = tmp_path / "novel.txt"
    state = write_document(path, "text")
    assert state is not None and state.size == 4 and state.sha256
    assert read_document(path).disk == state

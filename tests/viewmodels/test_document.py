"""The document view-model: files, modification, counts and the recovery copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_studio.services.documents import DocumentError, RecoveryStore
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.document import DocumentViewModel
from tests.services.fakes import Recorder


@pytest.fixture
def store(tmp_path: Path) -> RecoveryStore:
    return RecoveryStore(tmp_path / "recovery")


@pytest.fixture
def document(settings: Settings, store: RecoveryStore) -> Iterator[DocumentViewModel]:
    document = DocumentViewModel(settings, store)
    yield document
    document.close()


def test_new_load_save(document: DocumentViewModel, tmp_path: Path, settings: Settings) -> None:
    assert document.title == "Untitled \u2014 AIGC Studio"
    text = {"value": "Hello there, writer."}
    document.attach(lambda: text["value"])
    titles = Recorder()
    document.title_changed.connect(titles)
    document.set_modified(True)
    assert document.title.startswith("*Untitled")
    path = tmp_path / "story.md"
    document.save(path)
    assert path.read_text() == "Hello there, writer."
    assert not document.modified and document.path == path
    assert document.title == "story.md \u2014 AIGC Studio"
    assert settings.recent_files() == [str(path)]
    loaded = document.load(path)
    assert loaded.text == "Hello there, writer."


def test_missing_file_opens_empty_and_is_created_on_save(document: DocumentViewModel,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    assert document.load(path).text == ""
    assert document.path == path and not path.exists()
    document.attach(lambda: "first words")
    document.save()
    assert path.read_text() == "first words"


def test_bad_file_changes_nothing(document: DocumentViewModel, tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes(b"\xff\xfeU\x00T\x00F\x00")
    with pytest.raises(DocumentError, match="not a UTF-8 text file"):
        document.load(path)
    assert document.path is None


def test_counts_are_debounced(qtbot, document: DocumentViewModel) -> None:
    document.attach(lambda: "one two  three\nfour")
    with qtbot.waitSignal(document.counts_changed, timeout=2000) as blocker:
        document.text_changed()
        document.text_changed()
    assert blocker.args == [4, 19]


def test_autosave_writes_only_unsaved_text(qtbot, document: DocumentViewModel,
                                           store: RecoveryStore, settings: Settings) -> None:
    settings.set_value("documents/autosave_s", 1)
    document.attach(lambda: "unsaved draft")
    document.text_changed()
    assert not document.autosave.pending  # nothing unsaved yet
    document.set_modified(True)
    document.text_changed()
    document.focus_lost()
    assert store.file.read_text().endswith("unsaved draft")
    document.set_modified(False)  # saved (or undone to the saved text)
    assert not store.file.exists()


def test_a_failed_read_changes_nothing_and_take_makes_it_the_document(
        document: DocumentViewModel, tmp_path: Path) -> None:
    first = tmp_path / "first.txt"
    first.write_text("first")
    document.load(first)
    with pytest.raises(DocumentError, match="folder"):
        document.read(tmp_path)
    assert document.path == first
    second = tmp_path / "second.txt"
    second.write_bytes(b"one\r\ntwo\n")
    loaded = document.read(second)
    assert document.path == first  # reading alone changes nothing
    document.take(loaded)
    assert document.path == second
    document.attach(lambda: loaded.text)
    document.save()
    assert second.read_bytes() == b"one\r\ntwo\n"


def test_saving_records_the_disk_state(document: DocumentViewModel, tmp_path: Path) -> None:
    from aigc_studio.services.documents import DiskChange

    path = tmp_path / "novel.txt"
    document.attach(lambda: "mine")
    document.save(path)
    assert document.disk_change() is DiskChange.UNCHANGED
    path.write_text("theirs")
    assert document.disk_change() is DiskChange.CHANGED
    path.unlink()
    assert document.disk_change() is DiskChange.DELETED
    document.save()
    assert document.disk_change() is DiskChange.UNCHANGED and path.read_text() == "mine"


def test_counts_follow_each_change_until_the_text_is_long(qtbot, document: DocumentViewModel,
                                                         monkeypatch) -> None:  # noqa: ANN001
    """The counts follow every change of an ordinary document at once (no waiting for a pause, which
    never comes while a writer types steadily); a document longer than INSTANT_COUNT_CHARS is
    recounted after a pause instead."""
    import aigc_studio.viewmodels.document as module

    monkeypatch.setattr(module, "INSTANT_COUNT_CHARS", 20)
    text = ["one two"]
    document.attach(lambda: text[0])
    document.text_changed()
    assert document.counts == (2, 7)
    text[0] = "one two three four five six"  # counted at once: the text was short when last counted
    document.text_changed()
    assert document.counts == (6, 27)
    text[0] += " seven"  # now long: the recount waits for the pause
    document.text_changed()
    assert document.counts == (6, 27)
    with qtbot.waitSignal(document.counts_changed, timeout=2000) as blocker:
        pass
    assert blocker.args == [7, 33]

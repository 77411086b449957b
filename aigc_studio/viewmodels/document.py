"""The open document: its file, whether it has unsaved changes, its counts and its recovery copy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_studio.core.completion import count_words
from aigc_studio.services.documents import (
    AutosaveService,
    DiskChange,
    DiskState,
    DocumentError,
    LoadedDocument,
    RecoveryEntry,
    RecoverySnapshot,
    RecoveryStore,
    TextFormat,
    is_read_only,
    read_document,
    reformat,
    write_document,
)
from aigc_studio.services.settings import AUTOSAVE_DELAY, Settings

__all__ = ["DocumentViewModel"]

COUNT_DELAY_MS = 300  # recount words this long after the last change, in a long document
INSTANT_COUNT_CHARS = 1_000_000
"""Up to this many characters the counts follow every change (counting 1 MB takes about 3 ms); a longer
document is recounted after a pause in the changes."""


class DocumentViewModel(QObject):
    """The document shown in the editor.

    The editor's text is read through ``text`` (a callable set with :meth:`attach`), only when it is
    needed: to save, to autosave and to count words. Loading and saving raise
    :class:`~aigc_studio.services.documents.DocumentError`; the window shows the message.
    """

    path_changed = Signal(object)
    """The document's file changed: carries a ``Path`` or ``None`` (untitled)."""

    modified_changed = Signal(bool)
    """The document got (True) or lost (False) unsaved changes."""

    title_changed = Signal(str)
    """The window title changed: carries it."""

    counts_changed = Signal(int, int)
    """The counts changed: carries the number of words and of characters."""

    autosave_failed = Signal(str)
    """The recovery copy could not be written: carries the message."""

    def __init__(self, settings: Settings, store: RecoveryStore,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._store = store
        self._text: Callable[[], str] = lambda: ""
        self._path: Path | None = None
        self._format = TextFormat()
        self._disk: DiskState | None = None  # the file as read, last saved, or accepted as changed
        self._modified = False
        self._counts = (0, 0)
        self._title = self._make_title()
        self.autosave = AutosaveService(store, self._snapshot,
                                        delay_s=float(settings.get(AUTOSAVE_DELAY)),
                                        parent=self)
        self.autosave.failed.connect(self.autosave_failed)
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(COUNT_DELAY_MS)
        self._count_timer.timeout.connect(self.recount)
        settings.changed.connect(self._on_setting_changed)

    def attach(self, text: Callable[[], str]) -> None:
        """Read the editor's text through ``text``."""
        self._text = text

    # -- state ------------------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The file, or ``None`` for an untitled document."""
        return self._path

    @property
    def modified(self) -> bool:
        """Whether there are unsaved changes."""
        return self._modified

    @property
    def title(self) -> str:
        """The window title: the file name, a star for unsaved changes, the application."""
        return self._title

    @property
    def display_name(self) -> str:
        """The file name, or "Untitled"."""
        return self._path.name if self._path else "Untitled"

    @property
    def counts(self) -> tuple[int, int]:
        """Words and characters, as last counted."""
        return self._counts

    @property
    def recovery_error(self) -> str | None:
        """Why autosave and recovery are off (the recovery folder is not writable), or None."""
        return self._store.error

    def _make_title(self) -> str:
        star = "*" if self._modified else ""
        return f"{star}{self.display_name} \u2014 AIGC Studio"

    def _update_title(self) -> None:
        title = self._make_title()
        if title != self._title:
            self._title = title
            self.title_changed.emit(title)

    def _set_path(self, path: Path | None) -> None:
        if path != self._path:
            self._path = path
            self.path_changed.emit(path)
            self._update_title()

    def set_modified(self, modified: bool) -> None:
        """Note whether the editor has unsaved changes (the document's modification flag)."""
        if modified != self._modified:
            self._modified = modified
            self.modified_changed.emit(modified)
            self._update_title()
            if not modified:
                self.autosave.clear()

    # -- events -----------------------------------------------------------------------------------

    def text_changed(self) -> None:
        """The text changed: schedule the autosave and a recount."""
        if self._modified:
            self.autosave.document_changed()
        if self._counts[1] <= INSTANT_COUNT_CHARS:  # as long as the text was when last counted
            self.recount()
        else:
            self._count_timer.start()

    def focus_lost(self) -> None:
        """The window lost focus: write the recovery copy now."""
        self.autosave.flush()

    @Slot()
    def recount(self) -> None:
        """Count words and characters now."""
        self._count_timer.stop()
        text = self._text()
        counts = (count_words(text), len(text))
        if counts != self._counts:
            self._counts = counts
            self.counts_changed.emit(*counts)

    def _snapshot(self) -> RecoverySnapshot | None:
        if not self._modified:
            return None
        return RecoverySnapshot(self._text(), str(self._path) if self._path else None)

    # -- the file on disk -------------------------------------------------------------------------

    def disk_change(self, path: Path | None = None) -> DiskChange:
        """What happened to ``path`` (default: the document's file) since it was read or saved.

        Another program's change is noticed by its time and size, then confirmed by its content.
        """
        path = path if path is not None else self._path
        if path is None:
            return DiskChange.UNCHANGED
        if not os.path.lexists(path):
            known = path == self._path and self._disk is not None
            return DiskChange.DELETED if known else DiskChange.UNCHANGED
        if is_read_only(path):
            return DiskChange.READ_ONLY
        if path != self._path or self._disk is None:
            return DiskChange.UNCHANGED  # a new file for Save As: the file dialog asked already
        try:
            info = os.stat(path)
        except OSError:
            return DiskChange.DELETED
        if (info.st_mtime_ns, info.st_size) == (self._disk.mtime_ns, self._disk.size):
            return DiskChange.UNCHANGED
        now = DiskState.of(path)
        if self._disk.same_file(now):
            self._disk = now  # touched, not changed
            return DiskChange.UNCHANGED
        return DiskChange.CHANGED

    def keep_mine(self) -> None:
        """The writer keeps the editor's text over another program's change: stop asking, and let
        the next save overwrite that change."""
        if self._path is not None:
            self._disk = DiskState.of(self._path)

    # -- files ------------------------------------------------------------------------------------

    def new(self) -> None:
        """Start an untitled document (the caller has cleared the editor)."""
        self._format, self._disk = TextFormat(), None
        self._set_path(None)
        self.set_modified(False)
        self.autosave.clear()

    def read(self, path: str | Path) -> LoadedDocument:
        """Read a file without changing anything; raises ``DocumentError``."""
        return read_document(path)

    def take(self, loaded: LoadedDocument) -> None:
        """Make ``loaded`` (from :meth:`read`) the document (the caller puts its text in the editor)."""
        self._format, self._disk = loaded.format, loaded.disk
        self._set_path(loaded.path.absolute())
        self.set_modified(False)
        self.autosave.clear()
        if loaded.exists:
            self._settings.add_recent_file(loaded.path)

    def load(self, path: str | Path) -> LoadedDocument:
        """Read a file for the editor; raises ``DocumentError`` (nothing changes then).

        A path that does not exist yet opens as an empty document that is created on the first save.
        """
        loaded = self.read(path)
        self.take(loaded)
        return loaded

    def save(self, path: str | Path | None = None) -> Path:
        """Save the editor's text to ``path`` (default: the document's file); raises ``DocumentError``.

        Unchanged lines keep the line breaks the file had, so an unedited document is written back
        byte for byte. The caller checks :meth:`disk_change` first.
        """
        target = Path(path) if path is not None else self._path
        if target is None:
            raise ValueError("an untitled document needs a path to be saved")
        text = self._text()
        disk = write_document(target, text, text_format=self._format)
        self._format, self._disk = reformat(text, self._format), disk
        self._set_path(target.absolute())
        self._settings.add_recent_file(target)
        self.set_modified(False)
        self.autosave.clear()
        return target

    def restore(self, entry: RecoveryEntry) -> str:
        """Take over a recovered entry: its file becomes the document's; return its text.

        The caller puts the text in the editor and marks it modified; the entry is removed from the
        recovery folder once this session has its own copy (at the next autosave, which is forced).
        """
        path = Path(entry.document) if entry.document else None
        self._format, self._disk = TextFormat(), None
        if path is not None and path.exists():
            try:
                loaded = read_document(path)
                self._format, self._disk = loaded.format, loaded.disk
            except DocumentError:  # keep the defaults for a file that changed kind
                pass
        self._set_path(path)
        return entry.text

    def adopt_recovery(self, entry: RecoveryEntry) -> None:
        """After :meth:`restore` and marking the editor modified: keep this session's own copy of
        the text, then delete the old session's entry (so the text is never only in memory)."""
        self.autosave.document_changed()
        self.autosave.flush()
        self._store.discard(entry)

    def recovery_entries(self) -> list[RecoveryEntry]:
        """Unsaved text left by sessions that ended without saving, newest first."""
        return self._store.pending()

    def discard_recovery(self, entry: RecoveryEntry) -> None:
        """Delete a recovery entry."""
        self._store.discard(entry)

    def close(self) -> None:
        """Stop the timers and end the recovery session.

        Unsaved changes at this point were not dealt with by the user (saving or discarding them
        clears the modified flag first), so their copy is written and kept for the next start.
        """
        self._count_timer.stop()
        if self._modified:
            self.autosave.document_changed()
            self.autosave.flush()
            self.autosave.shutdown()
            self._store.release()
        else:
            self.autosave.shutdown()
            self._store.close()

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key == AUTOSAVE_DELAY.key:
            self.autosave.delay_s = float(self._settings.get(AUTOSAVE_DELAY))

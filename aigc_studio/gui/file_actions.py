"""The main window's file actions: new, open, save, recent files, recovery and changes on disk.

:class:`FileActionsWindow` is a part of :class:`~aigc_studio.gui.main_window.MainWindow`, kept apart
so each module reads on its own; it needs the window's editor, document view-model, settings and
recent-files menu.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Slot
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
)

from aigc_studio.services.documents import DiskChange, DocumentError

from .dialogs import ChoiceDialog, RecoveryDialog

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMenu

    from aigc_studio.services.settings import Settings
    from aigc_studio.viewmodels.document import DocumentViewModel

    from .writing_editor import WritingEditorView

__all__ = ["FILE_FILTERS", "FileActionsWindow"]

log = logging.getLogger(__name__)

FILE_FILTERS = "Text and Markdown (*.txt *.md *.markdown);;Text (*.txt);;Markdown (*.md);;All files (*)"


class FileActionsWindow(QMainWindow):
    """Files for the main window: what File > New, Open, Save, Save As, Open Recent and Recover
    Unsaved Text do, and the question when the file changed on disk. Public methods return whether
    they did it."""

    if TYPE_CHECKING:
        settings: Settings
        document: DocumentViewModel
        editor: WritingEditorView
        recent_menu: QMenu
        _shut_down: bool

    def _warn(self, title: str, message: str) -> None:
        QMessageBox.warning(self, title, message)

    def maybe_save(self) -> bool:
        """Ask what to do with unsaved changes; True when it is fine to go on."""
        if not self.document.modified:
            return True
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"Save the changes to {self.document.display_name} before closing it?",
            buttons, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        if answer == QMessageBox.StandardButton.Discard:
            self.document.set_modified(False)  # dropped on purpose: no recovery copy either
            return True
        return False

    def _set_editor_text(self, text: str, *, modified: bool) -> None:
        self.editor.set_text(text)
        self.editor.moveCursor(QTextCursor.MoveOperation.End)  # writers go on at the end
        self.editor.document().setModified(modified)
        # setPlainText blocks the document's signals, so the flag is passed on by hand.
        self.document.set_modified(modified)

    def new_file(self) -> bool:
        """Start an untitled document."""
        if not self.maybe_save():
            return False
        self._set_editor_text("", modified=False)
        self.document.new()
        self.document.recount()
        return True

    def open_file(self, path: str | Path | None = None) -> bool:
        """Open ``path`` (ask for one if None); a missing path opens empty and is created on save.

        The file is read before anything is asked or changed, so a file that cannot be opened
        leaves the open work as it was."""
        if path is None:
            start = str(self.document.path.parent) if self.document.path else ""
            chosen, _ = QFileDialog.getOpenFileName(self, "Open", start, FILE_FILTERS)
            if not chosen:
                return False
            path = chosen
        try:
            loaded = self.document.read(path)
        except DocumentError as error:
            log.warning("cannot open %s: %s", path, error)
            self._warn("Cannot open the file", f"{error}\n\nThe open document is unchanged.")
            return False
        if not self.maybe_save():
            return False
        self.document.take(loaded)
        self._set_editor_text(loaded.text, modified=False)
        self.document.recount()
        if not loaded.exists:
            self.statusBar().showMessage(f"New file: {Path(path).name} is created when you save",
                                         8000)
        return True

    def save(self) -> bool:
        """Save to the document's file (ask for one if it has none)."""
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        """Save under a new name (ask for one if None)."""
        if path is None:
            start = str(self.document.path or Path.home() / "Untitled.txt")
            chosen, chosen_filter = QFileDialog.getSaveFileName(self, "Save As", start,
                                                                FILE_FILTERS)
            if not chosen:
                return False
            path = Path(chosen)
            if not path.suffix:
                path = path.with_suffix(".md" if "Markdown (*.md)" == chosen_filter else ".txt")
        return self._save_to(Path(path))

    def _ask(self, name: str, title: str, text: str, choices: list[tuple[str, str]]) -> str:
        """Ask a question with named choices through :meth:`exec_dialog`; return the key chosen."""
        dialog = ChoiceDialog(name, title, text, choices, self)
        self.exec_dialog(dialog)
        return dialog.choice

    def _save_to(self, path: Path) -> bool:
        change = self.document.disk_change(path)
        if change is DiskChange.READ_ONLY:
            choice = self._ask(
                "readOnlyDialog", "The file is read-only",
                f"{path.name} is read-only, so it was not replaced. Your text is still here; save "
                f"it under another name?", [("save_as", "Save As\u2026"), ("cancel", "Cancel")])
            return self.save_as() if choice == "save_as" else False
        if change is DiskChange.CHANGED:
            choice = self._ask(
                "fileChangedDialog", "The file changed on disk",
                f"{path.name} was changed by another program after you opened it. Overwrite it "
                f"with your text (the other program's changes are lost), save your text under "
                f"another name, or cancel?",
                [("overwrite", "Overwrite"), ("save_as", "Save As\u2026"), ("cancel", "Cancel")])
            if choice == "save_as":
                return self.save_as()
            if choice != "overwrite":
                return False
        try:
            self.document.save(path)
        except DocumentError as error:
            self._warn("Cannot save", str(error))
            return False
        self.editor.document().setModified(False)
        self.statusBar().showMessage(f"Saved {path.name}", 3000)
        return True

    @Slot()
    def fill_recent_menu(self) -> None:
        """Fill File > Open Recent with the recent files (called as the menu opens)."""
        self.recent_menu.clear()
        paths = self.settings.recent_files()
        if not paths:
            self.recent_menu.addAction("No recent files").setEnabled(False)
            return
        for path in paths:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self._open_recent(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", self._clear_recent)

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self._warn("Cannot open the file", f"{path} no longer exists.")
            self.settings.remove_recent_file(path)
            return
        self.open_file(path)

    def _clear_recent(self) -> None:
        for path in self.settings.recent_files():
            self.settings.remove_recent_file(path)

    # -- recovery ---------------------------------------------------------------------------------

    def exec_dialog(self, dialog: QDialog) -> int:
        """Run a modal dialog (tests replace this so nothing blocks)."""
        return dialog.exec()

    _recovery_off_shown = False  # the one-time message that autosave and recovery are off
    _checking_disk = False  # the "file changed on disk" question is open

    def _show_recovery_off(self) -> None:
        """Say once, and keep a status-bar note, that unsaved text cannot be kept for recovery."""
        if self._recovery_off_shown:
            return
        self._recovery_off_shown = True
        why = self.document.recovery_error
        label = QLabel("Autosave off")
        label.setObjectName("recoveryOffLabel")
        label.setToolTip(f"Autosave and recovery are off: {why}")
        self.statusBar().addPermanentWidget(label)
        self._warn("Autosave and recovery are off",
                   f"Unsaved text cannot be kept for recovery after a crash: {why}.\n\n"
                   f"Everything else works; save your work often (Ctrl+S).")

    def offer_recovery(self, ask_when_none: bool = False) -> bool:
        """Offer the unsaved text of sessions that ended without saving; True if text was restored.

        When the recovery folder cannot be written, say so instead (once)."""
        if self.document.recovery_error is not None:
            self._show_recovery_off()
            if ask_when_none:
                QMessageBox.information(self, "Recover unsaved text",
                                        f"Recovery is off: {self.document.recovery_error}.")
            return False
        entries = self.document.recovery_entries()
        if not entries:
            if ask_when_none:
                QMessageBox.information(self, "Recover unsaved text",
                                        "There is no unsaved text to recover.")
            return False
        dialog = RecoveryDialog(entries, self)
        self.exec_dialog(dialog)
        entry = dialog.entry
        if entry is None or dialog.choice == "later":
            return False
        if dialog.choice == "discard":
            self.document.discard_recovery(entry)
            return False
        if not self.maybe_save():
            return False
        text = self.document.restore(entry)
        self._set_editor_text(text, modified=True)
        self.document.adopt_recovery(entry)
        self.document.recount()
        self.statusBar().showMessage(f"Recovered {entry.describe()}", 8000)
        return True

    # -- changes on disk --------------------------------------------------------------------------

    @Slot()
    def check_disk(self) -> bool:
        """The window came back: if another program changed the file, ask Reload / Keep mine.

        Returns whether the file was reloaded."""
        if self._checking_disk or self._shut_down or QApplication.activeModalWidget() is not None:
            return False
        if self.document.disk_change() is not DiskChange.CHANGED:
            return False
        path = self.document.path
        assert path is not None
        self._checking_disk = True
        try:
            lost = (" Reloading discards your unsaved changes." if self.document.modified
                    else "")
            choice = self._ask(
                "diskChangedDialog", "The file changed on disk",
                f"{path.name} was changed by another program. Reload it, or keep your text "
                f"(saving it then replaces the other program's changes)?{lost}",
                [("reload", "Reload"), ("keep", "Keep mine")])
            if choice != "reload":
                self.document.keep_mine()
                return False
            try:
                loaded = self.document.read(path)
            except DocumentError as error:
                self._warn("Cannot reload the file", f"{error}\n\nYour text is unchanged.")
                self.document.keep_mine()
                return False
            self.document.take(loaded)
            self._set_editor_text(loaded.text, modified=False)
            self.document.recount()
            self.statusBar().showMessage(f"Reloaded {path.name}", 3000)
            return True
        finally:
            self._checking_disk = False

"""Dialogs: recovering unsaved text, questions about a document's file, preferences, and what is
known about the model."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.services.documents import RecoveryEntry
from aigc_studio.services.models import ModelStatus
from aigc_studio.services.settings import OPTIONS, Settings

from .settings_form import SettingsForm

__all__ = ["ChoiceDialog", "PreferencesDialog", "RecoveryDialog", "model_details"]


class ChoiceDialog(QMessageBox):
    """A warning that offers named choices (run it with the window's ``exec_dialog``).

    ``choices`` are ``(key, button text)``; the last one is the escape (Cancel, Keep mine). After
    ``exec()``, :attr:`choice` is the key of the button pressed, or the last key if it was closed.
    """

    def __init__(self, name: str, title: str, text: str, choices: list[tuple[str, str]],
                 parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton,
                         parent)
        self.setObjectName(name)
        self.choice = choices[-1][0]
        self.buttons_: dict[str, QPushButton] = {}
        for index, (key, label) in enumerate(choices):
            last = index == len(choices) - 1
            role = (QMessageBox.ButtonRole.RejectRole if last
                    else QMessageBox.ButtonRole.AcceptRole if index == 0
                    else QMessageBox.ButtonRole.ActionRole)
            button = self.addButton(label, role)
            button.clicked.connect(lambda _checked=False, key=key: self._choose(key))
            self.buttons_[key] = button
            if last:
                self.setEscapeButton(button)
        self.setDefaultButton(self.buttons_[choices[-1][0]])

    def _choose(self, key: str) -> None:
        self.choice = key


class RecoveryDialog(QDialog):
    """Offers the text that earlier sessions left unsaved, showing what would be restored.

    After ``exec()``: :attr:`choice` is "recover", "discard" or "later", and :attr:`entry` the entry
    chosen.
    """

    def __init__(self, entries: list[RecoveryEntry], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recoveryDialog")
        self.setWindowTitle("Recover unsaved text")
        self.entries = entries
        self.choice = "later"
        self.entry: RecoveryEntry | None = entries[0] if entries else None
        intro = QLabel(
            "<b>AIGC Studio did not close normally last time.</b><br>"
            "This unsaved text was kept. Recover it to continue where you stopped; the file on "
            "disk is not changed until you save.", self)
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        for entry in entries:
            item = QListWidgetItem(entry.describe(), self.list)
            item.setToolTip(entry.document or "never saved")
        self.preview = QPlainTextEdit(self)
        self.preview.setObjectName("recoveryPreview")
        self.preview.setReadOnly(True)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.list)
        splitter.addWidget(self.preview)
        splitter.setSizes([80, 320])
        buttons = QDialogButtonBox(self)
        self.recover_button = buttons.addButton("Recover", QDialogButtonBox.ButtonRole.AcceptRole)
        self.discard_button = buttons.addButton("Discard",
                                                QDialogButtonBox.ButtonRole.DestructiveRole)
        later = buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        self.recover_button.clicked.connect(lambda: self._finish("recover"))
        self.discard_button.clicked.connect(lambda: self._finish("discard"))
        later.clicked.connect(lambda: self._finish("later"))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.list.setCurrentRow(0)
        self.resize(640, 480)

    @Slot(int)
    def _on_row_changed(self, row: int) -> None:
        self.entry = self.entries[row] if 0 <= row < len(self.entries) else None
        self.preview.setPlainText(self.entry.text if self.entry else "")
        self.preview.moveCursor(QTextCursor.MoveOperation.End)  # where the writing stopped
        self.preview.ensureCursorVisible()

    def _finish(self, choice: str) -> None:
        self.choice = choice
        if choice == "later":
            self.reject()
        else:
            self.accept()


class PreferencesDialog(QDialog):
    """Every setting that is not in the sampling panel, built from the declarations."""

    GROUPS = ("completion", "continue", "editor", "documents")

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preferencesDialog")
        self.setWindowTitle("Preferences")
        options = [option for option in OPTIONS.values() if option.group in self.GROUPS]
        keys = [option.key for option in options]
        self.form = SettingsForm(settings, options, self)
        reset = QPushButton("Restore defaults", self)
        reset.clicked.connect(lambda: settings.reset(keys))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        buttons.addButton(reset, QDialogButtonBox.ButtonRole.ResetRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addWidget(buttons)


def model_details(status: ModelStatus) -> str:
    """A few lines about the model for the "Model details" dialog."""
    lines = [f"Model: {status.name or 'the first installed'}", f"State: {status.state}"]
    if status.provider:
        lines.append(f"Runs on: {status.device} ({status.provider})")
    if status.context_length:
        lines.append(f"Context: {status.context_length} tokens")
    if status.device_note:
        lines.append(f"GPU: {status.device_note}")
    if status.error:
        lines.append("")
        lines.append(f"Why it did not load: {status.error}")
        lines.append("")
        lines.append("The editor works without suggestions. Choose another model in the "
                     "Sampling panel, or reinstall this one.")
    return "\n".join(lines)

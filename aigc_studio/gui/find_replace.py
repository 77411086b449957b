"""The find and replace bar under the editor (Ctrl+F, Ctrl+H)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QKeyEvent, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

__all__ = ["FindReplaceBar"]


class FindReplaceBar(QWidget):
    """Find (next, previous) and replace (one, all) in a plain-text editor."""

    def __init__(self, editor: QPlainTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findReplaceBar")
        self._editor = editor
        self.find_edit = QLineEdit(self)
        self.find_edit.setPlaceholderText("Find")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self.find_next)
        self.replace_edit = QLineEdit(self)
        self.replace_edit.setPlaceholderText("Replace with")
        self.replace_edit.returnPressed.connect(self.replace_one)
        self.case_box = QCheckBox("Match case", self)
        self.words_box = QCheckBox("Whole words", self)
        self.message = QLabel(self)
        self.message.setObjectName("findMessage")
        buttons = []
        for text, slot in (("Previous", self.find_previous), ("Next", self.find_next),
                           ("Replace", self.replace_one), ("Replace all", self.replace_all),
                           ("Close", self.close_bar)):
            button = QPushButton(text, self)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            buttons.append(button)
        layout = QGridLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.find_edit, 0, 0)
        layout.addWidget(buttons[0], 0, 1)
        layout.addWidget(buttons[1], 0, 2)
        layout.addWidget(self.case_box, 0, 3)
        layout.addWidget(self.words_box, 0, 4)
        layout.addWidget(buttons[4], 0, 5)
        self.replace_row = [self.replace_edit, buttons[2], buttons[3]]
        layout.addWidget(self.replace_edit, 1, 0)
        layout.addWidget(buttons[2], 1, 1)
        layout.addWidget(buttons[3], 1, 2)
        layout.addWidget(self.message, 1, 3, 1, 3)
        layout.setColumnStretch(0, 1)
        self.hide()

    def open(self, replace: bool = False) -> None:
        """Show the bar (with the replace row if ``replace``), seeded with the selection."""
        for widget in self.replace_row:
            widget.setVisible(replace)
        selected = self._editor.textCursor().selectedText()
        if selected and "\u2029" not in selected:
            self.find_edit.setText(selected)
        self.message.clear()
        self.show()
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    @Slot()
    def close_bar(self) -> None:
        """Hide the bar and give the focus back to the editor."""
        self.hide()
        self._editor.setFocus()

    def _flags(self, backward: bool = False) -> QTextDocument.FindFlag:
        flags = QTextDocument.FindFlag(0)
        if self.case_box.isChecked():
            flags |= QTextDocument.FindFlag.FindCaseSensitively
        if self.words_box.isChecked():
            flags |= QTextDocument.FindFlag.FindWholeWords
        if backward:
            flags |= QTextDocument.FindFlag.FindBackward
        return flags

    def _find(self, backward: bool) -> bool:
        text = self.find_edit.text()
        if not text:
            return False
        document = self._editor.document()
        cursor = document.find(text, self._editor.textCursor(), self._flags(backward))
        if cursor.isNull():  # wrap around
            start = QTextCursor(document)
            if backward:
                start.movePosition(QTextCursor.MoveOperation.End)
            cursor = document.find(text, start, self._flags(backward))
        if cursor.isNull():
            self.message.setText("Not found")
            return False
        self.message.clear()
        self._editor.setTextCursor(cursor)
        return True

    @Slot()
    def find_next(self) -> bool:
        """Select the next match (wrapping around); False if there is none."""
        return self._find(False)

    @Slot()
    def find_previous(self) -> bool:
        """Select the previous match (wrapping around); False if there is none."""
        return self._find(True)

    def _selection_matches(self) -> bool:
        selected = self._editor.textCursor().selectedText()
        wanted = self.find_edit.text()
        if self.case_box.isChecked():
            return selected == wanted
        return selected.lower() == wanted.lower() and bool(wanted)

    @Slot()
    def replace_one(self) -> None:
        """Replace the selected match and select the next one."""
        if self._selection_matches():
            self._editor.textCursor().insertText(self.replace_edit.text())
        self.find_next()

    @Slot()
    def replace_all(self) -> int:
        """Replace every match as one undo step; return how many."""
        text = self.find_edit.text()
        if not text:
            return 0
        document = self._editor.document()
        count = 0
        cursor = QTextCursor(document)
        edit = QTextCursor(document)
        edit.beginEditBlock()
        replacement = self.replace_edit.text()
        while True:
            cursor = document.find(text, cursor, self._flags())
            if cursor.isNull():
                break
            cursor.insertText(replacement)
            count += 1
        edit.endEditBlock()
        self.message.setText(f"Replaced {count}" if count else "Not found")
        return count

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close_bar()
            event.accept()
            return
        super().keyPressEvent(event)

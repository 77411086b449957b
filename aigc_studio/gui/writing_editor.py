"""The writing editor: a plain-text editor that paints the model's suggestion as grey ghost text.

The ghost text is painted in :meth:`WritingEditorView.paintEvent`, laid out with the same font, tab
stops and line width as the real text (so it wraps like it), right after the cursor. It is never part
of the document: accepting it inserts it, as one undo step.

Keys: Tab accepts the whole suggestion (and inserts a tab when none is shown), Ctrl+Right accepts one
word, Esc dismisses, Alt+] and Alt+[ cycle through alternatives, Alt+\\ asks now (and for a longer
suggestion when one is shown). Ctrl+Enter continues the text; Esc stops it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QTextCharFormat,
    QTextCursor,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from aigc_studio.viewmodels.suggestion import SuggestionViewModel

__all__ = ["WritingEditorView", "ghost_color", "utf16_slice"]


def utf16_slice(text: str, start: int, end: int | None = None) -> str:
    """``text[start:end]`` with indices in UTF-16 code units (Qt's positions)."""
    if text.isascii():
        return text[start:end]
    data = text.encode("utf-16-le", "surrogatepass")
    stop = None if end is None else 2 * end
    return data[2 * start:stop].decode("utf-16-le", "surrogatepass")


def ghost_color(palette: QPalette) -> QColor:
    """Half-way between the text and the background: grey on light and on dark themes."""
    text = palette.color(QPalette.ColorRole.Text)
    base = palette.color(QPalette.ColorRole.Base)
    return QColor((text.red() + base.red()) // 2, (text.green() + base.green()) // 2,
                  (text.blue() + base.blue()) // 2)


class _EditorSource:
    """The view-model's read-only window on the editor's document."""

    def __init__(self, editor: QPlainTextEdit) -> None:
        self._editor = editor

    def cursor_position(self) -> int:
        return self._editor.textCursor().position()

    def has_selection(self) -> bool:
        return self._editor.textCursor().hasSelection()

    def text_range(self, start: int, end: int) -> str:
        if end <= start:
            return ""
        cursor = QTextCursor(self._editor.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText().replace("\u2029", "\n").replace("\u2028", "\n")

    def block_tail(self, position: int) -> str:
        block = self._editor.document().findBlock(position)
        return utf16_slice(block.text(), position - block.position())


class WritingEditorView(QPlainTextEdit):
    """The editor of the Writing workspace, bound to a :class:`SuggestionViewModel`."""

    continue_requested = Signal()
    """Ctrl+Enter was pressed in the editor (the window starts Continue)."""

    def __init__(self, suggestion: SuggestionViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("writingEditor")
        self._model = suggestion
        self._continue_cursor: QTextCursor | None = None
        self._continue_started = False
        self.setTabChangesFocus(False)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.document().setDocumentMargin(16)
        self.document().contentsChange.connect(self._on_contents_change)
        self.cursorPositionChanged.connect(self._on_cursor_position_changed)
        suggestion.attach(_EditorSource(self))
        suggestion.changed.connect(self.viewport().update)
        suggestion.continue_piece.connect(self._on_continue_piece)
        suggestion.continuing_changed.connect(self._on_continuing_changed)

    @property
    def suggestion(self) -> SuggestionViewModel:
        """The view-model of the ghost text."""
        return self._model

    # -- the document -----------------------------------------------------------------------------

    def set_text(self, text: str) -> None:
        """Replace the whole text (opening a file) without asking for a suggestion or an undo step."""
        with self._model.suspend():
            self.setPlainText(text)
        self._model.dismiss()

    @Slot(int, int, int)
    def _on_contents_change(self, position: int, removed: int, added: int) -> None:
        self._model.on_contents_changed(position, removed, added)

    @Slot()
    def _on_cursor_position_changed(self) -> None:
        self._model.on_cursor_moved(self.textCursor().position())

    # -- accepting --------------------------------------------------------------------------------

    def _insert_as_one_step(self, text: str) -> None:
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.insertText(text)
        cursor.endEditBlock()
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def accept_all(self) -> bool:
        """Insert the whole suggestion (one undo step); False if none is shown."""
        text = self._model.accept_all()
        if text and self._ghost_at_cursor():
            self._insert_as_one_step(text)
            return True
        return False

    def accept_word(self) -> bool:
        """Insert the suggestion's next word; False if none is shown."""
        text = self._model.accept_word()
        if text and self._ghost_at_cursor():
            self._insert_as_one_step(text)
            return True
        return False

    def _ghost_at_cursor(self) -> bool:
        cursor = self.textCursor()
        return (self._model.visible and not cursor.hasSelection()
                and cursor.position() == self._model.anchor)

    # -- keys -------------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        none = Qt.KeyboardModifier.NoModifier
        ctrl = Qt.KeyboardModifier.ControlModifier
        alt = Qt.KeyboardModifier.AltModifier
        if self._model.continuing:
            self._model.stop_continue()
            if key == Qt.Key.Key_Escape:
                event.accept()
                return
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and modifiers == ctrl:
            event.accept()
            self.continue_requested.emit()
            return
        if self._ghost_at_cursor():
            if key == Qt.Key.Key_Tab and modifiers == none and self.accept_all():
                event.accept()
                return
            if key == Qt.Key.Key_Right and modifiers == ctrl and self.accept_word():
                event.accept()
                return
            if key == Qt.Key.Key_Escape and modifiers == none:
                self._model.dismiss()
                event.accept()
                return
        if modifiers == alt:
            if key == Qt.Key.Key_BracketRight:
                self._model.cycle(1)
                event.accept()
                return
            if key == Qt.Key.Key_BracketLeft:
                self._model.cycle(-1)
                event.accept()
                return
            if key == Qt.Key.Key_Backslash:
                self._model.request_now()
                event.accept()
                return
        super().keyPressEvent(event)

    # -- continue ---------------------------------------------------------------------------------

    @Slot(bool)
    def _on_continuing_changed(self, continuing: bool) -> None:
        if continuing:
            cursor = self.textCursor()
            cursor.clearSelection()
            self._continue_cursor = cursor
            self._continue_started = False
        else:
            self._continue_cursor = None

    @Slot(str)
    def _on_continue_piece(self, text: str) -> None:
        cursor = self._continue_cursor
        if cursor is None:
            return
        follow = self.textCursor().position() == cursor.position()
        if self._continue_started:
            cursor.joinPreviousEditBlock()  # the whole passage is one undo step
        else:
            cursor.beginEditBlock()
            self._continue_started = True
        cursor.insertText(text)
        cursor.endEditBlock()
        if follow:
            self.setTextCursor(cursor)
            self.ensureCursorVisible()

    # -- painting ---------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._model.continuing or not self._ghost_at_cursor():
            return
        painter = QPainter(self.viewport())
        try:
            self._paint_ghost(painter)
        finally:
            painter.end()

    def _paint_ghost(self, painter: QPainter) -> None:
        cursor = self.textCursor()
        block = cursor.block()
        layout = block.layout()
        in_block = cursor.position() - block.position()
        line = layout.lineForTextPosition(in_block)
        if not line.isValid():
            return
        geometry = self.blockBoundingGeometry(block).translated(self.contentOffset())
        origin = geometry.topLeft() + layout.position()
        # Lay out the line's text up to the cursor, then the ghost, exactly like the real text; the
        # prefix is drawn transparent, so only the ghost shows, wrapped where real text would wrap.
        prefix = utf16_slice(block.text(), line.textStart(), in_block)
        ghost = self._model.ghost
        ghost_layout = QTextLayout(prefix + ghost, self.document().defaultFont(),
                                   self.viewport())
        ghost_layout.setTextOption(self.document().defaultTextOption())
        hidden = QTextCharFormat()
        hidden.setForeground(QColor(0, 0, 0, 0))
        grey = QTextCharFormat()
        grey.setForeground(ghost_color(self.palette()))
        prefix_units = len(prefix.encode("utf-16-le", "surrogatepass")) // 2
        ghost_units = len(ghost.encode("utf-16-le", "surrogatepass")) // 2
        ranges = []
        for start, length, fmt in ((0, prefix_units, hidden), (prefix_units, ghost_units, grey)):
            item = QTextLayout.FormatRange()
            item.start, item.length, item.format = start, length, fmt
            ranges.append(item)
        ghost_layout.setFormats(ranges)
        ghost_layout.beginLayout()
        y = line.y()
        while True:
            ghost_line = ghost_layout.createLine()
            if not ghost_line.isValid():
                break
            ghost_line.setLineWidth(line.width())
            ghost_line.setPosition(QPointF(line.x(), y))
            y += ghost_line.height()
        ghost_layout.endLayout()
        # Lines that run past the paragraph cover what follows it while the suggestion is shown, on
        # a faint tint that marks them as an overlay.
        base = self.palette().color(QPalette.ColorRole.Base)
        text = self.palette().color(QPalette.ColorRole.Text)
        base = QColor((base.red() * 24 + text.red()) // 25, (base.green() * 24 + text.green()) // 25,
                      (base.blue() * 24 + text.blue()) // 25)
        for index in range(1, ghost_layout.lineCount()):
            ghost_line = ghost_layout.lineAt(index)
            top = origin.y() + ghost_line.y()
            if top + ghost_line.height() > geometry.bottom() + 0.5:
                painter.fillRect(QRectF(0, top, self.viewport().width(), ghost_line.height()),
                                 base)
        ghost_layout.draw(painter, origin)

    def set_font_size(self, points: int) -> None:
        """Set the size of the text (the ghost text follows)."""
        font = QFont(self.font())
        font.setPointSize(points)
        self.setFont(font)

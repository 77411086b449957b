"""The main window: the Writing workspace, menus, status bar and the sampling dock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio import __version__
from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.documents import DiskChange, DocumentError, RecoveryStore
from aigc_studio.services.models import ModelStatus
from aigc_studio.services.settings import Settings
from aigc_studio.viewmodels.document import DocumentViewModel
from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel
from aigc_studio.viewmodels.suggestion import SuggestionViewModel

from .dialogs import ChoiceDialog, PreferencesDialog, RecoveryDialog, model_details
from .find_replace import FindReplaceBar
from .sampling_panel import SamplingPanel, plain_gpu_reason
from .writing_editor import WritingEditorView

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

PANEL_MIN_WIDTH = 180          # the sampling dock (its panel scrolls)
EDITOR_MIN_WIDTH = 360         # the writing workspace, whatever the panel's width
INSTANT_COUNT_CHARS = 1_000_000  # longer documents are counted after a pause in typing, not per key

FILE_FILTERS = "Text and Markdown (*.txt *.md *.markdown);;Text (*.txt);;Markdown (*.md);;All files (*)"

SHORTCUTS = [
    ("Tab", "accept the whole suggestion (inserts a tab when none is shown)"),
    ("Ctrl+Right", "accept the next word of the suggestion"),
    ("Esc", "dismiss the suggestion, or stop Continue"),
    ("Alt+] / Alt+[", "next / previous alternative suggestion"),
    ("Alt+\\", "suggest now; again for a longer suggestion"),
    ("Ctrl+Enter", "Continue: write a longer passage at the cursor"),
    ("Ctrl+F / Ctrl+H", "find / replace"),
    ("Ctrl+S", "save"),
]


class ContinueBar(QWidget):
    """Shown while Continue writes: says so and offers Stop."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("continueBar")
        self.label = QLabel("Writing\u2026  (Esc stops)", self)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stopButton")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.stop_button)
        self.hide()


class MainWindow(QMainWindow):
    """AIGC Studio's window. ``service`` must be started by the caller; the window stops it on close.

    Public methods (``open_file``, ``save``, ``save_as``, ``new_file``, ``offer_recovery``) are what
    the menus call; they return whether they did it.
    """

    def __init__(self, settings: Settings, service: CompletionService, store: RecoveryStore,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.settings = settings
        self.service = service
        self.suggestion = SuggestionViewModel(service, settings, self)
        self.model = ModelViewModel(service, settings, self)
        self.sampling = SamplingViewModel(settings, self)
        self.document = DocumentViewModel(settings, store, self)
        self._shut_down = False
        self._preferences: PreferencesDialog | None = None

        # The Writing workspace; the Design workspace gets its own tab later.
        self.editor = WritingEditorView(self.suggestion)
        self.continue_bar = ContinueBar()
        self.find_bar = FindReplaceBar(self.editor)
        writing = QWidget()
        writing.setObjectName("writingWorkspace")
        layout = QVBoxLayout(writing)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.continue_bar)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.find_bar)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("workspaces")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(writing, "Writing")
        design = QLabel("The Design workspace (images from the generator) comes in a later "
                        "version.")
        design.setAlignment(Qt.AlignmentFlag.AlignCenter)
        design.setEnabled(False)
        self.tabs.addTab(design, "Design")
        self.setCentralWidget(self.tabs)

        self.sampling_panel = SamplingPanel(settings, self.model, self.sampling)
        self.sampling_dock = QDockWidget("Sampling", self)
        self.sampling_dock.setObjectName("samplingDock")
        self.sampling_dock.setWidget(self.sampling_panel)
        # The panel scrolls, so it may be narrower than its contents; the editor keeps at least
        # EDITOR_MIN_WIDTH (F9 or the dock's close button folds the panel away; the window's saved
        # state remembers that).
        self.sampling_dock.setMinimumWidth(PANEL_MIN_WIDTH)
        self.tabs.setMinimumWidth(EDITOR_MIN_WIDTH)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.sampling_dock)
        self.resizeDocks([self.sampling_dock], [self.sampling_panel.sizeHint().width()],
                         Qt.Orientation.Horizontal)

        self._build_status_bar()
        self.actions_: dict[str, QAction] = {}
        self._build_menus()
        self._bind()
        self._apply_editor_settings()
        self.editor.document().setModified(False)  # setting the font and margins counts as an edit
        self.setWindowTitle(self.document.title)
        self.resize(1200, 800)
        self._restore_window_state()
        self.editor.setFocus()

    # -- building ---------------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.counts_label = QLabel("0 words \u00b7 0 characters")
        self.counts_label.setObjectName("countsLabel")
        self._showing_alternatives = False  # the status bar says which alternative is shown
        self.latency_label = QLabel("")
        self.latency_label.setObjectName("latencyLabel")
        self.latency_label.setToolTip("How long the model took to produce the last suggestion's "
                                      "first words")
        self.model_button = QToolButton()
        self.model_button.setObjectName("modelButton")
        self.model_button.setAutoRaise(True)
        self.model_button.setText(self.model.summary)
        self.model_button.clicked.connect(self.show_model_details)
        bar.addPermanentWidget(self.counts_label)
        bar.addPermanentWidget(self.latency_label)
        bar.addPermanentWidget(self.model_button)

    def _action(self, name: str, text: str, slot: Callable[[], object] | None = None,
                shortcut: QKeySequence | QKeySequence.StandardKey | list[QKeySequence] | None = None,
                hint: str = "", checkable: bool = False) -> QAction:
        # ``hint`` shows a key in the menu without taking it from the editor (Tab, Esc...).
        action = QAction(text + (f"\t{hint}" if hint else ""), self)
        action.setObjectName(name)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(slot)
        self.actions_[name] = action
        return action

    def _build_menus(self) -> None:
        keys = QKeySequence.StandardKey
        menu = self.menuBar().addMenu("&File")
        menu.addAction(self._action("new", "&New", self.new_file, keys.New))
        menu.addAction(self._action("open", "&Open\u2026", lambda: self.open_file(), keys.Open))
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("recentMenu")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        menu.addMenu(self.recent_menu)
        menu.addSeparator()
        menu.addAction(self._action("save", "&Save", lambda: self.save(), keys.Save))
        menu.addAction(self._action("save_as", "Save &As\u2026", lambda: self.save_as(),
                                    keys.SaveAs))
        menu.addAction(self._action("recover", "Recover Unsaved Text\u2026",
                                    lambda: self.offer_recovery(ask_when_none=True)))
        menu.addSeparator()
        menu.addAction(self._action("quit", "&Quit", self.close, keys.Quit))

        editor = self.editor
        menu = self.menuBar().addMenu("&Edit")
        undo = self._action("undo", "&Undo", editor.undo, keys.Undo)
        redo = self._action("redo", "&Redo", editor.redo, keys.Redo)
        undo.setEnabled(False)
        redo.setEnabled(False)
        editor.undoAvailable.connect(undo.setEnabled)
        editor.redoAvailable.connect(redo.setEnabled)
        menu.addActions([undo, redo])
        menu.addSeparator()
        menu.addAction(self._action("cut", "Cu&t", editor.cut, keys.Cut))
        menu.addAction(self._action("copy", "&Copy", editor.copy, keys.Copy))
        menu.addAction(self._action("paste", "&Paste", editor.paste, keys.Paste))
        menu.addAction(self._action("select_all", "Select &All", editor.selectAll, keys.SelectAll))
        menu.addSeparator()
        menu.addAction(self._action("find", "&Find\u2026", lambda: self.find_bar.open(False),
                                    keys.Find))
        menu.addAction(self._action("replace", "R&eplace\u2026",
                                    lambda: self.find_bar.open(True), QKeySequence("Ctrl+H")))
        menu.addSeparator()
        menu.addAction(self._action("preferences", "Pre&ferences\u2026", self.show_preferences,
                                    keys.Preferences))

        menu = self.menuBar().addMenu("&View")
        panel = self.sampling_dock.toggleViewAction()
        panel.setText("&Sampling Panel")
        panel.setShortcut(QKeySequence("F9"))
        menu.addAction(panel)
        wrap = self._action("wrap", "&Wrap Lines", checkable=True)
        wrap.setChecked(bool(self.settings.value("editor/wrap")))
        wrap.toggled.connect(lambda on: self.settings.set_value("editor/wrap", on))
        menu.addAction(wrap)
        menu.addAction(self._action("zoom_in", "Zoom &In", lambda: self._zoom(1), keys.ZoomIn))
        menu.addAction(self._action("zoom_out", "Zoom &Out", lambda: self._zoom(-1),
                                    keys.ZoomOut))

        model = self.suggestion
        menu = self.menuBar().addMenu("&Model")
        menu.addAction(self._action("suggest", "&Suggest Now", model.request_now, hint="Alt+\\"))
        menu.addAction(self._action("accept", "&Accept Suggestion", editor.accept_all,
                                    hint="Tab"))
        menu.addAction(self._action("accept_word", "Accept &Word", editor.accept_word,
                                    hint="Ctrl+Right"))
        menu.addAction(self._action("next_alternative", "&Next Alternative",
                                    lambda: model.cycle(1), hint="Alt+]"))
        menu.addAction(self._action("previous_alternative", "&Previous Alternative",
                                    lambda: model.cycle(-1), hint="Alt+["))
        menu.addAction(self._action("dismiss", "&Dismiss", model.dismiss, hint="Esc"))
        menu.addSeparator()
        menu.addAction(self._action("continue", "&Continue", self.start_continue,
                                    [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")]))
        stop = self._action("stop", "S&top", model.stop_continue, hint="Esc")
        stop.setEnabled(False)
        menu.addAction(stop)
        menu.addSeparator()
        enabled = self._action("inline", "&Inline Suggestions", checkable=True)
        enabled.setChecked(bool(self.settings.value("completion/enabled")))
        enabled.toggled.connect(lambda on: self.settings.set_value("completion/enabled", on))
        menu.addAction(enabled)
        menu.addAction(self._action("reload_model", "&Reload Model", self.model.load))
        menu.addAction(self._action("model_details", "Model &Details\u2026",
                                    self.show_model_details))

        menu = self.menuBar().addMenu("&Help")
        menu.addAction(self._action("shortcuts", "&Keyboard Shortcuts", self.show_shortcuts))
        menu.addAction(self._action("about", "&About AIGC Studio", self.show_about))

    def _bind(self) -> None:
        document = self.document
        qt_document = self.editor.document()
        document.attach(self.editor.toPlainText)
        qt_document.modificationChanged.connect(document.set_modified)
        self.editor.textChanged.connect(document.text_changed)
        self.editor.continue_requested.connect(self.start_continue)
        document.title_changed.connect(self.setWindowTitle)
        document.counts_changed.connect(self._on_counts_changed)
        self.editor.textChanged.connect(self._on_text_changed_count)
        document.autosave_failed.connect(lambda message: self.statusBar().showMessage(message,
                                                                                      10000))
        self.model.summary_changed.connect(self.model_button.setText)
        self.model.status_changed.connect(self._on_model_status_changed)
        self.model.latency_changed.connect(self._on_latency_changed)
        self.suggestion.error.connect(lambda message: self.statusBar().showMessage(message, 8000))
        self.suggestion.continuing_changed.connect(self._on_continuing_changed)
        self.suggestion.continue_finished.connect(self._on_continue_finished)
        self.suggestion.changed.connect(self._on_suggestion_changed)
        self.continue_bar.stop_button.clicked.connect(self.suggestion.stop_continue)
        self.settings.changed.connect(self._on_setting_changed)

    # -- settings and state -----------------------------------------------------------------------

    def _apply_editor_settings(self) -> None:
        self.editor.set_font_size(int(self.settings.value("editor/font_size")))
        self.editor.setLineWrapMode(
            self.editor.LineWrapMode.WidgetWidth if self.settings.value("editor/wrap")
            else self.editor.LineWrapMode.NoWrap)

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key.startswith("editor/"):
            self._apply_editor_settings()
        if key == "editor/wrap":
            self.actions_["wrap"].setChecked(bool(value))
        elif key == "completion/enabled":
            self.actions_["inline"].setChecked(bool(value))

    def _zoom(self, step: int) -> None:
        size = int(self.settings.value("editor/font_size")) + step
        if 6 <= size <= 72:
            self.settings.set_value("editor/font_size", size)

    def _restore_window_state(self) -> None:
        geometry = self.settings.state("geometry")
        if geometry:
            self.restoreGeometry(geometry)
        state = self.settings.state("window")
        if state:
            self.restoreState(state)

    def _save_window_state(self) -> None:
        self.settings.set_state("geometry", bytes(self.saveGeometry().data()))
        self.settings.set_state("window", bytes(self.saveState().data()))

    # -- status -----------------------------------------------------------------------------------

    @Slot(int, int)
    def _on_counts_changed(self, words: int, characters: int) -> None:
        self.counts_label.setText(f"{words:,} words \u00b7 {characters:,} characters")

    @Slot()
    def _on_text_changed_count(self) -> None:
        """The counts follow every change. The document's own recount waits for a pause in the
        changes, so while a writer typed steadily, or Continue wrote, it never came; counting is cheap,
        so it is done now, except in a document so long that the paused recount is left to do it."""
        if self.editor.document().characterCount() <= INSTANT_COUNT_CHARS:
            self.document.recount()

    @Slot()
    def _on_suggestion_changed(self) -> None:
        """The status bar follows Alt+]: while alternatives are on their way, which one is shown, or
        that there is no other."""
        model = self.suggestion
        count = len(model.alternatives)
        bar = self.statusBar()
        if model.finding_alternatives:
            bar.showMessage("Finding other suggestions\u2026")
            self._showing_alternatives = True
        elif model.visible and count > 1:
            bar.showMessage(f"Suggestion {model.index + 1} of {count} (Alt+] next, Alt+[ previous)")
            self._showing_alternatives = True
        elif self._showing_alternatives:
            self._showing_alternatives = False
            if model.visible:
                bar.showMessage("No other suggestion here", 3000)
            else:
                bar.clearMessage()

    @Slot(float)
    def _on_latency_changed(self, seconds: float) -> None:
        self.latency_label.setText(f"Suggestion {seconds * 1000:.0f} ms")

    @Slot(object)
    def _on_model_status_changed(self, status: ModelStatus) -> None:
        if status.state == "failed":
            self.model_button.setToolTip(f"{status.error}\n(click for details)")
            self.statusBar().showMessage(f"Model not loaded: {status.error}", 20000)
        elif status.state == "ready":
            chose_gpu = self.settings.value("model/device") == "gpu"  # else the CPU is no surprise
            note = (f"\nThe GPU is not used: {plain_gpu_reason(status.device_note)}"
                    if status.device_note and chose_gpu else "")
            self.model_button.setToolTip(f"{status.name} on {status.device or 'CPU'}{note}\n"
                                         f"(click for details)")
            self.statusBar().clearMessage()
        else:
            self.model_button.setToolTip("")

    # -- continue ---------------------------------------------------------------------------------

    @Slot()
    def start_continue(self) -> None:
        """Ctrl+Enter: stream a passage at the cursor."""
        if not self.suggestion.start_continue():
            status = self.model.status
            why = status.error if status.state == "failed" else "the model is not ready yet"
            self.statusBar().showMessage(f"Cannot continue: {why}", 8000)

    @Slot(bool)
    def _on_continuing_changed(self, continuing: bool) -> None:
        self.continue_bar.setVisible(continuing)
        self.actions_["stop"].setEnabled(continuing)
        self.actions_["continue"].setEnabled(not continuing)

    @Slot(str)
    def _on_continue_finished(self, reason: str) -> None:
        if reason == "stopped":
            self.statusBar().showMessage("Continue stopped", 3000)

    # -- files ------------------------------------------------------------------------------------

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
    def _fill_recent_menu(self) -> None:
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

    # -- other dialogs ----------------------------------------------------------------------------

    def show_model_details(self) -> None:
        """The dialog on demand: the model, its device, and why it failed to load."""
        status = self.model.status
        if status.state == "failed":
            QMessageBox.warning(self, "Model", model_details(status))
        else:
            QMessageBox.information(self, "Model", model_details(status))

    def show_preferences(self) -> None:
        """Open the preferences (not modal)."""
        if self._preferences is None:
            self._preferences = PreferencesDialog(self.settings, self)
        self._preferences.show()
        self._preferences.raise_()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{key}</b></td><td>{what}</td></tr>" for key, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(self, "About AIGC Studio",
                          f"<b>AIGC Studio {__version__}</b><br>An offline writing assistant: a "
                          f"small language model suggests the next words as you type. Everything "
                          f"runs on this computer.")

    # -- window events ----------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.document.focus_lost()  # copy unsaved text to the recovery folder now
        elif event.type() == QEvent.Type.ActivationChange and not self._shut_down:
            QTimer.singleShot(0, self, self.check_disk)  # after the activation, not inside it
        super().changeEvent(event)

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

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self._shut_down:
            event.accept()
            return
        self.suggestion.stop_continue()
        if not self.maybe_save():
            event.ignore()
            return
        self._save_window_state()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop timers and the worker thread and end the recovery session (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.suggestion.dismiss()
        self.model.shutdown()
        self.service.shutdown()
        self.document.close()
        self.settings.sync()

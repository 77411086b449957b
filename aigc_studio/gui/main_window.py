"""The main window: the Writing workspace, menus, status bar and the sampling dock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio import __version__
from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelState, ModelStatus
from aigc_studio.services.settings import (
    FONT_SIZE,
    INLINE_SUGGESTIONS,
    MODEL_DEVICE,
    WRAP_LINES,
    Settings,
)
from aigc_studio.viewmodels.document import DocumentViewModel
from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel
from aigc_studio.viewmodels.suggestion import SuggestionViewModel

from .design_actions import DesignActions
from .dialogs import PreferencesDialog, model_details
from .file_actions import FILE_FILTERS, FileActionsWindow
from .find_replace import FindReplaceBar
from .menus import SHORTCUTS, build_menus
from .sampling_panel import SamplingPanel, plain_gpu_reason
from .writing_editor import WritingEditorView

if TYPE_CHECKING:
    from aigc_studio.gui.design_workspace import DesignWorkspace
    from aigc_studio.services.recovery import RecoveryStore
    from aigc_studio.viewmodels.design import DesignServices

__all__ = ["FILE_FILTERS", "MainWindow"]

log = logging.getLogger(__name__)

PANEL_MIN_WIDTH = 180          # the sampling dock (its panel scrolls)
EDITOR_MIN_WIDTH = 360         # the writing workspace, whatever the panel's width


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


class MainWindow(DesignActions, FileActionsWindow):
    """AIGC Studio's window, given its services and view-models by the composition root
    (:func:`aigc_studio.app.build_window`). ``host`` must be started by the caller; the window stops
    ``completion`` and ``host`` on close.

    Public methods (``open_file``, ``save``, ``save_as``, ``new_file``, ``offer_recovery``) are what
    the menus call; they return whether they did it.
    """

    def __init__(self, settings: Settings, *, host: ModelHost, completion: CompletionService,
                 model: ModelViewModel, sampling: SamplingViewModel,
                 suggestion: SuggestionViewModel, document: DocumentViewModel,
                 design: Callable[[], DesignServices], design_store: RecoveryStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.settings = settings
        self.host = host
        self.completion = completion
        self.suggestion = suggestion
        self.model = model
        self.sampling = sampling
        self.document = document
        self._design_factory = design
        self.design_store = design_store
        """Where unsaved designs are kept (the Design services use the same store); None: no autosave."""
        self._design_services: DesignServices | None = None
        self._design: DesignWorkspace | None = None
        for view_model in (suggestion, model, sampling, document):
            view_model.setParent(self)
        self._shut_down = False
        self._dock_was_shown = True  # the Sampling dock's visibility in the writing pane
        self._preferences: PreferencesDialog | None = None

        self._build_workspaces()
        self._build_sampling_dock()
        self._build_status_bar()
        self.actions_: dict[str, QAction] = build_menus(self)
        self._bind()
        self._apply_editor_settings()
        self.editor.document().setModified(False)  # setting the font and margins counts as an edit
        self.setWindowTitle(self.document.title)
        self.resize(1200, 800)
        self._restore_window_state()
        self.editor.setFocus()

    # -- building ---------------------------------------------------------------------------------

    def _build_workspaces(self) -> None:
        """The Writing workspace; the Design workspace gets its own tab later."""
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
        # The Design workspace is built when first needed (see DesignActions.design); until then its
        # tab holds an empty page.
        self._design_page = QWidget()
        self._design_page.setObjectName("designPlaceholder")
        self.tabs.addTab(self._design_page, "Design")
        self.tabs.currentChanged.connect(self._on_workspace_changed)
        self.setCentralWidget(self.tabs)

    def _build_sampling_dock(self) -> None:
        """The Sampling dock, on the right of the workspaces."""
        self.sampling_panel = SamplingPanel(self.settings, self.model, self.sampling)
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

    def _bind(self) -> None:
        document = self.document
        qt_document = self.editor.document()
        document.attach(self.editor.toPlainText)
        qt_document.modificationChanged.connect(document.set_modified)
        self.editor.textChanged.connect(document.text_changed)
        self.editor.continue_requested.connect(self.start_continue)
        document.title_changed.connect(self.setWindowTitle)
        document.counts_changed.connect(self._on_counts_changed)
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
        self.editor.set_font_size(self.settings.get(FONT_SIZE))
        self.editor.setLineWrapMode(
            self.editor.LineWrapMode.WidgetWidth if self.settings.get(WRAP_LINES)
            else self.editor.LineWrapMode.NoWrap)

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        if key.startswith("editor/"):
            self._apply_editor_settings()
        if key == WRAP_LINES.key:
            self.actions_["wrap"].setChecked(self.settings.get(WRAP_LINES))
        elif key == INLINE_SUGGESTIONS.key:
            self.actions_["inline"].setChecked(self.settings.get(INLINE_SUGGESTIONS))

    def zoom(self, step: int) -> None:
        """Make the editor's font ``step`` points bigger (or smaller), within its bounds."""
        size = self.settings.get(FONT_SIZE) + step
        if 6 <= size <= 72:
            self.settings.set(FONT_SIZE, size)

    def _restore_window_state(self) -> None:
        geometry = self.settings.state("geometry")
        if geometry:
            self.restoreGeometry(geometry)
        state = self.settings.state("window")
        if state:
            self.restoreState(state)

    def _save_window_state(self) -> None:
        if self.designing:  # save the writing pane's layout, not the Design tab's folded dock
            self.tabs.setCurrentIndex(0)
        self.settings.set_state("geometry", bytes(self.saveGeometry().data()))
        self.settings.set_state("window", bytes(self.saveState().data()))

    # -- status -----------------------------------------------------------------------------------

    @Slot(int, int)
    def _on_counts_changed(self, words: int, characters: int) -> None:
        self.counts_label.setText(f"{words:,} words \u00b7 {characters:,} characters")

    @Slot()
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
        if status.state is ModelState.FAILED:
            self.model_button.setToolTip(f"{status.error}\n(click for details)")
            self.statusBar().showMessage(f"Model not loaded: {status.error}", 20000)
        elif status.state is ModelState.READY:
            chose_gpu = self.settings.get(MODEL_DEVICE) == "gpu"  # else the CPU is no surprise
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
            why = status.error if status.state is ModelState.FAILED else "the model is not ready yet"
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

    # -- other dialogs ----------------------------------------------------------------------------

    def show_model_details(self) -> None:
        """The dialog on demand: the model, its device, and why it failed to load."""
        status = self.model.status
        if status.state is ModelState.FAILED:
            QMessageBox.warning(self, "Model", model_details(status))
        else:
            QMessageBox.information(self, "Model", model_details(status))

    def show_preferences(self) -> None:
        """Open the preferences (not modal)."""
        if self._preferences is None:
            self._preferences = PreferencesDialog(self.settings, self)
        self._preferences.show()
        self._preferences.raise_()

    @property
    def preferences_dialog(self) -> PreferencesDialog | None:
        """The preferences dialog once opened (it is kept and shown again), else None."""
        return self._preferences

    def show_shortcuts(self) -> None:
        """The keyboard shortcuts, in a message box."""
        rows = "".join(f"<tr><td><b>{key}</b></td><td>{what}</td></tr>" for key, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        """The version and what the application is."""
        notices = self._design_services.library.licence_notices() if self._design_services else []
        assets = ("".join(f"<br>{n.set_title}: {n.package} {n.version}, {n.licence}" for n in notices)
                  or "<br>Tabler Icons (MIT), Fluent Emoji Flat (MIT, Microsoft), emoji tags from "
                     "emojibase-data (MIT); full texts in resources/library.")
        QMessageBox.about(self, "About AIGC Studio",
                          f"<b>AIGC Studio {__version__}</b><br>An offline assistant for writers and "
                          f"designers: a small language model suggests the next words as you type, "
                          f"and the Design workspace composes generated images, icons, emoji and text. "
                          f"Everything runs on this computer.<br><br><b>Asset library</b>{assets}")

    # -- window events ----------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.document.focus_lost()  # copy unsaved text to the recovery folder now
        elif event.type() == QEvent.Type.ActivationChange and not self._shut_down:
            QTimer.singleShot(0, self, self.check_disk)  # after the activation, not inside it
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
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
        if self._design is not None:
            self._design.shutdown()  # closes the design store too
        elif self.design_store is not None:
            self.design_store.close()  # never designed this session: end the store's session
        if self._design_services is not None:
            self._design_services.shutdown()
        self.completion.shutdown()
        self.host.shutdown()
        self.document.close()
        self.settings.sync()

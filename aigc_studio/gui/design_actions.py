"""The main window's Design actions: which workspace is on show, undo routed to it, and phrases sent
from the writing pane to the Design workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Slot

from aigc_studio.gui.design_workspace import UNTITLED

if TYPE_CHECKING:
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QStatusBar, QTabWidget

    from aigc_studio.gui.design_workspace import DesignWorkspace
    from aigc_studio.gui.writing_editor import WritingEditorView
    from aigc_studio.services.settings import Settings
    from aigc_studio.viewmodels.design import DesignServices


class DesignActions:
    """Mixed into the main window, which provides the attributes declared here."""

    tabs: QTabWidget
    design: DesignWorkspace
    design_services: DesignServices
    editor: WritingEditorView
    sampling_dock: QDockWidget
    settings: Settings
    actions_: dict[str, QAction]
    _shut_down: bool
    _dock_was_shown: bool

    if TYPE_CHECKING:
        def statusBar(self) -> QStatusBar: ...  # noqa: N802 - QMainWindow's, declared for type checkers

    def _on_design_title_changed(self, title: str) -> None:
        """The Design tab says which design is open and whether it has unsaved changes."""
        plain = title == UNTITLED  # nothing to say yet
        self.tabs.setTabText(self.tabs.indexOf(self.design), "Design" if plain else f"Design: {title}")

    @property
    def designing(self) -> bool:
        """Whether the Design workspace is on show."""
        return self.tabs.currentWidget() is self.design

    def _on_workspace_changed(self, index: int) -> None:
        designing = self.designing
        if designing and not self.design_services.started:
            self.design_services.start()  # the image models are listed (and one loaded) on first use
        # The Sampling panel is the writing pane's: folded away while designing, back as it was.
        if designing:
            self._dock_was_shown = self.sampling_dock.isVisible()
            self.sampling_dock.hide()
        elif self._dock_was_shown:
            self.sampling_dock.show()
        self.sync_undo_actions()

    def undo(self) -> None:
        """Undo in the workspace on show."""
        self.design.canvas.undo_stack.undo() if self.designing else self.editor.undo()

    def redo(self) -> None:
        """Redo in the workspace on show."""
        self.design.canvas.undo_stack.redo() if self.designing else self.editor.redo()

    @Slot(bool)
    def _on_undo_state_changed(self, _: bool) -> None:
        self.sync_undo_actions()

    def sync_undo_actions(self) -> None:
        """Enable Undo and Redo for the workspace on show."""
        if self._shut_down:  # the widgets are going away
            return
        stack, document = self.design.canvas.undo_stack, self.editor.document()
        can_undo = stack.canUndo() if self.designing else document.isUndoAvailable()
        can_redo = stack.canRedo() if self.designing else document.isRedoAvailable()
        self.actions_["undo"].setEnabled(can_undo)
        self.actions_["redo"].setEnabled(can_redo)

    def _selected_phrase(self) -> str:
        text = self.editor.textCursor().selectedText().replace("\u2029", "\n").strip()
        if not text:
            self.statusBar().showMessage("Select a phrase in the writing pane first", 6000)
        return text

    def send_selection_to_describe(self) -> None:
        """Put the phrase selected in the writing pane into the Design workspace's describe box."""
        if text := self._selected_phrase():
            self.tabs.setCurrentWidget(self.design)
            self.design_services.generation.set_text(text)

    def send_selection_to_canvas(self) -> None:
        """Place the phrase selected in the writing pane on the canvas as a text layer."""
        if text := self._selected_phrase():
            self.tabs.setCurrentWidget(self.design)
            self.design.add_text(text)

"""The main window's Design actions: which workspace is on show, undo routed to it, and phrases sent
from the writing pane to the Design workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Slot

if TYPE_CHECKING:
    from collections.abc import Callable

    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QStatusBar, QTabWidget, QWidget

    from aigc_studio.gui.design_workspace import DesignWorkspace
    from aigc_studio.gui.writing_editor import WritingEditorView
    from aigc_studio.services.recovery import RecoveryStore
    from aigc_studio.services.settings import Settings
    from aigc_studio.viewmodels.design import DesignServices


class DesignActions:
    """Mixed into the main window, which provides the attributes declared here."""

    tabs: QTabWidget
    editor: WritingEditorView
    sampling_dock: QDockWidget
    settings: Settings
    actions_: dict[str, QAction]
    _shut_down: bool
    _dock_was_shown: bool
    _design_factory: Callable[[], DesignServices]
    _design_services: DesignServices | None
    _design: DesignWorkspace | None
    _design_page: QWidget
    design_store: RecoveryStore | None

    if TYPE_CHECKING:
        def statusBar(self) -> QStatusBar: ...  # noqa: N802 - QMainWindow's, declared for type checkers

    @property
    def design_built(self) -> bool:
        """Whether the Design half (its services or workspace) has been built yet."""
        return self._design_services is not None or self._design is not None

    @property
    def design_services(self) -> DesignServices:
        """The Design half's services, built (not started) on first use."""
        if self._design_services is None:
            self._design_services = self._design_factory()
            self._design_services.generation.setParent(self)  # type: ignore[arg-type]
        return self._design_services

    @property
    def design(self) -> DesignWorkspace:
        """The Design workspace, built on first use: it takes the place of its tab's empty page."""
        if self._design is None:
            from aigc_studio.gui.design_workspace import DesignWorkspace

            services = self.design_services
            design = DesignWorkspace(services.generation, services.library, project_store=services.store)
            self._design = design
            index = self.tabs.indexOf(self._design_page)
            current = self.tabs.currentIndex()
            blocked = self.tabs.blockSignals(True)
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, design, "Design")
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(blocked)
            self._design_page.deleteLater()
            design.message.connect(lambda message: self.statusBar().showMessage(message, 10000))
            design.title_changed.connect(self._on_design_title_changed)
            design.canvas.undo_stack.canUndoChanged.connect(self._on_undo_state_changed)
            design.canvas.undo_stack.canRedoChanged.connect(self._on_undo_state_changed)
            self._on_design_title_changed(design.title)
        return self._design

    def offer_design_recovery(self) -> None:
        """At start: offer back a design a crash or a kill left unsaved. The workspace is built only
        when there is one (reading the recovery folder is cheap; building the workspace is not)."""
        if self.design_store is not None and self.design_store.pending():
            self.design.recover()

    def _on_design_title_changed(self, title: str) -> None:
        """The Design tab says which design is open and whether it has unsaved changes."""
        from aigc_studio.gui.design_workspace import UNTITLED

        plain = title == UNTITLED  # nothing to say yet
        self.tabs.setTabText(self.tabs.indexOf(self.design), "Design" if plain else f"Design: {title}")

    @property
    def designing(self) -> bool:
        """Whether the Design workspace is on show."""
        current = self.tabs.currentWidget()
        return current is self._design_page or (self._design is not None and current is self._design)

    def _on_workspace_changed(self, index: int) -> None:
        designing = self.designing
        if designing:
            self.design  # noqa: B018 - builds the workspace in place of the empty page
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
        if self.designing:
            self.design.canvas.undo_stack.undo()
        else:
            self.editor.undo()

    def redo(self) -> None:
        """Redo in the workspace on show."""
        if self.designing:
            self.design.canvas.undo_stack.redo()
        else:
            self.editor.redo()

    @Slot(bool)
    def _on_undo_state_changed(self, _: bool) -> None:
        self.sync_undo_actions()

    def sync_undo_actions(self) -> None:
        """Enable Undo and Redo for the workspace on show."""
        if self._shut_down:  # the widgets are going away
            return
        if self.designing:
            stack = self.design.canvas.undo_stack
            can_undo, can_redo = stack.canUndo(), stack.canRedo()
        else:
            document = self.editor.document()
            can_undo, can_redo = document.isUndoAvailable(), document.isRedoAvailable()
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

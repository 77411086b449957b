"""The main window's menus and their actions (File, Edit, View, Model, Help).

:func:`build_menus` fills the window's menu bar and returns its actions by name; the window keeps
them in ``actions_`` (to enable Stop while Continue writes, to check Wrap Lines when the setting
changes...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from aigc_studio.services.settings import INLINE_SUGGESTIONS, WRAP_LINES

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["SHORTCUTS", "build_menus"]

Shortcut = QKeySequence | QKeySequence.StandardKey | list[QKeySequence]

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
"""The keys the Help menu lists: (key, what it does)."""

Keys = QKeySequence.StandardKey


class _Builder:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.actions: dict[str, QAction] = {}

    def action(self, name: str, text: str, slot: Callable[[], object] | None = None,
               shortcut: Shortcut | None = None, hint: str = "",
               checkable: bool = False) -> QAction:
        # ``hint`` shows a key in the menu without taking it from the editor (Tab, Esc...).
        action = QAction(text + (f"\t{hint}" if hint else ""), self.window)
        action.setObjectName(name)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(slot)
        self.actions[name] = action
        return action

    def file_menu(self) -> None:
        window = self.window
        menu = window.menuBar().addMenu("&File")
        menu.addAction(self.action("new", "&New", window.new_file, Keys.New))
        menu.addAction(self.action("open", "&Open\u2026", lambda: window.open_file(), Keys.Open))
        window.recent_menu = QMenu("Open &Recent", window)
        window.recent_menu.setObjectName("recentMenu")
        window.recent_menu.aboutToShow.connect(window.fill_recent_menu)
        menu.addMenu(window.recent_menu)
        menu.addSeparator()
        menu.addAction(self.action("save", "&Save", lambda: window.save(), Keys.Save))
        menu.addAction(self.action("save_as", "Save &As\u2026", lambda: window.save_as(),
                                   Keys.SaveAs))
        menu.addAction(self.action("recover", "Recover Unsaved Text\u2026",
                                   lambda: window.offer_recovery(ask_when_none=True)))
        menu.addSeparator()
        menu.addAction(self.action("quit", "&Quit", window.close, Keys.Quit))

    def edit_menu(self) -> None:
        window = self.window
        editor = window.editor
        menu = window.menuBar().addMenu("&Edit")
        # Undo and redo act on the workspace on show: the text, or the design's canvas.
        undo = self.action("undo", "&Undo", window.undo, Keys.Undo)
        redo = self.action("redo", "&Redo", window.redo, Keys.Redo)
        undo.setEnabled(False)
        redo.setEnabled(False)
        editor.undoAvailable.connect(window._on_undo_state_changed)
        editor.redoAvailable.connect(window._on_undo_state_changed)
        menu.addActions([undo, redo])
        menu.addSeparator()
        menu.addAction(self.action("cut", "Cu&t", editor.cut, Keys.Cut))
        menu.addAction(self.action("copy", "&Copy", editor.copy, Keys.Copy))
        menu.addAction(self.action("paste", "&Paste", editor.paste, Keys.Paste))
        menu.addAction(self.action("select_all", "Select &All", editor.selectAll, Keys.SelectAll))
        menu.addSeparator()
        menu.addAction(self.action("find", "&Find\u2026", lambda: window.find_bar.open(False),
                                   Keys.Find))
        menu.addAction(self.action("replace", "R&eplace\u2026",
                                   lambda: window.find_bar.open(True), QKeySequence("Ctrl+H")))
        menu.addSeparator()
        menu.addAction(self.action("describe_selection", "Send Selection to &Describe",
                                   window.send_selection_to_describe))
        menu.addAction(self.action("text_layer_selection", "Place Selection on the &Canvas",
                                   window.send_selection_to_canvas))
        menu.addSeparator()
        menu.addAction(self.action("preferences", "Pre&ferences\u2026", window.show_preferences,
                                   Keys.Preferences))

    def view_menu(self) -> None:
        window = self.window
        settings = window.settings
        menu = window.menuBar().addMenu("&View")
        panel = window.sampling_dock.toggleViewAction()
        panel.setText("&Sampling Panel")
        panel.setShortcut(QKeySequence("F9"))
        menu.addAction(panel)
        wrap = self.action("wrap", "&Wrap Lines", checkable=True)
        wrap.setChecked(settings.get(WRAP_LINES))
        wrap.toggled.connect(lambda on: settings.set(WRAP_LINES, on))
        menu.addAction(wrap)
        menu.addAction(self.action("zoom_in", "Zoom &In", lambda: window.zoom(1), Keys.ZoomIn))
        menu.addAction(self.action("zoom_out", "Zoom &Out", lambda: window.zoom(-1),
                                   Keys.ZoomOut))

    def model_menu(self) -> None:
        window = self.window
        editor = window.editor
        model = window.suggestion
        menu = window.menuBar().addMenu("&Model")
        menu.addAction(self.action("suggest", "&Suggest Now", model.request_now, hint="Alt+\\"))
        menu.addAction(self.action("accept", "&Accept Suggestion", editor.accept_all, hint="Tab"))
        menu.addAction(self.action("accept_word", "Accept &Word", editor.accept_word,
                                   hint="Ctrl+Right"))
        menu.addAction(self.action("next_alternative", "&Next Alternative",
                                   lambda: model.cycle(1), hint="Alt+]"))
        menu.addAction(self.action("previous_alternative", "&Previous Alternative",
                                   lambda: model.cycle(-1), hint="Alt+["))
        menu.addAction(self.action("dismiss", "&Dismiss", model.dismiss, hint="Esc"))
        menu.addSeparator()
        menu.addAction(self.action("continue", "&Continue", window.start_continue,
                                   [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")]))
        stop = self.action("stop", "S&top", model.stop_continue, hint="Esc")
        stop.setEnabled(False)
        menu.addAction(stop)
        menu.addSeparator()
        settings = window.settings
        enabled = self.action("inline", "&Inline Suggestions", checkable=True)
        enabled.setChecked(settings.get(INLINE_SUGGESTIONS))
        enabled.toggled.connect(lambda on: settings.set(INLINE_SUGGESTIONS, on))
        menu.addAction(enabled)
        menu.addAction(self.action("reload_model", "&Reload Model", window.model.load))
        menu.addAction(self.action("model_details", "Model &Details\u2026",
                                   window.show_model_details))

    def help_menu(self) -> None:
        window = self.window
        menu = window.menuBar().addMenu("&Help")
        menu.addAction(self.action("shortcuts", "&Keyboard Shortcuts", window.show_shortcuts))
        menu.addAction(self.action("about", "&About AIGC Studio", window.show_about))


def build_menus(window: MainWindow) -> dict[str, QAction]:
    """Fill ``window``'s menu bar (and set its ``recent_menu``); return the actions by name."""
    builder = _Builder(window)
    builder.file_menu()
    builder.edit_menu()
    builder.view_menu()
    builder.model_menu()
    builder.help_menu()
    return builder.actions

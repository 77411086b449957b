"""Widgets: the main window, the writing editor with ghost text, panels and dialogs."""

from aigc_studio.services import _pyside_fixes  # noqa: F401 - before any signal is emitted

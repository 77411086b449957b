"""Widgets: the main window, the writing editor with ghost text, panels and dialogs."""

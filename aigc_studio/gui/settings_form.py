"""Editors built from setting declarations (:class:`aigc_studio.core.sampling.Setting`).

One widget per option, chosen by its type and bounds, with its title as label and its help as tooltip.
Widgets follow the settings (a change from elsewhere updates them, with their signals blocked so
nothing loops back) and write changes straight into the settings.

Spin boxes and combo boxes change on the mouse wheel only once they have the keyboard focus (a click or
Tab): the wheel over an unfocused one scrolls the panel around it instead of changing, and saving, the
value under the pointer (:func:`guard_wheel`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, Slot
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from aigc_studio.services.settings import Setting, Settings

__all__ = ["SettingsForm", "guard_wheel", "make_editor", "set_editor_value"]

log = logging.getLogger(__name__)

INT_LIMIT = 2**31 - 1


class _WheelGuard(QObject):
    """Drops wheel events to an unfocused value widget, leaving them to the scroll area around it."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget)
                and not watched.hasFocus()):
            event.ignore()  # ignored, a spontaneous wheel event goes on to the parents
            return True
        return False


_WHEEL_GUARD = _WheelGuard()


def guard_wheel(widget: QWidget) -> QWidget:
    """Let ``widget`` (a spin box, combo box or slider) change on the wheel only when it has the focus,
    and take the focus from a click or Tab but not from the wheel (``Qt.StrongFocus``)."""
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_WHEEL_GUARD)
    return widget


def make_editor(option: Setting[Any], parent: QWidget | None = None) -> QWidget:
    """A widget that edits ``option`` (not yet bound to any settings)."""
    widget: QWidget
    if option.kind is bool:
        widget = QCheckBox(parent)
    elif option.choices:
        combo = QComboBox(parent)
        titles = option.choice_titles or option.choices
        for value, title in zip(option.choices, titles, strict=True):
            combo.addItem(title[:1].upper() + title[1:], value)
        widget = combo
    elif option.optional and option.kind is int:
        line = QLineEdit(parent)
        line.setPlaceholderText("random")
        line.setValidator(QIntValidator(0, INT_LIMIT, line))
        line.setClearButtonEnabled(True)
        widget = line
    elif option.kind is int:
        spin = QSpinBox(parent)
        spin.setRange(int(max(option.minimum or 0, -INT_LIMIT)),
                      int(min(option.maximum if option.maximum is not None else INT_LIMIT,
                              INT_LIMIT)))
        spin.setSingleStep(int(option.step or 1))
        spin.setSuffix(option.suffix)
        spin.setAccelerated(True)
        widget = spin
    elif option.kind is float:
        double = QDoubleSpinBox(parent)
        double.setDecimals(2 if (option.step or 0.01) >= 0.01 else 3)
        double.setRange(option.minimum if option.minimum is not None else -1e9,
                        option.maximum if option.maximum is not None else 1e9)
        double.setSingleStep(option.step or 0.1)
        double.setSuffix(option.suffix)
        widget = double
    else:
        widget = QLineEdit(parent)
    if isinstance(widget, (QAbstractSpinBox, QComboBox, QAbstractSlider)):
        guard_wheel(widget)
    widget.setObjectName(option.key.replace("/", "_"))
    widget.setToolTip(option.help)
    widget.setWhatsThis(option.help)
    return widget


def set_editor_value(widget: QWidget, value: Any) -> None:
    """Show ``value`` in an editor made by :func:`make_editor`, without emitting its signals."""
    blocker = QSignalBlocker(widget)
    try:
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            index = widget.findData(value)
            widget.setCurrentIndex(max(index, 0))
        elif isinstance(widget, QSpinBox):
            widget.setValue(int(value))
        elif isinstance(widget, QDoubleSpinBox):
            widget.setValue(float(value))
        elif isinstance(widget, QLineEdit):
            widget.setText("" if value is None else str(value))
    finally:
        blocker.unblock()


class SettingsForm(QWidget):
    """A form of editors for some declared settings, kept in step with ``settings``.

    ``editors`` holds each setting's editor by its key."""

    def __init__(self, settings: Settings, options: Iterable[Setting[Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.editors: dict[str, QWidget] = {}
        self.layout_ = QFormLayout(self)
        self.layout_.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for option in options:
            editor = make_editor(option, self)
            self.editors[option.key] = editor
            set_editor_value(editor, settings.get(option))
            self._connect(option, editor)
            self.layout_.addRow(option.title, editor)
            label = self.layout_.labelForField(editor)
            if label is not None:
                label.setToolTip(option.help)
        settings.changed.connect(self._on_setting_changed)

    def _connect(self, option: Setting[Any], editor: QWidget) -> None:
        def write(value: Any) -> None:
            try:
                self._settings.set(option, value)
            except ValueError as error:
                log.warning("%s", error)
                set_editor_value(editor, self._settings.get(option))

        if isinstance(editor, QCheckBox):
            editor.toggled.connect(write)
        elif isinstance(editor, QComboBox):
            editor.currentIndexChanged.connect(lambda _i: write(editor.currentData()))
        elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            editor.valueChanged.connect(write)
        elif isinstance(editor, QLineEdit):
            if option.optional and option.kind is int:
                editor.editingFinished.connect(
                    lambda: write(int(editor.text()) if editor.text().strip() else None))
            else:
                editor.editingFinished.connect(lambda: write(editor.text()))

    @Slot(str, object)
    def _on_setting_changed(self, key: str, value: object) -> None:
        editor = self.editors.get(key)
        if editor is not None:
            set_editor_value(editor, value)

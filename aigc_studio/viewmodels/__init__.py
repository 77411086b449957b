"""View-models: QtCore-only observable state that the widgets bind to."""

from aigc_studio.services import _pyside_fixes  # noqa: F401 - before any signal is emitted

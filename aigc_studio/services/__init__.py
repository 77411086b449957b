"""Services: QtCore-only workers and stores (completion, documents, recovery, settings)."""

from . import _pyside_fixes  # noqa: F401 - must run before any signal is emitted

"""View-models: QtCore-only observable state that the widgets bind to."""

"""Services: QtCore-only workers and stores (model host, completion, documents, recovery, settings)."""

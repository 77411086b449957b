"""Cancellation: one type for every long computation (model runs, searches, workers)."""

from __future__ import annotations

from collections.abc import Callable

Cancel = Callable[[], bool]
"""A function a long computation calls between its steps; True means "stop now"."""


class Cancelled(Exception):
    """Raised inside a computation when its request is cancelled between two steps."""

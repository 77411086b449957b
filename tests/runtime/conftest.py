"""Fixtures for runtime tests (the tiny trained package itself is in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def package_copy(tiny_text_package: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "models" / tiny_text_package.name
    shutil.copytree(tiny_text_package, dst)
    return dst

"""Fixtures for runtime tests: a tiny trained text package, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention tiny package; copy it (`package_copy`) before damaging it."""
    from tests.tiny_models import build_tiny_text_package

    return build_tiny_text_package(tmp_path_factory.mktemp("models"))


@pytest.fixture
def package_copy(tiny_text_package: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "models" / tiny_text_package.name
    shutil.copytree(tiny_text_package, dst)
    return dst

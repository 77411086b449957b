"""View-models are tested under a bare QCoreApplication: no widgets, no QtGui."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication

from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.models import ModelChoice
from aigc_studio.services.settings import Settings
from tests.services.fakes import FakeBackend, FakeGenerator


@pytest.fixture(scope="session")
def qapp_cls() -> type[QCoreApplication]:
    return QCoreApplication


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(tmp_path / "settings.ini")
    settings.set_value("completion/debounce_ms", 30)
    return settings


@pytest.fixture
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def service(qtbot, generator: FakeGenerator) -> Iterator[CompletionService]:
    service = CompletionService(FakeBackend(generator), debounce_ms=30)
    service.start()
    with qtbot.waitSignal(service.status_changed, timeout=5000,
                          check_params_cb=lambda s: s.state == "ready"):
        service.load_model(ModelChoice("fake-lm"))
    yield service
    service.shutdown()

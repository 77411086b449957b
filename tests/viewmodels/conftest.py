"""View-models need no widgets: test_view_models_need_no_widgets runs these tests again in a process of
their own under a bare QCoreApplication (no QtGui, no QtWidgets)."""

from __future__ import annotations

import os
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
    if os.environ.get("AIGC_INNER"):
        return QCoreApplication
    # In a process running the widgets' tests too, one application serves all, whichever directory
    # comes first: a QCoreApplication made here would abort the first QWidget.
    from PySide6.QtWidgets import QApplication

    return QApplication


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

"""View-models need no widgets: test_view_models_need_no_widgets runs these tests again in a process of
their own under a bare QCoreApplication (no QtGui, no QtWidgets)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication

from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelChoice, ModelState
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
def backend(generator: FakeGenerator) -> FakeBackend:
    return FakeBackend(generator)


@pytest.fixture
def host(qtbot, backend: FakeBackend) -> Iterator[ModelHost]:
    host = ModelHost(backend)
    host.start()
    with qtbot.waitSignal(host.status_changed, timeout=5000,
                          check_params_cb=lambda s: s.state is ModelState.READY):
        host.load(ModelChoice("fake-lm"))
    yield host
    host.shutdown()


@pytest.fixture
def service(host: ModelHost) -> Iterator[CompletionService]:
    service = CompletionService(host, debounce_ms=30)
    yield service
    service.shutdown()


@pytest.fixture
def use_generator(qtbot, host: ModelHost, backend: FakeBackend) -> Callable[[FakeGenerator], None]:
    """Load another fake generator into the host (as the application loads another model)."""
    def use(generator: FakeGenerator) -> None:
        backend.generator = generator
        with qtbot.waitSignal(host.status_changed, timeout=5000,
                              check_params_cb=lambda s: s.state is ModelState.READY):
            host.load(ModelChoice("fake-lm"))
    return use

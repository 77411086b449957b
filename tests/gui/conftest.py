"""GUI fixtures: a main window wired to a fake model, and dialogs that never block."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from aigc_studio.app import build_window
from aigc_studio.gui.main_window import MainWindow
from aigc_studio.services.completion_service import CompletionService
from aigc_studio.services.documents import RecoveryStore
from aigc_studio.services.model_host import ModelHost
from aigc_studio.services.models import ModelState
from aigc_studio.services.settings import Settings
from tests.runtime.test_library import build_tiny_library
from tests.services.fakes import FakeBackend, FakeGenerator


@dataclass
class Dialogs:
    """What the patched dialogs were asked, and what they answer."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    question: QMessageBox.StandardButton = QMessageBox.StandardButton.Cancel
    open_path: str = ""
    save_path: str = ""
    on_exec: Callable[[QDialog], int] | None = None

    def texts(self, kind: str) -> list[str]:
        return [text for k, text in self.shown if k == kind]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    """Modal dialogs return at once: message boxes, file dialogs and ``QDialog.exec``."""
    state = Dialogs()

    def message(kind: str, answer: Any = QMessageBox.StandardButton.Ok) -> Callable[..., Any]:
        def show(parent: Any, title: str, text: str, *args: Any, **kwargs: Any) -> Any:
            state.shown.append((kind, f"{title}: {text}"))
            return state.question if kind == "question" else answer
        return show

    for kind in ("question", "warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(message(kind)))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(message("about", None)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (state.open_path, "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (state.save_path, "")))

    def exec_dialog(dialog: QDialog) -> int:
        state.shown.append(("dialog", dialog.windowTitle()))
        if state.on_exec is None:
            return int(QDialog.DialogCode.Rejected)
        return state.on_exec(dialog)

    monkeypatch.setattr(QDialog, "exec", exec_dialog)
    return state


@dataclass
class App:
    window: MainWindow
    settings: Settings
    backend: FakeBackend
    store: RecoveryStore

    @property
    def service(self) -> CompletionService:
        return self.window.completion

    @property
    def host(self) -> ModelHost:
        return self.window.host

    @property
    def generator(self) -> FakeGenerator:
        return self.backend.generator


MakeApp = Callable[..., App]


@pytest.fixture
def make_app(qtbot, tmp_path: Path) -> Iterator[MakeApp]:
    windows: list[MainWindow] = []

    def make(generator: FakeGenerator | None = None, *, backend: FakeBackend | None = None,
             load: bool = True, name: str = "main", debounce_ms: int = 30,
             design_store: RecoveryStore | None = None) -> App:
        settings = Settings(tmp_path / f"{name}.ini")
        settings.set_value("completion/debounce_ms", debounce_ms)
        backend = backend or FakeBackend(generator)
        store = RecoveryStore(tmp_path / "recovery")
        library = tmp_path / f"library-{name}"
        window = build_window(settings, backend, store, design_store=design_store,
                              library_path=library if library.exists() else build_tiny_library(library))
        windows.append(window)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        window.host.start()
        if load:
            with qtbot.waitSignal(window.host.status_changed, timeout=5000,
                                  check_params_cb=lambda s: s.state in (ModelState.READY,
                                                                        ModelState.FAILED)):
                window.model.load()
        window.activateWindow()
        window.editor.setFocus()
        return App(window, settings, backend, store)

    yield make
    for window in windows:
        window.shutdown()

"""The composition root: settings, model packages, services, and the main window.

``aigc-studio [FILE]`` (the CLI calls :func:`main` when no subcommand is given) opens the window at
once, then FILE (a file that cannot be opened, such as a device or one over the size limit, is
refused with a message and the window stays); models are listed and loaded in the background, and
unsaved text from a session that ended without saving is offered back. A data folder that cannot
be written turns autosave and recovery off, with a message, and nothing else.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aigc_studio.gui.main_window import MainWindow
    from aigc_studio.services.documents import RecoveryStore
    from aigc_studio.services.models import ModelBackend
    from aigc_studio.services.settings import Settings
    from aigc_studio.viewmodels.design import DesignServices

__all__ = ["build_window", "main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigc-studio",
                                     description="Open the AIGC Studio writing window.")
    parser.add_argument("file", nargs="?", type=Path,
                        help="a text or Markdown file to open (created on the first save)")
    parser.add_argument("--models", type=Path, action="append", default=None, metavar="DIR",
                        help="an extra folder with model packages (repeatable)")
    # Debugging and screenshots; not for everyday use.
    parser.add_argument("--settings", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot-after", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot-widget", help=argparse.SUPPRESS)  # an objectName to grab
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop application; return its exit code.

    ``argv`` are the command-line arguments without the program name (default: ``sys.argv[1:]``);
    arguments Qt understands (``-platform offscreen``...) are passed on to Qt.
    """
    started = time.perf_counter()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments == sys.argv and len(arguments) >= 1:
        arguments = arguments[1:]  # tolerate being handed sys.argv itself
    args, qt_arguments = _parser().parse_known_args(arguments)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from aigc_studio.services.documents import RecoveryStore
    from aigc_studio.services.models import RuntimeBackend
    from aigc_studio.services.project import project_recovery_store
    from aigc_studio.services.settings import APPLICATION, ORGANIZATION, Settings

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(
        [sys.argv[0] if sys.argv else "aigc-studio", *qt_arguments])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("AIGC Studio")

    settings = Settings(args.settings)
    store = RecoveryStore(args.data_dir / "recovery" if args.data_dir else None)
    # A store that cannot write says so itself.
    window = build_window(settings, RuntimeBackend(extra_paths=args.models or ()), store,
                          design_store=project_recovery_store(args.data_dir))
    window.show()
    log.info("window shown %.2f s after start", time.perf_counter() - started)
    window.host.start()
    window.model.load()
    if args.file is not None:  # opened in the event loop: a refusal is a message over the window
        file: Path = args.file
        QTimer.singleShot(0, window, lambda: window.open_file(file))
    QTimer.singleShot(0, window, window.offer_recovery)
    QTimer.singleShot(0, window, window.offer_design_recovery)  # an unsaved design is offered back
    if args.screenshot is not None:
        QTimer.singleShot(int(args.screenshot_after * 1000),
                          lambda: _screenshot(window, args.screenshot, args.screenshot_widget))
    code = app.exec()
    window.shutdown()
    return int(code)


def build_window(settings: Settings, backend: ModelBackend, store: RecoveryStore, *,
                 design_store: RecoveryStore | None = None, library_path: Path | None = None) -> MainWindow:
    """Build every service and view-model and the main window that receives them.

    The model host's thread is not started yet (``window.host.start()``), nor a model loaded
    (``window.model.load()``); the window stops both services when it shuts down. Tests build their
    window here too, with a fake backend, so they run the application's own wiring. ``design_store``
    keeps unsaved designs (None: no design autosave); ``library_path`` is the asset library (the
    shipped one by default). The Design half (its services and workspace) is built when first needed.
    """
    from aigc_studio.gui.main_window import MainWindow
    from aigc_studio.services.completion_service import CompletionService
    from aigc_studio.services.model_host import ModelHost
    from aigc_studio.services.settings import DEBOUNCE_DELAY
    from aigc_studio.viewmodels.document import DocumentViewModel
    from aigc_studio.viewmodels.model import ModelViewModel, SamplingViewModel
    from aigc_studio.viewmodels.suggestion import SuggestionViewModel

    host = ModelHost(backend)
    completion = CompletionService(host, debounce_ms=settings.get(DEBOUNCE_DELAY))

    def design() -> DesignServices:
        """The Design half's services, built when the Design workspace is first needed: a writer who
        never designs pays for none of its imports, widgets or threads at start-up."""
        from aigc_studio.runtime.registry import shipped_library_dir
        from aigc_studio.services.image_service import ImageService
        from aigc_studio.services.library_service import LibraryService
        from aigc_studio.viewmodels.design import DesignServices
        from aigc_studio.viewmodels.image import GenerationViewModel

        images = ImageService(host)
        return DesignServices(GenerationViewModel(images), images,
                              LibraryService(library_path or shipped_library_dir()), design_store)

    return MainWindow(settings, host=host, completion=completion,
                      model=ModelViewModel(host, completion, settings),
                      sampling=SamplingViewModel(settings),
                      suggestion=SuggestionViewModel(completion, host, settings),
                      document=DocumentViewModel(settings, store), design=design, design_store=design_store)


def _screenshot(window: MainWindow, path: Path, widget_name: str | None = None) -> None:
    """Save the screen (or the window on a platform without a screen, or the widget called
    ``widget_name``) to ``path`` and quit."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    screen = QGuiApplication.primaryScreen()
    pixmap = screen.grabWindow(0) if screen is not None else None
    widget = window.findChild(QWidget, widget_name) if widget_name else None
    if widget is not None:
        pixmap = widget.grab()
    elif pixmap is None or pixmap.isNull():
        target = QApplication.activeModalWidget() or window
        pixmap = target.grab()
    elif screen is not None:  # the part of the screen with the window and its dialogs
        area = window.frameGeometry()
        for top in QApplication.topLevelWidgets():
            if top.isVisible():
                area = area.united(top.frameGeometry())
        pixmap = pixmap.copy(area.intersected(screen.geometry()))
    path.parent.mkdir(parents=True, exist_ok=True)
    pixmap.save(str(path))
    print(f"screenshot saved to {path}", flush=True)
    for top in QApplication.topLevelWidgets():
        if top is not window and top.isVisible():
            top.close()
    window.shutdown()
    QApplication.quit()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The Library panel: search, set filter, stroke controls, add and drag, over a tiny library."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog

from aigc_studio.gui.library_panel import SVG_MIME, LibraryPanel
from aigc_studio.services.library_service import LibraryService, LibraryState
from tests.runtime.test_library import build_tiny_library


@pytest.fixture
def service(qtbot, tmp_path: Path):
    svc = LibraryService(build_tiny_library(tmp_path / "library"))
    yield svc
    svc.shutdown()


@pytest.fixture
def panel(qtbot, service: LibraryService) -> LibraryPanel:
    widget = LibraryPanel(service)
    qtbot.addWidget(widget)
    widget.resize(360, 480)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(service.status_changed, check_params_cb=lambda s: s.state == LibraryState.READY):
        service.start()
    qtbot.waitUntil(lambda: panel_rows(widget) == 8)
    return widget


def panel_rows(panel: LibraryPanel) -> int:
    return panel.model.rowCount()


def names(panel: LibraryPanel) -> list[str]:
    return [panel.model.asset(r).name for r in range(panel.model.rowCount())]


def search(qtbot, panel: LibraryPanel, text: str) -> None:
    """Type ``text`` and wait for the search that follows the pause after typing."""
    panel.search_edit.setText(text)
    qtbot.waitUntil(lambda: panel.service.query[0] == text)


def row_of(panel: LibraryPanel, name: str) -> int:
    return names(panel).index(name)


def double_click(qtbot, panel: LibraryPanel, row: int) -> None:
    view = panel.view
    index = panel.model.index(row)
    view.scrollTo(index)
    pos = view.visualRect(index).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)  # a double click starts with a press
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_search_shows_the_matches_best_first(qtbot, panel: LibraryPanel) -> None:
    assert "8 assets" in panel.status_label.text()
    search(qtbot, panel, "heart")
    assert names(panel) == ["heart", "heart-broken", "red-heart"]
    assert "3 of 8" in panel.status_label.text()
    search(qtbot, panel, "zebra")
    assert names(panel) == [] and "Nothing matches" in panel.status_label.text()


def test_the_set_filter_shows_icons_or_emoji(qtbot, panel: LibraryPanel) -> None:
    titles = [panel.set_combo.itemText(i) for i in range(panel.set_combo.count())]
    assert titles == ["All", "Icons", "Emoji"]
    search(qtbot, panel, "heart")
    panel.set_combo.setCurrentIndex(2)
    assert names(panel) == ["red-heart"]
    panel.set_combo.setCurrentIndex(1)
    assert names(panel) == ["heart", "heart-broken"]


def test_double_click_adds_a_recoloured_icon(qtbot, panel: LibraryPanel) -> None:
    panel.set_stroke_colour("#336699")
    panel.width_spin.setValue(1.5)
    search(qtbot, panel, "heart")
    with qtbot.waitSignal(panel.add_requested) as blocker:
        double_click(qtbot, panel, row_of(panel, "heart"))
    svg, name, recolourable = blocker.args
    assert name == "heart" and recolourable
    assert 'stroke="#336699"' in svg and 'stroke-width="1.5"' in svg and "currentColor" not in svg


def test_double_click_adds_an_emoji_as_it_is(qtbot, panel: LibraryPanel, service: LibraryService) -> None:
    panel.set_stroke_colour("#336699")
    search(qtbot, panel, "red heart")
    with qtbot.waitSignal(panel.add_requested) as blocker:
        double_click(qtbot, panel, 0)
    svg, name, recolourable = blocker.args
    assert name == "red-heart" and not recolourable
    assert svg == service.results[0].svg and 'fill="#f8312f"' in svg


def test_the_add_button_adds_the_selected_asset(qtbot, panel: LibraryPanel) -> None:
    search(qtbot, panel, "home")
    assert not panel.add_button.isEnabled()
    panel.view.setCurrentIndex(panel.model.index(row_of(panel, "home")))
    assert panel.add_button.isEnabled()
    with qtbot.waitSignal(panel.add_requested) as blocker:
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert blocker.args[1] == "home" and 'stroke="#000000"' in blocker.args[0]


def test_drag_carries_the_svg_and_the_name(qtbot, panel: LibraryPanel) -> None:
    panel.set_stroke_colour(QColor("#ff0000"))
    search(qtbot, panel, "sun")
    mime = panel.model.mimeData([panel.model.index(0)])
    assert set(mime.formats()) >= {SVG_MIME, "text/plain"}
    svg = bytes(mime.data(SVG_MIME)).decode("utf-8")
    assert 'stroke="#ff0000"' in svg and 'fill="#ff0000"' in svg
    assert mime.text() == "sun"
    assert panel.model.flags(panel.model.index(0)) & Qt.ItemFlag.ItemIsDragEnabled
    assert panel.view.dragEnabled()


def test_the_colour_button_asks_for_a_colour(qtbot, panel: LibraryPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor("#00aa00")))
    qtbot.mouseClick(panel.colour_button, Qt.MouseButton.LeftButton)
    assert panel.stroke_colour == "#00aa00"
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor()))  # cancelled
    qtbot.mouseClick(panel.colour_button, Qt.MouseButton.LeftButton)
    assert panel.stroke_colour == "#00aa00"


def test_thumbnails_are_rendered_on_demand_and_cached(qtbot, panel: LibraryPanel) -> None:
    qtbot.waitUntil(lambda: panel.model.cached_thumbnails > 0)  # the visible items were painted
    icon = panel.model.data(panel.model.index(0), Qt.ItemDataRole.DecorationRole)
    assert not icon.isNull()
    assert panel.model.data(panel.model.index(0), Qt.ItemDataRole.DecorationRole) is icon  # cached


def test_the_width_spin_box_ignores_the_wheel_unless_focused(panel: LibraryPanel) -> None:
    assert panel.width_spin.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert panel.set_combo.focusPolicy() == Qt.FocusPolicy.StrongFocus


def test_a_broken_library_is_reported_and_the_panel_still_works(qtbot, tmp_path: Path) -> None:
    svc = LibraryService(tmp_path / "missing")
    widget = LibraryPanel(svc)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(svc.status_changed, check_params_cb=lambda s: s.state == LibraryState.FAILED):
        svc.start()
    assert "cannot be used" in widget.status_label.text() and "folder not found" in widget.status_label.text()
    search(qtbot, widget, "heart")
    assert widget.model.rowCount() == 0
    svc.shutdown()


def test_no_loader_thread_outlives_the_load(panel: LibraryPanel, service: LibraryService) -> None:
    assert not [t for t in service.findChildren(QThread) if t.isRunning()]

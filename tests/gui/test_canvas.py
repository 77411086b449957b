"""The design canvas: layers, one undo step per action, snapping, the layers panel, drops."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent

from aigc_studio.gui.canvas import DesignCanvasView, LayersPanel, arrange
from aigc_studio.gui.canvas.items import SvgItem
from tests.gui.canvas_helpers import EMOJI_SVG, ICON_SVG, drag, generated_png


@pytest.fixture
def canvas(qtbot) -> DesignCanvasView:
    view = DesignCanvasView(512, 512)
    qtbot.addWidget(view)
    view.resize(700, 700)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(1.0)
    view.centerOn(256, 256)
    return view


def test_add_every_kind_and_undo_redo(canvas: DesignCanvasView) -> None:
    png, record = generated_png()
    ids = [canvas.add_image(png, name="cat"), canvas.add_svg(ICON_SVG, "smile", True),
           canvas.add_svg(EMOJI_SVG, "grin", False), canvas.add_text("Hi"), canvas.add_shape("rect"),
           canvas.add_shape("ellipse")]
    assert [layer.kind for layer in canvas.layers()] == ["image", "svg", "svg", "text", "rect", "ellipse"]
    assert canvas.layer(ids[0]).record == record  # read from the PNG itself
    assert canvas.undo_stack.count() == 6
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert [layer.id for layer in canvas.layers()] == ids[:4]
    canvas.undo_stack.redo()
    assert [layer.id for layer in canvas.layers()] == ids[:5]
    with pytest.raises(ValueError):
        canvas.add_image(b"not a png")
    with pytest.raises(ValueError):
        canvas.add_shape("star")


def test_a_drag_is_one_undo_step(canvas: DesignCanvasView) -> None:
    layer_id = canvas.add_shape("rect")  # 128 x 128 at the centre
    canvas.set_fields([layer_id], "place", x=20.0, y=20.0)
    steps = canvas.undo_stack.count()
    canvas.design_scene.snapping = False
    drag(canvas, QPointF(84, 84), QPointF(184, 134), steps=8)
    moved = canvas.layer(layer_id)
    assert (moved.x, moved.y) == pytest.approx((120, 70), abs=1.5)
    assert canvas.undo_stack.count() == steps + 1
    assert canvas.undo_stack.undoText() == "Move"
    canvas.undo_stack.undo()
    assert (canvas.layer(layer_id).x, canvas.layer(layer_id).y) == (20, 20)
    canvas.undo_stack.redo()
    assert canvas.layer(layer_id).x == pytest.approx(moved.x)


def test_dragging_snaps_to_the_canvas_centre(canvas: DesignCanvasView) -> None:
    layer_id = canvas.add_shape("rect")
    canvas.set_fields([layer_id], "place", x=10.0, y=10.0)
    # the centre would land at (252, 250): within 8 px of the canvas centre (256, 256) on both axes
    drag(canvas, QPointF(74, 74), QPointF(252, 250))
    layer = canvas.layer(layer_id)
    assert (layer.x + 64, layer.y + 64) == pytest.approx((256, 256))
    canvas.design_scene.snapping = False
    drag(canvas, QPointF(256, 256), QPointF(253, 253))
    assert canvas.layer(layer_id).x == pytest.approx(189, abs=1)


def test_text_edit_in_place_is_one_step(canvas: DesignCanvasView, qtbot) -> None:
    layer_id = canvas.add_text("Hello")
    item = canvas.item(layer_id)
    steps = canvas.undo_stack.count()
    item.start_editing()
    assert item.editing
    cursor = item.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    item.setTextCursor(cursor)
    qtbot.keyClicks(canvas.viewport(), " world")
    item.finish_editing()
    assert canvas.layer(layer_id).text == "Hello world"
    assert canvas.undo_stack.count() == steps + 1
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).text == "Hello" and item.toPlainText() == "Hello"
    canvas.undo_stack.redo()
    assert item.toPlainText() == "Hello world"


def test_recolour_and_delete_undo(canvas: DesignCanvasView) -> None:
    icon = canvas.add_svg(ICON_SVG, "smile", True)
    emoji = canvas.add_svg(EMOJI_SVG, "grin", False)
    item = canvas.item(icon)
    assert isinstance(item, SvgItem) and "currentColor" in item.source()
    canvas.recolour(icon, "#ff0000", 3)
    assert 'stroke="#ff0000"' in item.source() and 'stroke-width="3"' in item.source()
    canvas.undo_stack.undo()
    assert "currentColor" in item.source() and canvas.layer(icon).stroke == ""
    with pytest.raises(ValueError):
        canvas.recolour(emoji, "#ff0000")
    canvas.select([icon, emoji])
    canvas.remove()
    assert canvas.layers() == []
    canvas.undo_stack.undo()
    assert [layer.id for layer in canvas.layers()] == [icon, emoji]


def test_layers_panel_hides_locks_renames_and_reorders(canvas: DesignCanvasView, qtbot) -> None:
    panel = LayersPanel(canvas)
    qtbot.addWidget(panel)
    bottom, top = canvas.add_shape("rect"), canvas.add_shape("ellipse")
    assert [panel.tree.topLevelItem(i).text(0) for i in range(2)] == ["Ellipse", "Rectangle"]
    panel.row(bottom).setCheckState(1, Qt.CheckState.Unchecked)
    assert not canvas.item(bottom).isVisible() and canvas.undo_stack.undoText() == "Hide layer"
    panel.row(top).setCheckState(2, Qt.CheckState.Checked)
    assert canvas.layer(top).locked and not canvas.item(top).flags() & canvas.item(top).GraphicsItemFlag.ItemIsMovable
    panel.row(top).setText(0, "Sun")
    assert canvas.layer(top).name == "Sun"
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert not canvas.layer(top).locked and canvas.layer(top).name == "Ellipse"
    panel.tree.clearSelection()
    panel.row(top).setSelected(True)
    assert canvas.selected_ids() == [top]
    panel.lower_button.click()
    assert [layer.id for layer in canvas.layers()] == [top, bottom]
    assert panel.tree.topLevelItem(0).data(0, Qt.ItemDataRole.UserRole) == bottom
    assert panel.row(top).isSelected()


def test_align_distribute_group_and_z_order(canvas: DesignCanvasView) -> None:
    ids = [canvas.add_shape("rect") for _ in range(3)]
    for i, layer_id in enumerate(ids):
        canvas.set_fields([layer_id], "place", x=10.0 + 100 * i * i, y=5.0 * i)
    arrange.align(canvas, ids, "top")
    assert {canvas.layer(i).y for i in ids} == {0.0}
    arrange.distribute(canvas, ids, "horizontal")
    xs = [canvas.layer(i).x for i in ids]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])
    arrange.send_to_back(canvas, [ids[2]])
    assert [layer.id for layer in canvas.layers()] == [ids[2], ids[0], ids[1]]
    arrange.group(canvas, ids[:2])
    canvas.select([ids[0]])
    assert set(canvas.selected_ids()) == {ids[0], ids[1]}
    arrange.rotate(canvas, [ids[0]], 30)
    arrange.scale(canvas, [ids[0]], 2)
    assert (canvas.layer(ids[0]).rotation, canvas.layer(ids[0]).scale) == (30, 2)
    canvas.undo_stack.undo()
    assert canvas.layer(ids[0]).scale == 1


def test_drops_add_layers_at_the_drop_point(canvas: DesignCanvasView) -> None:
    png, record = generated_png(seed=7)
    mime = QMimeData()
    mime.setData("application/x-aigc-image", png)
    mime.setData("application/x-aigc-record", record.encode())
    at = canvas.mapFromScene(QPointF(100, 120))
    event = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    canvas.dropEvent(event)
    layer = canvas.layers()[-1]
    assert layer.record == record
    assert (layer.x + layer.width / 2, layer.y + layer.height / 2) == pytest.approx((100, 120), abs=1)
    bad = QMimeData()
    bad.setData("image/svg+xml", b"<svg")
    failures: list[str] = []
    canvas.drop_failed.connect(failures.append)
    canvas.dropEvent(QDropEvent(QPointF(at), Qt.DropAction.CopyAction, bad,
                                                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert failures and len(canvas.layers()) == 1


def test_ctrl_wheel_zooms_and_fit_shows_the_paper(canvas: DesignCanvasView) -> None:
    canvas.fit()
    assert canvas.zoom == pytest.approx(min(canvas.viewport().width(), canvas.viewport().height()) / 544, rel=0.05)
    canvas.set_zoom(100)
    assert canvas.zoom == 32

"""The properties panel: every edit is one undo step, and the panel follows selection, undo and redo."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QColorDialog

from aigc_studio.gui.canvas import DesignCanvasView, PropertiesPanel
from aigc_studio.gui.canvas.items import SvgItem
from tests.gui.canvas_helpers import ICON_SVG, generated_png


@pytest.fixture
def canvas(qtbot) -> DesignCanvasView:
    view = DesignCanvasView(512, 512)
    qtbot.addWidget(view)
    return view


@pytest.fixture
def panel(qtbot, canvas: DesignCanvasView) -> PropertiesPanel:
    widget = PropertiesPanel(canvas)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def colours(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The colours the patched colour dialog answers, first one first ("" = the user cancels)."""
    answers: list[str] = []

    def get_colour(initial: QColor, parent: Any = None, title: str = "", *args: Any) -> QColor:
        answer = answers.pop(0)
        return QColor(answer) if answer else QColor()

    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(get_colour))
    return answers


def test_no_selection_shows_the_hint(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    assert panel.hint.isVisible() and not panel.layout_group.isVisible()
    canvas.add_text("Hi")
    assert not panel.hint.isVisible() and panel.text_group.isVisible() and not panel.shape_group.isVisible()
    canvas.select([])
    assert panel.hint.isVisible() and not panel.text_group.isVisible()


def test_text_size_colour_alignment_are_one_step_each(canvas: DesignCanvasView, panel: PropertiesPanel,
                                                       colours: list[str]) -> None:
    layer_id = canvas.add_text("Hello")
    steps = canvas.undo_stack.count()
    panel.font_size_spin.setValue(60)
    assert canvas.layer(layer_id).font_size == 60
    colours.append("#ff0000")
    panel.colour_button.button.click()
    assert canvas.layer(layer_id).color == "#ff0000"
    assert panel.colour_button.button.text() == "#ff0000"
    panel.align_buttons.button(2).click()
    assert canvas.layer(layer_id).align == "right"
    assert canvas.undo_stack.count() == steps + 3
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).align == "left" and panel.alignment() == "left"
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).color == "#000000" and panel.colour_button.colour == "#000000"
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).font_size == 48 and panel.font_size_spin.value() == 48


def test_cancelled_colour_dialog_changes_nothing(canvas: DesignCanvasView, panel: PropertiesPanel,
                                                 colours: list[str]) -> None:
    canvas.add_text("Hello")
    steps = canvas.undo_stack.count()
    colours.append("")
    panel.colour_button.button.click()
    assert canvas.undo_stack.count() == steps


def test_font_family(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    layer_id = canvas.add_text("Hello")
    family = next(f for f in (panel.font_combo.itemText(i) for i in range(panel.font_combo.count()))
                  if f != canvas.layer(layer_id).font_family)
    panel.font_combo.setCurrentFont(QFont(family))
    assert canvas.layer(layer_id).font_family == panel.font_combo.currentFont().family()
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).font_family == "DejaVu Sans"


def test_arrow_steps_of_one_field_merge_until_editing_finishes(qtbot, canvas: DesignCanvasView,
                                                               panel: PropertiesPanel) -> None:
    layer_id = canvas.add_text("Hello")
    steps = canvas.undo_stack.count()
    panel.font_size_spin.setFocus()
    for _ in range(3):
        qtbot.keyClick(panel.font_size_spin, Qt.Key.Key_Up)
    assert canvas.layer(layer_id).font_size == 51
    assert canvas.undo_stack.count() == steps + 1
    panel.font_size_spin.editingFinished.emit()  # Enter or the focus leaving
    qtbot.keyClick(panel.font_size_spin, Qt.Key.Key_Up)
    assert canvas.undo_stack.count() == steps + 2
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).font_size == 51
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).font_size == 48


def test_a_step_after_undo_is_a_new_step(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    layer_id = canvas.add_text("Hello")
    panel.font_size_spin.setValue(50)
    panel.rotation_spin.setValue(10)
    canvas.undo_stack.undo()
    panel.font_size_spin.setValue(52)  # must not join the 48 -> 50 step before it
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).font_size == 50


def test_shape_fill_outline_and_width(canvas: DesignCanvasView, panel: PropertiesPanel,
                                      colours: list[str]) -> None:
    layer_id = canvas.add_shape("ellipse")
    assert panel.shape_group.isVisible() and not panel.text_group.isVisible()
    before = canvas.layer(layer_id)
    panel.fill_button.clear_button.click()
    colours.append("#00ff00")
    panel.outline_button.button.click()
    panel.outline_width_spin.setValue(10)
    layer = canvas.layer(layer_id)
    assert (layer.fill, layer.outline, layer.outline_width) == ("", "#00ff00", 10)
    assert panel.fill_button.button.text() == "none"
    for _ in range(3):
        canvas.undo_stack.undo()
    assert canvas.layer(layer_id) == before


def test_translucent_colour_keeps_its_alpha(canvas: DesignCanvasView, panel: PropertiesPanel,
                                            colours: list[str]) -> None:
    layer_id = canvas.add_shape("rect")
    colours.append("#80123456")
    panel.fill_button.button.click()
    assert canvas.layer(layer_id).fill == "#80123456"


def test_recolour_a_placed_icon(canvas: DesignCanvasView, panel: PropertiesPanel, colours: list[str]) -> None:
    layer_id = canvas.add_svg(ICON_SVG, "smile", True)
    assert panel.icon_group.isVisible()
    colours.append("#e53935")
    panel.stroke_button.button.click()
    panel.stroke_width_spin.setValue(3)
    layer = canvas.layer(layer_id)
    assert (layer.stroke, layer.stroke_width) == ("#e53935", 3)
    item = canvas.item(layer_id)
    assert isinstance(item, SvgItem) and "#e53935" in item.source()
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert (canvas.layer(layer_id).stroke, canvas.layer(layer_id).stroke_width) == ("", 0)
    assert panel.stroke_button.button.text() == "as drawn"


def test_emoji_has_no_stroke_controls(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    canvas.add_svg(ICON_SVG, "smile", False)
    assert panel.layout_group.isVisible() and not panel.icon_group.isVisible()


def test_position_scale_rotation_and_name(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    layer_id = canvas.add_shape("rect")
    panel.scale_spin.setValue(250)
    panel.rotation_spin.setValue(-30)
    panel.x_spin.setValue(12)
    panel.name_edit.setText("Box")
    panel.name_edit.editingFinished.emit()
    layer = canvas.layer(layer_id)
    assert (layer.scale, layer.rotation, layer.x, layer.name) == (pytest.approx(2.5), -30, 12, "Box")
    assert canvas.item(layer_id).scale() == pytest.approx(2.5)
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).name == "Rectangle" and panel.name_edit.text() == "Rectangle"
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).rotation == 0 and panel.rotation_spin.value() == 0
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).scale == 1 and panel.scale_spin.value() == 100


def test_several_layers_get_the_same_scale_in_one_step(canvas: DesignCanvasView,
                                                        panel: PropertiesPanel) -> None:
    ids = [canvas.add_shape("rect"), canvas.add_text("Hi"), canvas.add_svg(ICON_SVG, "smile", True)]
    canvas.select(ids)
    assert panel.layout_group.title() == "3 layers"
    assert not panel.name_edit.isVisible() and not panel.x_spin.isVisible()
    assert not (panel.text_group.isVisible() or panel.shape_group.isVisible() or panel.icon_group.isVisible())
    steps = canvas.undo_stack.count()
    panel.scale_spin.setValue(50)
    assert [canvas.layer(i).scale for i in ids] == [0.5, 0.5, 0.5]
    assert canvas.undo_stack.count() == steps + 1
    canvas.undo_stack.undo()
    assert [canvas.layer(i).scale for i in ids] == [1, 1, 1]


def test_several_shapes_share_their_fill(canvas: DesignCanvasView, panel: PropertiesPanel,
                                         colours: list[str]) -> None:
    ids = [canvas.add_shape("rect"), canvas.add_shape("ellipse")]
    canvas.select(ids)
    assert panel.shape_group.isVisible()
    colours.append("#112233")
    panel.fill_button.button.click()
    assert [canvas.layer(i).fill for i in ids] == ["#112233", "#112233"]


def test_panel_follows_undo_and_redo(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    layer_id = canvas.add_text("Hello")
    canvas.set_fields([layer_id], "Bigger", font_size=80.0, align="center")
    assert panel.font_size_spin.value() == 80 and panel.alignment() == "center"
    canvas.undo_stack.undo()
    assert panel.font_size_spin.value() == 48 and panel.alignment() == "left"
    canvas.undo_stack.redo()
    assert panel.font_size_spin.value() == 80 and panel.alignment() == "center"


def test_refilling_emits_no_edit(qtbot, canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    png, _ = generated_png()
    ids = [canvas.add_text("Hello"), canvas.add_shape("rect"), canvas.add_svg(ICON_SVG, "smile", True),
           canvas.add_image(png)]
    canvas.set_fields([ids[0]], "Look", font_size=30.0, color="#123456", align="right",
                      font_family="DejaVu Serif")
    canvas.set_fields(ids[1:3], "Look", scale=1.5, rotation=45.0)
    steps = canvas.undo_stack.count()
    with qtbot.assertNotEmitted(canvas.layers_changed):
        for selection in (ids[:1], ids[1:2], ids[2:3], ids[3:], ids, [], ids[:1]):
            canvas.select(selection)
    assert canvas.undo_stack.count() == steps
    assert panel.font_size_spin.value() == 30 and panel.alignment() == "right"


def test_open_in_generate_emits_the_record(qtbot, canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    png, record = generated_png(seed=7)
    canvas.add_image(png, name="cat")
    assert panel.record_group.isVisible()
    assert "Seed: 7" in panel.record_label.text() and "emoji-style" in panel.record_label.text()
    with qtbot.waitSignal(panel.restore_generation_requested, timeout=1000) as signal:
        panel.open_button.click()
    assert signal.args == [record] and json.loads(signal.args[0])["seed"] == 7


def test_unreadable_record_disables_open(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    png, _ = generated_png()
    canvas.add_image(png, record_json="{not json")
    assert panel.record_group.isVisible() and not panel.open_button.isEnabled()
    assert "cannot be read" in panel.record_label.text()


def test_image_without_record_has_no_generation_group(canvas: DesignCanvasView, panel: PropertiesPanel) -> None:
    png, _ = generated_png()
    layer_id = canvas.add_image(png)
    canvas.set_fields([layer_id], "Forget", record=None)
    assert panel.layout_group.isVisible() and not panel.record_group.isVisible()


def test_canvas_change_merges_by_key(canvas: DesignCanvasView) -> None:
    layer_id = canvas.add_shape("rect")
    steps = canvas.undo_stack.count()
    canvas.change({layer_id: {"rotation": 5.0}}, "Rotate", merge_key="a")
    canvas.change({layer_id: {"rotation": 9.0}}, "Rotate", merge_key="a")
    assert canvas.undo_stack.count() == steps + 1
    canvas.change({layer_id: {"rotation": 12.0}}, "Rotate", merge_key="b")
    canvas.change({layer_id: {"rotation": 15.0}}, "Rotate")
    canvas.change({layer_id: {"rotation": 20.0}}, "Rotate")
    assert canvas.undo_stack.count() == steps + 4  # other key, no key: separate steps
    canvas.change({layer_id: {"scale": 2.0}}, "Scale", merge_key="c")
    canvas.change({layer_id: {"scale": 1.0}}, "Scale", merge_key="c")
    assert canvas.undo_stack.count() == steps + 4  # changed and changed back: no step
    for _ in range(3):
        canvas.undo_stack.undo()
    assert canvas.layer(layer_id).rotation == 9
    canvas.undo_stack.undo()
    assert canvas.layer(layer_id).rotation == 0

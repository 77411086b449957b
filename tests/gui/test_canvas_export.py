"""Exports of the canvas: PNG at 2x with the generation records, SVG that another renderer draws alike."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QImage

from aigc_studio.core.png_record import RECORD_KEY, read_record, read_text
from aigc_studio.gui.canvas import RECORDS_KEY, DesignCanvasView, export_png, export_svg
from tests.gui.canvas_helpers import EMOJI_SVG, ICON_SVG, generated_png

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def design(qtbot) -> DesignCanvasView:
    canvas = DesignCanvasView(256, 256)
    qtbot.addWidget(canvas)
    png, _ = generated_png(side=64)
    image = canvas.add_image(png, name="cat")
    icon = canvas.add_svg(ICON_SVG, "smile", True)
    emoji = canvas.add_svg(EMOJI_SVG, "grin", False)
    text = canvas.add_text("Hello\nworld")
    shape = canvas.add_shape("ellipse")
    canvas.change({image: {"x": 150.0, "y": 20.0}, icon: {"x": 10.0, "y": 10.0, "scale": 0.5},
                   emoji: {"x": 20.0, "y": 150.0, "scale": 0.5, "rotation": 20.0},
                   text: {"x": 10.0, "y": 120.0, "font_size": 28.0, "color": "#202020"},
                   shape: {"x": 140.0, "y": 150.0, "fill": "#804a90d9"}}, "place")
    canvas.recolour(icon, "#d0021b", 2.5)
    return canvas


def _pixels(png: bytes) -> np.ndarray:
    image = QImage.fromData(QByteArray(png), "PNG").convertToFormat(QImage.Format.Format_RGBA8888)
    array = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return array.reshape(image.height(), image.bytesPerLine())[:, :image.width() * 4].reshape(
        image.height(), image.width(), 4).astype(np.float64)


def test_png_export_at_2x_is_transparent_and_keeps_the_record(design: DesignCanvasView) -> None:
    data = export_png(design, 2)
    pixels = _pixels(data)
    assert pixels.shape == (512, 512, 4)
    assert pixels[0, 0, 3] == 0 and pixels[511, 300, 3] == 0  # transparent where nothing is drawn
    assert pixels[2 * 52, 2 * 182, 3] == 255                  # inside the generated image
    text = read_text(data)
    image_layer = design.layers()[0]
    assert json.loads(text[RECORDS_KEY]) == [{"layer": image_layer.id, "name": "cat",
                                             "record": image_layer.record}]
    assert text[RECORD_KEY] == image_layer.record
    assert read_record(data).seed == 42
    with pytest.raises(ValueError):
        export_png(design, 3)


def test_svg_export_keeps_text_vectors_and_images(design: DesignCanvasView) -> None:
    root = ET.fromstring(export_svg(design))
    assert (root.get("width"), root.get("height")) == ("256", "256")
    spans = [span.text for span in root.iter(f"{SVG}tspan")]
    assert spans == ["Hello", "world"] and len(list(root.iter(f"{SVG}text"))) == 1
    assert len(list(root.iter(f"{SVG}svg"))) == 3        # the root and two nested vector layers
    assert any('#d0021b' in (e.get("stroke") or "") for e in root.iter())
    images = [e for e in root.iter(f"{SVG}image")]
    assert len(images) == 1 and images[0].get("href", "").startswith("data:image/png;base64,")
    assert len(list(root.iter(f"{SVG}ellipse"))) >= 1


def test_svg_export_renders_in_rsvg_like_the_canvas(design: DesignCanvasView, tmp_path: Path) -> None:
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        pytest.skip("rsvg-convert is not installed (Debian: apt-get install librsvg2-bin)")
    svg_file = tmp_path / "design.svg"
    svg_file.write_text(export_svg(design), encoding="utf-8")
    out = tmp_path / "rsvg.png"
    subprocess.run([rsvg, "-w", "256", "-h", "256", "-o", str(out), str(svg_file)], check=True, timeout=60)
    theirs, ours = _pixels(out.read_bytes()), _pixels(export_png(design, 1))
    assert theirs.shape == ours.shape
    alpha_theirs, alpha_ours = theirs[..., 3] > 127, ours[..., 3] > 127
    overlap = (alpha_theirs & alpha_ours).sum() / max(1, (alpha_theirs | alpha_ours).sum())
    assert overlap > 0.93, f"the drawn areas differ: intersection over union {overlap:.3f}"
    premultiplied = lambda p: p[..., :3] * p[..., 3:] / 255  # noqa: E731
    difference = np.abs(premultiplied(theirs) - premultiplied(ours)).mean()
    assert difference < 6.0, f"mean absolute difference {difference:.2f} of 255"
    design.set_visible(design.layers()[0].id, False)  # the comparison can fail: a missing layer shows
    subprocess.run([rsvg, "-o", str(out), str(svg_file)], check=True, timeout=60)
    hidden = _pixels(export_png(design, 1))
    assert np.abs(premultiplied(theirs) - premultiplied(hidden)).mean() > 6.0

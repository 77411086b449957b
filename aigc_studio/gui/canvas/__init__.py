"""The Design workspace's canvas: layers, undo, snapping, the layers panel, exports."""

from __future__ import annotations

from aigc_studio.gui.canvas.drops import IMAGE_MIME, RECORD_MIME
from aigc_studio.gui.canvas.export import EXPORT_SCALES, RECORDS_KEY, export_png, export_svg, render_canvas
from aigc_studio.gui.canvas.layers_panel import LayersPanel
from aigc_studio.gui.canvas.properties_panel import PropertiesPanel
from aigc_studio.gui.canvas.view import SHAPE_KINDS, DesignCanvasView

__all__ = ["EXPORT_SCALES", "IMAGE_MIME", "RECORDS_KEY", "RECORD_MIME", "SHAPE_KINDS", "DesignCanvasView",
           "LayersPanel", "PropertiesPanel", "export_png", "export_svg", "render_canvas"]

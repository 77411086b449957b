"""The Library panel of the Design workspace: real icons and emoji to place on the canvas.

A search box over names, tags and groups, a set filter (All, Icons, Emoji), a grid of thumbnails, and
the stroke colour and width given to icons (emoji keep their colours). Double-click an asset or press
"Add" to ask for it on the canvas (:attr:`LibraryPanel.add_requested`), or drag it out: the drag carries
the SVG as ``image/svg+xml`` and the name as text.

The panel binds to a :class:`~aigc_studio.services.library_service.LibraryService` (which the app
starts); it searches through it, a short pause after the last keystroke. Thumbnails are rendered with
QtSvg only when the grid asks for them, i.e. for the visible items, and cached.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from aigc_studio.services.library_service import Asset, LibraryService, LibraryState, LibraryStatus

from .settings_form import guard_wheel

__all__ = ["SVG_MIME", "AssetListModel", "LibraryPanel"]

SVG_MIME = "image/svg+xml"
THUMB = 40                  # thumbnail side, device-independent pixels
GRID = QSize(76, 70)        # one cell: thumbnail and an elided name
CACHE_SIZE = 2000           # thumbnails kept (the grid shows a few dozen at a time)
SEARCH_DELAY_MS = 120       # pause after the last keystroke before searching
ASSET_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_TITLES = {"icons": "Icons", "emoji": "Emoji"}


def render_svg(svg: str, side: int, ratio: float = 1.0) -> QPixmap:
    """``svg`` drawn centred in a transparent square of ``side`` pixels, keeping its aspect ratio."""
    px = max(1, round(side * ratio))
    image = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    if renderer.isValid():
        box = renderer.viewBoxF()
        w, h = (box.width(), box.height()) if box.width() > 0 and box.height() > 0 else (1.0, 1.0)
        scale = px / max(w, h)
        target = QRectF((px - w * scale) / 2, (px - h * scale) / 2, w * scale, h * scale)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, target)
        painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


class AssetListModel(QAbstractListModel):
    """The search results as a list model: name, tooltip, a lazily rendered thumbnail (recoloured for
    icons), and drag data (the SVG as ``image/svg+xml``, the name as text)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._assets: list[Asset] = []
        self._colour = "#000000"
        self._width = 2.0
        self._ratio = 1.0
        self._cache: OrderedDict[tuple[str, str, str, float], QIcon] = OrderedDict()

    # -- state ----------------------------------------------------------------------------------

    def set_assets(self, assets: list[Asset]) -> None:
        self.beginResetModel()
        self._assets = list(assets)
        self.endResetModel()

    def set_stroke(self, colour: str, width: float) -> None:
        """Draw icons with ``colour`` and ``width`` from now on (thumbnails and drag data)."""
        if (colour, width) == (self._colour, self._width):
            return
        self._colour, self._width = colour, width
        if self._assets:
            self.dataChanged.emit(self.index(0), self.index(len(self._assets) - 1),
                                  [Qt.ItemDataRole.DecorationRole])

    def set_device_pixel_ratio(self, ratio: float) -> None:
        if ratio != self._ratio:
            self._ratio = ratio
            self._cache.clear()

    def asset(self, row: int) -> Asset | None:
        return self._assets[row] if 0 <= row < len(self._assets) else None

    def svg_for(self, asset: Asset) -> str:
        """The SVG the canvas gets: recoloured for an icon, as it is for an emoji."""
        return asset.rendered(self._colour, self._width)

    @property
    def cached_thumbnails(self) -> int:
        return len(self._cache)

    # -- Qt model -------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._assets)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        asset = self.asset(index.row()) if index.isValid() else None
        if asset is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return asset.name.replace("-", " ")
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(asset)
        if role == Qt.ItemDataRole.ToolTipRole:
            tags = ", ".join(asset.tags[:12])
            return f"<b>{asset.name}</b><br>{asset.group}" + (f"<br><i>{tags}</i>" if tags else "")
        if role == ASSET_ROLE:
            return asset
        return None

    def _thumbnail(self, asset: Asset) -> QIcon:
        key = (asset.set, asset.name, self._colour if asset.recolourable else "",
               self._width if asset.recolourable else 0.0)
        icon = self._cache.get(key)
        if icon is None:
            icon = QIcon(render_svg(self.svg_for(asset), THUMB, self._ratio))
            self._cache[key] = icon
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return icon

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:
        return [SVG_MIME, "text/plain"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:  # type: ignore[override]
        mime = QMimeData()
        assets = [a for a in (self.asset(i.row()) for i in indexes if i.isValid()) if a is not None]
        if assets:
            mime.setData(SVG_MIME, QByteArray(self.svg_for(assets[0]).encode("utf-8")))
            mime.setText(assets[0].name)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


class LibraryPanel(QWidget):
    """Search and place icons and emoji; binds to ``service`` (started by the app)."""

    add_requested = Signal(str, str, bool)
    """The user asked to place an asset on the canvas: carries its SVG (recoloured for an icon), its
    name and whether it is recolourable (an icon)."""

    def __init__(self, service: LibraryService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._colour = QColor("#000000")

        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Search icons and emoji")
        self.search_edit.setClearButtonEnabled(True)
        self.set_combo = QComboBox(self)
        self.set_combo.setToolTip("Which sets to show")
        guard_wheel(self.set_combo)

        self.colour_button = QToolButton(self)
        self.colour_button.setToolTip("Stroke colour of icons (emoji keep their colours)")
        self.width_spin = QDoubleSpinBox(self)
        self.width_spin.setRange(0.5, 4.0)
        self.width_spin.setSingleStep(0.25)
        self.width_spin.setDecimals(2)
        self.width_spin.setValue(2.0)
        self.width_spin.setSuffix(" px")
        self.width_spin.setToolTip("Stroke width of icons, in units of their 24-unit grid")
        guard_wheel(self.width_spin)

        self.model = AssetListModel(self)
        self.view = QListView(self)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)   # only visible items are measured and drawn
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(GRID)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setDragEnabled(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.view.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.view.setModel(self.model)
        palette = self.view.palette()   # thumbnails on white, as on the canvas
        palette.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
        palette.setColor(QPalette.ColorRole.Text, QColor("#303030"))
        self.view.setPalette(palette)

        self.add_button = QPushButton("Add", self)
        self.add_button.setToolTip("Place the selected asset on the canvas (or double-click it, or drag it)")
        self.add_button.setEnabled(False)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.set_combo)
        stroke = QHBoxLayout()
        stroke.addWidget(QLabel("Stroke", self))
        stroke.addWidget(self.colour_button)
        stroke.addWidget(self.width_spin)
        stroke.addStretch(1)
        stroke.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(stroke)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._search_now)

        self.search_edit.textChanged.connect(self._on_search_text_changed)
        self.set_combo.currentIndexChanged.connect(self._on_set_filter_changed)
        self.colour_button.clicked.connect(self._on_colour_clicked)
        self.width_spin.valueChanged.connect(self._on_stroke_changed)
        self.view.doubleClicked.connect(self._on_item_double_clicked)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.add_button.clicked.connect(self._on_add_clicked)
        service.status_changed.connect(self._on_status_changed)
        service.results_changed.connect(self._on_results_changed)

        self._update_colour_button()
        self._on_status_changed(service.status)
        self.model.set_assets(service.results)
        self._update_count()

    # -- public ---------------------------------------------------------------------------------

    @property
    def service(self) -> LibraryService:
        """The service the panel searches through."""
        return self._service

    @property
    def stroke_colour(self) -> str:
        return self._colour.name()

    @property
    def stroke_width(self) -> float:
        return float(self.width_spin.value())

    def set_stroke_colour(self, colour: QColor | str) -> None:
        """Draw icons in ``colour`` (thumbnails, Add and drag)."""
        c = QColor(colour)
        if c.isValid() and c != self._colour:
            self._colour = c
            self._update_colour_button()
            self._on_stroke_changed()

    def shutdown(self) -> None:
        """Stop a pending search (the service is the app's to shut down)."""
        self._search_timer.stop()

    # -- slots ----------------------------------------------------------------------------------

    @Slot(str)
    def _on_search_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    @Slot(int)
    def _on_set_filter_changed(self, _index: int) -> None:
        self._search_now()

    @Slot()
    def _search_now(self) -> None:
        self._search_timer.stop()
        self._service.search(self.search_edit.text(), self.set_combo.currentData())

    @Slot(object)
    def _on_status_changed(self, status: LibraryStatus) -> None:
        if status.state == LibraryState.READY:
            self._fill_set_filter(status)
            self._search_now()
        self._update_count()

    @Slot(list)
    def _on_results_changed(self, assets: list[Asset]) -> None:
        self.model.set_device_pixel_ratio(self.devicePixelRatioF())
        self.model.set_assets(assets)
        self.add_button.setEnabled(False)
        if assets:
            self.view.scrollToTop()
        self._update_count()

    @Slot()
    def _on_colour_clicked(self) -> None:
        colour = QColorDialog.getColor(self._colour, self, "Stroke colour of icons")
        if colour.isValid():
            self.set_stroke_colour(colour)

    @Slot()
    def _on_stroke_changed(self, *_args: object) -> None:
        self.model.set_stroke(self.stroke_colour, self.stroke_width)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.add_button.setEnabled(current.isValid())

    @Slot(QModelIndex)
    def _on_item_double_clicked(self, index: QModelIndex) -> None:
        self._request(index.row())

    @Slot()
    def _on_add_clicked(self) -> None:
        self._request(self.view.currentIndex().row())

    # -- helpers --------------------------------------------------------------------------------

    def _request(self, row: int) -> None:
        asset = self.model.asset(row)
        if asset is not None:
            self.add_requested.emit(self.model.svg_for(asset), asset.name, asset.recolourable)

    def _fill_set_filter(self, status: LibraryStatus) -> None:
        chosen = self.set_combo.currentData()
        kinds = [s.kind for s in status.sets]
        self.set_combo.blockSignals(True)
        self.set_combo.clear()
        self.set_combo.addItem("All", None)
        for s in status.sets:
            title = KIND_TITLES.get(s.kind, s.title) if kinds.count(s.kind) == 1 else s.title
            self.set_combo.addItem(title, s.key)
            self.set_combo.setItemData(self.set_combo.count() - 1, f"{s.title}: {s.count:,}",
                                       Qt.ItemDataRole.ToolTipRole)
        i = self.set_combo.findData(chosen)
        self.set_combo.setCurrentIndex(max(i, 0))
        self.set_combo.blockSignals(False)

    def _update_colour_button(self) -> None:
        swatch = QPixmap(16, 16)
        swatch.fill(self._colour)
        self.colour_button.setIcon(QIcon(swatch))
        self.colour_button.setText(self._colour.name())

    def _update_count(self) -> None:
        status = self._service.status
        if status.state == LibraryState.FAILED:
            text = f"The asset library cannot be used: {status.error}"
        elif status.state in (LibraryState.IDLE, LibraryState.LOADING):
            text = "Loading the asset library…"
        else:
            n = self.model.rowCount()
            query = self.search_edit.text().strip()
            text = (f"{n:,} of {status.count:,} assets" if query or self.set_combo.currentData()
                    else f"{status.count:,} assets")
            if query and not n:
                text = f"Nothing matches “{query}”"
        self.status_label.setText(text)

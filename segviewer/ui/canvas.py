"""The image canvas: photo, colour-mapped labels and class boundaries as three stacked layers.

Each layer draws only the visible tiles at the zoom's pyramid level (tiles.py), so a 10000x10000
image opens, pans and zooms like a small one. Opacity is the label layer's own opacity, so moving
the slider is a repaint of cached screen-sized renderings, never a numpy re-blend. Zoom is smooth
for the photo and nearest-neighbour for the labels so class edges stay crisp when zoomed in.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from segviewer.core.viewer_state import ViewMode
from segviewer.ui.tiles import (
    LabelSource,
    OutlineSource,
    PhotoSource,
    RgbaSource,
    TiledLayer,
    premultiplied_argb,
)

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 1 / 64, 64.0


def qimage_from_array(array: np.ndarray) -> QImage:
    """RGB [H,W,3] or RGBA [H,W,4] uint8 -> a QImage that owns a copy of the pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, channels = array.shape
    fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    return QImage(array.data, width, height, array.strides[0], fmt).copy()


def array_from_qimage(image: QImage) -> np.ndarray:
    """A QImage as RGB [H,W,3] uint8 (for saving grabs and for tests)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


class ImageCanvas(QGraphicsView):
    hovered = Signal(int, int)  # image pixel under the cursor, (-1, -1) when outside
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 42, 46))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)

        self._image_item = TiledLayer(smooth=True)
        self._label_item = TiledLayer(smooth=False)
        self._edge_item = TiledLayer(smooth=False)
        for z, item in enumerate((self._image_item, self._label_item, self._edge_item)):
            item.setZValue(z)
            # Each layer keeps its rendering of the view at screen resolution: an opacity change
            # then composites screen-sized pixmaps instead of drawing the tiles again.
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.scene().addItem(item)

        self._opacity = 0.5
        self._mode = ViewMode.OVERLAY
        self._show_boundaries = False
        self._fit = True  # keep fitting on resize until the user zooms
        self._empty_text = ""
        self._apply_visibility()

    # -- content -------------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None,
                  levels: list[np.ndarray] | None = None) -> None:
        """Show a new photo (with its `core.pyramid` levels when the loader made them); labels
        and boundaries are cleared until they arrive. The array is kept, not copied."""
        size_changed = rgb is None or rgb.shape[:2] != self.image_shape
        self._image_item.set_source(None if rgb is None else PhotoSource(rgb, levels))
        self.set_labels(None)
        self.set_boundaries(None)
        if rgb is not None:
            self.scene().setSceneRect(QRectF(0, 0, rgb.shape[1], rgb.shape[0]))
        if size_changed or self._fit:
            self.fit()

    def set_labels(self, rgba: np.ndarray | None) -> None:
        """A ready colour map, RGBA [H, W, 4] (kept, not copied)."""
        self._label_item.set_source(None if rgba is None else RgbaSource(rgba))

    def set_label_map(self, labels: np.ndarray | None, lut: np.ndarray | None = None) -> None:
        """Labels coloured through `lut` (RGBA [N, 4] from `overlay.overlay_lut`, covering
        every id), tile by tile as they are drawn. The map is kept, not copied: edits to it show
        after `paint_labels`."""
        self._label_item.set_source(None if labels is None or lut is None else LabelSource(
            labels, premultiplied_argb(lut)))

    def paint_labels(self, x: int, y: int, rgba: np.ndarray) -> None:
        """The labels of one box changed (an edit): redraw that box only. A label map is
        coloured again from its edited ids; a ready colour map takes `rgba` in place."""
        source = self._label_item.source
        if isinstance(source, RgbaSource):
            if not source.owned:  # the caller's array stays as it was given
                source.rgba, source.owned = source.rgba.copy(), True
            source.rgba[y:y + rgba.shape[0], x:x + rgba.shape[1]] = rgba
        self._label_item.invalidate(x, y, x + rgba.shape[1], y + rgba.shape[0])
        # Outlines change up to a pixel (of each level) around the box.
        self._edge_item.invalidate(x, y, x + rgba.shape[1], y + rgba.shape[0], margin=1)

    def set_boundaries(self, labels: np.ndarray | None) -> None:
        """Outline the classes of `labels` (found per tile as drawn; kept, not copied)."""
        # White at 230/255, premultiplied.
        self._edge_item.set_source(None if labels is None else OutlineSource(labels, 0xE6E6E6E6))

    def set_empty_text(self, text: str) -> None:
        """What the canvas says while it has no image (e.g. how to open one)."""
        self._empty_text = text
        self.viewport().update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self._empty_text and self.image_shape is None:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(205, 207, 212))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             self._empty_text)
            painter.end()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        source = self._image_item.source
        return None if source is None else source.shapes[0]

    @property
    def label_map(self) -> np.ndarray | None:
        """The label map being coloured (`set_label_map`), if that is what is shown."""
        source = self._label_item.source
        return source.labels if isinstance(source, LabelSource) else None

    @property
    def has_labels(self) -> bool:
        return not self._label_item.empty

    # -- appearance ----------------------------------------------------------------------------
    @property
    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, opacity: float) -> None:
        self._opacity = min(1.0, max(0.0, opacity))
        self._apply_visibility()

    @property
    def mode(self) -> ViewMode:
        return self._mode

    def set_mode(self, mode: ViewMode) -> None:
        self._mode = mode
        self._apply_visibility()

    def set_show_boundaries(self, show: bool) -> None:
        self._show_boundaries = show
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        self._image_item.setVisible(self._mode is not ViewMode.LABELS)
        self._label_item.setVisible(self._mode is not ViewMode.IMAGE)
        self._label_item.setOpacity(1.0 if self._mode is ViewMode.LABELS else self._opacity)
        self._edge_item.setVisible(self._show_boundaries)

    # -- zoom and pan --------------------------------------------------------------------------
    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fit = True
        if self.image_shape is not None:
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.scale_factor)

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self.zoom_changed.emit(1.0)

    def zoom_by(self, factor: float) -> None:
        target = min(MAX_SCALE, max(MIN_SCALE, self.scale_factor * factor))
        if target != self.scale_factor:
            self._fit = False
            self.scale(target / self.scale_factor, target / self.scale_factor)
            self.zoom_changed.emit(self.scale_factor)

    def zoom_in(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def zoom_out(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(1 / ZOOM_STEP)
        self.setTransformationAnchor(anchor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP**steps)  # fractional steps: smooth on touchpads
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    # -- hover ---------------------------------------------------------------------------------
    def image_pos_to_viewport(self, x: int, y: int) -> QPointF:
        """Viewport coordinates of the centre of image pixel (x, y)."""
        return QPointF(self.mapFromScene(QPointF(x + 0.5, y + 0.5)))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        shape = self.image_shape
        scene = self.mapToScene(event.position().toPoint())
        x, y = int(np.floor(scene.x())), int(np.floor(scene.y()))
        if shape is None or not (0 <= x < shape[1] and 0 <= y < shape[0]):
            x = y = -1
        self.hovered.emit(x, y)

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.hovered.emit(-1, -1)

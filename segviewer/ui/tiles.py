"""Canvas layers drawn tile by tile at the zoom's pyramid level, so a huge image costs what is
on screen, not what is in the file.

A source answers one question: the pixels of a box of one level, as a QImage. Photos come from
`core.pyramid` levels (averaged); label maps, colour maps and outline masks are strided (nearest
neighbour, so class edges stay crisp and nothing is copied). Label maps are coloured per tile
through the RGBA lookup table the window builds with `overlay.overlay_lut`: no full-size RGBA
copy exists while only a view is shown. Tiles are kept in a small LRU so panning colours only
what comes into view.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget
from shiboken6 import isValid

from segviewer.core.overlay import boundaries
from segviewer.core.pyramid import SMALLEST, build_levels, level_for

TILE = 256  # level pixels per tile side
MAX_TILES = 160  # per layer: 40 MB of 32-bit tiles, a few screens' worth at any level
FRAME_BUDGET_S = 0.006  # tiles made per paint, per layer, before coarser ones stand in


def _strided_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Level shapes for nearest-neighbour levels (every 2**k-th pixel), as many as a photo's."""
    shapes = [(height, width)]
    while max(shapes[-1]) > SMALLEST and min(shapes[-1]) >= 2:
        step = 1 << len(shapes)
        shapes.append((-(-height // step), -(-width // step)))
    return shapes


def premultiplied_argb(lut: np.ndarray) -> np.ndarray:
    """An RGBA lookup table (N, 4) uint8 as uint32 ARGB32-premultiplied values (what QPainter
    draws fastest): colouring a tile is then one gather per pixel."""
    lut = np.asarray(lut, np.uint32)
    alpha = lut[:, 3]
    r, g, b = ((lut[:, i] * alpha + 127) // 255 for i in range(3))
    return (alpha << 24) | (r << 16) | (g << 8) | b


def _argb_image(argb: np.ndarray, fmt: QImage.Format) -> QImage:
    """uint32 [h, w] pixels as a QImage that keeps the array alive (no copy)."""
    argb = np.ascontiguousarray(argb, np.uint32)
    image = QImage(argb.data, argb.shape[1], argb.shape[0], argb.strides[0], fmt)
    image._pixels = argb  # the QImage does not own its buffer: keep it while the image lives
    return image


class TileSource:
    """The pixels of a layer: `shapes[k]` is level k's (height, width)."""

    shapes: list[tuple[int, int]]

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        raise NotImplementedError


class PhotoSource(TileSource):
    def __init__(self, rgb: np.ndarray, levels: list[np.ndarray] | None = None) -> None:
        self.levels = levels if levels is not None else build_levels(rgb)
        self.shapes = [level.shape[:2] for level in self.levels]

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        rgb = np.ascontiguousarray(self.levels[level][y0:y1, x0:x1])
        image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0],
                       QImage.Format.Format_RGB888)
        return image.convertToFormat(QImage.Format.Format_RGB32)  # owns its copy


class LabelSource(TileSource):
    """A label map coloured per tile; `argb` from `premultiplied_argb`, covering every id."""

    def __init__(self, labels: np.ndarray, argb: np.ndarray) -> None:
        self.labels, self.argb = labels, argb
        self.shapes = _strided_shapes(*labels.shape[:2])

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        step = 1 << level
        ids = self.labels[y0 * step:y1 * step:step, x0 * step:x1 * step:step]
        return _argb_image(np.take(self.argb, ids),
                           QImage.Format.Format_ARGB32_Premultiplied)


class RgbaSource(TileSource):
    """A ready colour map, RGBA uint8 [H, W, 4] (kept, not copied)."""

    def __init__(self, rgba: np.ndarray) -> None:
        self.rgba = rgba
        self.owned = False  # copied before the first edit (canvas.paint_labels)
        self.shapes = _strided_shapes(*rgba.shape[:2])

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        step = 1 << level
        rgba = np.ascontiguousarray(self.rgba[y0 * step:y1 * step:step,
                                              x0 * step:x1 * step:step])
        image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.strides[0],
                       QImage.Format.Format_RGBA8888)
        return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class OutlineSource(TileSource):
    """The class boundaries of a label map (`overlay.boundaries` of each tile's ids, with a
    pixel of margin so tile edges join), drawn in one premultiplied colour."""

    def __init__(self, labels: np.ndarray, argb: int) -> None:
        self.labels, self.argb = labels, np.uint32(argb)
        self.shapes = _strided_shapes(*labels.shape[:2])

    def tile(self, level: int, x0: int, y0: int, x1: int, y1: int) -> QImage:
        step = 1 << level
        h, w = self.shapes[level]
        top, left = max(0, y0 - 1), max(0, x0 - 1)
        ids = self.labels[top * step:min(h, y1 + 1) * step:step,
                          left * step:min(w, x1 + 1) * step:step]
        edge = boundaries(ids)[y0 - top:y0 - top + y1 - y0, x0 - left:x0 - left + x1 - x0]
        return _argb_image(np.where(edge, self.argb, np.uint32(0)),
                           QImage.Format.Format_ARGB32_Premultiplied)


class TiledLayer(QGraphicsItem):
    """One stacked layer of the canvas, in image (scene) coordinates."""

    def __init__(self, smooth: bool) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self._smooth = smooth
        self._source: TileSource | None = None
        self._tiles: OrderedDict[tuple[int, int, int], QImage] = OrderedDict()

    @property
    def source(self) -> TileSource | None:
        return self._source

    def set_source(self, source: TileSource | None) -> None:
        self.prepareGeometryChange()
        self._source = source
        self._tiles.clear()
        self.update()

    @property
    def empty(self) -> bool:
        return self._source is None

    def invalidate(self, x0: int, y0: int, x1: int, y1: int, margin: int = 0) -> None:
        """The image box [x0, x1) x [y0, y1) changed: its tiles at every level are made again,
        and those within `margin` pixels of that level (whose pixels depend on neighbours)."""
        if self._source is None:
            return
        for key in [k for k in self._tiles if self._overlaps(k, x0, y0, x1, y1, margin)]:
            del self._tiles[key]
        grow = margin * max(self._scales(len(self._source.shapes) - 1))  # the coarsest pixel
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0).adjusted(-grow, -grow, grow, grow))

    def _overlaps(self, key: tuple[int, int, int], x0: int, y0: int, x1: int, y1: int,
                  margin: int) -> bool:
        level, tx, ty = key
        sx, sy = self._scales(level)
        mx, my = margin * sx, margin * sy
        return (tx * TILE * sx < x1 + mx and (tx + 1) * TILE * sx > x0 - mx
                and ty * TILE * sy < y1 + my and (ty + 1) * TILE * sy > y0 - my)

    def _scales(self, level: int) -> tuple[float, float]:
        (height, width), (h, w) = self._source.shapes[0], self._source.shapes[level]
        return width / w, height / h

    def boundingRect(self) -> QRectF:
        if self._source is None:
            return QRectF()
        height, width = self._source.shapes[0]
        return QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        source = self._source
        if source is None:
            return
        scale = min(abs(painter.worldTransform().m11()), abs(painter.worldTransform().m22()))
        level = level_for(scale, len(source.shapes))
        # Only what can reach the device: a cached layer is asked for its whole rectangle, but
        # its cache pixmap is clipped to the viewport.
        device = painter.device()
        inverse, _ = painter.worldTransform().inverted()
        reach = inverse.mapRect(QRectF(0, 0, device.width(), device.height()))
        area = option.exposedRect.intersected(self.boundingRect()).intersected(reach)
        if area.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth)
        deadline = time.perf_counter() + FRAME_BUDGET_S
        deferred = False
        for key, box, target in self._grid(level, area):
            image = self._tiles.get(key)
            if image is None:
                # Past the frame's budget, a coarser tile stands in and the rest come next frame.
                if time.perf_counter() > deadline and self._draw_coarser(painter, level, target):
                    deferred = True
                    continue
                image = self._make(key, box)
            else:
                self._tiles.move_to_end(key)
            painter.drawImage(target, image)
        if deferred:
            QTimer.singleShot(0, lambda: isValid(self) and self.update())

    def _grid(self, level: int, area: QRectF):
        """(key, level box, scene rectangle) of the tiles of `level` that cover `area`."""
        h, w = self._source.shapes[level]
        sx, sy = self._scales(level)
        for ty in range(int(area.top() / sy) // TILE, math.ceil(area.bottom() / sy / TILE)):
            for tx in range(int(area.left() / sx) // TILE, math.ceil(area.right() / sx / TILE)):
                x0, y0 = tx * TILE, ty * TILE
                x1, y1 = min(w, x0 + TILE), min(h, y0 + TILE)
                if x1 > x0 and y1 > y0:
                    yield ((level, tx, ty), (x0, y0, x1, y1),
                           QRectF(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy))

    def _draw_coarser(self, painter: QPainter, level: int, target: QRectF) -> bool:
        """Draw `target` from the cached tiles of a coarser level, if they cover it all."""
        for coarser in range(level + 1, len(self._source.shapes)):
            tiles = [(self._tiles.get(key), rect) for key, _box, rect in
                     self._grid(coarser, target)]
            if tiles and all(image is not None for image, _rect in tiles):
                painter.save()
                painter.setClipRect(target)
                for image, rect in tiles:
                    painter.drawImage(rect, image)
                painter.restore()
                return True
        return False

    def _make(self, key: tuple[int, int, int], box: tuple[int, int, int, int]) -> QImage:
        image = self._source.tile(key[0], *box)
        self._tiles[key] = image
        while len(self._tiles) > MAX_TILES:
            self._tiles.popitem(last=False)
        return image

    def pixmap(self) -> QPixmap:
        """The whole layer at full size (for grabs and tests; a huge image makes a huge one)."""
        if self._source is None:
            return QPixmap()
        height, width = self._source.shapes[0]
        return QPixmap.fromImage(self._source.tile(0, 0, 0, width, height))

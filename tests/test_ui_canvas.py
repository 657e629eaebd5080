"""The canvas on a big image: what is drawn comes from the zoom's pyramid level, tile by tile,
and labels are coloured only where they are seen (pytest-qt, a real event loop)."""

from __future__ import annotations

import numpy as np

from segviewer.core.labels import get_palette, labels_lut
from segviewer.core.viewer_state import ViewMode
from segviewer.ui.canvas import ImageCanvas, array_from_qimage
from segviewer.ui.tiles import TILE


def shown_at(canvas: ImageCanvas, x: int, y: int) -> tuple[int, ...]:
    pixels = array_from_qimage(canvas.viewport().grab().toImage())
    point = canvas.image_pos_to_viewport(x, y)
    ratio = canvas.viewport().devicePixelRatioF()
    return tuple(int(v) for v in pixels[int(point.y() * ratio), int(point.x() * ratio)])


def levels_drawn(canvas: ImageCanvas) -> set[int]:
    return {level for level, _tx, _ty in canvas._label_item._tiles}


def test_a_big_image_is_drawn_from_visible_tiles_at_the_zooms_level(qtbot):
    palette = get_palette("pascal")
    height, width = 3000, 4000
    labels = np.ones((height, width), np.uint8)
    labels[:, width // 2:] = 2
    rgb = np.zeros((height, width, 3), np.uint8)
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(rgb)
    canvas.set_label_map(labels, labels_lut(labels, palette, {0}))
    canvas.set_mode(ViewMode.LABELS)

    # Fitted (a tenth of the size): the quarter-size level, a handful of tiles, none full-size.
    assert shown_at(canvas, 1000, 1500) == palette.color(1)
    assert shown_at(canvas, 3000, 1500) == palette.color(2)
    assert levels_drawn(canvas) == {2}
    assert all(image.width() <= TILE and image.height() <= TILE
               for image in canvas._label_item._tiles.values())

    # Pixel for pixel: level 0, only the tiles around the view.
    canvas._label_item._tiles.clear()
    canvas.actual_size()
    canvas.centerOn(1000, 1500)
    assert shown_at(canvas, 1000, 1500) == palette.color(1)
    assert levels_drawn(canvas) == {0} and len(canvas._label_item._tiles) <= 9

    # An edit repaints its box from the edited ids.
    labels[1490:1510, 990:1010] = 3
    canvas.paint_labels(990, 1490, np.zeros((20, 20, 4), np.uint8))
    assert shown_at(canvas, 1000, 1500) == palette.color(3)
    assert shown_at(canvas, 1030, 1500) == palette.color(1)


def test_hidden_classes_are_clear_and_the_photo_shows_through(qtbot):
    palette = get_palette("pascal")
    labels = np.zeros((64, 64), np.uint8)
    labels[:, 32:] = 5
    rgb = np.full((64, 64, 3), 90, np.uint8)
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(200, 200)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(rgb)
    canvas.set_label_map(labels, labels_lut(labels, palette, {0}))
    canvas.set_opacity(1.0)
    assert shown_at(canvas, 10, 30) == (90, 90, 90)
    assert shown_at(canvas, 50, 30) == palette.color(5)


def outlined(canvas: ImageCanvas, y: int, xs: range) -> list[int]:
    """The image columns of row `y` drawn as outline (one grab; the view's sub-pixel offset
    may move a line by a pixel, so tests look at where lines are, within a pixel)."""
    pixels = array_from_qimage(canvas.viewport().grab().toImage())
    ratio = canvas.viewport().devicePixelRatioF()
    found = []
    for x in xs:
        point = canvas.image_pos_to_viewport(x, y)
        if pixels[int(point.y() * ratio), int(point.x() * ratio)].min() > 200:
            found.append(x)
    return found


def test_outlines_are_found_per_tile_and_follow_an_edit(qtbot):
    labels = np.zeros((600, 600), np.uint8)
    labels[:, 300:] = 1  # a vertical edge across tile rows
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(700, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(np.zeros((600, 600, 3), np.uint8))
    canvas.actual_size()
    canvas.set_mode(ViewMode.IMAGE)
    canvas.set_show_boundaries(True)
    canvas.set_boundaries(labels)
    for y in (100, 255, 256, 400):  # the same two-pixel line in both rows of tiles
        assert len(outlined(canvas, y, range(280, 320))) == 2
    assert outlined(canvas, 256, range(200, 280)) == []  # no seam where tiles meet
    labels[250:262, 250:262] = 1  # an island across the tile corner at (256, 256)
    canvas.paint_labels(250, 250, np.zeros((12, 12, 4), np.uint8))
    island = outlined(canvas, 256, range(240, 275))
    assert len(island) == 4 and island[1] - island[0] == 1 and island[3] - island[2] == 1
    assert island[0] >= 248 and island[3] <= 263

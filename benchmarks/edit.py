"""Edit-mode speed on a 3840x2160 label map in a 1280x720 canvas: a brush stroke update, a flood
fill, and the undo memory of a stroke.

    python benchmarks/edit.py [--runs 5]

1. Stroke update: one mouse move (a real QMouseEvent on the canvas's viewport, 16 image pixels
   from the last, 24 px brush) paints the segment in core, recolours the touched box and repaints
   the view. Target: <= 16 ms.
2. Flood fill of a region covering a quarter of the image (about 2 million pixels) whose class
   also sits in the opposite corner: the click, the fill in core, the recolour of the region's
   box and the repaint. Target: <= 100 ms.
Baseline for both, same run: a full-image recolour (LUT over the whole map, a new label pixmap,
repaint), what redrawing after each edit without boxes would cost. Prints medians and ratios
(baseline / ours: higher is better).
3. Undo memory of a 2000-pixel-long stroke against the label map's size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HEIGHT, WIDTH = 2160, 3840


def label_map() -> np.ndarray:
    """Four big quadrants (classes 1-4) with a sprinkling of small blobs (class 5), and a patch
    of class 1 in the far corner, so filling the top-left quadrant labels the whole image (the
    worst case: the class's box is the image)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    labels = (1 + (x >= WIDTH // 2) + 2 * (y >= HEIGHT // 2)).astype(np.uint8)
    rng = np.random.default_rng(0)
    for cx, cy in rng.integers(0, (WIDTH, HEIGHT), (300, 2)):
        labels[max(cy - 6, 0):cy + 6, max(cx - 6, 0):cx + 6] = 5
    labels[-40:, -40:] = 1
    return labels


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from segviewer.core.editing import EditSession
    from segviewer.core.labels import get_palette
    from segviewer.ui.canvas import ImageCanvas
    from segviewer.ui.edit_mode import CanvasEditor, Tool, rgba_lut

    app = QApplication.instance() or QApplication(sys.argv[:1])
    palette = get_palette("pascal")
    session = EditSession(label_map())
    canvas = ImageCanvas()
    canvas.resize(1280, 720)
    canvas.show()
    canvas.set_image(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    lut = rgba_lut(palette, frozenset(), np.uint8)
    canvas.set_labels(lut[session.labels])
    editor = CanvasEditor(canvas, lambda dtype: rgba_lut(palette, frozenset(), dtype))
    editor.attach(session)
    editor.set_active(True)
    editor.set_value(7)
    editor.set_brush_size(24)
    app.processEvents()
    viewport = canvas.viewport()

    def mouse(kind: QEvent.Type, x: float, y: float) -> None:
        pos = QPointF(canvas.mapFromScene(QPointF(x, y)))
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove \
            else Qt.MouseButton.LeftButton
        QApplication.sendEvent(viewport, QMouseEvent(
            kind, pos, viewport.mapToGlobal(pos), button,
            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))

    def full_recolour() -> float:
        start = time.perf_counter()
        canvas.set_labels(lut[session.labels])
        viewport.repaint()
        return time.perf_counter() - start

    baseline = [full_recolour() for _ in range(args.runs * 4)]

    # 1. stroke updates: a long diagonal drag, each move timed with its repaint
    editor.set_tool(Tool.BRUSH)
    moves = []
    for run in range(args.runs):
        x, y = 300.0, 200.0 + run * 300
        mouse(QEvent.Type.MouseButtonPress, x, y)
        for _ in range(60):
            x, y = x + 16 * 0.8, y + 16 * 0.6
            start = time.perf_counter()
            mouse(QEvent.Type.MouseMove, x, y)
            viewport.repaint()
            moves.append(time.perf_counter() - start)
        mouse(QEvent.Type.MouseButtonRelease, x, y)
    stroke_change = session.last

    # 2. flood fills of the top-left quadrant (undone between runs, outside the timing)
    editor.set_tool(Tool.FILL)
    fills = []
    for run in range(-1, args.runs):  # run -1: a warm-up (the first fill imports scipy)
        editor.set_value(8 + run % 2)
        start = time.perf_counter()
        mouse(QEvent.Type.MouseButtonPress, 20.5, 20.5)
        viewport.repaint()
        if run >= 0:
            fills.append(time.perf_counter() - start)
        mouse(QEvent.Type.MouseButtonRelease, 20.5, 20.5)
        filled = session.last.pixels
        editor.repaint(session, session.undo())

    b, s, f = median_ms(baseline), median_ms(moves), median_ms(fills)
    print(f"full-image recolour (baseline), {WIDTH}x{HEIGHT} in a 1280x720 view: {b:.1f} ms")
    print(f"stroke update (one mouse move, 24 px brush): {s:.2f} ms median, "
          f"{max(moves) * 1000:.2f} ms worst of {len(moves)}; ratio {b / s:.1f}x faster "
          f"than the baseline (target <= 16 ms: {'OK' if s <= 16 else 'MISSED'})")
    print(f"flood fill of {filled:,} pixels: {f:.1f} ms median; ratio {b / f:.2f}x the "
          f"baseline's speed (target <= 100 ms: {'OK' if f <= 100 else 'MISSED'})")
    print(f"undo record of a {stroke_change.pixels:,}-pixel stroke: {stroke_change.nbytes:,} "
          f"bytes = {stroke_change.nbytes / stroke_change.pixels:.0f} bytes per changed pixel, "
          f"{100 * stroke_change.nbytes / session.labels.nbytes:.2f} % of the "
          f"{session.labels.nbytes:,}-byte map")


if __name__ == "__main__":
    main()

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
(baseline / ours: higher is better), in wall time and in the process's CPU time (the work itself,
steadier than wall time on a machine busy with other jobs).
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


class Clock:
    """Wall and CPU time of the timed blocks."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)

    def ms(self) -> tuple[float, float]:
        return statistics.median(self.wall) * 1000, statistics.median(self.cpu) * 1000


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

    baseline = Clock()
    for _ in range(args.runs * 4):
        with baseline:
            canvas.set_labels(lut[session.labels])
            viewport.repaint()

    # 1. stroke updates: a long diagonal drag, each move timed with its repaint
    editor.set_tool(Tool.BRUSH)
    moves = Clock()
    for run in range(args.runs):
        x, y = 300.0, 200.0 + run * 300
        mouse(QEvent.Type.MouseButtonPress, x, y)
        for _ in range(60):
            x, y = x + 16 * 0.8, y + 16 * 0.6
            with moves:
                mouse(QEvent.Type.MouseMove, x, y)
                viewport.repaint()
        mouse(QEvent.Type.MouseButtonRelease, x, y)
    stroke_change = session.last

    # 2. flood fills of the top-left quadrant (undone between runs, outside the timing)
    editor.set_tool(Tool.FILL)
    fills, warm_up = Clock(), Clock()
    for run in range(-1, args.runs):  # run -1: a warm-up (the first fill imports scipy)
        editor.set_value(8 + run % 2)
        with fills if run >= 0 else warm_up:
            mouse(QEvent.Type.MouseButtonPress, 20.5, 20.5)
            viewport.repaint()
        mouse(QEvent.Type.MouseButtonRelease, 20.5, 20.5)
        filled = session.last.pixels
        editor.repaint(session, session.undo())

    (b, bc), (s, sc), (f, fc) = baseline.ms(), moves.ms(), fills.ms()
    print(f"full-image recolour (baseline), {WIDTH}x{HEIGHT} in a 1280x720 view: {b:.1f} ms "
          f"(CPU {bc:.1f} ms)")
    print(f"stroke update (one mouse move, 24 px brush): {s:.2f} ms median (CPU {sc:.2f} ms), "
          f"{max(moves.wall) * 1000:.2f} ms worst of {len(moves.wall)}; ratio {b / s:.1f}x "
          f"(CPU {bc / sc:.1f}x) faster than the baseline (target <= 16 ms: "
          f"{'OK' if s <= 16 else 'MISSED'})")
    print(f"flood fill of {filled:,} pixels: {f:.1f} ms median (CPU {fc:.1f} ms); ratio "
          f"{b / f:.2f}x (CPU {bc / fc:.2f}x) the baseline's speed (target <= 100 ms: "
          f"{'OK' if f <= 100 else 'MISSED'})")
    print(f"undo record of a {stroke_change.pixels:,}-pixel stroke: {stroke_change.nbytes:,} "
          f"bytes = {stroke_change.nbytes / stroke_change.pixels:.0f} bytes per changed pixel, "
          f"{100 * stroke_change.nbytes / session.labels.nbytes:.2f} % of the "
          f"{session.labels.nbytes:,}-byte map")


if __name__ == "__main__":
    main()

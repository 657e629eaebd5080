"""Viewer speed: start-up to first painted window, and redraw after an opacity change.

    python benchmarks/gui.py [--runs 5]

1. Start-up: `segviewer` in a subprocess with SEGVIEWER_EXIT_ON_FIRST_PAINT set prints the epoch
   time of its first paint event and quits. Baseline, same run: a bare PySide6 window doing the
   same. Target: <= 1.0 s to first paint, and no TensorFlow import.
2. Redraw on a 3840x2160 image: the canvas keeps the photo and the colour labels as two cached
   pixmaps, so an opacity change only sets the label item's opacity and repaints. Baseline, same
   run: re-blend with numpy (overlay.blend) and upload the result as a new pixmap, then repaint.
   Target: <= 10 ms per redraw.
Prints medians and ratios (baseline / ours: higher is better).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BARE_WINDOW = """
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
w = QMainWindow(); w.resize(1400, 900)
class F(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and obj is w:
            print(f"first-paint {time.time():.4f}", flush=True); app.quit()
        return False
f = F(); w.installEventFilter(f); w.show(); app.exec()
"""


def first_paint_seconds(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "SEGVIEWER_EXIT_ON_FIRST_PAINT": "1"}
    start = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("first-paint"))
    return float(line.split()[1]) - start, line


def startup(runs: int) -> None:
    ours, bare, lines = [], [], []
    for _ in range(runs):
        t, line = first_paint_seconds([sys.executable, "-m", "segviewer.ui.app"])
        ours.append(t)
        lines.append(line)
        bare.append(first_paint_seconds([sys.executable, "-c", BARE_WINDOW])[0])
    o, b = statistics.median(ours), statistics.median(bare)
    no_tf = all("tensorflow-imported=False" in ln for ln in lines)
    print(f"start-up to first paint: segviewer {o:.3f} s, bare PySide6 window {b:.3f} s, "
          f"ratio {o / b:.2f}x the bare window (target <= 1.0 s: "
          f"{'OK' if o <= 1.0 else 'MISSED'}); TensorFlow not imported: {no_tf}")


def test_image(height: int = 2160, width: int = 3840) -> tuple[np.ndarray, np.ndarray]:
    """A smooth photo-like gradient and a label map of a few large regions."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 255 // (width + height))],
                   axis=-1).astype(np.uint8)
    labels = ((x // 480 + y // 540) % 21).astype(np.uint8)
    return rgb, labels


def redraw(runs: int) -> None:
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QApplication

    from segviewer.core.labels import get_palette
    from segviewer.core.overlay import blend
    from segviewer.ui.canvas import ImageCanvas, qimage_from_array

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rgb, labels = test_image()
    colors = get_palette("pascal").lut(256)[labels]
    rgba = np.dstack([colors, np.full(labels.shape, 255, np.uint8)])
    canvas = ImageCanvas()
    canvas.resize(1280, 720)
    canvas.show()
    canvas.set_image(rgb)
    canvas.set_labels(rgba)
    app.processEvents()
    viewport = canvas.viewport()

    def ours(opacity: float) -> None:
        canvas.set_opacity(opacity)
        viewport.repaint()

    def baseline(opacity: float) -> None:
        blended = blend(rgb, colors, opacity)
        canvas._image_item.setPixmap(QPixmap.fromImage(qimage_from_array(blended)))
        canvas.set_opacity(0.0)
        viewport.repaint()

    results = {}
    for name, fn in (("cached pixmaps", ours), ("numpy re-blend", baseline)):
        times = []
        for i in range(runs * 4):
            t = time.perf_counter()
            fn(0.3 + 0.4 * (i % 2))
            times.append(time.perf_counter() - t)
        results[name] = statistics.median(times)
    o, b = results["cached pixmaps"], results["numpy re-blend"]
    print(f"opacity redraw, 3840x2160 in a 1280x720 view: cached pixmaps {o * 1000:.1f} ms, "
          f"numpy re-blend {b * 1000:.1f} ms, ratio {b / o:.1f}x faster "
          f"(target <= 10 ms: {'OK' if o <= 0.010 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    startup(args.runs)
    redraw(args.runs)


if __name__ == "__main__":
    main()

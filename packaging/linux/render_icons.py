"""Render the app's SVG icon to the PNG sizes of the hicolor icon theme.

    python render_icons.py ICON.svg OUT_DIR [SIZE ...]

writes OUT_DIR/<size>x<size>/apps/<app id>.png for each size, each file atomically. Uses Qt's SVG
renderer (PySide6 is a SegViewer dependency), headless.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_ID = "io.github.segviewer.SegViewer"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def render(svg: Path, out_dir: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # SVG text needs the font database
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG file; fix or replace the icon")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp")
        if not image.save(str(temp), "PNG"):
            raise OSError(f"{temp}: could not write the PNG; check the folder is writable")
        os.replace(temp, target)
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: render_icons.py ICON.svg OUT_DIR [SIZE ...]", file=sys.stderr)
        return 2
    svg, out_dir = Path(argv[0]), Path(argv[1])
    if not svg.is_file():
        print(f"render_icons: {svg}: no such icon; pass the path of the app's SVG", file=sys.stderr)
        return 2
    if not all(size.isdigit() and int(size) > 0 for size in argv[2:]):
        print(f"render_icons: sizes must be whole pixel counts, got {argv[2:]}", file=sys.stderr)
        return 2
    try:
        render(svg, out_dir, tuple(int(size) for size in argv[2:]) or SIZES)
    except (ValueError, OSError) as error:
        print(f"render_icons: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the main-window tests share: a shown window, connecting the toy models (the `toy_base`
fixture) and waiting for the window's work to end."""

from __future__ import annotations

from pathlib import Path

from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.main_window import MainWindow

WAIT_MS = 120_000  # first use of a SavedModel imports TensorFlow


def make_window(qtbot) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


def connect_toy(window: MainWindow, qtbot, base: Path, version: int = 1) -> None:
    window.connect_to(ConnectionSpec("local", str(base / "toy")), version=version)


def wait_idle(window: MainWindow, qtbot) -> None:
    qtbot.waitUntil(lambda: window.idle, timeout=WAIT_MS)

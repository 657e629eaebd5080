"""Help ▸ Keyboard Shortcuts (built from the window's actions, so it never goes stale) and About."""

from __future__ import annotations

import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import segviewer

APP_NAME = "SegViewer"

MOUSE = (("Zoom", "Mouse wheel"), ("Pan", "Drag"))


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """(action name, its keys) for every action that has a shortcut."""
    rows = []
    for action in actions:
        keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText)
                         for k in action.shortcuts())
        if keys:
            rows.append((action.text().replace("&", "").rstrip("…"), keys))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None, rows: list[tuple[str, str]]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [*rows, *MOUSE]
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, (name, keys) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        self.table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(460, 560)


def about_text(app_name: str) -> str:
    py = ".".join(map(str, sys.version_info[:3]))
    lines = [f"<h3>{app_name} {segviewer.__version__}</h3>",
             "<p>Export DeepLab checkpoints, serve them, and review their segmentations.</p>",
             f"Qt {qVersion()} · PySide6 {pyside_version} · Python {py}"]
    tf = sys.modules.get("tensorflow")
    if tf is not None:  # never import it just to show a version
        lines.append(f" · TensorFlow {getattr(tf, '__version__', '?')}")
    return "".join(lines)


class HelpMixin:
    """The Help menu's slots for a main window."""

    def shortcuts(self) -> list[tuple[str, str]]:
        return shortcut_rows(self.actions())

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self, self.shortcuts()).exec()

    def about_text(self) -> str:
        return about_text(APP_NAME)

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", self.about_text())

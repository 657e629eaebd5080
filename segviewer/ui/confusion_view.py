"""Confusion matrices of A and B as heat maps, each row normalised (rows: ground truth, columns:
prediction), drawn by the report's `confusion_heatmap` so the viewer and the report agree."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from segviewer.core.labels import Palette
from segviewer.core.report import confusion_heatmap
from segviewer.ui.canvas import qimage_from_array

MIN_WIDTH = 150  # pixels: a matrix of few classes is enlarged to about this (sharp cells)


def shown_classes(*confusions: np.ndarray) -> list[int]:
    """Class ids in the ground truth or predicted by any of the models, in id order."""
    present: set[int] = set()
    for matrix in confusions:
        present |= {int(i) for i in np.flatnonzero(matrix.sum(axis=1) + matrix.sum(axis=0))}
    return sorted(present)


class ConfusionView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.maps: dict[str, QLabel] = {}
        self.captions: list[QLabel] = []
        grid = QGridLayout()
        for column, side in enumerate("AB"):
            caption = QLabel(f"<b>{side}</b>", self)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture = QLabel(self)
            picture.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            self.captions.append(caption)
            grid.addWidget(caption, 0, column)
            grid.addWidget(picture, 1, column)
            self.maps[side] = picture
        self.names = QLabel(self)
        self.names.setWordWrap(True)
        inner = QWidget(self)
        inner_layout = QVBoxLayout(inner)
        inner_layout.addLayout(grid)
        inner_layout.addWidget(self.names)
        inner_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        self.ids: list[int] = []
        self.clear("No ground truth: open a ground-truth folder to see confusion matrices.")

    def clear(self, message: str) -> None:
        self.ids = []
        self.title.setText(message)
        self.names.clear()
        for picture in self.maps.values():
            picture.clear()
        for caption in self.captions:
            caption.hide()

    def set_matrices(self, what: str, palette: Palette, confusion_a: np.ndarray,
                     confusion_b: np.ndarray) -> None:
        """Show both matrices restricted to the classes present in either."""
        self.ids = shown_classes(confusion_a, confusion_b)
        self.title.setText(f"Confusion, {what} — rows: ground truth, columns: prediction, "
                           "each row normalised (white 0 → dark blue 1; grey: class absent "
                           "from the ground truth)")
        for caption in self.captions:
            caption.show()
        for side, matrix in (("A", confusion_a), ("B", confusion_b)):
            heat = confusion_heatmap(matrix, self.ids)
            zoom = max(1, MIN_WIDTH // heat.shape[1])
            heat = np.repeat(np.repeat(heat, zoom, axis=0), zoom, axis=1)
            self.maps[side].setPixmap(QPixmap.fromImage(qimage_from_array(heat)))
        self.names.setText(" · ".join(f"{i} {palette.class_name(i)}" for i in self.ids))

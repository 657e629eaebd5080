"""The list of opened images: a thumbnail, the file name and its status (pending, done, failed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from segviewer.core.viewer_state import Status
from segviewer.ui.canvas import qimage_from_array

THUMB = 56
PATH_ROLE = Qt.ItemDataRole.UserRole


_STATUS_COLORS = {Status.FAILED: QColor(200, 40, 40), Status.DONE: None,
                  Status.PENDING: QColor(130, 130, 130), Status.RUNNING: QColor(40, 110, 200)}


def _placeholder() -> QIcon:
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(200, 200, 204))
    return QIcon(pixmap)


class FileList(QListWidget):
    current_path_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setSpacing(1)
        self._items: dict[str, QListWidgetItem] = {}
        self._placeholder = _placeholder()
        self.currentItemChanged.connect(self._current_changed)

    def add_paths(self, paths: list[Path]) -> list[str]:
        """Append the paths not listed yet; returns the ones added (as strings)."""
        added = []
        for path in map(str, paths):
            if path in self._items:
                continue
            item = QListWidgetItem(self._placeholder, "")
            item.setData(PATH_ROLE, path)
            self._items[path] = item
            self.addItem(item)
            self.set_status(path, Status.PENDING)
            added.append(path)
        return added

    def paths(self) -> list[str]:
        return [self.item(row).data(PATH_ROLE) for row in range(self.count())]

    def clear_all(self) -> None:
        self._items.clear()
        self.clear()

    @property
    def current_path(self) -> str | None:
        item = self.currentItem()
        return None if item is None else item.data(PATH_ROLE)

    def select_path(self, path: str) -> None:
        item = self._items.get(path)
        if item is not None:
            self.setCurrentItem(item)

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) image, stopping at the ends."""
        if self.count():
            row = min(self.count() - 1, max(0, self.currentRow() + delta))
            self.setCurrentRow(row)

    def status(self, path: str) -> Status:
        return self._items[path].data(PATH_ROLE + 1)

    def set_status(self, path: str, status: Status, message: str = "") -> None:
        item = self._items.get(path)
        if item is None:
            return
        item.setData(PATH_ROLE + 1, status)
        label = status.value if status is not Status.FAILED else f"failed: {message}"
        item.setText(f"{Path(path).name}\n{label}")
        item.setToolTip(f"{path}\n{message or status.value}")
        color = _STATUS_COLORS[status]
        item.setForeground(QBrush(color) if color is not None else QBrush())

    def set_thumbnail(self, path: str, rgb: np.ndarray) -> None:
        """Centred on a square so that names line up whatever the image's aspect ratio."""
        item = self._items.get(path)
        if item is None:
            return
        image = qimage_from_array(rgb)
        side = max(image.width(), image.height())
        square = QPixmap(side, side)
        square.fill(Qt.GlobalColor.transparent)
        painter = QPainter(square)
        painter.drawImage((side - image.width()) // 2, (side - image.height()) // 2, image)
        painter.end()
        item.setIcon(QIcon(square))

    def _current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.current_path_changed.emit(current.data(PATH_ROLE))

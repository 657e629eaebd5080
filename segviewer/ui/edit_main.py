"""Edit mode on the main window's current result.

`install_editing(window)` adds it; the window calls `editing.adopt(path, prediction)` where it
shows a prediction and gets back the edited labels while edit mode is on (the model's result,
cached, is never changed). The legend is the class picker (click a row); hover, shares, boundaries
and overlay export follow the edits.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from segviewer.core.labels import Palette
from segviewer.core.overlay import class_shares
from segviewer.core.serving.base import Prediction
from segviewer.ui.edit_mode import Tool
from segviewer.ui.editing import Editing, ImageEdits
from segviewer.ui.legend import ID

if TYPE_CHECKING:
    from segviewer.ui.main_window import MainWindow


class MainWindowEditing(Editing):
    """Edit mode on the main window's current result."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window, window.canvas, tool_keys=True)
        self.edits: dict[tuple[str, str, int | None], ImageEdits] = {}
        window.legend.table.cellClicked.connect(self._legend_clicked)
        window.file_list.current_path_changed.connect(lambda _: self._show(None))
        toolbar = window.findChild(QToolBar, "toolbar_main")
        if toolbar is not None:
            toolbar.addSeparator()
            toolbar.addAction(self.act_edit)
        self.set_tool(Tool.BRUSH)

    def _can_edit(self) -> bool:
        if self.window.prediction is None:
            self.window.show_error("Nothing to edit yet — open an image and let the model "
                                   "segment it")
            return False
        return True

    def _switched(self, active: bool) -> None:
        # Showing the prediction again goes through adopt(): edited labels in, the model's out.
        self.window.prediction = None
        self.window._show_cached_prediction()

    def adopt(self, path: str, prediction: Prediction) -> Prediction:
        """What the window shows for `path`: the edited labels while editing, else
        `prediction` as the model made it."""
        if not self.editor.active:
            return prediction
        key = (path, prediction.model, prediction.version)
        edits = self.edits.get(key)
        if edits is None or edits.session.original.shape != prediction.labels.shape:
            backend = self.window.backend
            edits = self.edits[key] = self.start_edits(
                path, prediction.labels, prediction.model, prediction.version,
                backend.description if backend is not None else "")
        self._show(edits)
        return self._edited(prediction)

    def _edited(self, prediction: Prediction) -> Prediction:
        # Probabilities belong to the model's labels, not to painted ones.
        return dataclasses.replace(prediction, labels=self.current.session.labels,
                                   probabilities=None)

    def _palette(self) -> Palette:
        return self.window.palette

    def _hidden(self) -> frozenset[int]:
        return self.window.legend.hidden

    def _image_path(self) -> str | None:
        return self.window.current_path

    def _legend_clicked(self, row: int, _column: int) -> None:
        if self.editor.active:
            item = self.window.legend.table.item(row, ID)
            self.set_class(int(item.data(Qt.ItemDataRole.UserRole)))

    def _painted(self, rect, rgba: np.ndarray) -> None:
        colors = self.window._colors  # what overlay export blends: keep it in step
        if colors is not None and self.current is not None \
                and colors.shape[:2] == self.current.session.labels.shape:
            colors[rect.slices] = rgba

    def _committed(self) -> None:
        window = self.window
        if self.current is None or window.prediction is None:
            return
        if window.prediction.labels is not self.current.session.labels:  # widened to 16-bit
            window.prediction = self._edited(window.prediction)
            window._recolor()
        window.legend.set_shares(class_shares(self.current.session.labels))
        window._update_boundaries()
        super()._committed()


def install_editing(window: MainWindow) -> MainWindowEditing:
    return MainWindowEditing(window)

"""Edit mode in the compare window: correct model A's (or B's) result in its side-by-side pane and
save it as the image's ground truth; both models are scored against it at once.

`install_compare_editing(window)` adds it; the window passes each image's views through
`editing.adopt(views)`, which puts the edited colours into the pane being edited. Editing needs
the side-by-side view: switching to flip, swipe or disagreement leaves edit mode (the edits stay).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout

from segviewer.core.ground_truth import rescore
from segviewer.core.labels import Palette
from segviewer.core.review_store import Verdict
from segviewer.ui.compare_actions import CompareMode
from segviewer.ui.edit_mode import CanvasEditor
from segviewer.ui.editing import Editing, ImageEdits, RecordFixed

if TYPE_CHECKING:
    from segviewer.ui.compare_window import CompareWindow
    from segviewer.ui.compare_work import Views


class CompareEditing(Editing):
    def __init__(self, window: CompareWindow) -> None:
        super().__init__(window, window.canvas_a, tool_keys=False)
        self.editors = {"a": self.editor, "b": CanvasEditor(window.canvas_b, self._lut)}
        self.connect_editor(self.editors["b"])
        self.edits: dict[tuple[str, str], ImageEdits] = {}
        self.side = "a"
        self.pane = QComboBox(self.panel)
        self.pane.addItem("A (left)", "a")
        self.pane.addItem("B (right)", "b")
        self.pane.setToolTip("Which model's result to correct")
        self.pane.activated.connect(lambda i: self.set_side(self.pane.itemData(i)))
        form = self.panel.findChild(QFormLayout)
        form.insertRow(0, "Correct", self.pane)
        window.mode_group.triggered.connect(self._mode_changed)
        window.classes.cellClicked.connect(self._class_row_clicked)  # the class table picks
        if window.choice.gt_dir:  # corrections go where this comparison reads ground truth
            self._gt_dir = str(window.choice.gt_dir)
            self._show_gt_dir()

    # -- which pane ----------------------------------------------------------------------------
    def set_side(self, side: str) -> None:
        if side == self.side:
            return
        active = self.editor.active
        if active:
            self.set_active(False)
        self.side = side
        self.editor = self.editors[side]
        self.pane.setCurrentIndex(self.pane.findData(side))
        if active:
            self.set_active(True)

    def _mode_changed(self, _action) -> None:
        if self.editor.active and self.window.mode is not CompareMode.SIDE:
            self.set_active(False)
            self.window.statusBar().showMessage(
                "Edit mode needs the side-by-side view (S); the edits are kept", 8000)

    def _class_row_clicked(self, row: int, _column: int) -> None:
        if self.editor.active:
            self.set_class(int(self.window.classes.item(row, 0).data(Qt.ItemDataRole.UserRole)))

    # -- entering and leaving ------------------------------------------------------------------
    def _can_edit(self) -> bool:
        window = self.window
        if window.views is None or window.session is None:
            window.show_error("Nothing to edit yet — wait for the comparison to show an image")
            return False
        return True

    def _switched(self, active: bool) -> None:
        window = self.window
        if active:
            window.set_mode(CompareMode.SIDE)
            self.panel.ignore_id.setValue(window.session.options.ignore_label)
        window.views = self.adopt(window.views)
        window._draw()

    def adopt(self, views: Views) -> Views:
        """`views` with the edited pane's colours from its edits while editing, the model's
        otherwise."""
        result = self.window._result(views.key)
        if result is None:
            return views
        labels = result.labels_a if self.side == "a" else result.labels_b
        if not self.editor.active:
            self._recolor(views, labels)
            return views
        key = (views.key, self.side)
        edits = self.edits.get(key)
        if edits is None:
            info = self.window.session.a if self.side == "a" else self.window.session.b
            edits = self.edits[key] = self.start_edits(
                str(result.path), labels, info.model, info.version, info.backend)
        self._show(edits)
        self._recolor(views, edits.session.labels)
        return views

    def _recolor(self, views: Views, labels: np.ndarray) -> None:
        rgba = self._lut(labels.dtype)[labels]
        if self.side == "a":
            views.rgba_a = rgba
        else:
            views.rgba_b = rgba

    # -- after edits ---------------------------------------------------------------------------
    def _painted(self, rect, rgba: np.ndarray) -> None:
        views = self.window.views
        shown = None if views is None else (views.rgba_a if self.side == "a" else views.rgba_b)
        if shown is not None and shown.shape[:2] == self.current.session.labels.shape:
            shown[rect.slices] = rgba  # flipping panes or redrawing keeps the edits

    def _palette(self) -> Palette:
        return self.window._palette()

    def _image_path(self) -> str | None:
        views = self.window.views
        result = self.window._result(views.key) if views is not None else None
        return str(result.path) if result is not None else None

    def _result_of(self, image: str):
        session = self.window.session
        return None if session is None else next(
            (r for r in session.results if str(r.path) == image), None)

    def _record_fixed(self, edits: ImageEdits, reviewer: str) -> RecordFixed | None:
        verdicts, result = self.window.review.store, self._result_of(edits.image)
        if verdicts is None or result is None:  # the panel said why the store is not open
            return None
        key = result.key
        return lambda note, record: verdicts.set(key, Verdict.FIXED, note, record)

    def _saved(self, edits: ImageEdits, clean_at: int, image: str, labels: np.ndarray,
               written: str) -> None:
        super()._saved(edits, clean_at, image, labels, written)
        window = self.window
        session = window.session
        result = self._result_of(image)
        if result is None:
            return
        rescore(result, Path(written), labels, session.num_classes, session.options.ignore_label)
        if session.options.gt_dir is None:  # totals and the report now count ground truth
            session.options.gt_dir = Path(self.gt_dir)
        window.review.set_results(session.results)
        window._update_numbers()


def install_compare_editing(window: CompareWindow) -> CompareEditing:
    return CompareEditing(window)

"""Edit mode on the main window's current result.

`install_editing(window)` adds it; the window offers each result to the view state through
`editing.offer(path, identity, prediction)`, which passes the edited labels instead while edit mode
is on, marked as an edit of that model's result (the model's result, cached, is never changed).
Edits are kept per image and model identity, so an edit of pascal v1 is never shown for v2. The
legend is the class picker (click a row); hover, shares, boundaries and overlay export follow the
edits through the state's events.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from segviewer.core.fingerprint import Fingerprint
from segviewer.core.labels import Palette, labels_lut
from segviewer.core.review_store import Pair, ReviewError, Verdict, file_sha256
from segviewer.core.serving.base import Prediction
from segviewer.core.viewer_state import ModelIdentity, Shown
from segviewer.ui.edit_mode import Tool
from segviewer.ui.editing import Editing, ImageEdits, RecordFixed
from segviewer.ui.legend import ID
from segviewer.ui.review_store_menu import open_store

if TYPE_CHECKING:
    from segviewer.ui import tasks
    from segviewer.ui.main_window import MainWindow


class MainWindowEditing(Editing):
    """Edit mode on the main window's current result."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window, window.canvas, tool_keys=True)
        self.edits: dict[tuple[str, ModelIdentity], ImageEdits] = {}
        self.fingerprints: dict[ModelIdentity, Fingerprint] = {}  # what a "fixed" is kept by
        window.predictor.model_ready.connect(self._model_ready)
        window.legend.table.cellClicked.connect(self._legend_clicked)
        window.state.shown_changed.connect(self._shown_changed)
        toolbar = window.findChild(QToolBar, "toolbar_main")
        if toolbar is not None:
            toolbar.addSeparator()
            toolbar.addAction(self.act_edit)
        self.set_tool(Tool.BRUSH)

    def _model_ready(self, result: tasks.Connected) -> None:
        if self.window.state.identity is not None:  # set just before model_ready
            self.fingerprints[self.window.state.identity] = result.fingerprint

    def _record_fixed(self, edits: ImageEdits, reviewer: str) -> RecordFixed | None:
        """One model's fix is kept under the pair (its fingerprint, "")."""
        identity = ModelIdentity(edits.model, edits.version, edits.source)
        fingerprint = self.fingerprints.get(identity)
        if fingerprint is None:
            return None
        try:
            store = open_store(self.window.settings)
        except ReviewError as exc:
            self.window.show_error(f"The \"fixed\" verdict will not be recorded: {exc}")
            return None
        pair, image = Pair(str(fingerprint), "", str(identity), ""), edits.image
        return lambda note, record: store.record(pair, file_sha256(Path(image)), image,
                                                 reviewer, Verdict.FIXED, note, record)

    def _can_edit(self) -> bool:
        if self.window.prediction is None:
            self.window.show_error("Nothing to edit yet — open an image and let the model "
                                   "segment it")
            return False
        return True

    def _shown_changed(self, shown: Shown | None) -> None:
        if shown is None or not shown.edited:  # another image or model, or the model's labels
            self._show(None)

    def _switched(self, active: bool) -> None:
        # Offering the result again goes through offer(): edited labels in, the model's out.
        self.window._show_current()

    def offer(self, path: str, identity: ModelIdentity, prediction: Prediction) -> None:
        """Offer the state `prediction` for `path`: the edited labels of this image and model
        while editing, else the model's own."""
        state = self.window.state
        if not self.editor.active:
            state.offer_result(path, identity, prediction)
            return
        key = (path, identity)
        edits = self.edits.get(key)
        if edits is None or edits.session.original.shape != prediction.labels.shape:
            edits = self.edits[key] = self.start_edits(
                path, prediction.labels, identity.model, identity.version, identity.source)
        if state.offer_result(path, identity, self._edited(prediction, edits), edited=True):
            self._show(edits)

    @staticmethod
    def _edited(prediction: Prediction, edits: ImageEdits) -> Prediction:
        # Probabilities belong to the model's labels, not to painted ones.
        return dataclasses.replace(prediction, labels=edits.session.labels, probabilities=None)

    def _palette(self) -> Palette:
        return self.window.state.palette

    def _hidden(self) -> frozenset[int]:
        return self.window.state.hidden

    def _image_path(self) -> str | None:
        return self.window.current_path

    def _legend_clicked(self, row: int, _column: int) -> None:
        if self.editor.active:
            item = self.window.legend.table.item(row, ID)
            self.set_class(int(item.data(Qt.ItemDataRole.UserRole)))

    def _painted(self, rect, rgba: np.ndarray) -> None:
        """The canvas colours the map it holds: after a widening to 16 bits (a new array, shown
        at the commit) it holds the session's new one at once, or a stroke would not show."""
        labels = self.current.session.labels if self.current is not None else None
        canvas = self.window.canvas
        if labels is not None and canvas.label_map is not None and canvas.label_map is not labels \
                and canvas.label_map.shape == labels.shape:
            canvas.set_label_map(labels, labels_lut(labels, self._palette(), self._hidden()))

    def _committed(self) -> None:
        state, shown = self.window.state, self.window.state.shown
        if self.current is None or shown is None or not shown.edited:
            return
        if shown.prediction.labels is not self.current.session.labels:  # widened to 16-bit
            state.offer_result(shown.path, shown.identity,
                               self._edited(shown.prediction, self.current), edited=True)
        else:
            state.edited_in_place()
        super()._committed()


def install_editing(window: MainWindow) -> MainWindowEditing:
    return MainWindowEditing(window)

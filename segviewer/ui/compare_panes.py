"""The compare window's two image panes: canvases locked together in zoom and pan, each under a
caption that names the model whose labels it shows, drawn in one of the compare modes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from segviewer.core.review import SourceInfo
from segviewer.ui.canvas import ImageCanvas
from segviewer.ui.compare_actions import CompareMode
from segviewer.ui.compare_work import Views, source_name, swiped


class ElidedLabel(QLabel):
    """One line cut in the middle when it does not fit (a model's name and its version at the
    ends stay readable); text() and the tooltip keep the whole."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event: QPaintEvent) -> None:
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle,
                                              rect.width())
        painter = QPainter(self)
        self.style().drawItemText(painter, rect, int(self.alignment()), self.palette(),
                                  self.isEnabled(), shown, self.foregroundRole())


class ComparePanes(QSplitter):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.canvas_a, self.caption_a, pane_a = self._pane()
        self.canvas_b, self.caption_b, pane_b = self._pane()
        self.addWidget(pane_a)
        self.addWidget(pane_b)
        self.setChildrenCollapsible(False)
        self.setStretchFactor(0, 1)
        self.setStretchFactor(1, 1)
        self._following = False  # one canvas is being moved to match the other
        self._lock_views(self.canvas_a, self.canvas_b)
        self._lock_views(self.canvas_b, self.canvas_a)
        self._shown: dict[ImageCanvas, np.ndarray] = {}

    def _pane(self) -> tuple[ImageCanvas, QLabel, QWidget]:
        pane = QWidget(self)
        caption = ElidedLabel(pane)
        caption.setContentsMargins(8, 3, 8, 3)
        caption.setStyleSheet("background: #2b2d31; color: #e8e8e8; font-weight: 600;")
        # A long model path must not widen the window: the caption is cut in the middle.
        caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        canvas = ImageCanvas(pane)
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(caption)
        layout.addWidget(canvas, 1)
        return canvas, caption, pane

    def _lock_views(self, source: ImageCanvas, target: ImageCanvas) -> None:
        """`target` follows `source`'s zoom and the image point at its centre (not the scroll
        values: the two panes may differ in size by a few pixels)."""
        def follow(*_args) -> None:
            if self._following or not target.isVisible():
                return
            self._following = True
            try:
                target.setTransform(source.transform())
                target.centerOn(source.mapToScene(source.viewport().rect().center()))
            finally:
                self._following = False

        source.zoom_changed.connect(follow)
        source.horizontalScrollBar().valueChanged.connect(follow)
        source.verticalScrollBar().valueChanged.connect(follow)

    def clear(self, text: str) -> None:
        """Nothing shown, both captions say why (an image being drawn, say)."""
        for canvas, caption in ((self.canvas_a, self.caption_a), (self.canvas_b, self.caption_b)):
            canvas.set_image(None)
            caption.setText(text)
        self._shown.clear()

    def draw(self, v: Views | None, mode: CompareMode,
             sources: tuple[SourceInfo, SourceInfo] | None, swipe: int,
             showing_b: bool) -> None:
        self.canvas_b.parentWidget().setVisible(mode is CompareMode.SIDE)
        if v is None:
            return
        a_name, b_name = (source_name(s) for s in (sources or (None, None)))
        if mode is CompareMode.DIFF:
            changed = int(np.count_nonzero(v.diff_mask))
            self._show(self.canvas_a, v.diff, None)
            self.caption_a.setText(
                f"Disagreement  ·  {changed} of {v.diff_mask.size} pixels differ "
                f"(magenta)  ·  agreement {100.0 * (1 - changed / max(v.diff_mask.size, 1)):.2f} %")
        elif mode is CompareMode.SWIPE:
            self._show(self.canvas_a, v.image, swiped(v.rgba_a, v.rgba_b, swipe))
            self.caption_a.setText(f"A  ·  {a_name.split('  ·  ')[0]}  ◀ │ ▶  B  ·  "
                                   f"{b_name.split('  ·  ')[0]}  ( [ ] move the divider)")
        elif mode is CompareMode.FLIP:
            which = "B" if showing_b else "A"
            self._show(self.canvas_a, v.image, v.rgba_b if showing_b else v.rgba_a)
            self.caption_a.setText(f"{which}  ·  {b_name if showing_b else a_name}  "
                                   "(Space: flip)")
        else:
            self._show(self.canvas_a, v.image, v.rgba_a)
            self._show(self.canvas_b, v.image, v.rgba_b)
            self.caption_a.setText(f"A  ·  {a_name}")
            self.caption_b.setText(f"B  ·  {b_name}")
            self.canvas_b.setTransform(self.canvas_a.transform())
            self.canvas_b.centerOn(self.canvas_a.mapToScene(
                self.canvas_a.viewport().rect().center()))

    def _show(self, canvas: ImageCanvas, image: np.ndarray, rgba: np.ndarray | None) -> None:
        # The photo is set again only when it changes: flipping swaps the label layer alone.
        if self._shown.get(canvas) is not image:
            canvas.set_image(image)
            self._shown[canvas] = image
        canvas.set_labels(rgba)

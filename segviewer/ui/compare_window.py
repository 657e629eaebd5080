"""Compare mode: two models on the same images, side by side, flipped, or as a disagreement map,
with the review queue, per-class shares and IoU deltas, confusion matrices and the report.

All numbers come from core's `run_review` (one worker job that opens the sources and runs both
models on every image; results stream in as they are made); the window only draws them.
Zoom and pan of the two canvases are locked together so the same pixels are always in view.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QByteArray,
    QCoreApplication,
    QEvent,
    QObject,
    QSettings,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSizePolicy,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.batch import palette_for
from segviewer.core.images import load_image
from segviewer.core.labels import Palette, colorize
from segviewer.core.overlay import disagreement, disagreement_image
from segviewer.core.report import default_sort, write_report
from segviewer.core.review import (
    ImageResult,
    ReviewError,
    ReviewOptions,
    ReviewSession,
    SortKey,
    Source,
    SourceInfo,
    VerdictStore,
    class_rows,
    run_review,
)
from segviewer.core.serving.base import Backend, ModelRef
from segviewer.ui.canvas import ImageCanvas
from segviewer.ui.confusion_view import ConfusionView
from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice
from segviewer.ui.edit_compare import install_compare_editing
from segviewer.ui.legend import swatch_icon
from segviewer.ui.review_panel import ReviewPanel
from segviewer.ui.workers import Job, JobRunner, TaskState

CLOSE_TIMEOUT_S = 60  # at most this long for images in flight when the window closes
CLASS_COLUMNS = ("Class", "A %", "B %", "Δ %", "IoU A", "IoU B", "Δ IoU")


class CompareMode(Enum):
    SIDE = "side"  # A | B
    FLIP = "flip"  # one canvas, Space switches A and B
    SWIPE = "swipe"  # one canvas: A left of a divider, B right of it
    DIFF = "diff"  # pixels where A and B differ


SWIPE_STEP = 5  # percent of the width per [ or ] key


# -- work done in worker threads (plain functions: no Qt widgets) ------------------------------
def _source(backend: Backend, side: SourceChoice, name: str) -> Source:
    model = side.model
    if model is None:
        models = backend.models()
        if not models:
            raise ValueError(f"model {name}: {backend.description} serves no models — give the "
                             "model name")
        model = models[0]
    return Source(backend, ModelRef(model, side.version))


def _compare(state: TaskState, choice: CompareChoice, current: Backend | None,
             paths: list[Path], cancel: threading.Event, on_result,
             owned: list[Backend]) -> ReviewSession:
    """Open the sources (one backend per distinct connection), then run the review. The
    backends opened here go into `owned` for the window to close (at once, on failure)."""
    opened: dict[object, Backend] = {}
    try:
        backends = []
        for name, side in (("A", choice.a), ("B", choice.b)):
            if side.spec is None:
                if current is None:
                    raise ValueError(f"model {name}: the window has no connection — choose "
                                     "another server or a SavedModel folder")
                backends.append(current)
                continue
            if side.spec not in opened:
                opened[side.spec] = side.spec.open()
                owned.append(opened[side.spec])
            backends.append(opened[side.spec])
        a = _source(backends[0], choice.a, "A")
        b = _source(backends[1], choice.b, "B")
        options = ReviewOptions(
            gt_dir=Path(choice.gt_dir) if choice.gt_dir else None,
            gt_palette=palette_for(a.backend.metadata(a.ref)) if choice.gt_colored else None,
            ignore_label=choice.ignore_label)
        return run_review(a, b, paths, options, state.progress, cancel, on_result)
    except BaseException:
        for backend in opened.values():
            backend.close()
            owned.remove(backend)
        raise


@dataclass
class Views:
    """What the canvases show for one image: the photo, A's and B's colours, the diff map."""

    key: str
    image: np.ndarray
    rgba_a: np.ndarray
    rgba_b: np.ndarray
    diff: np.ndarray
    diff_mask: np.ndarray


def _rgba(labels: np.ndarray, palette: Palette) -> np.ndarray:
    rgb = colorize(labels, palette)[0]
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)


def _views(state: TaskState, result: ImageResult, palette: Palette) -> Views:
    image = load_image(result.path)
    a, b = result.labels_a, result.labels_b
    return Views(result.key, image, _rgba(a, palette), _rgba(b, palette),
                 disagreement_image(image, a, b), disagreement(a, b)[0])


def _report(state: TaskState, session: ReviewSession, out_dir: Path, verdicts,
            sort) -> tuple[Path, Path]:
    return write_report(session, out_dir, verdicts, sort)


def _name(info: SourceInfo) -> str:
    """Model and version first: the backend (often a long path) may be cut off."""
    version = f" v{info.version}" if info.version is not None else ""
    return f"{info.model}{version}  ·  {info.backend}"


def _swiped(rgba_a: np.ndarray, rgba_b: np.ndarray, percent: int) -> np.ndarray:
    """A's colours left of the divider at `percent` of the width, B's right of it, and the
    divider itself as a white line two pixels wide."""
    x = round(rgba_a.shape[1] * percent / 100)
    out = np.concatenate([rgba_a[:, :x], rgba_b[:, x:]], axis=1)
    out[:, max(0, x - 1): x + 1] = 255
    return out


class _Relay(QObject):
    """Carries results from the worker thread to the window (a queued signal)."""

    result = Signal(object)


def _pct(value: float | None, scale: float = 100.0, signed: bool = False,
         digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value * scale:+.{digits}f}" if signed else f"{value * scale:.{digits}f}"


class CompareWindow(QMainWindow):
    """Compare `choice.a` and `choice.b` on `paths`. `current` is the main window's backend,
    used for sources that say "current connection" (never closed here)."""

    def __init__(self, choice: CompareChoice, paths: list[str | Path],
                 current: Backend | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("SegViewer — Compare")
        self.settings = settings or QSettings()
        self.choice = choice
        self.paths = [Path(p) for p in paths]
        self._current = current
        self._owned: list[Backend] = []
        self._cancel = threading.Event()
        self._io = JobRunner(1, self)
        self._work = JobRunner(1, self)
        self._relay = _Relay(self)
        self._relay.result.connect(self._result_arrived)
        self._arrived: list[ImageResult] = []
        self._views_job: Job | None = None
        self.session: ReviewSession | None = None
        self.store: VerdictStore | None = None
        self.views: Views | None = None
        self._shown: dict[ImageCanvas, np.ndarray] = {}
        self.errors: list[str] = []
        self.report_paths: tuple[Path, Path] | None = None
        self.mode = CompareMode.SIDE
        self.showing_b = False

        self._build()
        self.editing = install_compare_editing(self)
        self._restore_settings()
        if parent is not None:  # close (and finish with its backend) before the parent does
            parent.installEventFilter(self)
        self._runner_job = self._start()

    # ==========================================================================================
    # construction
    def _build(self) -> None:
        self.canvas_a, self.caption_a, pane_a = self._pane()
        self.canvas_b, self.caption_b, pane_b = self._pane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(pane_a)
        self.splitter.addWidget(pane_b)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self._following = False  # one canvas is being moved to match the other
        self._lock_views(self.canvas_a, self.canvas_b)
        self._lock_views(self.canvas_b, self.canvas_a)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setContentsMargins(8, 4, 8, 4)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.summary)
        self.setCentralWidget(central)

        self.review = ReviewPanel(self)
        self.review.current_changed.connect(self.show_key)
        self.review.error.connect(self.show_error)
        self.review.sort.currentIndexChanged.connect(
            lambda _: self.settings.setValue("compare/sort", self.review.sort_key.value))
        self.review_dock = self._dock("Review queue", self.review,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)

        self.classes = QTableWidget(0, len(CLASS_COLUMNS), self)
        self.classes.setHorizontalHeaderLabels(CLASS_COLUMNS)
        self.classes.verticalHeader().hide()
        self.classes.setShowGrid(False)
        self.classes.setAlternatingRowColors(True)
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.classes.verticalHeader().setDefaultSectionSize(22)
        header = self.classes.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.classes_dock = self._dock("Classes", self.classes,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.confusion = ConfusionView(self)
        self.confusion_dock = self._dock("Confusion", self.confusion,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.classes_dock, self.confusion_dock, Qt.Orientation.Vertical)
        # Wide enough for every column: a dock otherwise starts at its title's width.
        self.classes.setMinimumWidth(390)
        self.review.setMinimumWidth(270)

        self.swipe = QSlider(Qt.Orientation.Horizontal, self)
        self.swipe.setRange(0, 100)
        self.swipe.setValue(50)
        self.swipe.setFixedWidth(120)
        self.swipe.setToolTip("Where the swipe divider is ( [ and ] )")
        self.swipe.valueChanged.connect(lambda _: self.mode is CompareMode.SWIPE and self._draw())
        self.scope = QComboBox(self)
        self.scope.addItem("This image", "image")
        self.scope.addItem("All images", "all")
        self.scope.setToolTip("What the class table, numbers and confusion matrices cover")
        self.scope.currentIndexChanged.connect(lambda _: self._update_numbers())

        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(200)
        self.progress.setFormat("Comparing %v/%m")
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop after the images in flight (Esc)")
        self.cancel_button.clicked.connect(self.cancel_work)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

        self._build_actions()

    def _pane(self) -> tuple[ImageCanvas, QLabel, QWidget]:
        pane = QWidget(self)
        caption = QLabel(pane)
        caption.setContentsMargins(8, 3, 8, 3)
        caption.setStyleSheet("background: #2b2d31; color: #e8e8e8; font-weight: 600;")
        # A long model path must not widen the window: the caption is cut instead.
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

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"compare_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcuts=(), checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.mode_group = QActionGroup(self)
        self.act_mode: dict[CompareMode, QAction] = {}
        for mode, text, key in ((CompareMode.SIDE, "&Side by Side", "S"),
                                (CompareMode.FLIP, "&Flip A/B", "F"),
                                (CompareMode.SWIPE, "S&wipe A|B", "W"),
                                (CompareMode.DIFF, "&Disagreement", "D")):
            act = a(text, lambda _=False, m=mode: self.set_mode(m), [key], checkable=True)
            self.mode_group.addAction(act)
            self.act_mode[mode] = act
        self.act_mode[self.mode].setChecked(True)
        self.act_flip = a("Show &Other Model", self.flip, ["Space"])
        self.act_swipe_left = a("Swipe Divider Left", lambda: self.step_swipe(-SWIPE_STEP), ["["])
        self.act_swipe_right = a("Swipe Divider Right", lambda: self.step_swipe(SWIPE_STEP),
                                 ["]"])
        self.act_fit = a("&Fit to Window", self.canvas_a.fit, ["Ctrl+0"])
        self.act_next = a("&Next in Queue", lambda: self.review.step(1), ["N", "PgDown"])
        self.act_prev = a("&Previous in Queue", lambda: self.review.step(-1), ["P", "PgUp"])
        self.act_verdicts = [
            a(f"Mark {self.review.buttons[v].text().split('  ')[0]}",
              lambda _=False, v=v: self.review.set_verdict(v), [str(n)])
            for n, v in enumerate(self.review.buttons, start=1)]
        self.act_report = a("Write &Report…", self.report_dialog, ["Ctrl+R"])
        self.act_report.setEnabled(False)
        self.act_cancel = a("Cancel", self.cancel_work, ["Esc"])
        self.act_close = a("&Close", self.close, [QKeySequence.StandardKey.Close])

        view = self.menuBar().addMenu("&View")
        view.addActions([*self.act_mode.values(), self.act_flip, self.act_fit])
        view.addSeparator()
        for dock in (self.review_dock, self.classes_dock, self.confusion_dock):
            view.addAction(dock.toggleViewAction())
        review = self.menuBar().addMenu("&Review")
        review.addActions([self.act_next, self.act_prev, *self.act_verdicts])
        review.addSeparator()
        review.addActions([self.act_report, self.act_close])

        tools = self.addToolBar("Compare")
        tools.setObjectName("compare_toolbar")
        tools.setIconSize(QSize(18, 18))
        tools.addActions(list(self.act_mode.values()))
        tools.addAction(self.act_flip)
        tools.addWidget(self.swipe)
        tools.addSeparator()
        tools.addWidget(QLabel(" Numbers for ", self))
        tools.addWidget(self.scope)
        tools.addSeparator()
        tools.addActions([self.act_prev, self.act_next])
        tools.addSeparator()
        tools.addAction(self.act_report)

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("compare/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1500, screen.width()), min(900, screen.height()))
        state = s.value("compare/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        try:
            self.set_mode(CompareMode(str(s.value("compare/mode", CompareMode.SIDE.value))))
        except ValueError:
            self.set_mode(CompareMode.SIDE)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("compare/geometry", self.saveGeometry())
        s.setValue("compare/state", self.saveState())
        s.setValue("compare/mode", self.mode.value)

    # ==========================================================================================
    # running the comparison
    def _start(self) -> Job:
        self.progress.setRange(0, len(self.paths))
        self.progress.setValue(0)
        self.summary.setText(f"Comparing {len(self.paths)} images…")
        job = self._work.start("compare", _compare, self.choice, self._current, self.paths,
                               self._cancel, self._relay.result.emit, self._owned)
        job.progress.connect(self._progress)
        job.finished.connect(self._compared)
        job.failed.connect(lambda message: self.show_error(f"Compare failed: {message}"))
        job.done.connect(self._update_busy)
        self._update_busy()
        return job

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _result_arrived(self, result: ImageResult) -> None:
        if self.session is not None:
            return  # a late signal after the session is in
        self._arrived.append(result)
        self.review.set_results(self._arrived)

    def _compared(self, session: ReviewSession) -> None:
        self.session = session
        self.caption_a.setToolTip(f"A: {session.a.description}")
        self.caption_b.setToolTip(f"B: {session.b.description}")
        try:
            self.store = VerdictStore.for_session(session)
        except ReviewError as exc:
            self.show_error(str(exc))
        try:
            self.review.set_sort_key(SortKey(str(self.settings.value("compare/sort"))))
        except ValueError:
            self.review.set_sort_key(default_sort(session))
        self.review.set_results(session.results)
        self.review.set_store(self.store)
        self.review.queue.setCurrentRow(0)  # the worst image first
        self.act_report.setEnabled(True)
        failed = session.failures
        note = f"; {len(failed)} failed: {failed[0].key}: {failed[0].error}" if failed else ""
        stopped = " (stopped early)" if session.cancelled else ""
        self.statusBar().showMessage(f"Compared {len(session.results) - len(failed)} of "
                                     f"{session.total} images{stopped}{note}")
        if self.review.current_key is not None:
            self.show_key(self.review.current_key)
        self._update_numbers()

    def cancel_work(self) -> None:
        self._cancel.set()

    @property
    def idle(self) -> bool:
        """Nothing running (what a screenshot waits for)."""
        return not (self._work.busy or self._io.busy)

    def _update_busy(self, *_args) -> None:
        busy = self._work.busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def show_error(self, message: str) -> None:
        """Errors go to the status bar and the summary line (never a modal box)."""
        self.errors.append(message)
        self.statusBar().showMessage(f"⚠ {message}", 30000)
        if self.session is None:
            self.summary.setText(f"⚠ {message}")

    # ==========================================================================================
    # showing one image
    def _result(self, key: str) -> ImageResult | None:
        results = self.session.results if self.session is not None else self._arrived
        return next((r for r in results if r.key == key), None)

    def show_key(self, key: str) -> None:
        result = self._result(key)
        if result is None or not result.ok:
            return
        if self._views_job is not None:
            self._views_job.cancel()
        palette = self._palette()
        self._views_job = job = self._io.start(key, _views, result, palette)
        job.finished.connect(self._views_ready)
        job.failed.connect(lambda message: self.show_error(f"{key}: {message}"))
        self._update_numbers()

    def _palette(self) -> Palette:
        if self.session is not None:
            return self.session.palette
        from segviewer.core.labels import get_palette

        return get_palette("pascal")  # until the session (and the model's palette) is in

    def _views_ready(self, views: Views) -> None:
        if views.key != self.review.current_key:
            return
        self.views = self.editing.adopt(views)
        self._draw()

    def set_mode(self, mode: CompareMode) -> None:
        self.mode = mode
        self.act_mode[mode].setChecked(True)
        self._draw()

    def step_swipe(self, delta: int) -> None:
        if self.mode is not CompareMode.SWIPE:
            self.set_mode(CompareMode.SWIPE)
        else:
            self.swipe.setValue(self.swipe.value() + delta)

    def flip(self) -> None:
        """Switch the single canvas between A and B (flip mode; from other modes it enters it)."""
        if self.mode is CompareMode.FLIP:
            self.showing_b = not self.showing_b
            self._draw()
        else:
            self.set_mode(CompareMode.FLIP)

    def _draw(self) -> None:
        side = self.mode is CompareMode.SIDE
        self.canvas_b.parentWidget().setVisible(side)
        v = self.views
        if v is None:
            return
        a_name = _name(self.session.a) if self.session else ""
        b_name = _name(self.session.b) if self.session else ""
        if self.mode is CompareMode.DIFF:
            changed = int(np.count_nonzero(v.diff_mask))
            self._show(self.canvas_a, v.diff, None)
            self.caption_a.setText(
                f"Disagreement  ·  {changed} of {v.diff_mask.size} pixels differ "
                f"(magenta)  ·  agreement {100.0 * (1 - changed / max(v.diff_mask.size, 1)):.2f} %")
        elif self.mode is CompareMode.SWIPE:
            self._show(self.canvas_a, v.image, _swiped(v.rgba_a, v.rgba_b, self.swipe.value()))
            self.caption_a.setText(f"A  ·  {a_name.split('  ·  ')[0]}  ◀ │ ▶  B  ·  "
                                   f"{b_name.split('  ·  ')[0]}  ( [ ] move the divider)")
        elif self.mode is CompareMode.FLIP:
            which = "B" if self.showing_b else "A"
            self._show(self.canvas_a, v.image, v.rgba_b if self.showing_b else v.rgba_a)
            self.caption_a.setText(f"{which}  ·  {b_name if self.showing_b else a_name}  "
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

    # ==========================================================================================
    # numbers: class table, summary line, confusion matrices
    def _update_numbers(self) -> None:
        session = self.session
        whole = self.scope.currentData() == "all"
        palette = self._palette()
        if whole and session is not None:
            totals = session.totals()
            rows = session.class_rows(totals)
            what = f"all {totals.images} images"
            agreement, scores_a, scores_b = totals.agreement, totals.scores_a, totals.scores_b
        else:
            result = self._result(self.review.current_key or "")
            if result is None or not result.ok:
                self.classes.setRowCount(0)
                return
            rows = class_rows(palette, result.counts_a, result.counts_b, result.scores_a,
                              result.scores_b)
            what = result.key
            agreement, scores_a, scores_b = result.agreement, result.scores_a, result.scores_b
        self._fill_classes(rows)
        text = f"<b>{what}</b> &nbsp; agreement <b>{_pct(agreement, 1.0)} %</b>"
        if scores_a is not None and scores_b is not None:
            delta = scores_b.mean_iou - scores_a.mean_iou
            text += (f" &nbsp;·&nbsp; pixel accuracy A {_pct(scores_a.pixel_accuracy)} % · "
                     f"B {_pct(scores_b.pixel_accuracy)} % &nbsp;·&nbsp; mIoU A "
                     f"{_pct(scores_a.mean_iou)} % · B {_pct(scores_b.mean_iou)} % "
                     f"(<b>{_pct(delta, signed=True)}</b>)")
            self.confusion.set_matrices(what, palette, scores_a.confusion, scores_b.confusion)
        else:
            self.confusion.clear("No ground truth for this selection: open a ground-truth "
                                 "folder to see confusion matrices.")
        self.summary.setText(text)

    def _fill_classes(self, rows) -> None:
        rows = sorted(rows, key=lambda r: -max(r.share_a, r.share_b))
        self.classes.setRowCount(len(rows))
        for i, row in enumerate(rows):
            name = QTableWidgetItem(swatch_icon(row.color), f"{row.id} {row.name}")
            name.setData(Qt.ItemDataRole.UserRole, row.id)
            self.classes.setItem(i, 0, name)
            cells = (_pct(row.share_a, 1.0), _pct(row.share_b, 1.0),
                     _pct(row.share_delta, 1.0, signed=True), _pct(row.iou_a),
                     _pct(row.iou_b), _pct(row.iou_delta, signed=True))
            for column, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.classes.setItem(i, column, item)

    def class_table(self) -> dict[int, list[str]]:
        """{class id: the texts of its row's number columns} (what the table shows)."""
        table = {}
        for i in range(self.classes.rowCount()):
            class_id = self.classes.item(i, 0).data(Qt.ItemDataRole.UserRole)
            table[class_id] = [self.classes.item(i, c).text()
                               for c in range(1, self.classes.columnCount())]
        return table

    # ==========================================================================================
    # report
    def report_dialog(self) -> None:
        if self.session is None:
            return
        start = str(self.settings.value("compare/report_dir", self.session.folder / "report"))
        folder = QFileDialog.getExistingDirectory(self, "Write the report into", start)
        if folder:
            self.settings.setValue("compare/report_dir", folder)
            self.write_report(Path(folder))

    def write_report(self, out_dir: Path) -> Job | None:
        """report.html and metrics.csv into `out_dir`, with the verdicts so far, in a worker."""
        if self.session is None:
            return None
        verdicts = dict(self.store.verdicts) if self.store is not None else {}
        job = self._io.start("report", _report, self.session, Path(out_dir), verdicts,
                             self.review.sort_key)
        job.finished.connect(self._reported)
        job.failed.connect(lambda message: self.show_error(f"Report not written: {message}"))
        self.statusBar().showMessage(f"Writing the report to {out_dir}…")
        return job

    def _reported(self, paths: tuple[Path, Path]) -> None:
        self.report_paths = paths
        self.statusBar().showMessage(f"Report written: {paths[0]} and {paths[1].name}", 15000)

    # ==========================================================================================
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Close:
            self.close()
        return False

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self._cancel.set()
        self._io.cancel_all()
        # Let every job end and its signals arrive: the backends must outlive the images in
        # flight, and the runners (deleted with the window) the signals of their jobs.
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while (self._work.busy or self._io.busy) and time.monotonic() < deadline:
            self._work.wait(20)
            self._io.wait(20)
            QCoreApplication.processEvents()
        for backend in self._owned:
            backend.close()
        self._owned = []
        super().closeEvent(event)

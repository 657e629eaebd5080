"""Compare mode: two models on the same images, side by side, flipped, or as a disagreement map,
with the review queue, per-class shares and IoU deltas, confusion matrices and the report.

All numbers come from core's `run_review` (one worker job that opens the sources and runs both
models on every image; results stream in as they are made); the window only draws them.
Zoom and pan of the two canvases are locked together so the same pixels are always in view.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSettings, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.labels import Palette, get_palette
from segviewer.core.report import default_sort
from segviewer.core.review import (
    ImageResult,
    ReviewSession,
    SortKey,
    SourceInfo,
    class_rows,
)
from segviewer.core.serving.base import Backend
from segviewer.ui import compare_work as work
from segviewer.ui import settings as keys
from segviewer.ui.compare_actions import CompareMode, build_actions
from segviewer.ui.compare_numbers import ClassTable, summary_html
from segviewer.ui.compare_panes import ComparePanes
from segviewer.ui.compare_work import Views
from segviewer.ui.confusion_view import ConfusionView
from segviewer.ui.dialogs.compare_sources import CompareChoice
from segviewer.ui.edit_compare import install_compare_editing
from segviewer.ui.review_panel import ReviewPanel
from segviewer.ui.settings import Settings
from segviewer.ui.workers import CurrentTask, Job, JobRunner

CLOSE_TIMEOUT_S = 60  # at most this long for images in flight when the window closes
__all__ = ["CompareMode", "CompareWindow"]


class CompareWindow(QMainWindow):
    """Compare `choice.a` and `choice.b` on `paths`. `current` is the main window's backend,
    used for sources that say "current connection" (never closed here)."""

    def __init__(self, choice: CompareChoice, paths: list[str | Path],
                 current: Backend | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("SegViewer — Compare")
        self.settings = settings or QSettings()
        self.prefs = Settings(self.settings)
        self.choice = choice
        self.paths = [Path(p) for p in paths]
        self._current = current
        self._owned: list[Backend] = []
        self._cancel = threading.Event()
        self._io = JobRunner(1, self)
        self._work = JobRunner(1, self)
        self._drawing = CurrentTask(self._io, self)  # the views of the image chosen
        self._drawing.finished.connect(self._views_ready)
        self._drawing.failed.connect(lambda key, message: self.show_error(f"{key}: {message}"))
        self._comparing = CurrentTask(self._work, self)  # the one run of the comparison
        self._comparing.partial.connect(self._partial)
        self._comparing.progress.connect(self._progress)
        self._comparing.finished.connect(self._compared)
        self._comparing.failed.connect(
            lambda _name, message: self.show_error(f"Compare failed: {message}"))
        self._comparing.done.connect(self._update_busy)
        self._arrived: list[ImageResult] = []
        self._refilling = False
        self._reviewer_chose = False  # an image was chosen while the comparison ran
        self.sources: tuple[SourceInfo, SourceInfo] | None = None  # what made the results
        self.session: ReviewSession | None = None
        self.views: Views | None = None
        self.errors: list[str] = []
        self.report_paths: tuple[Path, Path] | None = None
        self._progress_shown = 0.0
        self.mode = CompareMode.SIDE
        self.showing_b = False

        self._build()
        build_actions(self)
        self.editing = install_compare_editing(self)  # after the actions: it watches mode_group
        self._restore_settings()
        if parent is not None:  # close (and finish with its backend) before the parent does
            parent.installEventFilter(self)
        self._start()

    # ==========================================================================================
    # construction
    def _build(self) -> None:
        self.splitter = ComparePanes(self)
        self.canvas_a, self.caption_a = self.splitter.canvas_a, self.splitter.caption_a
        self.canvas_b, self.caption_b = self.splitter.canvas_b, self.splitter.caption_b
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

        self.review = ReviewPanel(self, self.settings)
        self.review.current_changed.connect(self.show_key)
        self.review.error.connect(self.show_error)
        self.review.sort.currentIndexChanged.connect(
            lambda _: self.prefs.set(keys.COMPARE_SORT, self.review.sort_key.value))
        self.review_dock = self._dock("Review queue", self.review,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.review.setMinimumWidth(270)
        self.classes = ClassTable(self)
        self.classes_dock = self._dock("Classes", self.classes,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.confusion = ConfusionView(self)
        self.confusion_dock = self._dock("Confusion", self.confusion,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.classes_dock, self.confusion_dock, Qt.Orientation.Vertical)
        self._truth: bool | None = None  # whether ground truth is in (the confusion pane shows)

        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(200)
        self.progress.setFormat("Comparing %v/%m")
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop after the images in flight (Esc)")
        self.cancel_button.clicked.connect(self.cancel_work)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"compare_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _restore_settings(self) -> None:
        geometry = self.prefs.get(keys.COMPARE_GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1500, screen.width()), min(900, screen.height()))
        state = self.prefs.get(keys.COMPARE_STATE)
        if state is not None:
            self.restoreState(state)
        self._show_confusion(False)  # until there is ground truth
        try:
            self.set_mode(CompareMode(self.prefs.get(keys.COMPARE_MODE)))
        except ValueError:
            self.set_mode(CompareMode.SIDE)

    def save_settings(self) -> None:
        self.prefs.set(keys.COMPARE_GEOMETRY, self.saveGeometry())
        self.prefs.set(keys.COMPARE_STATE, self.saveState())
        self.prefs.set(keys.COMPARE_MODE, self.mode.value)

    # ==========================================================================================
    # running the comparison
    def _start(self) -> None:
        self.progress.setRange(0, len(self.paths))
        self.progress.setValue(0)
        self.summary.setText(f"Comparing {len(self.paths)} images…")
        self._comparing.start("compare", work.compare, self.choice, self._current, self.paths,
                              self._cancel, self._owned)
        self._update_busy()

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if 0 < done < total and now - self._progress_shown < 0.1:
            return  # thousands of quick results: the bar is redrawn ten times a second
        self._progress_shown = now
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _partial(self, news: tuple[SourceInfo, SourceInfo] | ImageResult) -> None:
        if isinstance(news, tuple):  # which models A and B are: before any result
            self.sources = news
            self._draw()
            return
        result = news
        if self.session is not None:
            return  # a late signal after the session is in
        self._arrived.append(result)
        self._refilling = True  # the queue may choose its first image: not the reviewer's choice
        try:
            self.review.add_result(result)  # no rebuild per result: thousands may stream in
        finally:
            self._refilling = False

    def _compared(self, session: ReviewSession) -> None:
        self.session = session
        self.sources = (session.a, session.b)
        chosen = self.review.current_key  # the image the reviewer chose stays chosen
        try:
            self.review.set_sort_key(SortKey(self.prefs.get(keys.COMPARE_SORT)))
        except ValueError:
            self.review.set_sort_key(default_sort(session))
        self.review.set_results(session.results)
        self.review.open_session(session)  # its verdicts, in the store the settings name
        if chosen is None or not self._reviewer_chose:
            self.review.queue.setCurrentRow(0)  # the worst image first
        else:
            self.review.select(chosen)
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
        if self.session is None and not self._refilling:
            self._reviewer_chose = True
        if self.views is not None and self.views.key != key:
            # The previous image's pictures go at once: never one image's labels under
            # another's name while the new ones are drawn.
            self.views = None
            self.splitter.clear(f"{key}  ·  drawing…")
        self._drawing.start(key, work.views, result, self._palette())
        self._update_numbers()

    def _palette(self) -> Palette:
        if self.session is not None:
            return self.session.palette
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
        self.splitter.draw(self.views, self.mode, self.sources, self.swipe.value(),
                           self.showing_b)

    # ==========================================================================================
    # numbers: class table, summary line, confusion matrices
    def _update_numbers(self) -> None:
        session = self.session
        palette = self._palette()
        if self.scope.currentData() == "all" and session is not None:
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
        self.classes.fill(rows)
        self._show_confusion(scores_a is not None and scores_b is not None)
        if scores_a is not None and scores_b is not None:
            self.confusion.set_matrices(what, palette, scores_a.confusion, scores_b.confusion)
        else:
            self.confusion.clear("No ground truth for this selection: open a ground-truth "
                                 "folder to see confusion matrices.")
        self.summary.setText(summary_html(what, agreement, scores_a, scores_b))

    def _show_confusion(self, truth: bool) -> None:
        """The confusion pane (and its View menu entry) only once there is ground truth; shown
        or hidden when that changes, so a pane the user closed stays closed."""
        if truth != self._truth:
            self._truth = truth
            self.confusion_dock.setVisible(truth)
            self.confusion_dock.toggleViewAction().setEnabled(truth)

    def class_table(self) -> dict[int, list[str]]:
        """{class id: the texts of its row's number columns} (what the table shows)."""
        return self.classes.texts()

    # ==========================================================================================
    # report
    def report_dialog(self) -> None:
        if self.session is None:
            return
        # An existing folder (a missing one disables the dialog's Choose), not the image folder.
        start = self.prefs.get(keys.COMPARE_REPORT_DIR)
        if not start or not Path(start).is_dir():
            start = str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Write the report into", start)
        if folder:
            self.prefs.set(keys.COMPARE_REPORT_DIR, folder)
            self.write_report(Path(folder))

    def write_report(self, out_dir: Path) -> Job | None:
        """report.html and metrics.csv into `out_dir`, with the verdicts so far, in a worker."""
        if self.session is None:
            return None
        store = self.review.store  # the panel may have switched store or reviewer
        verdicts = store.verdicts if store is not None else {}
        job = self._io.start("report", work.report, self.session, Path(out_dir), verdicts,
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
        if not self.editing.confirm_close():  # unsaved edits: saved, discarded or kept open
            event.ignore()
            return
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

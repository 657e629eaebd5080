"""Segment a list of images with the current model and write label maps (and overlays) to a folder.

The work is core's `run_batch`; this dialog only collects its options, runs it in a worker, shows
progress (done/total, rate, ETA) and ends with the summary, listing each failure with its reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.batch import BatchOptions, BatchProgress, BatchSummary, run_batch
from segviewer.core.labels import Palette
from segviewer.core.output_plan import PlanError, check_plan
from segviewer.core.serving.base import Backend, ModelRef
from segviewer.ui.dialogs.fields import PathField, StatusLabel
from segviewer.ui.workers import Job, JobRunner, TaskState

SETTINGS_PREFIX = "batch_export/"


def run(
    state: TaskState,
    backend: Backend,
    ref: ModelRef,
    paths: list[Path],
    out_dir: Path,
    options: BatchOptions,
    progress: Callable[[BatchProgress], None],
    cancel: threading.Event,
) -> BatchSummary:
    # Our own cancel event, not the job's: a cancelled batch still reports what it finished.
    return run_batch(backend, ref, paths, out_dir, options, progress=progress, cancel=cancel)


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class BatchExportDialog(QDialog):
    """Run `ref` on `paths` and write the results under an output folder."""

    run_done = Signal()  # a run ended (finished, failed or cancelled); `summary` holds its result
    # Emitted from the worker thread; Qt queues it to the slot on the GUI thread.
    _progressed_in_worker = Signal(object)

    def __init__(
        self,
        parent: QWidget | None,
        backend: Backend,
        ref: ModelRef,
        paths: list[str | Path],
        palette: Palette | None,
        out_dir: str | Path | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export segmentations")
        self.setMinimumWidth(560)
        self._backend, self._ref, self._palette = backend, ref, palette
        self._paths = [Path(p) for p in paths]
        self._settings = settings
        self._runner = JobRunner(parent=self)
        self._progressed_in_worker.connect(self._progressed)
        self._job: Job | None = None
        self._cancel = threading.Event()
        self._started = 0.0
        self.summary: BatchSummary | None = None

        self.options_box = QGroupBox(f"{len(self._paths)} images with {ref}", self)
        form = QFormLayout(self.options_box)
        self.out_dir = PathField(("dir",), "Output folder", placeholder="folder for the PNGs")
        self.out_dir.setToolTip("Label maps go here as lossless PNGs, named after each image")
        self.out_dir.changed.connect(lambda _: self._update_run_button())
        self.overlay = QCheckBox("Also write colour overlays", self)
        self.overlay.setToolTip(
            "An extra <name>_overlay.png: the image blended with the class colours"
        )
        self.opacity = QDoubleSpinBox(self)
        self.opacity.setRange(0.0, 1.0)
        self.opacity.setSingleStep(0.1)
        self.opacity.setValue(0.5)
        self.opacity.setToolTip("Opacity of the class colours in the overlay")
        self.overlay.toggled.connect(self.opacity.setEnabled)
        self.opacity.setEnabled(False)
        self.resume = QCheckBox("Skip images this model version already segmented", self)
        self.resume.setToolTip("Resume an interrupted run: outputs made by another model or "
                               "version are recomputed")
        self.workers = QSpinBox(self)
        self.workers.setRange(1, 32)
        self.workers.setValue(2)
        self.workers.setToolTip("Images processed at the same time (requests in flight)")
        form.addRow("Output folder:", self.out_dir)
        form.addRow("", self.overlay)
        form.addRow("Overlay opacity:", self.opacity)
        form.addRow("", self.resume)
        form.addRow("Workers:", self.workers)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, max(len(self._paths), 1))
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.rate = QLabel(self)
        self.rate.setVisible(False)
        self.status = StatusLabel(self)
        self.failures = QPlainTextEdit(self)
        self.failures.setReadOnly(True)
        self.failures.setToolTip("Images that failed, each with its reason")
        self.failures.setVisible(False)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.run_button = QPushButton("Run", self)
        self.run_button.setDefault(True)
        self.buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setToolTip("Stop after the images in flight; finished files are kept")
        self.cancel_button.setVisible(False)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.options_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.rate)
        layout.addWidget(self.status)
        layout.addWidget(self.failures, 1)
        layout.addWidget(self.buttons)

        if out_dir is not None:
            self.out_dir.setText(str(out_dir))
        elif settings is not None:
            self.out_dir.setText(str(settings.value(SETTINGS_PREFIX + "out_dir", "")))
        self._update_run_button()

    def _update_run_button(self) -> None:
        ready = bool(self.out_dir.text()) and bool(self._paths) and self._job is None
        self.run_button.setEnabled(ready)

    def options(self) -> BatchOptions:
        return BatchOptions(
            overlay=self.overlay.isChecked(),
            opacity=self.opacity.value(),
            resume=self.resume.isChecked(),
            workers=self.workers.value(),
            palette=self._palette,
        )

    def start(self) -> None:
        out_dir = Path(self.out_dir.text())
        if self._settings is not None:
            self._settings.setValue(SETTINGS_PREFIX + "out_dir", str(out_dir))
        try:  # the list is at hand: refuse a clash (an image replaced) before anything runs
            check_plan(self._paths, out_dir, self.overlay.isChecked())
        except PlanError as exc:
            self.status.show_error(str(exc))
            return
        self.summary = None
        self._cancel.clear()
        self._started = time.monotonic()
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.rate.setText("Starting…")
        self.rate.setVisible(True)
        self.status.clear_status()
        self.failures.setVisible(False)
        job = self._runner.start(
            "batch export",
            run,
            self._backend,
            self._ref,
            self._paths,
            out_dir,
            self.options(),
            self._progressed_in_worker.emit,
            self._cancel,
        )
        job.finished.connect(self._finished)
        job.failed.connect(self.status.show_error)
        job.done.connect(self._done)
        self._job = job
        self._set_busy(True)

    def _progressed(self, state: BatchProgress) -> None:
        self.progress.setRange(0, max(state.total, 1) if state.total is not None else 0)
        self.progress.setValue(state.done)
        if state.eta is not None and self._job is not None and not self._cancel.is_set():
            left = format_duration(state.eta)
            self.rate.setText(f"{state.rate:.2f} images/s, about {left} left")

    def _finished(self, summary: BatchSummary) -> None:
        self.summary = summary
        text = (
            f"{'Cancelled' if summary.cancelled else 'Done'}: {summary.ok} written, "
            f"{summary.failed} failed, {summary.skipped} skipped"
        )
        if summary.not_run:
            text += f", {summary.not_run} not run"
        stopped_by = summary.plan_error or summary.output_error or summary.lost_connection
        if stopped_by:
            text += f" — stopped: {stopped_by}"
        if summary.unreadable:
            text += f", {len(summary.unreadable)} folder(s) not read"
        if summary.failures or stopped_by or summary.unreadable:
            self.status.show_error(text)
            self.failures.setPlainText("\n".join(
                [*summary.unreadable, *(f"{f.input}: {f.reason}" for f in summary.failures)]))
            self.failures.setVisible(True)
        else:
            self.status.show_ok(text)

    def _done(self) -> None:
        self._job = None
        self.rate.setText(f"Took {format_duration(time.monotonic() - self._started)}")
        self._set_busy(False)
        self.run_done.emit()

    def _set_busy(self, busy: bool) -> None:
        self.options_box.setEnabled(not busy)
        self.cancel_button.setVisible(busy)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setVisible(not busy)
        self._update_run_button()

    def cancel(self) -> None:
        if self._job is not None:
            self._cancel.set()
            self.rate.setText("Cancelling after the images in flight…")

    def reject(self) -> None:
        if self._job is not None:
            self.cancel()  # Esc while running cancels the run; the dialog stays to show the summary
            return
        super().reject()

"""Export a DeepLab research checkpoint to a versioned TF Serving SavedModel.

Picking a checkpoint inspects it in a worker and shows what was detected before anything is
exported, so a wrong file or class count is seen up front. The exporter (and TensorFlow with it) is
only imported inside worker functions: opening this dialog costs no TensorFlow import.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from exporter.defaults import (
    CROP_SIZE,
    INFERENCE_SCALES,
    MIN_TF_SERVING,
    MIN_TF_SERVING_COMPAT,
    OUTPUT_STRIDES,
    parse_numbers,
)
from segviewer.ui.dialogs.export_work import (
    describe_checkpoint,
    docker_command,
    export,
    inspect,
    rates_placeholder,
)
from segviewer.ui.dialogs.fields import PathField, StatusLabel
from segviewer.ui.workers import Job, JobRunner

SETTINGS_PREFIX = "export_checkpoint/"
DEFAULT_MODEL_NAME = "deeplab"
AUTO_STRIDE = "auto"  # sends no output stride: the exporter chooses it by the atrous rates


class ExportCheckpointDialog(QDialog):
    """Checkpoint -> <export dir>/<model name>/<version>/. Emits `open_in_viewer(version_dir)`."""

    open_in_viewer = Signal(str)
    inspect_done = Signal()  # the picked checkpoint was read (see `info`) or failed (see `status`)
    export_done = Signal()  # an export ended: succeeded (see `result`), failed or was cancelled
    # The exporter's (step, done, total), emitted from the worker; Qt queues it to the GUI thread.
    _progressed_in_worker = Signal(str, int, int)

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export checkpoint to TF Serving")
        self.setMinimumWidth(620)
        self._settings = settings
        self._runner = JobRunner(max_threads=2, parent=self)
        self._inspect_job: Job | None = None
        self._export_job: Job | None = None
        self._cancel = threading.Event()
        self._progressed_in_worker.connect(self._progressed)
        self.info: Any = None  # the CheckpointInfo of the picked checkpoint
        self.result: Any = None  # the ExportResult after a successful export
        self._options: Any = None  # the ExportOptions of the running or last export

        layout = QVBoxLayout(self)
        self._inputs = (self._checkpoint_group(), self._model_group(), self._output_group())
        for group in self._inputs:
            layout.addWidget(group)

        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.step_label = QLabel(self)
        self.step_label.setVisible(False)
        self.status = StatusLabel(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.step_label)
        layout.addWidget(self.status)
        layout.addWidget(self._success_box())
        layout.addStretch(1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.export_button = QPushButton("Export", self)
        self.export_button.setDefault(True)
        self.export_button.setToolTip("Write the SavedModel (atomically: all or nothing)")
        self.buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setToolTip("Stop the export; nothing is written")
        self.cancel_button.setVisible(False)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._restore()
        self._update_version()
        self._update_export_button()

    # -- layout ------------------------------------------------------------------------------

    def _checkpoint_group(self) -> QGroupBox:
        group = QGroupBox("Research checkpoint", self)
        form = QFormLayout(group)
        self.checkpoint = PathField(
            ("file", "dir"),
            "Choose a checkpoint",
            "Checkpoints (checkpoint *.index *.data-* *.ckpt*);;All (*)",
            placeholder="model.ckpt, its .index, the 'checkpoint' file or folder",
        )
        self.checkpoint.setToolTip(
            "A DeepLab research checkpoint: the 'checkpoint' state file, a prefix such as "
            "model.ckpt, its .index or .data file, or the folder holding them"
        )
        self.checkpoint.changed.connect(self._inspect)
        self.detected = QLabel("Pick a checkpoint to see what it holds.", group)
        self.detected.setWordWrap(True)
        self.detected.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Checkpoint:", self.checkpoint)
        form.addRow("Detected:", self.detected)
        return group

    def _model_group(self) -> QGroupBox:
        group = QGroupBox("Model", self)
        form = QFormLayout(group)
        self.crop_h, self.crop_w = QSpinBox(group), QSpinBox(group)
        for box, size in zip((self.crop_h, self.crop_w), CROP_SIZE, strict=True):
            box.setRange(33, 4097)
            box.setValue(size)
            box.setToolTip(
                f"Images are resized to fit inside crop height × width (default {size})"
            )
        crop = QHBoxLayout()
        crop.addWidget(self.crop_h)
        crop.addWidget(QLabel("×"))
        crop.addWidget(self.crop_w)
        crop.addStretch(1)
        self.atrous_rates = QLineEdit(group)
        self.atrous_rates.setPlaceholderText("none (MobileNet) or 6,12,18")
        self.atrous_rates.setToolTip(
            "ASPP atrous rates: 6,12,18 at output stride 16, 12,24,36 at 8; empty for "
            "MobileNet-v2 checkpoints trained without ASPP branches"
        )
        self.output_stride = QComboBox(group)
        self.output_stride.addItems([AUTO_STRIDE, *(str(s) for s in OUTPUT_STRIDES)])
        self.output_stride.setToolTip(
            "Ratio of input to feature size; 8 is finer and slower than 16. auto: the "
            "exporter's choice for the checkpoint (the suggestion under Detected)"
        )
        self.inference_scales = QLineEdit(",".join(map(str, INFERENCE_SCALES)), group)
        self.inference_scales.setToolTip("Multi-scale inference, e.g. 0.5,0.75,1.0,1.25,1.5,1.75")
        self.flip = QCheckBox("Also predict on the left-right flipped image", group)
        self.flip.setToolTip(
            "Average the logits of the image and its mirror (research flag add_flipped_images)"
        )
        self.labels = PathField(
            ("file",),
            "Class names and colours",
            "JSON (*.json);;All (*)",
            placeholder="optional: class names and colours (JSON)",
        )
        self.labels.setToolTip("Optional JSON of class names/colours stored with the model")
        form.addRow("Crop size:", crop)
        form.addRow("Atrous rates:", self.atrous_rates)
        form.addRow("Output stride:", self.output_stride)
        form.addRow("Inference scales:", self.inference_scales)
        self.compat = QCheckBox(f"Also for TF Serving older than {MIN_TF_SERVING}", group)
        self.compat.setToolTip(
            f"Store the weights as constants, so that TF Serving {MIN_TF_SERVING_COMPAT} and newer "
            f"load the model (by default it needs {MIN_TF_SERVING}); same answers, larger graph"
        )
        form.addRow("", self.flip)
        form.addRow("", self.compat)
        form.addRow("Labels file:", self.labels)
        return group

    def _output_group(self) -> QGroupBox:
        group = QGroupBox("Output", self)
        form = QFormLayout(group)
        self.export_dir = PathField(
            ("dir",), "Export folder", placeholder="base folder of served models"
        )
        self.export_dir.setToolTip("The SavedModel goes to <export folder>/<model name>/<version>/")
        self.export_dir.changed.connect(lambda _: self._update_version())
        self.export_dir.changed.connect(lambda _: self._update_export_button())
        self.model_name = QLineEdit(DEFAULT_MODEL_NAME, group)
        self.model_name.setToolTip("The name TF Serving serves it under (MODEL_NAME)")
        self.model_name.textChanged.connect(lambda _: self._update_version())
        self.model_name.textChanged.connect(lambda _: self._update_export_button())
        self.version = QSpinBox(group)
        self.version.setRange(1, 2**31 - 1)
        self.version.setToolTip("Version folder number; the next free one by default")
        form.addRow("Export folder:", self.export_dir)
        form.addRow("Model name:", self.model_name)
        form.addRow("Version:", self.version)
        return group

    def _success_box(self) -> QWidget:
        self.success = QGroupBox("Exported", self)
        form = QFormLayout(self.success)
        self.summary = QLabel(self.success)
        self.summary.setWordWrap(True)
        self.docker = QLineEdit(self.success)
        self.docker.setReadOnly(True)
        self.docker.setToolTip("Serve this model (all its versions) with Docker")
        self.copy_button = QPushButton("Copy", self.success)
        self.copy_button.setToolTip("Copy the command to the clipboard")
        self.copy_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.docker.text())
        )
        docker_row = QHBoxLayout()
        docker_row.addWidget(self.docker, 1)
        docker_row.addWidget(self.copy_button)
        self.open_button = QPushButton("Open in viewer", self.success)
        self.open_button.setToolTip("Run the new version in-process and show it in the viewer")
        self.open_button.clicked.connect(self._open_in_viewer)
        form.addRow(self.summary)
        form.addRow("Serve it:", docker_row)
        form.addRow("", self.open_button)
        self.success.setVisible(False)
        return self.success

    # -- settings ----------------------------------------------------------------------------

    def _restore(self) -> None:
        if self._settings is None:
            return
        self.export_dir.setText(str(self._settings.value(SETTINGS_PREFIX + "export_dir", "")))
        name = str(self._settings.value(SETTINGS_PREFIX + "model_name", DEFAULT_MODEL_NAME))
        self.model_name.setText(name or DEFAULT_MODEL_NAME)

    def _save(self) -> None:
        if self._settings is not None:
            self._settings.setValue(SETTINGS_PREFIX + "export_dir", self.export_dir.text())
            self._settings.setValue(SETTINGS_PREFIX + "model_name", self.model_name.text().strip())

    # -- inspecting --------------------------------------------------------------------------

    def _inspect(self, path: str) -> None:
        if self._inspect_job is not None:
            self._inspect_job.cancel()
        self.info = None
        self._update_export_button()
        self.status.clear_status()
        if not path:
            self.detected.setText("Pick a checkpoint to see what it holds.")
            self._inspect_job = None
            return
        self.detected.setText("Reading the checkpoint…")
        job = self._runner.start("inspect checkpoint", inspect, path)
        job.finished.connect(self._inspected)
        job.failed.connect(self._inspect_failed)
        self._inspect_job = job

    def _inspect_failed(self, message: str) -> None:
        self._inspect_job = None
        self.detected.setText("—")
        self.status.show_error(message)
        self.inspect_done.emit()

    def _inspected(self, info: Any) -> None:
        self._inspect_job = None
        self.info = info
        self.detected.setText(describe_checkpoint(info))
        self.atrous_rates.clear()
        self.atrous_rates.setPlaceholderText(rates_placeholder(info))
        self._update_export_button()
        self.inspect_done.emit()

    # -- exporting ---------------------------------------------------------------------------

    def _update_version(self) -> None:
        name, folder = self.model_name.text().strip(), self.export_dir.text()
        if not (name and folder):
            self.version.setValue(1)
            return
        from exporter.export import next_free_version

        # An unreadable folder keeps the number: the exporter names the problem when it is used.
        with contextlib.suppress(OSError):
            self.version.setValue(next_free_version(folder, name))

    def _update_export_button(self) -> None:
        busy = self._export_job is not None
        ready = self.info is not None and bool(self.export_dir.text())
        self.export_button.setEnabled(ready and bool(self.model_name.text().strip()) and not busy)

    def options(self) -> Any:
        """The ExportOptions the fields describe. Raises ValueError naming a bad field."""
        from exporter.export import ExportOptions

        if self.info is None:
            raise ValueError("Pick a checkpoint first; it is inspected before export.")
        text = self.atrous_rates.text()
        rates = parse_numbers(text, int, "Atrous rates") if text.strip() else None
        scales = parse_numbers(self.inference_scales.text(), float, "Inference scales")
        stride = self.output_stride.currentIndex()
        # Variant, class count and decoder stride stay "auto": the exporter reads them from the
        # checkpoint, as shown under Detected; empty rates let it scale the defaults to the stride,
        # and an "auto" output stride lets it choose by the rates.
        return ExportOptions(
            checkpoint=self.checkpoint.text(),
            export_dir=self.export_dir.text(),
            model_name=self.model_name.text().strip(),
            model_version=self.version.value(),
            crop_size=(self.crop_h.value(), self.crop_w.value()),
            atrous_rates=rates,
            output_stride=OUTPUT_STRIDES[stride - 1] if stride > 0 else None,
            inference_scales=scales or INFERENCE_SCALES,
            add_flipped_images=self.flip.isChecked(),
            labels=self.labels.text() or None,
            compat_older_servers=self.compat.isChecked(),
        )

    def start_export(self) -> None:
        try:
            options = self.options()
        except ValueError as exc:
            self.status.show_error(str(exc))
            return
        self._save()
        self._options = options
        self.status.clear_status()
        self.success.setVisible(False)
        self._cancel.clear()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.step_label.setText("Starting…")
        self.step_label.setVisible(True)
        job = self._runner.start(
            "export", export, options, self._progressed_in_worker.emit, self._cancel
        )
        job.finished.connect(self._exported)
        job.failed.connect(self._export_failed)
        job.done.connect(self._export_done)
        self._export_job = job
        self._set_busy(True)

    def _progressed(self, step: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if not self._cancel.is_set():
            self.step_label.setText(f"{step[:1].upper()}{step[1:]}…")

    def _exported(self, result: Any) -> None:
        self.result = result
        options = self._options
        self.summary.setText(
            f"Wrote {result.variant}, {result.num_classes} classes, version {result.version} "
            f"({result.size_bytes / 1e6:.1f} MB in {result.seconds:.0f} s) to {result.path}"
        )
        self.docker.setText(docker_command(options.export_dir, options.model_name))
        self.docker.setToolTip(self.docker.text())  # the whole command, however narrow the field
        self.docker.setCursorPosition(0)
        self.success.setVisible(True)

    def _export_failed(self, message: str) -> None:
        if self._cancel.is_set():  # the exporter stopped at a step boundary and cleaned up
            self.status.show_info("Export cancelled; nothing was written.")
        else:
            self.status.show_error(message)

    def _export_done(self) -> None:
        self._export_job = None
        self.progress.setVisible(False)
        self.step_label.setVisible(False)
        self._set_busy(False)
        self._update_version()
        self.export_done.emit()

    def _set_busy(self, busy: bool) -> None:
        for group in self._inputs:
            group.setEnabled(not busy)
        self.cancel_button.setVisible(busy)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setVisible(not busy)
        self._update_export_button()

    def cancel_export(self) -> None:
        if self._export_job is not None:
            self._cancel.set()
            self.step_label.setText("Cancelling…")

    def _open_in_viewer(self) -> None:
        if self.result is not None:
            self.open_in_viewer.emit(str(self.result.path))

    def reject(self) -> None:
        if self._export_job is not None:
            self.cancel_export()  # closing mid-export cancels it; the exporter cleans up
            return
        super().reject()

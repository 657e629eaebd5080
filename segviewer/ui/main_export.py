"""The main window's exports and the dialogs it opens for other jobs (batch export, checkpoint
export, compare). A mixin of `MainWindow`: it uses the window's state, workers and status bar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog

from segviewer.core.overlay import blend
from segviewer.ui import tasks
from segviewer.ui.canvas import array_from_qimage
from segviewer.ui.legend import legend_image
from segviewer.ui.settings import LAST_FOLDER
from segviewer.ui.workers import Job

if TYPE_CHECKING:
    from segviewer.ui.compare_window import CompareWindow
    from segviewer.ui.dialogs.compare_sources import CompareChoice


class ExportMixin:
    def overlay_rgb(self) -> np.ndarray | None:
        """What the canvas shows in overlay mode, as one RGB image (hidden classes left out)."""
        shown = self.state.shown
        if self.image is None or self.label_lut is None or shown is None:
            return None
        colors = np.take(self.label_lut, shown.prediction.labels, axis=0)  # hidden: alpha 0
        return blend(self.image, colors, self.state.opacity)

    def _ask_save(self, title: str, suffix: str, default: str) -> str | None:
        start = str(Path(self.prefs.get(LAST_FOLDER)) / default)
        path, _ = QFileDialog.getSaveFileName(self, title, start, f"*{suffix}")
        if not path:
            return None
        return path if path.lower().endswith(suffix) else path + suffix

    def _stem(self) -> str:
        return Path(self.current_path).stem if self.current_path else "segmentation"

    def export_overlay(self, path: str) -> Job | None:
        rgb = self.overlay_rgb()
        if rgb is None:
            self.show_error("Nothing to export yet — open an image and connect a model first")
            return None
        from segviewer.core.images import save_rgb_png

        return self._start_save("overlay", save_rgb_png, path, rgb)

    def export_labels(self, path: str) -> Job | None:
        if self.prediction is None:
            self.show_error("No label map yet — open an image and connect a model first")
            return None
        from segviewer.core.images import save_label_png

        return self._start_save("label map", save_label_png, path, self.prediction.labels)

    def export_legend(self, path: str) -> Job:
        rows = self.legend.rows()
        if path.lower().endswith(".csv"):
            return self._start_save("legend", tasks.write_csv, path, rows)
        title = f"{Path(self.current_path).name if self.current_path else ''}"
        rgb = array_from_qimage(legend_image(rows, title))
        from segviewer.core.images import save_rgb_png

        return self._start_save("legend", save_rgb_png, path, rgb)

    def _start_save(self, what: str, writer, path: str, *args) -> Job:
        job = self._io.start(f"save {what}", tasks.save, writer, path, *args)
        job.finished.connect(lambda p: self.statusBar().showMessage(f"Saved {what} to {p}", 6000))
        job.failed.connect(lambda message: self.show_error(f"Could not save {what}: {message}"))
        return job

    def export_overlay_dialog(self) -> None:
        if path := self._ask_save("Export overlay", ".png", f"{self._stem()}_overlay.png"):
            self.export_overlay(path)

    def export_labels_dialog(self) -> None:
        if path := self._ask_save("Export label map", ".png", f"{self._stem()}_labels.png"):
            self.export_labels(path)

    def export_legend_dialog(self, kind: str) -> None:
        if path := self._ask_save("Export legend", f".{kind}", f"{self._stem()}_legend.{kind}"):
            self.export_legend(path)

    def batch_export_dialog(self) -> None:
        if self.backend is None or self.ref is None:
            self.show_error("Connect to a model first (File ▸ Connect…)")
            return
        from segviewer.ui.dialogs.batch_export import BatchExportDialog

        dialog = BatchExportDialog(self, self.backend, self.ref, self.state.paths,
                                   self.state.palette, settings=self.settings)
        dialog.exec()

    def export_checkpoint_dialog(self) -> None:
        from segviewer.ui.dialogs.export_checkpoint import ExportCheckpointDialog

        dialog = ExportCheckpointDialog(self, self.settings)
        dialog.open_in_viewer.connect(self._open_exported)
        dialog.open_in_viewer.connect(dialog.accept)  # the viewer is where the user looks next
        dialog.exec()

    def compare_dialog(self) -> None:
        from segviewer.ui.dialogs.compare_sources import CompareSourcesDialog

        combo = self.selector.version_combo
        dialog = CompareSourcesDialog(self, self.settings,
                                      self.backend.description if self.backend else None,
                                      self.ref.name if self.ref else None,
                                      [combo.itemData(i) for i in range(combo.count())])
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.open_compare(dialog.choice())

    def open_compare(self, choice: CompareChoice) -> CompareWindow | None:
        """A compare window on the listed images; "current connection" sources use our backend."""
        if not self.state.paths:
            self.show_error("Open images first, then compare models on them")
            return None
        from segviewer.ui.compare_window import CompareWindow

        window = CompareWindow(choice, self.state.paths, self.backend, self.settings, self)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
        return window

    def _open_exported(self, saved_model_dir: str) -> None:
        from segviewer.core.serving.connection import ConnectionSpec

        self.connect_to(ConnectionSpec("local", saved_model_dir))

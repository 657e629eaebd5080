"""The main window's work in progress: Run All, cancelling, and the status bar's counts and
progress. The plan of what runs (current image, look-ahead, backlog) is `PredictionQueue`'s;
running it is `PredictionController`'s."""

from __future__ import annotations

from shiboken6 import isValid

from segviewer.core.viewer_state import Status
from segviewer.ui.main_actions import connect_hint


class QueueMixin:
    def run_all(self) -> None:
        """Segment every listed image (in the list's order, after the one on screen); the
        progress bar counts them and Cancel (Esc) stops."""
        if self.state.identity is None:
            self.show_error("Connect a model first to segment the images (File ▸ Connect…)")
            return
        count = self.predictor.run_all(self.file_list.visible_paths())
        self.statusBar().showMessage(f"Segmenting {count} image(s)…" if count else
                                     "Every listed image is segmented already", 4000)
        self._update_busy()

    def cancel_work(self) -> None:
        """Stop listing, predicting and connecting: queued images stay pending."""
        self.cancel_walks()
        self.predictor.cancel()
        self._update_busy()

    def _update_summary(self) -> None:
        statuses = list(self.state.statuses.values())
        parts = [f"{len(statuses)} image{'s' if len(statuses) != 1 else ''}"] if statuses else []
        parts += [f"{statuses.count(status)} {status.value.rstrip('…')}" for status in Status
                  if status is not Status.PENDING and status in statuses]
        if self.backend is not None and self.state.identity is not None:
            parts.append(f"{self.state.identity} · {self.backend.description}")
        if hint := connect_hint(self):
            parts.append(hint)
        self.summary_label.setText("  ·  ".join(parts))

    def _update_busy(self, *_args) -> None:
        if not isValid(self):
            return
        self._update_summary()
        busy = not self.idle
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        done, total = self.state.queue.progress
        if busy and total and not self.predictor.selection.running:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("Segmenting %v/%m")
        elif busy:
            self.progress.setRange(0, 0)  # indeterminate
            self.progress.setFormat("Working…")


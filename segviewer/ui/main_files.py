"""Opening images in the main window: the file dialogs, drops, and the recent-files menu.
A mixin of `MainWindow`: what is found goes into the window's `ViewerState` and its queue."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from segviewer.ui import settings as keys
from segviewer.ui import tasks
from segviewer.ui.workers import Job

MAX_RECENT = 10


class FilesMixin:
    def open_images_dialog(self) -> None:
        from segviewer.core.images import IMAGE_EXTENSIONS

        patterns = " ".join(f"*{e}" for e in IMAGE_EXTENSIONS)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.prefs.get(
            keys.LAST_FOLDER), f"Images ({patterns});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder",
                                                  self.prefs.get(keys.LAST_FOLDER))
        if folder:
            self.open_paths([folder])

    def open_paths(self, inputs: list[str | Path]) -> Job:
        """Add images and folders (searched recursively) to the list; shows the first new one."""
        inputs = [str(p) for p in inputs]
        job = self._io.start("find images", tasks.find, inputs)
        job.finished.connect(lambda found: self._found(inputs, found))
        job.failed.connect(self.show_error)
        return job

    def _found(self, inputs: list[str], found: list[Path]) -> None:
        if not found:
            self.show_error(f"No images found in {', '.join(inputs)} — open image files "
                            "(PNG, JPEG, …) or a folder that holds some")
            return
        first = Path(inputs[0])
        self.prefs.set(keys.LAST_FOLDER, str(first if first.is_dir() else first.parent))
        for item in reversed(inputs):
            self._remember_recent(item)
        added = self.state.add_images(str(p) for p in found)
        self.predictor.enqueue(added)  # before showing one: it then moves to the front
        if self.state.current is None or added:
            self.file_list.select_path(added[0] if added else str(found[0]))
        self.statusBar().showMessage(f"Opened {len(found)} image(s)", 4000)

    def _remember_recent(self, path: str) -> None:
        recent = [path] + [p for p in self.prefs.get(keys.RECENT) if p != path]
        self.prefs.set(keys.RECENT, recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.prefs.get(keys.RECENT)
        for path in recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(recent))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

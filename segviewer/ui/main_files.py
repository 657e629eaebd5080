"""Opening images in the main window: the file dialogs, drops, and the recent-files menu.
A mixin of `MainWindow`: what a `FolderWalker` finds goes into the window's `ViewerState` and its
queue chunk by chunk, while the walk goes on."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from segviewer.ui import settings as keys
from segviewer.ui.folder_walker import FolderWalker
from segviewer.ui.main_actions import connect_hint

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

    def open_paths(self, inputs: list[str | Path]) -> FolderWalker:
        """Add images and folders (searched recursively) to the list as the walk finds them, a
        chunk at a time (a big folder lists its first rows at once); shows the first new one."""
        inputs = [str(p) for p in inputs]
        self.opened_inputs += [p for p in inputs if p not in self.opened_inputs]
        walker = FolderWalker(self)
        self._walkers.add(walker)
        to_show = [True]  # until this walk has shown an image
        walker.found.connect(lambda chunk: self._found(chunk, to_show))
        walker.finished.connect(lambda count: self._walk_finished(walker, inputs, count))
        walker.failed.connect(lambda message: (self._walk_ended(walker), self.show_error(message)))
        walker.start(inputs)
        self._update_busy()
        return walker

    def _found(self, chunk: list[str], to_show: list[bool]) -> None:
        added = self.state.add_images(chunk)
        if to_show[0] and (self.state.current is None or added):
            to_show[0] = False
            self.file_list.select_path(added[0] if added else chunk[0])
        else:  # the look-ahead may reach into what was just listed
            self.predictor.plan_view(decoded=self.image is not None)

    def _walk_finished(self, walker: FolderWalker, inputs: list[str], count: int) -> None:
        self._walk_ended(walker)
        if not count:
            self.show_error(f"No images found in {', '.join(inputs)} — open image files "
                            "(PNG, JPEG, …) or a folder that holds some")
            return
        first = Path(inputs[0])
        self.prefs.set(keys.LAST_FOLDER, str(first if first.is_dir() else first.parent))
        for item in reversed(inputs):
            self._remember_recent(item)
        hint = connect_hint(self)
        self.statusBar().showMessage(f"Opened {count} image(s)" + (f" — {hint}" if hint else ""),
                                     4000 if not hint else 0)

    def _walk_ended(self, walker: FolderWalker) -> None:
        self._walkers.discard(walker)
        walker.deleteLater()
        self._update_busy()

    def cancel_walks(self) -> None:
        """Stop listing: what was found stays listed."""
        for walker in list(self._walkers):
            walker.cancel()
            self._walk_ended(walker)

    def _paths_removed(self, paths: list[str]) -> None:
        """Taken off the list (the files stay): not run any more; the canvas empties with the
        image shown."""
        current = self.state.current
        self.state.remove_images(paths)
        if current is not None and self.state.current is None:
            self._loading.cancel()
            self.image = None
            self.canvas.set_image(None)
            self._update_title()
        self._update_summary()

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

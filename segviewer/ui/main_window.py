"""The main window: canvas, legend, file list and model info docks, menus, settings.

Every model or file operation runs in a worker (`workers.JobRunner`): `_io` for loading and
saving, `_model` (one thread, so backend calls never overlap) for connecting and predicting. Each
opened image goes through a queue that loads it, makes its thumbnail and, when a model is
selected, predicts it; results are cached per (image, backend, model, version).
The functions the workers run are in `tasks.py`; the help dialogs in `help.py`.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSlider,
    QStyle,
    QToolButton,
    QWidget,
)
from shiboken6 import isValid

from segviewer.core.labels import Palette, PaletteError, background_id, choose_palette, get_palette
from segviewer.core.overlay import blend, boundaries, class_shares, overlay_lut
from segviewer.core.serving.base import Backend, ModelMetadata, ModelRef, Prediction
from segviewer.paths import resource_dir
from segviewer.ui import tasks
from segviewer.ui.cache import CacheKey, PredictionCache
from segviewer.ui.canvas import ImageCanvas, ViewMode, array_from_qimage
from segviewer.ui.file_list import FileList, Status
from segviewer.ui.help import ShortcutsDialog, about_text, shortcut_rows
from segviewer.ui.legend import FROM_MODEL, LegendWidget, legend_image
from segviewer.ui.model_panel import ModelInfo, ModelSelector
from segviewer.ui.workers import Job, JobRunner

if TYPE_CHECKING:
    from segviewer.ui.compare_window import CompareWindow
    from segviewer.ui.dialogs.compare_sources import CompareChoice
    from segviewer.ui.dialogs.connect import ConnectionSpec

APP_NAME = "SegViewer"
OPACITY_STEP = 10
MAX_RECENT = 10


def app_icon() -> QIcon:
    icon = QIcon()
    folder = resource_dir() / "icons"
    for png in sorted(folder.glob("segviewer-*.png")):
        icon.addFile(str(png))
    svg = folder / "segviewer.svg"
    if icon.isNull() and svg.exists():
        icon.addFile(str(svg))
    return icon


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        # QSettings() follows the application's name and QSettings.setDefaultFormat/setPath, so
        # tests redirect it to a temporary folder.
        self.settings = settings or QSettings()
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        screen = self.screen().availableGeometry()
        self.resize(min(1400, screen.width()), min(900, screen.height()))

        self._io = JobRunner(2, self)
        self._model = JobRunner(1, self)
        self.cache = PredictionCache()
        self.errors: list[str] = []  # every error shown, for `--screenshot` to report

        self.backend: Backend | None = None
        self._models: list[str] = []
        self.ref: ModelRef | None = None
        self.metadata: ModelMetadata | None = None
        self._connecting: Job | None = None
        self._palette_choice = str(self.settings.value("view/palette", FROM_MODEL))
        self.palette: Palette = self._fallback_palette()

        self.current_path: str | None = None
        self.image: np.ndarray | None = None
        self.prediction: Prediction | None = None
        self._colors: np.ndarray | None = None  # RGBA of the current labels, hidden classes clear
        self._load_job: Job | None = None
        self._queue: deque[str] = deque()
        self._process_job: Job | None = None
        self._thumbnails: set[str] = set()
        self._queued_total = 0

        self._build_widgets()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._restore_settings()
        self._update_title()
        for runner in (self._io, self._model):
            runner.busy_changed.connect(self._update_busy)

    # ==========================================================================================
    # construction
    def _build_widgets(self) -> None:
        self.canvas = ImageCanvas(self)
        self.canvas.setAcceptDrops(False)  # drops land on the window
        self.canvas.viewport().setAcceptDrops(False)
        self.canvas.hovered.connect(self._hovered)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.setCentralWidget(self.canvas)

        self.file_list = FileList()
        self.file_list.current_path_changed.connect(self.show_path)
        self.file_list.paths_removed.connect(self._paths_removed)
        self.files_dock = self._dock("Images", self.file_list, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.legend = LegendWidget()
        self.legend.hidden_changed.connect(lambda _: self._recolor())
        self.legend.palette_edited.connect(self._palette_edited)
        self.legend.palette_requested.connect(self.set_palette_choice)
        self.legend_dock = self._dock("Legend", self.legend, Qt.DockWidgetArea.RightDockWidgetArea)

        self.model_info = ModelInfo()
        self.info_dock = self._dock("Model", self.model_info, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.info_dock, self.legend_dock)  # legend in front
        self.legend_dock.raise_()

        self.selector = ModelSelector()
        self.selector.model_selected.connect(lambda m: self.select_model(m, None))
        self.selector.version_selected.connect(
            lambda v: self.ref and self.select_model(self.ref.name, v))

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(140)
        self.opacity_slider.setToolTip("Label opacity ( [ and ] )")
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(40)

        bar = self.statusBar()
        self.summary_label = QLabel()  # left, under transient messages: "4 images · 4 done"
        bar.addWidget(self.summary_label)
        self.hover_label = QLabel()
        self.hover_label.setMinimumWidth(300)
        self.zoom_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the running work (Esc)")
        self.cancel_button.clicked.connect(self.cancel_work)
        self.cancel_button.hide()
        bar.addPermanentWidget(self.hover_label)
        bar.addPermanentWidget(self.zoom_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcuts=(), icon=None, checkable=False,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon) if isinstance(
                icon, QStyle.StandardPixmap) else icon)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even when a menu hides the action
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        a = self._action
        self.act_open = a("&Open Images…", self.open_images_dialog, [QKeySequence.StandardKey.Open],
                          sp.SP_DialogOpenButton, tip="Open image files")
        self.act_open_folder = a("Open &Folder…", self.open_folder_dialog, ["Ctrl+Shift+O"],
                                 sp.SP_DirOpenIcon, tip="Open every image in a folder")
        self.act_connect = a("&Connect…", self.connect_dialog, ["Ctrl+K"], sp.SP_DriveNetIcon,
                             tip="Connect to TF Serving or a SavedModel")
        self.act_demo = a("Open &Demo", self.open_demo, tip="Demo photos with the PASCAL model")
        self.act_export_ckpt = a("Export &Checkpoint…", self.export_checkpoint_dialog,
                                 tip="Export a DeepLab checkpoint as a SavedModel")
        self.act_quit = a("&Quit", self.close, [QKeySequence.StandardKey.Quit])

        self.act_export_overlay = a("&Overlay as PNG…", self.export_overlay_dialog, ["Ctrl+E"])
        self.act_export_labels = a("&Label Map as PNG…", self.export_labels_dialog,
                                   ["Ctrl+Shift+E"])
        self.act_export_legend_png = a("Legend as P&NG…", lambda: self.export_legend_dialog("png"))
        self.act_export_legend_csv = a("Legend as &CSV…", lambda: self.export_legend_dialog("csv"))
        self.act_batch = a("&Batch Export Folder…", self.batch_export_dialog)
        self.act_compare = a("&Compare Versions…", self.compare_dialog, ["Ctrl+Shift+K"],
                             tip="Compare two models or versions on these images and review them")

        self.mode_group = QActionGroup(self)
        self.act_mode = {}
        for mode, text, short, key in ((ViewMode.OVERLAY, "O&verlay", "Overlay", "O"),
                                       (ViewMode.LABELS, "&Labels Only", "Labels", "L"),
                                       (ViewMode.IMAGE, "&Image Only", "Image", "I")):
            act = a(text, lambda _=False, m=mode: self.set_mode(m), [key], checkable=True,
                    tip=f"{text.replace('&', '')} ({key})")
            act.setIconText(short)  # the toolbar's label
            act.setToolTip(f"{text.replace('&', '')} ({key})")
            self.mode_group.addAction(act)
            self.act_mode[mode] = act
        self.act_mode[ViewMode.OVERLAY].setChecked(True)
        self.act_cycle_mode = a("Cycle View Mode", self.cycle_mode, ["M"])
        self.act_boundaries = a("Class &Boundaries", self._boundaries_toggled, ["B"],
                                checkable=True)
        self.act_boundaries.setIconText("Outlines")
        self.act_boundaries.setToolTip("Class boundaries (B)")
        self.act_probabilities = a("Fetch Class &Probabilities", self._probabilities_toggled,
                                   checkable=True,
                                   tip="Ask the model for probabilities (shown on hover; slower)")
        self.act_opacity_up = a("More Opaque", lambda: self.step_opacity(OPACITY_STEP), ["]"])
        self.act_opacity_down = a("More Transparent", lambda: self.step_opacity(-OPACITY_STEP),
                                  ["["])
        self.act_zoom_in = a("Zoom &In", self.canvas.zoom_in,
                             [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])
        self.act_zoom_out = a("Zoom &Out", self.canvas.zoom_out, [QKeySequence.StandardKey.ZoomOut])
        self.act_fit = a("&Fit to Window", self.canvas.fit, ["Ctrl+0"])
        self.act_actual = a("&Actual Size", self.canvas.actual_size, ["Ctrl+1"])
        self.act_next = a("&Next Image", lambda: self.file_list.step(1),
                          ["PgDown", "Right", "N"], sp.SP_ArrowForward)
        self.act_prev = a("&Previous Image", lambda: self.file_list.step(-1),
                          ["PgUp", "Left", "P"], sp.SP_ArrowBack)
        self.act_first = a("F&irst Image", lambda: self.file_list.step(-self.file_list.count()),
                           ["Home"])
        self.act_last = a("L&ast Image", lambda: self.file_list.step(self.file_list.count()),
                          ["End"])
        for act, short in ((self.act_open, "Open"), (self.act_open_folder, "Folder"),
                           (self.act_next, "Next"), (self.act_prev, "Previous")):
            act.setIconText(short)
            act.setToolTip(f"{act.text().replace('&', '').rstrip('…')} "
                           f"({act.shortcut().toString()})")
        self.act_cancel = a("Cancel Work", self.cancel_work, ["Esc"])
        self.act_rerun = a("&Reload Image", self.reload_current, ["F5"],
                           tip="Load and segment the current image again (after a failure or "
                               "a cancel)")
        self.act_shortcuts = a("&Keyboard Shortcuts", self.show_shortcuts,
                               [QKeySequence.StandardKey.HelpContents])
        self.act_about = a(f"&About {APP_NAME}", self.show_about)
        keys = [act.shortcut().toString() for act in (self.act_open, self.act_open_folder,
                                                       self.act_connect)]
        self.canvas.set_empty_text(f"Drop images or a folder here\nor open them: {keys[0]}, "
                                   f"{keys[1]}\n\nConnect a model: {keys[2]}\n"
                                   "Try the demo: File ▸ Open Demo")

    def _build_menus_and_toolbar(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addActions([self.act_open, self.act_open_folder])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addActions([self.act_connect, self.act_demo, self.act_export_ckpt])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        export_menu = menu.addMenu("&Export")
        export_menu.addActions([self.act_export_overlay, self.act_export_labels,
                                self.act_export_legend_png, self.act_export_legend_csv])
        export_menu.addSeparator()
        export_menu.addAction(self.act_batch)

        menu.addMenu("&Tools").addAction(self.act_compare)

        view = menu.addMenu("&View")
        view.addActions(list(self.act_mode.values()))
        view.addActions([self.act_cycle_mode, self.act_boundaries, self.act_probabilities])
        view.addSeparator()
        view.addActions([self.act_opacity_up, self.act_opacity_down])
        view.addSeparator()
        view.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual])
        view.addSeparator()
        view.addActions([self.act_next, self.act_prev, self.act_first, self.act_last,
                         self.act_rerun])
        view.addSeparator()
        for dock in (self.files_dock, self.legend_dock, self.info_dock):
            view.addAction(dock.toggleViewAction())

        help_menu = menu.addMenu("&Help")
        help_menu.addActions([self.act_shortcuts, self.act_about])

        tools = self.addToolBar("Main")
        tools.setObjectName("toolbar_main")
        tools.setIconSize(QSize(18, 18))
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tools.addActions([self.act_open, self.act_open_folder, self.act_connect])
        tools.addSeparator()
        tools.addWidget(self.selector)
        tools.addSeparator()
        tools.addWidget(QLabel(" Opacity "))
        tools.addWidget(self.opacity_slider)
        tools.addWidget(self.opacity_label)
        tools.addSeparator()
        for act in self.act_mode.values():
            tools.addAction(act)
        tools.addAction(self.act_boundaries)
        tools.addSeparator()
        tools.addActions([self.act_prev, self.act_next])

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        else:  # first start: room for file names on the left and the legend on the right
            self.resizeDocks([self.files_dock, self.legend_dock], [250, 330],
                             Qt.Orientation.Horizontal)
        self.opacity_slider.setValue(int(s.value("view/opacity", 50)))
        self._opacity_changed(self.opacity_slider.value())
        self.act_boundaries.setChecked(s.value("view/boundaries", "false") == "true")
        self.canvas.set_show_boundaries(self.act_boundaries.isChecked())
        self._rebuild_recent_menu()

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("view/opacity", self.opacity_slider.value())
        s.setValue("view/palette", self._palette_choice)
        s.setValue("view/boundaries", "true" if self.act_boundaries.isChecked() else "false")

    # ==========================================================================================
    # opening images
    def open_images_dialog(self) -> None:
        from segviewer.core.images import IMAGE_EXTENSIONS

        patterns = " ".join(f"*{e}" for e in IMAGE_EXTENSIONS)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self._last_folder(),
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self._last_folder())
        if folder:
            self.open_paths([folder])

    def _last_folder(self) -> str:
        return str(self.settings.value("files/last_folder", str(Path.home())))

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
        self.settings.setValue("files/last_folder", str(first if first.is_dir() else first.parent))
        for item in reversed(inputs):
            self._remember_recent(item)
        added = self.file_list.add_paths(found)
        if self.file_list.current_path is None or added:
            self.file_list.select_path(added[0] if added else str(found[0]))
        self._enqueue(added)
        self.statusBar().showMessage(f"Opened {len(found)} image(s)", 4000)

    def _remember_recent(self, path: str) -> None:
        recent = [path] + [p for p in self._recent() if p != path]
        self.settings.setValue("files/recent", recent[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self._recent()))

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

    # ==========================================================================================
    # showing one image
    def show_path(self, path: str) -> None:
        self.current_path = path
        self.prediction = None
        self._colors = None
        if self._load_job is not None:
            self._load_job.cancel()
        self._load_job = job = self._io.start("load image", tasks.load, path)
        job.finished.connect(self._loaded)
        job.failed.connect(lambda message: self._load_failed(path, message))
        self._update_title()

    def _paths_removed(self, paths: list[str]) -> None:
        """Taken off the list (the files stay): not run any more; the canvas empties with it."""
        gone = set(paths)
        self._queue = deque(p for p in self._queue if p not in gone)
        if self.current_path in gone:
            self.current_path, self.image, self.prediction = None, None, None
            self.canvas.set_image(None)
            self.legend.set_shares(None)
            self._update_title()
        self._update_summary()

    def reload_current(self) -> None:
        if self.current_path is not None:
            self.cache.forget_path(self.current_path)
            self.file_list.set_status(self.current_path, Status.PENDING)
            self.show_path(self.current_path)

    def _loaded(self, result: tuple[str, np.ndarray]) -> None:
        path, rgb = result
        if path != self.current_path:
            return
        self.image = rgb
        self.canvas.set_image(rgb)
        self._show_cached_prediction()

    def _load_failed(self, path: str, message: str) -> None:
        if path == self.current_path:
            self.image = None
            self.canvas.set_image(None)
            self.legend.set_shares(None)
        self._mark_failed(path, message)

    def _mark_failed(self, path: str, message: str) -> None:
        self.file_list.set_status(path, Status.FAILED, message)
        self._update_summary()
        if path == self.current_path:
            self.show_error(f"{Path(path).name}: {message}")

    def _key(self, path: str) -> CacheKey | None:
        if self.backend is None or self.ref is None:
            return None
        return CacheKey(path, self.backend.description, self.ref.name, self.ref.version,
                        self.act_probabilities.isChecked())

    def _show_cached_prediction(self) -> None:
        """Show the current image's prediction if cached, else move the image to the queue's
        front."""
        path = self.current_path
        key = self._key(path) if path else None
        if path is None or key is None or self.image is None:
            return
        prediction = self.cache.get(key)
        if prediction is None:
            if path in self._queue:
                self._queue.remove(path)
            running = self._process_job is not None and self._process_job.name == path
            if not running and self.file_list.status(path) is not Status.FAILED:
                self._queue.appendleft(path)
                self._queued_total += 1
                self._pump()
            return
        if prediction.labels.shape != self.image.shape[:2]:
            self.show_error(f"{Path(path).name}: the model returned labels of size "
                            f"{prediction.labels.shape} for an image of {self.image.shape[:2]}")
            return
        self.prediction = prediction
        self.legend.set_shares(shares := class_shares(prediction.labels))
        self.file_list.set_classes(path, shares)
        self._recolor()
        self._update_boundaries()
        self._update_title()

    def _recolor(self) -> None:
        """Colour the labels with the palette, hidden classes fully transparent (LUT alpha)."""
        if self.prediction is None:
            self.canvas.set_labels(None)
            self._colors = None
            return
        labels = self.prediction.labels
        size = max(int(labels.max()) + 1, len(self.palette))
        self._colors = overlay_lut(self.palette.lut(size), self.legend.hidden)[labels]
        self.canvas.set_labels(self._colors)

    def _update_boundaries(self) -> None:
        show = self.act_boundaries.isChecked() and self.prediction is not None
        self.canvas.set_boundaries(boundaries(self.prediction.labels) if show else None)

    # ==========================================================================================
    # the prediction queue
    def _enqueue(self, paths: list[str]) -> None:
        queued = set(self._queue)  # `in` on the deque would be quadratic for a big folder
        self._queue.extend(p for p in paths if p not in queued)
        self._queued_total += len(paths)
        self._pump()

    def _requeue_all(self) -> None:
        """After a model change: everything not cached for the new model becomes pending."""
        self._queue.clear()
        self._queued_total = 0
        todo = []
        for path in self.file_list.paths():
            key = self._key(path)
            self.file_list.set_classes(path, None)  # the old model's: set again when shown or run
            if key is not None and key in self.cache:
                self.file_list.set_status(path, Status.DONE)
            elif self.file_list.status(path) is not Status.FAILED or key is not None:
                self.file_list.set_status(path, Status.PENDING)
                todo.append(path)
        if self.current_path in todo:  # the visible image first
            todo.remove(self.current_path)
            todo.insert(0, self.current_path)
        self._enqueue(todo)

    def _pump(self) -> None:
        if not isValid(self):
            return  # a job ended after the window was deleted (closing cancels, jobs still end)
        if self._process_job is not None or self._connecting is not None:
            return
        while self._queue:
            path = self._queue.popleft()
            key = self._key(path)
            # No model: nothing to run (the list makes its own thumbnails, for rows shown).
            if key is None or (path in self._thumbnails and key in self.cache):
                if key is not None:
                    self.file_list.set_status(path, Status.DONE)
                continue
            self.file_list.set_status(path, Status.RUNNING)
            self._process_job = job = self._model.start(
                path, tasks.process, path, self.backend, self.ref, key,
                self.act_probabilities.isChecked())
            job.finished.connect(self._processed)
            job.failed.connect(lambda message, p=path: self._mark_failed(p, message))
            job.done.connect(lambda j=job: self._process_done(j))
            self._update_busy()
            return
        self._queued_total = 0
        self._update_busy()

    def _processed(self, result: tasks.Processed) -> None:
        self._thumbnails.add(result.path)
        self.file_list.set_thumbnail(result.path, result.thumbnail)
        if result.prediction is None or result.key != self._key(result.path):
            self.file_list.set_status(result.path, Status.PENDING)
            return
        self.cache.put(result.key, result.prediction)
        self.file_list.set_classes(result.path, class_shares(result.prediction.labels))
        self.file_list.set_status(result.path, Status.DONE)
        self._update_summary()
        if result.path == self.current_path:
            self._show_cached_prediction()


    def _process_done(self, job: Job) -> None:
        if job is self._process_job:
            self._process_job = None
            self._pump()

    def cancel_work(self) -> None:
        """Stop predicting: queued images stay pending; a blocked call ends at its timeout."""
        for path in self._queue:
            self.file_list.set_status(path, Status.PENDING)
        self._queue.clear()
        if self._process_job is not None:
            self.file_list.set_status(self._process_job.name, Status.PENDING)
            self._process_job.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
            self.model_info.clear_info("Connection cancelled.")
        self._update_busy()

    @property
    def idle(self) -> bool:
        """Nothing loading, connecting or predicting (what `--screenshot` waits for)."""
        return not (self._io.busy or self._model.busy or self._queue)

    def _update_summary(self) -> None:
        paths = self.file_list.paths()
        counts = {status: 0 for status in Status}
        for path in paths:
            counts[self.file_list.status(path)] += 1
        parts = [f"{len(paths)} image{'s' if len(paths) != 1 else ''}"] if paths else []
        parts += [f"{n} {status.value.rstrip('…')}" for status, n in counts.items()
                  if n and status is not Status.PENDING]
        if self.backend is not None and self.ref is not None:
            parts.append(f"{self.ref} · {self.backend.description}")
        self.summary_label.setText("  ·  ".join(parts))

    def _update_busy(self, *_args) -> None:
        if not isValid(self):
            return
        self._update_summary()
        busy = not self.idle
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        total = self._queued_total
        if busy and total and self._connecting is None:
            done = total - len(self._queue) - (1 if self._process_job is not None else 0)
            self.progress.setRange(0, total)
            self.progress.setValue(max(0, done))
            self.progress.setFormat("Segmenting %v/%m")
        elif busy:
            self.progress.setRange(0, 0)  # indeterminate
            self.progress.setFormat("Working…")

    # ==========================================================================================
    # connecting and choosing a model
    def connect_dialog(self) -> None:
        from segviewer.ui.dialogs.connect import ConnectDialog

        dialog = ConnectDialog(self, self.settings)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.connect_to(dialog.connection())

    def open_demo(self, images: bool = True) -> None:
        """The bundled PASCAL model, version 1, at 50 % opacity (and the demo photos)."""
        from segviewer.paths import demo_dir, demo_models_dir
        from segviewer.ui.dialogs.connect import ConnectionSpec

        self.opacity_slider.setValue(50)
        self.set_mode(ViewMode.OVERLAY)
        self.connect_to(ConnectionSpec("local", str(demo_models_dir() / "pascal")), version=1)
        if images:
            self.open_paths([demo_dir() / "images"])

    def connect_to(self, spec: ConnectionSpec, model: str | None = None,
                   version: int | None = None) -> Job:
        """Open a backend in a worker, then pick `model` (default: the first) and `version`
        (default: the newest available)."""
        if self._connecting is not None:
            self._connecting.cancel()
        self.model_info.clear_info(f"Connecting to {spec.describe()}…")
        self._connecting = job = self._model.start("connect", tasks.connect, spec, model, version)
        job.finished.connect(self._connected)
        job.failed.connect(lambda message: self._connect_failed(spec.describe(), message))
        job.done.connect(lambda: self._connect_done(job))
        self._update_busy()
        return job

    def _connect_done(self, job: Job) -> None:
        if job is self._connecting:
            self._connecting = None
            self._pump()

    def _connect_failed(self, where: str, message: str) -> None:
        self.model_info.clear_info(f"Could not connect to {where}: {message}")
        self.show_error(f"Could not connect to {where}: {message}")

    def _connected(self, result: tasks.Connected) -> None:
        old = self.backend
        if old is not None and old is not result.backend:
            self._model.start("close", lambda state, b: b.close(), old)
        self.backend = result.backend
        self._models = result.models
        self._apply_choice(result)
        self.statusBar().showMessage(f"Connected to {result.backend.description}", 4000)

    def select_model(self, model: str, version: int | None) -> Job | None:
        """Switch model or version (metadata is fetched in a worker, then images re-run)."""
        if self.backend is None:
            return None
        self._connecting = job = self._model.start("select", tasks.select, self.backend,
                                                   self._models, model, version)
        job.finished.connect(self._apply_choice)
        job.failed.connect(lambda message: self.show_error(f"{model}: {message}"))
        job.done.connect(lambda: self._connect_done(job))
        self._update_busy()
        return job

    def _apply_choice(self, result: tasks.Connected) -> None:
        self.ref = ModelRef(result.model, result.version)
        self.metadata = result.metadata
        self.selector.set_models(result.models, result.model)
        self.selector.set_versions(result.versions, result.version)
        self.model_info.set_metadata(result.backend.description, result.metadata)
        self.set_palette_choice(self._palette_choice)
        self.prediction = None
        self._requeue_all()
        self._show_cached_prediction()
        self._update_title()

    # ==========================================================================================
    # palette, opacity, view
    def _fallback_palette(self) -> Palette:
        """The palette to use when the model carries none (or before a model is chosen)."""
        try:
            if self._palette_choice != FROM_MODEL:
                return get_palette(self._palette_choice)
        except PaletteError:
            pass
        return get_palette("pascal")

    def set_palette_choice(self, choice: str) -> None:
        """"model" (the model's own classes), a built-in palette name, or a JSON file path."""
        try:
            palette = choose_palette(None if choice == FROM_MODEL else choice,
                                     self.metadata.classes if self.metadata else None,
                                     self._num_classes())
        except (PaletteError, OSError) as exc:
            self.show_error(str(exc))
            self.legend.set_palette(self.palette, self._palette_choice)
            return
        self._palette_choice = choice
        self.palette = palette
        self.legend.set_palette(palette, choice)
        if (background := background_id(palette)) is not None:
            self.legend.set_class_visible(background, False)  # transparent by default
        self.file_list.set_class_names(dict(enumerate(palette.names)))
        self._recolor()

    def _num_classes(self) -> int:
        """Classes the model outputs, from a logits/probabilities output's last dimension."""
        if self.metadata is not None:
            for sig in self.metadata.signatures.values():
                for spec in sig.outputs.values():
                    if spec.shape and len(spec.shape) == 4 and spec.shape[-1]:
                        return int(spec.shape[-1])
        return 21

    def _palette_edited(self, palette: Palette) -> None:
        self.palette = palette
        self._recolor()

    def _opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.canvas.set_opacity(value / 100)
        if self.canvas.mode is ViewMode.IMAGE:  # moving the slider means "show me the labels"
            self.set_mode(ViewMode.OVERLAY)

    def step_opacity(self, delta: int) -> None:
        self.opacity_slider.setValue(self.opacity_slider.value() + delta)

    def set_mode(self, mode: ViewMode) -> None:
        self.act_mode[mode].setChecked(True)
        self.canvas.set_mode(mode)

    def cycle_mode(self) -> None:
        modes = list(ViewMode)
        self.set_mode(modes[(modes.index(self.canvas.mode) + 1) % len(modes)])

    def _boundaries_toggled(self, _checked: bool = False) -> None:
        self.canvas.set_show_boundaries(self.act_boundaries.isChecked())
        self._update_boundaries()

    def _probabilities_toggled(self, _checked: bool = False) -> None:
        self._requeue_all()
        self._show_cached_prediction()

    def _hovered(self, x: int, y: int) -> None:
        if x < 0 or self.image is None:
            self.hover_label.setText("")
            return
        text = f"x {x}, y {y}"
        if self.prediction is not None:
            class_id = int(self.prediction.labels[y, x])
            text += f"  ·  {class_id} {self.palette.class_name(class_id)}"
            probs = self.prediction.probabilities
            if probs is not None and class_id < probs.shape[-1]:
                text += f"  ({probs[y, x, class_id] * 100:.1f} %)"
        self.hover_label.setText(text)

    def _update_title(self) -> None:
        parts = []
        if self.current_path:
            parts.append(Path(self.current_path).name)
        if self.ref is not None:
            parts.append(str(self.ref))
        parts.append(APP_NAME)
        self.setWindowTitle(" — ".join(parts))

    def show_error(self, message: str) -> None:
        """Errors go to the status bar (never a modal box: the window keeps working)."""
        if self.errors and self.errors[-1] == message and message in \
                self.statusBar().currentMessage():
            return  # e.g. showing and predicting the same broken file both fail
        self.errors.append(message)
        self.statusBar().showMessage(f"⚠ {message}", 15000)

    # ==========================================================================================
    # export
    def overlay_rgb(self) -> np.ndarray | None:
        """What the canvas shows in overlay mode, as one RGB image (hidden classes left out)."""
        if self.image is None or self._colors is None or self.prediction is None:
            return None
        return blend(self.image, self._colors, self.canvas.opacity)  # hidden: alpha 0

    def _ask_save(self, title: str, suffix: str, default: str) -> str | None:
        start = str(Path(self._last_folder()) / default)
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

        dialog = BatchExportDialog(self, self.backend, self.ref, self.file_list.paths(),
                                   self.palette, settings=self.settings)
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
        if not self.file_list.paths():
            self.show_error("Open images first, then compare models on them")
            return None
        from segviewer.ui.compare_window import CompareWindow

        window = CompareWindow(choice, self.file_list.paths(), self.backend, self.settings, self)
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
        return window

    def _open_exported(self, saved_model_dir: str) -> None:
        from segviewer.ui.dialogs.connect import ConnectionSpec

        self.connect_to(ConnectionSpec("local", saved_model_dir))

    # ==========================================================================================
    # help
    def shortcuts(self) -> list[tuple[str, str]]:
        return shortcut_rows(self.actions())

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self, self.shortcuts()).exec()

    def about_text(self) -> str:
        return about_text(APP_NAME)

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", self.about_text())

    # ==========================================================================================
    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.cancel_work()
        self._io.cancel_all()
        self._model.cancel_all()
        self._io.wait(5000)
        self._model.wait(5000)
        if self.backend is not None:
            self.backend.close()
        super().closeEvent(event)

"""The main window: canvas, legend, file list and model info docks, status bar and settings.

A view of `ViewerState` (core/viewer_state.py): the window sends the user's choices to the state
and draws what the state says. The model, the queue and the predictions are run by
`PredictionController` (prediction.py); image loading and saving by the `_io` workers. Widgets,
actions and menus are laid out in `main_layout.py` (which of them can run now: `main_actions.py`);
opening files is `main_files.py`; palette, opacity, view mode and hover `main_view.py`; Run All
and progress `main_queue.py`; exports and the other dialogs `main_export.py`; the session restored
on start `session.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QDialog,
    QMainWindow,
)

from segviewer.core.labels import Palette, PaletteError, labels_lut
from segviewer.core.overlay import class_shares
from segviewer.core.serving.base import Backend, ModelMetadata, ModelRef, Prediction
from segviewer.core.viewer_state import ModelIdentity, Shown, Status, ViewerState, ViewMode
from segviewer.paths import resource_dir
from segviewer.ui import settings as keys
from segviewer.ui import tasks
from segviewer.ui.cache import PredictionCache
from segviewer.ui.edit_main import install_editing
from segviewer.ui.folder_walker import FolderWalker
from segviewer.ui.help import APP_NAME, HelpMixin
from segviewer.ui.main_actions import follow_state
from segviewer.ui.main_export import ExportMixin
from segviewer.ui.main_files import FilesMixin
from segviewer.ui.main_layout import build_actions, build_menus_and_toolbar, build_widgets
from segviewer.ui.main_queue import QueueMixin
from segviewer.ui.main_view import ViewMixin
from segviewer.ui.prediction import PredictionController
from segviewer.ui.session import restore_session, save_session
from segviewer.ui.settings import Settings
from segviewer.ui.workers import CurrentTask, Job, JobRunner

if TYPE_CHECKING:
    from segviewer.core.serving.connection import ConnectionSpec

__all__ = ["APP_NAME", "MainWindow", "app_icon"]


def app_icon() -> QIcon:
    icon = QIcon()
    folder = resource_dir() / "icons"
    for png in sorted(folder.glob("segviewer-*.png")):
        icon.addFile(str(png))
    svg = folder / "segviewer.svg"
    if icon.isNull() and svg.exists():
        icon.addFile(str(svg))
    return icon


class MainWindow(FilesMixin, ExportMixin, HelpMixin, QueueMixin, ViewMixin, QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        # QSettings() follows the application's name and QSettings.setDefaultFormat/setPath, so
        # tests redirect it to a temporary folder.
        self.settings = settings or QSettings()
        self.prefs = Settings(self.settings)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        screen = self.screen().availableGeometry()
        self.resize(min(1400, screen.width()), min(900, screen.height()))

        try:
            self.state = ViewerState(self.prefs.get(keys.PALETTE))
        except (PaletteError, OSError):  # a palette file that has gone since the last run
            self.state = ViewerState()
        self._io = JobRunner(2, self)
        self._loading = CurrentTask(self._io, self)
        self._loading.finished.connect(self._loaded)
        self._loading.failed.connect(self._load_failed)
        self.predictor = PredictionController(self.state, self,
                                              self.prefs.get(keys.CACHE_MB) << 20,
                                              self.prefs.get(keys.MAX_PIXELS))
        self._walkers: set[FolderWalker] = set()  # folders being listed (main_files.py)
        self.errors: list[str] = []  # every error shown, for `--screenshot` to report
        self.connection: ConnectionSpec | None = None  # the last connection made (Connect dialog)
        self._connecting: ConnectionSpec | None = None
        self.opened_inputs: list[str] = []  # files and folders opened, for the session
        self.image: np.ndarray | None = None
        self.label_lut: np.ndarray | None = None  # RGBA per id of the labels shown (hidden: clear)

        build_widgets(self)
        build_actions(self)
        build_menus_and_toolbar(self)
        self.predictor.following = self.file_list.following
        for changed in (self.file_list.proxy.layoutChanged, self.file_list.proxy.modelReset):
            changed.connect(lambda *_: self.predictor.plan_view(decoded=self.image is not None))
        self.editing = install_editing(self)
        self._observe()
        self._restore_settings()
        self._update_title()

    # ==========================================================================================
    # construction
    def _observe(self) -> None:
        """Draw what the state says, whoever changed it."""
        state, predictor = self.state, self.predictor
        state.images_added.connect(lambda paths: self.file_list.add_paths(paths))
        state.status_changed.connect(self._status_changed)
        state.model_changed.connect(self._model_changed)
        state.shown_changed.connect(self._shown_changed)
        state.labels_edited.connect(lambda _shown: self._update_boundaries())
        state.palette_changed.connect(lambda _palette, _choice: self._recolor())
        state.hidden_changed.connect(lambda _hidden: self._recolor())
        state.opacity_changed.connect(self._opacity_changed)
        state.mode_changed.connect(self._mode_changed)
        predictor.model_ready.connect(self._model_ready)
        predictor.connect_failed.connect(self.model_info.clear_info)
        predictor.connect_failed.connect(lambda _message: self._show_current())
        predictor.cancelled.connect(lambda: self.model_info.clear_info("Connection cancelled."))
        predictor.cancelled.connect(self._show_current)  # the model chosen before, again
        predictor.result_ready.connect(lambda path: path == state.current and self._show_current())
        predictor.error.connect(self.show_error)
        predictor.thumbnail_ready.connect(self.file_list.set_thumbnail)
        predictor.classes_ready.connect(self.file_list.set_classes)
        predictor.changed.connect(self._update_busy)
        follow_state(self)  # which actions can run, and the hint to connect a model
        self._io.busy_changed.connect(self._update_busy)

    def _restore_settings(self) -> None:
        geometry = self.prefs.get(keys.WINDOW_GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.prefs.get(keys.WINDOW_STATE)
        if state is not None:
            self.restoreState(state)
        else:  # first start: room for file names on the left and the legend on the right
            self.resizeDocks([self.files_dock, self.legend_dock], [250, 330],
                             Qt.Orientation.Horizontal)
        self.opacity_slider.setValue(self.prefs.get(keys.OPACITY))
        self._opacity_slid(self.opacity_slider.value())
        self.act_boundaries.setChecked(self.prefs.get(keys.BOUNDARIES))
        self.canvas.set_show_boundaries(self.act_boundaries.isChecked())
        self.act_restore_session.setChecked(self.prefs.get(keys.RESTORE_SESSION))
        self._rebuild_recent_menu()

    def save_settings(self) -> None:
        self.prefs.set(keys.WINDOW_GEOMETRY, self.saveGeometry())
        self.prefs.set(keys.WINDOW_STATE, self.saveState())
        self.prefs.set(keys.OPACITY, self.opacity_slider.value())
        self.prefs.set(keys.PALETTE, self.state.palette_choice)
        self.prefs.set(keys.BOUNDARIES, self.act_boundaries.isChecked())
        save_session(self)

    def restore_session(self) -> bool:
        return restore_session(self)

    # -- what the tests and other windows read -------------------------------------------------
    @property
    def current_path(self) -> str | None:
        return self.state.current

    @property
    def prediction(self) -> Prediction | None:
        return self.state.shown.prediction if self.state.shown is not None else None

    @property
    def ref(self) -> ModelRef | None:
        return self.predictor.ref

    @property
    def backend(self) -> Backend | None:
        return self.predictor.backend

    @property
    def metadata(self) -> ModelMetadata | None:
        return self.state.metadata

    @property
    def cache(self) -> PredictionCache:
        return self.predictor.cache

    @property
    def palette(self) -> Palette:
        return self.state.palette

    @property
    def idle(self) -> bool:
        """Nothing listing, loading, connecting or predicting (what `--screenshot` waits for)."""
        return not (self._io.busy or self.predictor.busy or not self.state.queue.idle
                    or self._walkers)

    # ==========================================================================================
    # showing one image
    def show_path(self, path: str) -> None:
        if path != self.state.current:  # an error about the image left behind is stale now
            self._clear_error()
        self.image = None  # the photo on the canvas is the previous one until this one loads
        self.state.set_current(path)
        self.cache.pin(path)
        loaded = self.cache.image(path)
        if loaded is not None:  # decoded ahead (or seen before): no wait
            self._loading.cancel()
            self._loaded(loaded)
        else:  # the old look-ahead stops; this image runs once decoded (one decode, shared)
            self.predictor.plan_view(decoded=False)
            self._loading.start("load image", tasks.load, path, self.predictor.max_pixels)
        self._update_title()

    def reload_current(self) -> None:
        path = self.state.current
        if path is not None:
            self.cache.forget_path(path)
            self.state.set_status(path, Status.PENDING)
            self.state.clear_result()
            self._loading.start("load image", tasks.load, path, self.predictor.max_pixels)

    def _loaded(self, result: tasks.Loaded) -> None:
        self.cache.put_image(result)
        self.image = result.rgb
        self.canvas.set_image(result.rgb, result.levels)
        self.predictor.plan_view()  # this image first (from the cache), then the look-ahead
        self._show_current()

    def _load_failed(self, _name: str, message: str) -> None:
        path = self.state.current
        self.image = None
        self.canvas.set_image(None)
        if path is not None:
            self.state.set_status(path, Status.FAILED, message)
            self.show_error(f"{Path(path).name}: {message}")
            self.predictor.plan_view()  # the look-ahead still runs

    def _show_current(self) -> None:
        """Offer the current image's cached result to the state (which shows it only if it comes
        from the chosen model), else run the image next."""
        path, identity = self.state.current, self.state.identity
        if path is None or identity is None or self.image is None or self.state.selecting:
            return
        prediction = self.predictor.cached(path)
        if prediction is None:
            if self.state.statuses.get(path) is not Status.FAILED:
                self.predictor.prioritise(path)
            return
        if prediction.labels.shape != self.image.shape[:2]:
            self.show_error(f"{Path(path).name}: the model returned labels of size "
                            f"{prediction.labels.shape} for an image of {self.image.shape[:2]}")
            return
        self.editing.offer(path, identity, prediction)  # the edited labels in edit mode

    def _shown_changed(self, shown: Shown | None) -> None:
        if shown is not None:  # a cached result's classes were forgotten at a model change
            self._clear_error()  # a result for the image shown: an older error no longer holds
            self.file_list.set_classes(shown.path, class_shares(shown.prediction.labels))
        self._recolor()
        self._update_boundaries()
        self._update_title()
        self._update_summary()

    def _recolor(self) -> None:
        """Colour the labels shown with the palette, hidden classes fully transparent (the
        canvas colours only the tiles it draws)."""
        shown = self.state.shown
        self.label_lut = None
        if shown is not None:
            try:
                self.label_lut = labels_lut(shown.prediction.labels, self.state.palette,
                                            self.state.hidden)
            except ValueError as exc:  # ids the palette cannot colour: say so, show none
                self.show_error(f"{Path(shown.path).name}: {exc}")
        self.canvas.set_label_map(None if shown is None else shown.prediction.labels,
                                  self.label_lut)

    def _update_boundaries(self) -> None:
        shown = self.state.shown if self.act_boundaries.isChecked() else None
        self.canvas.set_boundaries(None if shown is None else shown.prediction.labels)

    def _status_changed(self, path: str, status: Status, message: str) -> None:
        self.file_list.set_status(path, status, message)
        self._update_summary()

    # ==========================================================================================
    # connecting and choosing a model
    def connect_dialog(self) -> None:
        from segviewer.ui.dialogs.connect import ConnectDialog

        dialog = ConnectDialog(self, self.settings, self.connection)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.connect_to(dialog.connection())

    def open_demo(self, images: bool = True, version: int = 1) -> None:
        """The bundled PASCAL model (version 1 unless asked) at 50 % opacity, and the photos."""
        from segviewer.core.serving.connection import ConnectionSpec
        from segviewer.paths import demo_dir, demo_models_dir

        self.opacity_slider.setValue(50)
        self.set_mode(ViewMode.OVERLAY)
        self.connect_to(ConnectionSpec("local", str(demo_models_dir() / "pascal")),
                        version=version)
        if images:
            self.open_paths([demo_dir() / "images"])

    def connect_to(self, spec: ConnectionSpec, model: str | None = None,
                   version: int | None = None) -> Job:
        self.model_info.clear_info(f"Connecting to {spec.describe()}…")
        self._connecting = spec
        return self.predictor.connect_to(spec, model, version)

    def select_model(self, model: str, version: int | None) -> Job | None:
        return self.predictor.select(model, version)

    def _model_ready(self, result: tasks.Connected) -> None:
        self.connection = self._connecting
        self.selector.set_models(result.models, result.model)
        self.selector.set_versions(result.versions, result.version)
        self.model_info.set_metadata(result.backend.description, result.metadata,
                                     result.fingerprint)
        self.statusBar().showMessage(f"Connected to {result.backend.description}", 4000)
        self._show_current()

    def _model_changed(self, identity: ModelIdentity | None, selecting: str | None) -> None:
        if identity is not None and selecting is None:
            # The dropdowns say the model in use again (after a cancelled or failed switch too).
            for combo, value in ((self.selector.model_combo, identity.model),
                                 (self.selector.version_combo, identity.version)):
                if (index := combo.findData(value)) >= 0:
                    combo.setCurrentIndex(index)
        self._update_title()
        self._update_summary()

    def _update_title(self) -> None:
        parts = [Path(self.state.current).name] if self.state.current else []
        if self.state.selecting is not None:
            parts.append(f"switching to {self.state.selecting}…")
        elif self.state.identity is not None:  # "edit of pascal v1" for an edited result
            shown = self.state.shown
            parts.append(shown.label if shown is not None else str(self.state.identity))
        parts.append(APP_NAME)
        self.setWindowTitle(" — ".join(parts))

    def show_error(self, message: str) -> None:
        """Errors go to the status bar (never a modal box: the window keeps working)."""
        if self.errors and self.errors[-1] == message and message in \
                self.statusBar().currentMessage():
            return  # e.g. showing and predicting the same broken file both fail
        self.errors.append(message)
        self.statusBar().showMessage(f"⚠ {message}", 15000)

    def _clear_error(self) -> None:
        if self.statusBar().currentMessage().startswith("⚠"):
            self.statusBar().clearMessage()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.editing.confirm_close():  # unsaved edits: saved, discarded or kept open
            event.ignore()
            return
        self.save_settings()
        self._io.cancel_all()
        self.cancel_walks()
        self.predictor.close()
        self._io.wait(5000)
        super().closeEvent(event)

"""The main window's layout: its widgets and docks, and its actions, menus and toolbar (what each
command is called, its keys and where it sits). The slots are the window's own methods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QProgressBar,
    QSlider,
    QStyle,
    QToolButton,
    QWidget,
)

from segviewer.core.viewer_state import ViewMode
from segviewer.ui import settings
from segviewer.ui.canvas import ImageCanvas
from segviewer.ui.file_list import FileList
from segviewer.ui.help import APP_NAME
from segviewer.ui.legend import LegendWidget
from segviewer.ui.model_panel import ModelInfo, ModelSelector

if TYPE_CHECKING:
    from segviewer.ui.main_window import MainWindow

OPACITY_STEP = 10


def build_widgets(self: MainWindow) -> None:
    """The canvas, the docks, the toolbar's model selector and slider, the status bar."""
    self.canvas = ImageCanvas(self)
    self.canvas.setAcceptDrops(False)  # drops land on the window
    self.canvas.viewport().setAcceptDrops(False)
    self.canvas.hovered.connect(self._hovered)
    self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
    self.setCentralWidget(self.canvas)

    self.file_list = FileList()
    self.file_list.current_path_changed.connect(self.show_path)
    self.file_list.paths_removed.connect(self._paths_removed)
    self.state.palette_changed.connect(  # the class filter names the palette's classes
        lambda palette, _choice: self.file_list.set_class_names(dict(enumerate(palette.names))))
    self.files_dock = _dock(self, "Images", self.file_list, Qt.DockWidgetArea.LeftDockWidgetArea)
    self.legend = LegendWidget(self.state)
    self.legend.palette_requested.connect(self.set_palette_choice)
    self.legend_dock = _dock(self, "Legend", self.legend, Qt.DockWidgetArea.RightDockWidgetArea)
    self.model_info = ModelInfo()
    self.info_dock = _dock(self, "Model", self.model_info, Qt.DockWidgetArea.RightDockWidgetArea)
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
    self.opacity_slider.valueChanged.connect(self._opacity_slid)
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
    for widget in (self.hover_label, self.zoom_label, self.progress, self.cancel_button):
        bar.addPermanentWidget(widget)

def _dock(self: MainWindow, title: str, widget: QWidget,
      area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, self)
    dock.setObjectName(f"dock_{title.lower()}")  # saveState needs names
    dock.setWidget(widget)
    self.addDockWidget(area, dock)
    return dock


def _action(window: MainWindow, text: str, slot, shortcuts=(), icon=None, checkable=False,
            tip: str = "") -> QAction:
    action = QAction(text, window)
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    action.setShortcuts([QKeySequence(s) for s in shortcuts])
    action.setCheckable(checkable)
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work even when a menu hides the action
    return action


def build_actions(w: MainWindow) -> None:
    sp = QStyle.StandardPixmap

    def a(*args, **kwargs) -> QAction:
        return _action(w, *args, **kwargs)

    w.act_open = a("&Open Images…", w.open_images_dialog, [QKeySequence.StandardKey.Open],
                   sp.SP_DialogOpenButton, tip="Open image files")
    w.act_open_folder = a("Open &Folder…", w.open_folder_dialog, ["Ctrl+Shift+O"],
                          sp.SP_DirOpenIcon, tip="Open every image in a folder")
    w.act_connect = a("&Connect…", w.connect_dialog, ["Ctrl+K"], sp.SP_DriveNetIcon,
                      tip="Connect to TF Serving or a SavedModel")
    w.act_demo = a("Open &Demo", w.open_demo, tip="Demo photos with the PASCAL model")
    w.act_export_ckpt = a("Export &Checkpoint…", w.export_checkpoint_dialog,
                          tip="Export a DeepLab checkpoint as a SavedModel")
    w.act_restore_session = a(
        "Restore Last Session on Start",
        lambda on: w.prefs.set(settings.RESTORE_SESSION, on), checkable=True,
        tip="On the next start, reopen this connection, these images and the one shown")
    w.act_quit = a("&Quit", w.close, [QKeySequence.StandardKey.Quit])

    w.act_export_overlay = a("&Overlay as PNG…", w.export_overlay_dialog, ["Ctrl+E"])
    w.act_export_labels = a("&Label Map as PNG…", w.export_labels_dialog, ["Ctrl+Shift+E"])
    w.act_export_legend_png = a("Legend as P&NG…", lambda: w.export_legend_dialog("png"))
    w.act_export_legend_csv = a("Legend as &CSV…", lambda: w.export_legend_dialog("csv"))
    w.act_batch = a("&Batch Export Folder…", w.batch_export_dialog)
    w.act_compare = a("&Compare Versions…", w.compare_dialog, ["Ctrl+Shift+K"],
                      tip="Compare two models or versions on these images and review them")

    w.mode_group = QActionGroup(w)
    w.act_mode = {}
    # Short names: the toolbar shows them as they are in the View menu.
    for mode, text, key, tip in ((ViewMode.OVERLAY, "O&verlay", "O", "Labels over the photo"),
                                 (ViewMode.LABELS, "&Labels", "L", "The labels only"),
                                 (ViewMode.IMAGE, "&Image", "I", "The photo only")):
        act = a(text, lambda _=False, m=mode: w.set_mode(m), [key], checkable=True,
                tip=f"{tip} ({key})")
        w.mode_group.addAction(act)
        w.act_mode[mode] = act
    w.act_mode[ViewMode.OVERLAY].setChecked(True)
    w.act_cycle_mode = a("Cycle View Mode", w.cycle_mode, ["M"])
    w.act_boundaries = a("&Boundaries", w.boundaries_toggled, ["B"], checkable=True)
    w.act_probabilities = a("Fetch Class &Probabilities", w.probabilities_toggled,
                            checkable=True,
                            tip="Ask the model for probabilities (shown on hover; slower)")
    w.act_opacity_up = a("More Opaque", lambda: w.step_opacity(OPACITY_STEP), ["]"])
    w.act_opacity_down = a("More Transparent", lambda: w.step_opacity(-OPACITY_STEP), ["["])
    w.act_zoom_in = a("Zoom &In", w.canvas.zoom_in, [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])
    w.act_zoom_out = a("Zoom &Out", w.canvas.zoom_out, [QKeySequence.StandardKey.ZoomOut])
    w.act_fit = a("&Fit to Window", w.canvas.fit, ["Ctrl+0"])
    w.act_actual = a("&Actual Size", w.canvas.actual_size, ["Ctrl+1"])
    w.act_next = a("&Next Image", lambda: w.file_list.step(1), ["PgDown", "Right", "N"],
                   sp.SP_ArrowForward)
    w.act_prev = a("&Previous Image", lambda: w.file_list.step(-1), ["PgUp", "Left", "P"],
                   sp.SP_ArrowBack)
    w.act_first = a("F&irst Image", lambda: w.file_list.step(-w.file_list.count()), ["Home"])
    w.act_last = a("L&ast Image", lambda: w.file_list.step(w.file_list.count()), ["End"])
    w.act_run_all = a("&Run All", w.run_all, ["Ctrl+R"],
                      tip="Segment every listed image (the list's order; Esc cancels)")
    w.act_cancel = a("Cancel Work", w.cancel_work, ["Esc"])
    w.act_rerun = a("&Reload Image", w.reload_current, ["F5"],
                    tip="Load and segment the current image again (after a failure or a cancel)")
    w.act_shortcuts = a("&Keyboard Shortcuts", w.show_shortcuts,
                        [QKeySequence.StandardKey.HelpContents])
    w.act_about = a(f"&About {APP_NAME}", w.show_about)
    keys = [act.shortcut().toString() for act in (w.act_open, w.act_open_folder, w.act_connect)]
    w.canvas.set_empty_text(f"Drop images or a folder here\nor open them: {keys[0]}, {keys[1]}"
                            f"\n\nConnect a model: {keys[2]}\nTry the demo: File ▸ Open Demo")


def build_menus_and_toolbar(w: MainWindow) -> None:
    menu = w.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addActions([w.act_open, w.act_open_folder])
    w.recent_menu = file_menu.addMenu("Open &Recent")
    file_menu.addSeparator()
    file_menu.addActions([w.act_connect, w.act_demo, w.act_export_ckpt])
    file_menu.addSeparator()
    file_menu.addAction(w.act_restore_session)
    file_menu.addSeparator()
    file_menu.addAction(w.act_quit)

    export_menu = menu.addMenu("&Export")
    export_menu.addActions([w.act_export_overlay, w.act_export_labels,
                            w.act_export_legend_png, w.act_export_legend_csv])
    export_menu.addSeparator()
    export_menu.addAction(w.act_batch)

    menu.addMenu("&Tools").addActions([w.act_run_all, w.act_compare])

    view = menu.addMenu("&View")
    view.addActions(list(w.act_mode.values()))
    view.addActions([w.act_cycle_mode, w.act_boundaries, w.act_probabilities])
    view.addSeparator()
    view.addActions([w.act_opacity_up, w.act_opacity_down])
    view.addSeparator()
    view.addActions([w.act_zoom_in, w.act_zoom_out, w.act_fit, w.act_actual])
    view.addSeparator()
    view.addActions([w.act_next, w.act_prev, w.act_first, w.act_last, w.act_rerun])
    view.addSeparator()
    for dock in (w.files_dock, w.legend_dock, w.info_dock):
        view.addAction(dock.toggleViewAction())

    help_menu = menu.addMenu("&Help")
    help_menu.addActions([w.act_shortcuts, w.act_about])

    tools = w.addToolBar("Main")
    tools.setObjectName("toolbar_main")
    tools.setIconSize(QSize(18, 18))
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tools.addActions([w.act_open, w.act_open_folder, w.act_connect])
    tools.addSeparator()
    tools.addWidget(w.selector)
    tools.addSeparator()
    tools.addWidget(QLabel(" Opacity "))
    tools.addWidget(w.opacity_slider)
    tools.addWidget(w.opacity_label)
    tools.addSeparator()
    for act in w.act_mode.values():
        tools.addAction(act)
    tools.addAction(w.act_boundaries)
    tools.addSeparator()
    tools.addActions([w.act_prev, w.act_next])
    for act in (w.act_prev, w.act_next):  # arrows say it: room for the rest (name as tooltip)
        tools.widgetForAction(act).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    for act in tools.actions():  # one name per action: the toolbar says what the menu says
        if not act.isSeparator() and act.text():
            act.setIconText(action_name(act))
            keys = act.shortcut().toString()
            act.setToolTip(f"{action_name(act)} ({keys})" if keys else action_name(act))


def action_name(act: QAction) -> str:
    """An action's name as menus show it, without the mnemonic and the dialog's ellipsis."""
    return act.text().replace("&", "").rstrip("…")

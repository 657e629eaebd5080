"""Edit mode in a window, what the main window and the compare window share: the Edit menu, the
edit dock, undo and redo (a QUndoGroup over one QUndoStack per image), the per-image sessions and
saving as ground truth in a worker.

Each image's edits stay while the window is open; editing an image that already has ground truth
in the chosen folder starts from that ground truth, so reopening shows what was saved. Subclasses
(`edit_main`, `edit_compare`) say what is edited and how the window shows it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup, QUndoStack
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox

from segviewer.core.editing import EditSession
from segviewer.core.ground_truth import (
    GroundTruthError,
    Provenance,
    fixed_note,
    fixed_verdict,
    ground_truth_path,
    save_ground_truth,
)
from segviewer.core.images import ImageLoadError, load_label_png
from segviewer.core.labels import Palette
from segviewer.core.overlay import class_counts
from segviewer.core.review_store import ReviewError
from segviewer.ui import settings as keys
from segviewer.ui.canvas import ImageCanvas
from segviewer.ui.edit_mode import TOOL_NAMES, CanvasEditor, Tool, rgba_lut
from segviewer.ui.edit_panel import EditPanel
from segviewer.ui.review_store_menu import reviewer_name
from segviewer.ui.workers import Job, JobRunner, TaskState

TOOL_KEYS = {Tool.BRUSH: "D", Tool.ERASER: "X", Tool.FILL: "G", Tool.POLYGON: "V", Tool.PICK: "K"}
QUICK_CLASSES = 9  # keys 1-9


@dataclasses.dataclass
class ImageEdits:
    """One image's edits: the session, its undo stack, what it started from."""

    image: str  # the photo's path
    session: EditSession
    stack: QUndoStack
    origin: str  # "pascal v1" or "ground truth '<path>'", for the panel and provenance
    model: str
    version: int | None
    source: str


# Records a "fixed" verdict (note, provenance JSON) in a review store; made in the GUI thread,
# called in the save worker once the ground truth is written.
RecordFixed = Callable[[str, str], object]


def _save(state: TaskState | None, labels: np.ndarray, image: str, gt_dir: str,
          provenance: Provenance, record_fixed: RecordFixed | None) -> tuple[str, str]:
    """Write the ground truth, then its "fixed" verdict; (the path written, "" or why the
    verdict was not recorded)."""
    written = save_ground_truth(labels, image, gt_dir, provenance)
    if record_fixed is None:
        return str(written), ""
    try:
        record_fixed(fixed_note(provenance, written),
                     json.dumps(fixed_verdict(provenance, written), sort_keys=True))
    except (ReviewError, OSError) as exc:
        return str(written), f"ground truth saved to {written}, but the \"fixed\" verdict was " \
            f"not recorded: {exc}"
    return str(written), ""


class Editing(QObject):
    """Edit mode of one window: the dock, the Edit menu, undo and redo, saving. Subclasses say
    what is edited and how the window shows it (`_can_edit`, `_switched`, `_palette`, `_hidden`,
    `_image_path`, `_committed`, `_painted`)."""

    def __init__(self, window: QMainWindow, canvas: ImageCanvas, tool_keys: bool) -> None:
        super().__init__(window)
        self.window = window
        self.current: ImageEdits | None = None
        self.edits: dict[object, ImageEdits] = {}  # every image's, by what the subclass keys
        self.save_job: Job | None = None
        self.quick_ids: list[int] = []
        self._io = JobRunner(1, self)
        self._gt_dir = window.prefs.get(keys.EDIT_GT_DIR) or None
        self.undo_group = QUndoGroup(self)
        self.editor = CanvasEditor(canvas, self._lut)
        self.connect_editor(self.editor)
        self.panel = EditPanel()
        self.dock = QDockWidget("Edit", window)
        self.dock.setObjectName("dock_edit")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self._build_actions(tool_keys)
        self.panel.brush_size.valueChanged.connect(lambda v: self.editor.set_brush_size(v))
        self.panel.ignore_id.valueChanged.connect(self._ignore_changed)
        self.panel.class_chosen.connect(self.set_class)
        self.panel.choose_gt.clicked.connect(self.choose_gt_dir)
        self.panel.save.clicked.connect(self.save_ground_truth)
        self.undo_group.cleanChanged.connect(lambda _: self._update_status())
        self._show_gt_dir()

    def connect_editor(self, editor: CanvasEditor) -> None:
        editor.committed.connect(self._committed)
        editor.painted.connect(self._painted)
        editor.picked.connect(self.set_class)

    # -- construction --------------------------------------------------------------------------
    def _action(self, text: str, slot, keys=(), checkable: bool = False) -> QAction:
        action = QAction(text, self.window)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.window.addAction(action)
        return action

    def _build_actions(self, tool_keys: bool) -> None:
        a = self._action
        self.act_edit = a("&Edit Labels", self.set_active, ["E"], checkable=True)
        self.act_edit.setToolTip("Paint corrections into the labels (E)")
        self.act_undo = self.undo_group.createUndoAction(self.window, "&Undo")
        self.act_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.act_redo = self.undo_group.createRedoAction(self.window, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.window.addActions([self.act_undo, self.act_redo])
        self.act_save = a("&Save as Ground Truth", self.save_ground_truth, ["Ctrl+S"])
        self.act_gt_dir = a("Ground-Truth &Folder…", self.choose_gt_dir)
        group = QActionGroup(self)
        self.act_tool: dict[Tool, QAction] = {}
        for tool, key in TOOL_KEYS.items():
            keys = [key] if tool_keys else []
            act = a(TOOL_NAMES[tool], lambda _=False, t=tool: self.set_tool(t), keys,
                    checkable=True)
            act.setToolTip(f"{TOOL_NAMES[tool]} ({key})" if tool_keys else TOOL_NAMES[tool])
            group.addAction(act)
            self.act_tool[tool] = act
            button = self.panel.tool_buttons[tool]
            button.setText(TOOL_NAMES[tool].split(" ")[0])
            button.setToolTip(act.toolTip())
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
        self.act_quick = [a(f"Class {n}", lambda _=False, n=n: self._quick(n - 1),
                            [str(n)] if tool_keys else [])
                          for n in range(1, QUICK_CLASSES + 1)]
        menu = self.window.menuBar()
        edit = QMenu("&Edit", self.window)
        view = next((act for act in menu.actions() if act.text() == "&View"), None)
        if view is not None:
            menu.insertMenu(view, edit)
        else:
            menu.addMenu(edit)
        edit.addActions([self.act_edit, self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions(list(self.act_tool.values()))
        edit.addSeparator()
        edit.addActions([self.act_gt_dir, self.act_save])
        self._enable()

    def _enable(self) -> None:
        on = self.editor.active
        for act in (*self.act_tool.values(), *self.act_quick, self.act_save):
            act.setEnabled(on)
        self.undo_group.setActiveStack(self.current.stack if on and self.current else None)

    # -- entering and leaving ------------------------------------------------------------------
    def set_active(self, active: bool) -> None:
        if active and not self._can_edit():
            self.act_edit.setChecked(False)
            return
        self.act_edit.setChecked(active)
        self.editor.set_active(active)
        self.dock.setVisible(active)
        if active:
            self.dock.raise_()
            self.set_tool(self.editor.tool)
        self._switched(active)
        if not active:
            self._show(None)
        self._enable()

    def start_edits(self, path: str, labels: np.ndarray, model: str, version: int | None,
                    source: str) -> ImageEdits:
        """A session on `labels` (the model's), or on the ground truth saved for `path` in the
        chosen folder when there is one."""
        origin = f"{model} v{version}" if version is not None else model
        if self.gt_dir is not None:
            try:
                gt_path = ground_truth_path(path, self.gt_dir)
                if gt_path.is_file():
                    saved = load_label_png(gt_path)
                    if saved.shape == labels.shape:
                        labels, origin = saved, f"ground truth '{gt_path}'"
                    else:
                        self.window.show_error(
                            f"ground truth '{gt_path}' is {saved.shape[1]}x{saved.shape[0]}, "
                            f"the image {labels.shape[1]}x{labels.shape[0]} — editing the "
                            "model's result")
            except (GroundTruthError, ImageLoadError) as exc:
                self.window.show_error(str(exc))
        stack = QUndoStack(self)
        self.undo_group.addStack(stack)
        return ImageEdits(path, EditSession(labels), stack, origin, model, version, source)

    def _show(self, edits: ImageEdits | None) -> None:
        self.current = edits
        self.editor.attach(edits.session if edits else None, edits.stack if edits else None)
        self.undo_group.setActiveStack(edits.stack if edits and self.editor.active else None)
        if edits is not None:
            counts = self._refresh_classes()
            if self.editor.value not in counts and self.quick_ids:
                self.editor.set_value(self.quick_ids[0])
            self.panel.show_class(self.editor.value)
        self._update_status()

    def _refresh_classes(self) -> dict[int, int]:
        """The class box (the palette and whatever the map holds) and keys 1-9 (the most
        frequent classes now); the pixel count of each class present."""
        counts = class_counts(self.current.session.labels)
        self.quick_ids = sorted(counts, key=lambda i: -counts[i])[:QUICK_CLASSES]
        palette = self._palette()
        ids = sorted(set(range(len(palette.colors))) | set(counts))
        self.panel.set_classes(palette, ids, self.editor.value)
        self.panel.quick.setText("  ".join(
            f"<b>{n}</b> {palette.class_name(i)}" for n, i in enumerate(self.quick_ids, 1)))
        return counts

    # -- class, tool ---------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self.editor.set_tool(tool)
        self.act_tool[tool].setChecked(True)
        self.panel.tool_buttons[tool].setChecked(True)

    def set_class(self, class_id: int) -> None:
        self.editor.set_value(class_id)
        self.panel.show_class(class_id)
        if self.editor.tool in (Tool.ERASER, Tool.PICK):
            self.set_tool(Tool.BRUSH)
        self._update_status()

    def _quick(self, index: int) -> None:
        if index < len(self.quick_ids):
            self.set_class(self.quick_ids[index])

    def _ignore_changed(self, value: int) -> None:
        self.editor.ignore_label = value

    def _lut(self, dtype: np.dtype) -> np.ndarray:
        return rgba_lut(self._palette(), self._hidden(), dtype)

    def _update_status(self) -> None:
        edits = self.current
        if edits is None:
            self.panel.status.setText("Open an image with a result to edit it.")
            return
        self.panel.status.setText(
            f"Editing {Path(self._image_path() or '').name}, from {edits.origin}: "
            f"{edits.session.changed_pixels():,} px changed, {edits.stack.index()} edit(s)"
            f"{'' if edits.stack.isClean() else ' — not saved'}")

    # -- saving --------------------------------------------------------------------------------
    @property
    def gt_dir(self) -> str | None:
        return self._gt_dir

    def set_gt_dir(self, folder: str | Path) -> None:
        self._gt_dir = str(folder)
        self.window.prefs.set(keys.EDIT_GT_DIR, self._gt_dir)
        self._show_gt_dir()

    def _show_gt_dir(self) -> None:
        self.panel.gt_dir.setText(self.gt_dir or "(none: choose a folder)")

    def choose_gt_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Save ground truth into",
                                                  self.gt_dir or str(Path.home()))
        if folder:
            self.set_gt_dir(folder)

    def save_ground_truth(self) -> Job | None:
        """Write the current image's labels into the ground-truth folder (asks for one when
        none is chosen), in a worker; the edits stay either way."""
        edits, path = self.current, self._image_path()
        if edits is None or path is None or not self.editor.active:
            self.window.show_error("Nothing to save — turn on edit mode (E) on an image first")
            return None
        if self.gt_dir is None:
            self.choose_gt_dir()
            if self.gt_dir is None:
                return None
        return self._start_save(edits)

    def _save_args(self, edits: ImageEdits) -> tuple:
        """What `_save` needs for `edits`: a copy of the labels (editing goes on while the
        worker writes), the image, the folder, the provenance, how to record "fixed"."""
        reviewer = reviewer_name(self.window.settings)
        provenance = Provenance.now(edits.image, edits.model, edits.version, edits.source,
                                    edits.session.changed_pixels(), edits.stack.index(),
                                    reviewer)
        return (edits.session.labels.copy(), edits.image, self.gt_dir, provenance,
                self._record_fixed(edits, reviewer))

    def _start_save(self, edits: ImageEdits) -> Job:
        clean_at, args = edits.stack.index(), self._save_args(edits)
        self.save_job = job = self._io.start("save ground truth", _save, *args)
        job.finished.connect(lambda done: self._finished_save(edits, clean_at, args[0], *done))
        job.failed.connect(lambda message: self.window.show_error(
            f"Ground truth not saved (edits kept): {message}"))
        return job

    def _finished_save(self, edits: ImageEdits, clean_at: int, labels: np.ndarray,
                       written: str, problem: str) -> None:
        self._saved(edits, clean_at, edits.image, labels, written)
        if problem:
            self.window.show_error(problem)

    def _saved(self, edits: ImageEdits, clean_at: int, image: str, labels: np.ndarray,
               written: str) -> None:
        if edits.stack.index() == clean_at:
            edits.stack.setClean()
        self.window.statusBar().showMessage(f"Saved ground truth to {written}", 8000)
        self._update_status()

    # -- closing -------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Whether the window may close: edits not saved as ground truth are saved, discarded
        or (Cancel) kept with the window open."""
        dirty = [e for e in self.edits.values() if not e.stack.isClean()]
        if not dirty:
            return True
        buttons = QMessageBox.StandardButton
        names = ", ".join(sorted({Path(e.image).name for e in dirty}))
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved edits",
                          f"Edits of {len(dirty)} image(s) are not saved as ground truth: "
                          f"{names}.", buttons.Save | buttons.Discard | buttons.Cancel,
                          self.window)
        box.setDefaultButton(buttons.Save)
        choice = box.exec()
        if choice == buttons.Discard:
            return True
        return choice == buttons.Save and self._save_all(dirty)

    def _save_all(self, dirty: list[ImageEdits]) -> bool:
        """Save every image's edits now, in this thread (the window is closing); False, with
        the reason shown, when one cannot be saved."""
        if self.gt_dir is None:
            self.choose_gt_dir()
            if self.gt_dir is None:
                return False
        for edits in dirty:
            clean_at, args = edits.stack.index(), self._save_args(edits)
            try:
                written, problem = _save(None, *args)
            except GroundTruthError as exc:
                self.window.show_error(f"Ground truth not saved (edits kept): {exc}")
                return False
            self._finished_save(edits, clean_at, args[0], written, problem)
        return True

    # -- what subclasses say -------------------------------------------------------------------
    def _record_fixed(self, edits: ImageEdits, reviewer: str) -> RecordFixed | None:
        """How to record `edits`' "fixed" verdict as `reviewer` (None: it cannot be)."""
        raise NotImplementedError

    def _can_edit(self) -> bool:
        raise NotImplementedError

    def _switched(self, active: bool) -> None:
        raise NotImplementedError

    def _palette(self) -> Palette:
        raise NotImplementedError

    def _hidden(self) -> frozenset[int]:
        return frozenset()

    def _image_path(self) -> str | None:
        raise NotImplementedError

    def _committed(self) -> None:
        if self.current is not None:
            self._refresh_classes()
        self._update_status()

    def _painted(self, rect, rgba: np.ndarray) -> None:
        pass

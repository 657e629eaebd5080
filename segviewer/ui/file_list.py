"""The list of opened images: filter and sort bar, a model/view list, and the current image's
full status underneath.

Rows show a thumbnail, the file name (elided in the middle) and the status on its own line, so a
failure reason is never cut by the path; the tooltip and the line under the list show it whole.
The list is a `QListView` over `file_model.FileModel` through the `FileFilter` proxy: 100,000
rows cost a few Python lists, and thumbnails are made only for painted rows (`ThumbnailCache`,
asked by `file_row.RowDelegate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSignalBlocker,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.viewer_state import Status
from segviewer.ui.file_model import (
    CLASSES_ROLE,
    MESSAGE_ROLE,
    PATH_ROLE,
    STATUS_ROLE,
    FileFilter,
    FileModel,
    SortKey,
    status_text,
)
from segviewer.ui.file_row import THUMB, RowDelegate
from segviewer.ui.thumbnails import ThumbnailCache

__all__ = ["FileList", "Status"]

REFILTER_MS = 300  # status changes re-apply a status/class filter or sort at most this often

_STATUS_FILTERS = (("All statuses", None), ("Pending", {Status.PENDING, Status.RUNNING}),
                   ("Done", {Status.DONE}), ("Failed", {Status.FAILED}))
_SORTS = (("Order opened", SortKey.ADDED), ("Name", SortKey.NAME),
          ("Status (failed first)", SortKey.STATUS), ("Class share", SortKey.CLASS_SHARE))


class FileList(QWidget):
    current_path_changed = Signal(str)
    paths_removed = Signal(list)  # removed by the user (Delete, Remove, Clear List)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = FileModel(self)
        self.proxy = FileFilter(self.model, self)
        self.thumbnails = ThumbnailCache(2 * THUMB, parent=self)
        self.thumbnails.ready.connect(self._thumbnail_ready)
        self._class_names: dict[int, str] = {}
        self._current: str | None = None

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.status_combo = QComboBox()
        for text, statuses in _STATUS_FILTERS:
            self.status_combo.addItem(text, statuses)
        self.class_combo = QComboBox()
        self.class_combo.addItem("Any class", None)
        self.class_combo.setToolTip("Only images whose result holds this class")
        self.share_spin = QSpinBox()
        self.share_spin.setRange(0, 100)
        self.share_spin.setPrefix("≥ ")
        self.share_spin.setSuffix(" %")
        self.share_spin.setToolTip("The class's minimum share of the image's pixels")
        self.sort_combo = QComboBox()
        for text, key in _SORTS:
            self.sort_combo.addItem(f"Sort: {text}", key)
        self.count_label = QLabel()
        for combo in (self.status_combo, self.class_combo, self.sort_combo):
            # Elided, not as wide as their longest entry: the dock stays narrow, the canvas wide.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)

        self.view = QListView()
        self.view.setModel(self.proxy)
        self._pending_note = ""  # see set_pending_note
        self.view.setItemDelegate(RowDelegate(self.thumbnails, self._status_line, self.view))
        self.view.setUniformItemSizes(True)  # one size hint for all rows: layout is O(1) per row
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setAlternatingRowColors(True)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.view.selectionModel().currentChanged.connect(self._current_changed)

        self.detail = QLabel()  # the current image's full path and status, wrapped, never cut
        self.detail.setWordWrap(True)
        # Never wider than the dock: a long path wraps (at its separators) instead of widening it.
        self.detail.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.hide()

        self.act_remove = QAction("Remove from List", self)
        self.act_remove.setShortcuts([QKeySequence(QKeySequence.StandardKey.Delete),
                                      QKeySequence("Backspace")])
        self.act_remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.act_remove.triggered.connect(self.remove_selected)
        self.act_clear = QAction("Clear List", self)
        self.act_clear.triggered.connect(self.clear_all)
        self.view.addActions([self.act_remove, self.act_clear])

        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.status_combo)
        second = QHBoxLayout()
        second.addWidget(self.class_combo, 1)
        second.addWidget(self.share_spin)
        second.addWidget(self.sort_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)
        layout.addWidget(self.detail)

        self._filter_timer = self._timer(150, self._apply_filter)  # typing: filter when paused
        self._refresh_timer = self._timer(REFILTER_MS, self._refresh)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.status_combo.currentIndexChanged.connect(self._apply_filter)
        self.class_combo.currentIndexChanged.connect(self._class_changed)
        self.share_spin.valueChanged.connect(self._apply_filter)
        self.sort_combo.currentIndexChanged.connect(self._apply_sort)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self._update_count()
        self.setFocusProxy(self.view)

    def _timer(self, msecs: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(msecs)
        timer.timeout.connect(slot)
        return timer

    # -- the API the main window uses ----------------------------------------------------------
    def add_paths(self, paths: Iterable[Path | str]) -> list[str]:
        """Append the paths not listed yet; returns the ones added (as strings). Cheap for tens of
        thousands at once; a folder walk (`FolderWalker`) feeds it chunk by chunk."""
        added = self.model.append(map(str, paths))
        if added and self.model.sort_key is not SortKey.ADDED:
            self._refresh_timer.start()
        return added

    def paths(self) -> list[str]:
        """Every listed image in opening order, filtered out or not."""
        return self.model.paths()

    def visible_paths(self) -> list[str]:
        """The images the list shows, in its order."""
        return [self.proxy.index(row, 0).data(PATH_ROLE) for row in range(self.proxy.rowCount())]

    def following(self, count: int) -> list[str]:
        """The `count` images after the current one in the list's order (its sort and filter):
        what the viewer segments ahead."""
        current = self.view.currentIndex()
        start = current.row() + 1 if current.isValid() else 0
        return [self.proxy.index(row, 0).data(PATH_ROLE)
                for row in range(start, min(self.proxy.rowCount(), start + count))]

    def count(self) -> int:
        return self.model.rowCount()

    @property
    def current_path(self) -> str | None:
        return self._current

    def select_path(self, path: str) -> None:
        row = self.model.row_of(str(path))
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row))
        if not index.isValid():  # filtered out: show it anyway, as the image on screen
            self.proxy.refilter(str(path))
            index = self.proxy.mapFromSource(self.model.index(row))
        self._set_current(index)

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) image in the list's order, stopping at the ends."""
        count = self.proxy.rowCount()
        if count:
            current = self.view.currentIndex()
            row = current.row() + delta if current.isValid() else 0
            self._set_current(self.proxy.index(min(count - 1, max(0, row)), 0))

    def status(self, path: str) -> Status:
        return self.model.status(path)

    def message(self, path: str) -> str:
        return self.model.message(path)

    def tooltip(self, path: str) -> str:
        row = self.model.row_of(path)
        return "" if row is None else self.model.index(row).data(Qt.ItemDataRole.ToolTipRole)

    def set_status(self, path: str, status: Status, message: str = "") -> None:
        if self.model.set_status(path, status, message):
            if path == self._current:
                self._update_detail()
            if self.proxy.statuses is not None or self.model.sort_key is SortKey.STATUS:
                self._refresh_timer.start()

    def set_thumbnail(self, path: str, rgb: np.ndarray) -> None:
        """A thumbnail made elsewhere (from the image decoded for the model): no second decode."""
        if self.model.row_of(path) is not None:
            self.thumbnails.put(path, rgb)

    def set_classes(self, path: str, shares: Mapping[int, float] | None) -> None:
        """The classes in this image's result, {class id: percent of its pixels}; None forgets
        them (e.g. after a model change)."""
        if not self.model.set_classes(path, None if shares is None else dict(shares)):
            return
        known = {self.class_combo.itemData(i) for i in range(1, self.class_combo.count())}
        for class_id in sorted(set(shares or ()) - known):
            self._add_class_item(class_id)
        if self.proxy.class_id is not None or self.model.sort_key is SortKey.CLASS_SHARE:
            self._refresh_timer.start()

    def set_class_names(self, names: Mapping[int, str]) -> None:
        """Names for the class filter (e.g. the palette's); ids without one show as "class N"."""
        self._class_names = dict(names)
        for i in range(1, self.class_combo.count()):
            class_id = self.class_combo.itemData(i)
            self.class_combo.setItemText(i, self._class_label(class_id))

    def remove_paths(self, paths: Iterable[str]) -> list[str]:
        removed = self.model.remove(list(paths))
        if removed:
            if self._current in removed:
                self._current = None
                index = self.view.currentIndex()
                if index.isValid():  # the view moved to a neighbour: show it
                    self._current_changed(index)
                else:
                    self._update_detail()
            self.paths_removed.emit(removed)
        return removed

    def remove_selected(self) -> list[str]:
        rows = self.view.selectionModel().selectedRows()
        return self.remove_paths([index.data(PATH_ROLE) for index in rows])

    def clear_all(self) -> None:
        removed = self.model.paths()
        self.model.clear()
        self.thumbnails.clear()
        self._current = None
        self.proxy.pinned = None
        self._update_detail()
        if removed:
            self.paths_removed.emit(removed)

    # -- filter and sort -----------------------------------------------------------------------
    def set_filter(self, text: str | None = None, status: str | None = None,
                   class_id: int | None = None, min_share: int | None = None) -> None:
        """Set the filter controls (status: "all", "pending", "done" or "failed"); the list is
        filtered once, after all of them are set."""
        controls = (self.filter_edit, self.status_combo, self.class_combo, self.share_spin)
        blockers = [QSignalBlocker(control) for control in controls]
        if text is not None:
            self.filter_edit.setText(text)
        if status is not None:
            self.status_combo.setCurrentIndex(
                [t.lower() for t, _ in _STATUS_FILTERS].index(
                    "all statuses" if status == "all" else status))
        if class_id is not None:
            index = self.class_combo.findData(class_id)
            if index < 0:
                self._add_class_item(class_id)
                index = self.class_combo.findData(class_id)
            self.class_combo.setCurrentIndex(index)
        if min_share is not None:
            self.share_spin.setValue(min_share)
        del blockers
        if class_id is not None:
            self._class_changed()  # filters, and re-sorts a share sort for the new class
        else:
            self._apply_filter()

    def set_sort(self, key: SortKey) -> None:
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(key))
        self._apply_sort()

    def _add_class_item(self, class_id: int) -> None:
        ids = [self.class_combo.itemData(i) for i in range(1, self.class_combo.count())]
        position = 1 + sum(1 for i in ids if i < class_id)
        self.class_combo.insertItem(position, self._class_label(class_id), class_id)

    def set_pending_note(self, note: str) -> None:
        """What pending rows say instead of "pending" ("" for that): why nothing runs."""
        if note != self._pending_note:
            self._pending_note = note
            self._update_detail()
            self.view.viewport().update()

    def _status(self, status: Status, message: str) -> str:
        return self._pending_note if status is Status.PENDING and self._pending_note else \
            status_text(status, message)

    def _status_line(self, index: QModelIndex) -> str:
        """The status; with a class filter or share sort, also that class's share."""
        text = self._status(index.data(STATUS_ROLE), index.data(MESSAGE_ROLE))
        class_id = self.proxy.class_id if self.proxy.class_id is not None else (
            self.model.sort_class if self.model.sort_key is SortKey.CLASS_SHARE else None)
        shares = index.data(CLASSES_ROLE)
        if class_id is not None and shares is not None:
            name = self._class_names.get(class_id, f"class {class_id}")
            text += f" · {name} {shares.get(class_id, 0.0):.1f} %"
        return text

    def _class_label(self, class_id: int) -> str:
        return f"{class_id} {self._class_names.get(class_id, f'class {class_id}')}"

    def _class_changed(self) -> None:
        self._apply_filter()
        if self.model.sort_key is SortKey.CLASS_SHARE:
            self._apply_sort()

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        self.proxy.pinned = self._current
        self.proxy.set_filter(self.filter_edit.text(), self.status_combo.currentData(),
                              self.class_combo.currentData(), float(self.share_spin.value()))
        self._update_count()
        self._scroll_to_current()

    def _apply_sort(self) -> None:
        key = self.sort_combo.currentData()
        self.model.sort_by(key, self.class_combo.currentData())
        self._scroll_to_current()

    def _refresh(self) -> None:
        """Re-apply a status/class filter and sort after results came in."""
        if self.model.sort_key is not SortKey.ADDED:
            self.model.sort_by(self.model.sort_key, self.model.sort_class)
        if self.proxy.active:
            self.proxy.refilter(self._current)
        self._update_count()

    def _scroll_to_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self.view.scrollTo(index)

    def _update_count(self, *_args) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        text = f"{total:,} image{'s' if total != 1 else ''}"
        self.count_label.setText(text if shown == total else f"{shown:,} of {text} shown")

    # -- current row ---------------------------------------------------------------------------
    def _set_current(self, index: QModelIndex) -> None:
        if index.isValid():
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
            self.view.selectionModel().setCurrentIndex(index, flags)
            self.view.scrollTo(index)

    def _current_changed(self, current: QModelIndex | QPersistentModelIndex, *_previous) -> None:
        path = current.data(PATH_ROLE) if current.isValid() else None
        if path is None or path == self._current:
            return
        self._current = path
        self._update_detail()
        self.current_path_changed.emit(path)

    def _update_detail(self) -> None:
        path = self._current
        if path is None or self.model.row_of(path) is None:
            self.detail.hide()
            return
        wrappable = path.replace(os.sep, os.sep + "\u200b")  # zero-width spaces: break here
        self.detail.setText(f"{wrappable}\n{self._status(self.status(path), self.message(path))}")
        self.detail.show()

    def _thumbnail_ready(self, path: str) -> None:
        row = self.model.row_of(path)
        if row is not None:
            index = self.proxy.mapFromSource(self.model.index(row))
            if index.isValid():
                self.view.update(index)

"""The image list's data: a `QAbstractListModel` over plain Python lists, and the filter proxy.

Built for folders of 100,000 images: a row is a path, a status and (sparse) a failure message and
class shares; nothing is decoded here. Sorting lives in the source model (one Python `sort` with a
key, ~0.1 s for 100,000 rows) rather than in the proxy, whose sort would call `data()` from C++
twice per comparison, n log n times. The proxy only filters.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable
from enum import Enum

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from segviewer.core.viewer_state import Status

PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 2
CLASSES_ROLE = Qt.ItemDataRole.UserRole + 3  # {class id: percent of the pixels}, or None

Index = QModelIndex | QPersistentModelIndex


class SortKey(Enum):
    ADDED = "order opened"
    NAME = "name"
    STATUS = "status"  # failed first, then pending, running, done
    CLASS_SHARE = "class share"  # the chosen class's share, largest first


_STATUS_ORDER = {Status.FAILED: 0, Status.PENDING: 1, Status.RUNNING: 2, Status.DONE: 3}


def status_text(status: Status, message: str = "") -> str:
    return f"failed: {message}" if status is Status.FAILED and message else status.value


class FileModel(QAbstractListModel):
    """Rows of (path, status); `row_of` finds a path in O(1)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._paths: list[str] = []
        self._added = array("q")  # opening order (SortKey.ADDED); 8 bytes a row, no int objects
        self._status: list[Status] = []
        self._row: dict[str, int] = {}
        self._messages: dict[str, str] = {}
        self._classes: dict[str, dict[int, float]] = {}
        self._next = 0
        self.sort_key = SortKey.ADDED
        self.sort_class: int | None = None

    # -- reading -------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        row = index.row()
        if not 0 <= row < len(self._paths):
            return None
        path = self._paths[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == PATH_ROLE:
            return path
        if role == STATUS_ROLE:
            return self._status[row]
        if role == MESSAGE_ROLE:
            return self._messages.get(path, "")
        if role == CLASSES_ROLE:
            return self._classes.get(path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{path}\n{status_text(self._status[row], self._messages.get(path, ''))}"
        return None

    def paths(self) -> list[str]:
        """Every listed path, in opening order (whatever the sort)."""
        if self.sort_key is SortKey.ADDED:
            return list(self._paths)
        order = sorted(range(len(self._paths)), key=self._added.__getitem__)
        return [self._paths[i] for i in order]

    def row_of(self, path: str) -> int | None:
        return self._row.get(path)

    def path_at(self, row: int) -> str:
        return self._paths[row]

    def status(self, path: str) -> Status:
        return self._status[self._row[path]]

    def message(self, path: str) -> str:
        return self._messages.get(path, "")

    def classes(self, path: str) -> dict[int, float] | None:
        return self._classes.get(path)

    def name_at(self, row: int) -> str:
        return os.path.basename(self._paths[row])

    def status_at(self, row: int) -> Status:
        return self._status[row]

    def share_at(self, row: int, class_id: int) -> float | None:
        """The class's share in this image; None while the image has no result."""
        shares = self._classes.get(self._paths[row])
        return None if shares is None else shares.get(class_id, 0.0)

    # -- changing ------------------------------------------------------------------------------
    def append(self, paths: Iterable[str]) -> list[str]:
        """Append the paths not listed yet (at the end, whatever the sort: a sorted view is
        re-sorted by `sort`); returns those added."""
        new = []
        for path in paths:
            if path not in self._row:
                self._row[path] = -1  # also drops duplicates within `paths`
                new.append(path)
        if not new:
            return new
        first = len(self._paths)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for offset, path in enumerate(new):
            self._row[path] = first + offset
        self._paths.extend(new)
        self._added.extend(range(self._next, self._next + len(new)))
        self._next += len(new)
        self._status.extend([Status.PENDING] * len(new))
        self.endInsertRows()
        return new

    def set_status(self, path: str, status: Status, message: str = "") -> bool:
        row = self._row.get(path)
        if row is None:
            return False
        self._status[row] = status
        if status is Status.FAILED and message:
            self._messages[path] = message
        else:
            self._messages.pop(path, None)
        index = self.index(row)
        self.dataChanged.emit(index, index)
        return True

    def set_classes(self, path: str, shares: dict[int, float] | None) -> bool:
        row = self._row.get(path)
        if row is None:
            return False
        if shares is None:
            self._classes.pop(path, None)
        else:
            self._classes[path] = {int(k): float(v) for k, v in shares.items()}
        index = self.index(row)
        self.dataChanged.emit(index, index)
        return True

    def known_classes(self) -> list[int]:
        return sorted({c for shares in self._classes.values() for c in shares})

    def remove(self, paths: Iterable[str]) -> list[str]:
        """Remove these paths (unknown ones are ignored); returns those removed."""
        rows = sorted({self._row[p] for p in paths if p in self._row}, reverse=True)
        removed = []
        # Contiguous runs, last first: one signal per run keeps the view's own bookkeeping cheap.
        while rows:
            last = first = rows.pop(0)
            while rows and rows[0] == first - 1:
                first = rows.pop(0)
            self.beginRemoveRows(QModelIndex(), first, last)
            for path in self._paths[first:last + 1]:
                removed.append(path)
                self._messages.pop(path, None)
                self._classes.pop(path, None)
                del self._row[path]
            del self._paths[first:last + 1]
            del self._added[first:last + 1]
            del self._status[first:last + 1]
            self.endRemoveRows()
        if removed:
            self._reindex()
        return removed

    def clear(self) -> None:
        self.beginResetModel()
        self._paths.clear()
        self._added = array("q")
        self._status.clear()
        self._row.clear()
        self._messages.clear()
        self._classes.clear()
        self.endResetModel()

    def sort_by(self, key: SortKey, class_id: int | None = None) -> None:
        """Reorder the rows (stable; ties keep opening order); selection and current row follow
        their images."""
        self.sort_key, self.sort_class = key, class_id
        n = len(self._paths)
        if key is SortKey.NAME:
            names = [os.path.basename(p).casefold() for p in self._paths]
            order = sorted(range(n), key=lambda i: (names[i], self._added[i]))
        elif key is SortKey.STATUS:
            order = sorted(range(n), key=lambda i: (_STATUS_ORDER[self._status[i]],
                                                    self._added[i]))
        elif key is SortKey.CLASS_SHARE and class_id is not None:
            def by_share(i: int) -> tuple[float, int]:
                share = self.share_at(i, class_id)
                return (1.0 if share is None else -share, self._added[i])  # no result: last
            order = sorted(range(n), key=by_share)
        else:
            order = sorted(range(n), key=self._added.__getitem__)
        if order == list(range(n)):
            return
        self.layoutAboutToBeChanged.emit()
        old_paths = self._paths
        self._paths = [old_paths[i] for i in order]
        self._added = array("q", (self._added[i] for i in order))
        self._status = [self._status[i] for i in order]
        self._reindex()
        persistent = self.persistentIndexList()
        moved = [self.index(self._row[old_paths[index.row()]]) for index in persistent]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _reindex(self) -> None:
        self._row = {path: row for row, path in enumerate(self._paths)}


class FileFilter(QSortFilterProxyModel):
    """Rows whose name contains a text (case-insensitive), whose status is one of a set, and
    whose result holds a class at a minimum share. The pinned path (the image on screen) always
    passes, so a filter never takes the shown image away from under the user."""

    def __init__(self, source: FileModel, parent=None) -> None:
        super().__init__(parent)
        self._files = source
        self.text = ""
        self.statuses: frozenset[Status] | None = None
        self.class_id: int | None = None
        self.min_share = 0.0  # percent; 0 means "present at all"
        self.pinned: str | None = None
        # Re-filtering on every status change would move rows while the user works; filters
        # apply when changed (FileList re-applies them after status changes, debounced).
        self.setDynamicSortFilter(False)
        self.setSourceModel(source)

    @property
    def active(self) -> bool:
        return bool(self.text) or self.statuses is not None or self.class_id is not None

    def set_filter(self, text: str, statuses: Iterable[Status] | None, class_id: int | None,
                   min_share: float = 0.0) -> None:
        self.begin_change()
        self.text = text.casefold().strip()
        self.statuses = None if statuses is None else frozenset(statuses)
        self.class_id = class_id
        self.min_share = min_share
        self.end_change()

    def refilter(self, pinned: str | None) -> None:
        """Apply the filter again (after statuses or results changed), pinning `pinned`."""
        self.begin_change()
        self.pinned = pinned
        self.end_change()

    def begin_change(self) -> None:
        if hasattr(self, "endFilterChange"):  # Qt >= 6.10, where invalidateRowsFilter is
            self.beginFilterChange()  # deprecated; the floor in pyproject is 6.6

    def end_change(self) -> None:
        if hasattr(self, "endFilterChange"):
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, _parent: Index) -> bool:
        if not self.active:
            return True
        files = self._files
        if self.pinned is not None and files.path_at(source_row) == self.pinned:
            return True
        if self.text and self.text not in files.name_at(source_row).casefold():
            return False
        if self.statuses is not None and files.status_at(source_row) not in self.statuses:
            return False
        if self.class_id is not None:
            share = files.share_at(source_row, self.class_id)
            if share is None or share <= 0.0 or share < self.min_share:
                return False
        return True

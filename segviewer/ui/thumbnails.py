"""Thumbnails for the rows a list paints: made off the GUI thread, newest request first, kept in a
bounded LRU cache.

`get(path)` returns the cached image or None and, on a miss, queues the file. Requests are a stack
bounded to `max_pending`: when the user scrolls fast, rows that scrolled by are dropped before
they are decoded (they are asked for again if painted again). Decoding waits until no new row
was asked for during `QUIET_S`: while the list scrolls, decoding would compete for the GIL
with every row the GUI paints (a Python delegate) and decode rows already gone. Workers are
plain Python threads, like `workers.JobRunner`'s, and hand QImages (safe off the GUI thread) back
through a signal.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage

from segviewer.ui.canvas import qimage_from_array

QUIET_S = 0.04


def square_image(rgb: np.ndarray) -> QImage:
    """The picture centred on a transparent square, so that names line up whatever its shape.
    (numpy, not QPainter: fewer calls holding the GIL while the GUI thread paints.)"""
    height, width = rgb.shape[:2]
    side = max(height, width, 1)
    square = np.zeros((side, side, 4), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width, :3] = rgb
    square[top:top + height, left:left + width, 3] = 255
    return qimage_from_array(square)


class _Requests:
    """The stack of paths to decode, shared with the worker threads (no Qt in here)."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.lock = threading.Condition()
        self.pending: list[str] = []  # the newest request is decoded first
        self.queued: set[str] = set()  # pending or being decoded
        self.closed = False
        self.last_push = 0.0

    def push(self, path: str) -> None:
        with self.lock:
            if path in self.queued:
                return
            self.queued.add(path)
            self.pending.append(path)
            self.last_push = time.monotonic()
            if len(self.pending) > self.max_pending:
                self.queued.discard(self.pending.pop(0))  # scrolled past before it was decoded
            self.lock.notify()

    def pop(self) -> str | None:
        with self.lock:
            while not self.closed:
                quiet_for = time.monotonic() - self.last_push
                if self.pending and quiet_for >= QUIET_S:
                    return self.pending.pop()
                self.lock.wait(QUIET_S - quiet_for if self.pending else None)
            return None

    def done(self, path: str) -> None:
        with self.lock:
            self.queued.discard(path)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.pending.clear()
            self.lock.notify_all()


class _Courier(QObject):
    # Owned by the worker threads, so emitting never touches a deleted cache: the queued
    # connection to it is dropped by Qt when the cache goes.
    delivered = Signal(str, object)


def _work(requests: _Requests, courier: _Courier, size: int) -> None:
    from segviewer.core.thumbnails import load_thumbnail

    while (path := requests.pop()) is not None:
        try:
            image: QImage | None = square_image(load_thumbnail(path, size))
        except (OSError, ValueError, SyntaxError, MemoryError):
            image = None  # drawn as "no preview"; the reason shows when the image is opened
        courier.delivered.emit(path, image)


class ThumbnailCache(QObject):
    ready = Signal(str)  # a thumbnail (or its failure) for this path is now in the cache

    def __init__(self, size: int, capacity: int = 1024, max_pending: int = 96, threads: int = 1,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[str, QImage | None] = OrderedDict()  # None: cannot be read
        self._requests = requests = _Requests(max_pending)
        self._courier = courier = _Courier()
        courier.delivered.connect(self._store, Qt.ConnectionType.QueuedConnection)
        self.decoded = 0  # files decoded so far (the benchmark reads it)
        for _ in range(threads):
            threading.Thread(target=_work, args=(requests, courier, size), daemon=True,
                             name="segviewer-thumbnails").start()
        self.destroyed.connect(requests.close)

    def get(self, path: str) -> QImage | None:
        """The thumbnail if cached (None also while it is being made, or when the file cannot
        be read: see `failed`); a miss queues the file."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        self._requests.push(path)
        return None

    def failed(self, path: str) -> bool:
        return path in self._cache and self._cache[path] is None

    def put(self, path: str, rgb: np.ndarray) -> None:
        """A thumbnail made elsewhere (e.g. from an image already decoded for the model)."""
        self._remember(path, square_image(rgb))

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._requests.close()

    def __len__(self) -> int:
        return len(self._cache)

    def _store(self, path: str, image: QImage | None) -> None:
        self._requests.done(path)
        self.decoded += 1
        self._remember(path, image)

    def _remember(self, path: str, image: QImage | None) -> None:
        self._cache[path] = image
        self._cache.move_to_end(path)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(path)

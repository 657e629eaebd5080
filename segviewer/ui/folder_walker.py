"""Walk folders for images on a thread and hand the paths to the GUI in chunks as they are found,
so a list of 100,000 images shows its first rows at once and the event loop never waits."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal

from segviewer.ui.workers import error_message

FIRST_CHUNK = 200  # enough rows to fill a list: the first paint comes after one small chunk
CHUNK = 2000  # a few ms of GUI work each
IN_FLIGHT = 2  # chunks handed over but not yet taken by the GUI: the walk waits beyond that,
# so a slow GUI thread (a busy machine) gets one chunk per event-loop turn, never a backlog


class _Courier(QObject):
    # Owned by the thread, so a walk outliving its walker never emits on a deleted object.
    found = Signal(list)
    ended = Signal(int, str)  # (images found, error message or "")


class FolderWalker(QObject):
    found = Signal(list)  # a chunk of image paths (str), in walking order
    finished = Signal(int)  # the walk ended; how many images it found (not after a cancel)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel: threading.Event | None = None
        self._couriers: set[_Courier] = set()  # alive until their walk's last signal arrives

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def start(self, inputs: list[str | Path]) -> None:
        """Walk `inputs` (files, folders, globs); a walk already running is cancelled."""
        self.cancel()
        self._cancel = cancel = threading.Event()
        courier = _Courier()
        self._couriers.add(courier)
        queued = Qt.ConnectionType.QueuedConnection
        slots = threading.Semaphore(IN_FLIGHT)

        def take(chunk: list[str]) -> None:
            slots.release()
            if not cancel.is_set():
                self.found.emit(chunk)

        courier.found.connect(take, queued)
        courier.ended.connect(lambda n, error: self._ended(courier, cancel, n, error), queued)
        threading.Thread(target=_walk, args=(list(inputs), courier, cancel, slots), daemon=True,
                         name="segviewer-walk").start()

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def _ended(self, courier: _Courier, cancel: threading.Event, count: int, error: str) -> None:
        self._couriers.discard(courier)
        if cancel.is_set():
            return
        self._cancel = None
        if error:
            self.failed.emit(error)
        else:
            self.finished.emit(count)


def _walk(inputs: list[str | Path], courier: _Courier, cancel: threading.Event,
          slots: threading.Semaphore) -> None:
    from segviewer.core.folder_walk import walk_images

    count = 0
    try:
        for chunk in walk_images(inputs, (FIRST_CHUNK, CHUNK), cancel.is_set):
            while not slots.acquire(timeout=0.1):
                if cancel.is_set():
                    courier.ended.emit(count, "")  # lets the walker drop its courier
                    return
            count += len(chunk)
            courier.found.emit(chunk)
    except Exception as exc:  # every failure must reach the GUI as a message
        courier.ended.emit(count, error_message(exc))
    else:
        courier.ended.emit(count, "")

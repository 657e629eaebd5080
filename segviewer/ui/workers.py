"""Run plain functions off the GUI thread, hear back on it (after Orange's ConcurrentWidgetMixin).

`JobRunner.start(fn, *args)` calls `fn(state, *args)` on a worker thread. `state.progress(done,
total)` and `state.cancelled()` are what core functions take as their progress/cancel callbacks, so
they never see Qt. The returned `Job` emits `finished(result)` or `failed(message)` on the GUI
thread; a cancelled job emits neither, so a stale result never reaches the window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from shiboken6 import isValid


def error_message(exc: BaseException) -> str:
    """One line for the user: our own errors already read well; others get their type name."""
    from segviewer.core.serving.base import BackendError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    ours = type(exc).__module__.startswith("segviewer.")  # written to be shown as they are
    if text and (ours or isinstance(exc, BackendError | OSError | ValueError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class TaskState:
    """What the running function sees: progress and partial-result callbacks and a cancel flag
    (thread-safe: they emit queued signals)."""

    def __init__(self, emit_progress: Callable[[int, int], None],
                 emit_partial: Callable[[Any], None]) -> None:
        self._emit_progress = emit_progress
        self._emit_partial = emit_partial
        self._cancel = threading.Event()

    def progress(self, done: int, total: int) -> None:
        if not self._cancel.is_set():
            self._emit_progress(done, total)

    def partial(self, value: Any) -> None:
        """Hand a result over before the function returns (e.g. one image of many)."""
        if not self._cancel.is_set():
            self._emit_partial(value)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()


class Job(QObject):
    finished = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)
    partial = Signal(object)
    done = Signal()  # always last, whatever the outcome (also after a cancel)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.state = TaskState(self.progress.emit, self.partial.emit)

    def cancel(self) -> None:
        self.state.cancel()


def _run(job: Job, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(job.state, *args)
    except BaseException as exc:  # every failure must reach the GUI as a message
        if not job.state.cancelled():
            job.failed.emit(error_message(exc))
    else:
        if not job.state.cancelled():
            job.finished.emit(result)
    job.done.emit()


class JobRunner(QObject):
    """A thread pool plus the jobs it is running; `busy_changed` drives the window's busy state.

    The threads are Python's, not QThreadPool's: PySide drops a pooled thread's Python thread
    state after each run, and TensorFlow (pybind11) keeps a pointer to it, so a second TF call on
    the same pooled thread frees it twice and aborts the process.
    """

    busy_changed = Signal(bool)

    def __init__(self, max_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_threads, thread_name_prefix="segviewer-job")
        self._running: dict[Job, Future[None] | None] = {}
        pool = self._pool  # idle threads end with the runner (a dialog has its own)
        self.destroyed.connect(lambda: pool.shutdown(wait=False, cancel_futures=True))

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def start(self, name: str, fn: Callable[..., Any], *args: Any) -> Job:
        job = Job(name)
        self._running[job] = None
        job.done.connect(lambda: self._finish(job))
        if len(self._running) == 1:
            self.busy_changed.emit(True)
        # Start on the next event-loop turn: the caller connects to the job's signals first, so a
        # fast job cannot finish before anyone listens.
        QTimer.singleShot(0, self, lambda: self._submit(job, fn, args))
        return job

    def _submit(self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if job in self._running:
            self._running[job] = self._pool.submit(_run, job, fn, args)

    def _finish(self, job: Job) -> None:
        if not isValid(self):
            return  # the runner's owner (a closed window) was deleted while the job ran
        if job in self._running:
            del self._running[job]
            if not self._running:
                self.busy_changed.emit(False)

    def cancel_all(self) -> None:
        for job in list(self._running):
            job.cancel()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the pool is idle (for shutdown); queued signals still need the event loop."""
        futures = [f for f in self._running.values() if f is not None]
        _, pending = wait_for(futures, None if msecs < 0 else msecs / 1000)
        return not pending


class CurrentTask(QObject):
    """One current task of a kind for a window (Orange's `ConcurrentWidgetMixin` idea).

    `start()` cancels the task before it, so only the newest task's `partial(value)`,
    `progress(done, total)`, `finished(result)` and `failed(name, message)` ever reach the window;
    `done` follows the current task's end, and `running` says whether one is in flight.
    """

    finished = Signal(object)
    failed = Signal(str, str)  # (task name, message)
    partial = Signal(object)
    progress = Signal(int, int)
    done = Signal()

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._job: Job | None = None

    @property
    def job(self) -> Job | None:
        return self._job

    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, name: str, fn: Callable[..., Any], *args: Any) -> Job:
        self.cancel()
        self._job = job = self._runner.start(name, fn, *args)
        job.finished.connect(lambda result: job is self._job and self.finished.emit(result))
        job.failed.connect(lambda message: job is self._job and self.failed.emit(job.name,
                                                                                 message))
        job.partial.connect(lambda value: job is self._job and self.partial.emit(value))
        job.progress.connect(lambda n, total: job is self._job and self.progress.emit(n, total))
        job.done.connect(lambda: self._done(job))
        return job

    def cancel(self) -> Job | None:
        """Cancel the current task (its result will never arrive); returns it, if any."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel()
        return job

    def _done(self, job: Job) -> None:
        if job is self._job and isValid(self):
            self._job = None
            self.done.emit()

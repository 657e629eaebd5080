"""The main window's prediction controller: the backend, the model choice and the queue's runs.

It keeps `ViewerState` up to date (the chosen model, each image's status) and runs the work in
one worker thread (`_runner`, so backend calls never overlap): one current connect-or-select task
and one current prediction. What runs is planned from the view: the current image first, then a
bounded look-ahead in the list's order (`PredictionQueue.plan`); Run All puts every listed image
behind them. Results and decoded images are cached per (image, model identity) within a memory
limit; the window shows them through `ViewerState.offer_result`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from segviewer.core.overlay import class_shares
from segviewer.core.serving.base import Backend, ModelRef, Prediction
from segviewer.core.viewer_state import ModelIdentity, Status, ViewerState
from segviewer.ui import tasks
from segviewer.ui.cache import CacheKey, PredictionCache
from segviewer.ui.settings import MAX_PIXELS
from segviewer.ui.workers import CurrentTask, Job, JobRunner

if TYPE_CHECKING:
    from segviewer.core.serving.connection import ConnectionSpec


class PredictionController(QObject):
    model_ready = Signal(object)  # tasks.Connected: the models and versions to list
    connect_failed = Signal(str)  # one line, for the model panel
    cancelled = Signal()  # a connect or select was cancelled
    result_ready = Signal(str)  # a path whose result for the chosen model is now cached
    error = Signal(str)
    thumbnail_ready = Signal(str, object)
    classes_ready = Signal(str, object)  # (path, {class id: percent} or None: forget them)
    changed = Signal()  # the queue or the busy state moved: progress to redraw

    def __init__(self, state: ViewerState, parent: QObject | None = None,
                 cache_bytes: int = 1 << 30, max_pixels: int = MAX_PIXELS.default) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = PredictionCache(cache_bytes)
        self.backend: Backend | None = None
        self.models: list[str] = []
        self.probabilities = False  # ask the model for class probabilities too
        self.max_pixels = max_pixels  # the largest image decoded
        # The next n images after the current one in the list's order (the window's file list).
        self.following: Callable[[int], list[str]] = lambda n: []
        self._runner = JobRunner(1, self)
        self._runner.busy_changed.connect(lambda _: self.changed.emit())
        self.selection = CurrentTask(self._runner, self)  # connecting or choosing a model
        self.selection.finished.connect(self._apply_choice)
        self.selection.done.connect(self.pump)
        self.process = CurrentTask(self._runner, self)  # the image being predicted
        self.process.finished.connect(self._processed)
        self.process.failed.connect(self._process_failed)
        self.process.done.connect(self._process_done)

    @property
    def busy(self) -> bool:
        return self._runner.busy

    @property
    def ref(self) -> ModelRef | None:
        identity = self.state.identity
        return None if identity is None else ModelRef(identity.model, identity.version)

    def key(self, path: str) -> CacheKey | None:
        identity = self.state.identity
        return None if identity is None else CacheKey(path, identity, self.probabilities)

    def cached(self, path: str) -> Prediction | None:
        key = self.key(path)
        return None if key is None else self.cache.get(key)

    # -- the model -----------------------------------------------------------------------------
    def connect_to(self, spec: ConnectionSpec, model: str | None = None,
                   version: int | None = None) -> Job:
        """Open a backend in a worker, then pick `model` (default: the first) and `version`
        (default: the newest available)."""
        self._stop_queue()
        self.state.begin_selection(spec.describe())
        job = self.selection.start("connect", tasks.connect, spec, model, version)
        job.failed.connect(lambda message: self._selection_failed(
            f"Could not connect to {spec.describe()}: {message}"))
        self.changed.emit()
        return job

    def select(self, model: str, version: int | None) -> Job | None:
        """Switch model or version: what is shown goes at once, metadata is fetched in a worker,
        then the images run again (or come from the cache)."""
        if self.backend is None:
            return None
        self._stop_queue()
        self.state.begin_selection(str(ModelRef(model, version)))
        job = self.selection.start("select", tasks.select, self.backend, self.models, model,
                                   version)
        job.failed.connect(lambda message: self._selection_failed(f"{model}: {message}"))
        self.changed.emit()
        return job

    def _selection_failed(self, message: str) -> None:
        self.state.end_selection()
        self.connect_failed.emit(message)
        self.error.emit(message)

    def _apply_choice(self, result: tasks.Connected) -> None:
        old = self.backend
        if old is not None and old is not result.backend:
            self._runner.start("close", lambda state, b: b.close(), old)
        self.backend = result.backend
        self.models = result.models
        version = result.metadata.version if result.metadata.version is not None \
            else result.version
        self.state.set_model(ModelIdentity(result.model, version, result.backend.description),
                             result.metadata)
        self.requeue_all()
        self.model_ready.emit(result)

    def set_probabilities(self, on: bool) -> None:
        self.probabilities = on
        self.state.clear_result()  # the result shown has no probabilities (or has them)
        self.requeue_all()

    # -- the queue -----------------------------------------------------------------------------
    def _needs_run(self, path: str) -> bool:
        key = self.key(path)
        return key is not None and key not in self.cache \
            and self.state.statuses.get(path) is not Status.FAILED

    def plan_view(self, decoded: bool = True) -> None:
        """The current image runs next, then the look-ahead after it; the old look-ahead goes
        (a move through a big folder never queues it whole). Not `decoded` yet: nothing is
        planned until it is (its worker then takes the decoded image from the cache)."""
        queue, current = self.state.queue, self.state.current
        if not decoded:
            queue.plan(None)
            return
        following = [p for p in self.following(queue.look_ahead) if self._needs_run(p)]
        queue.plan(current if current is not None and self._needs_run(current) else None,
                   following)
        self.pump()

    def run_all(self, paths: list[str]) -> int:
        """Queue every image of `paths` (the list, in its order) without a result, failed ones
        again, behind the current image and its look-ahead; returns how many."""
        todo = [p for p in paths if (key := self.key(p)) is not None and key not in self.cache]
        self.state.queue.add(todo)
        self.pump()
        return len(todo)

    def prioritise(self, path: str) -> None:
        """The image on screen runs next."""
        self.state.queue.put_first(path)
        self.pump()

    def requeue_all(self) -> None:
        """After a model change: everything not cached for the new model becomes pending, and
        the view's images run."""
        self._stop_queue()
        for path in self.state.paths:
            key = self.key(path)
            self.classes_ready.emit(path, None)  # the old model's: set again when shown or run
            if key is not None and key in self.cache:
                self.state.set_status(path, Status.DONE)
            elif self.state.statuses[path] is not Status.FAILED or key is not None:
                self.state.set_status(path, Status.PENDING)
        self.plan_view()

    def _stop_queue(self) -> None:
        self.process.cancel()
        for path in self.state.queue.clear():
            # The running image may have finished already (its result is in before its job's
            # end): keep what it got.
            if self.state.statuses.get(path) is Status.RUNNING:
                self.state.set_status(path, Status.PENDING)

    def pump(self) -> None:
        if not isValid(self):
            return  # a job ended after the window was deleted (closing cancels, jobs still end)
        queue = self.state.queue
        if self.process.running or self.selection.running:
            return
        while (path := queue.pop()) is not None:
            key = self.key(path)
            # No model: nothing to run (the list makes its own thumbnails, for rows shown).
            if key is None or key in self.cache:
                if key is not None:
                    self.state.set_status(path, Status.DONE)
                queue.skip()
                continue
            self.state.set_status(path, Status.RUNNING)
            self.process.start(path, tasks.process, path, self.backend, self.ref, key,
                               self.probabilities, self.max_pixels, self.cache.image(path))
            break
        self.changed.emit()

    def _processed(self, result: tasks.Processed) -> None:
        if result.path == self.state.current or result.path in self.following(
                self.state.queue.look_ahead):  # a Run All's images would push results out
            self.cache.put_image(result.loaded)
        self.thumbnail_ready.emit(result.path, result.thumbnail)
        if result.prediction is None or result.key is None:  # cancelled before predicting
            self.state.set_status(result.path, Status.PENDING)
            return
        self.cache.put(result.key, result.prediction)
        self.classes_ready.emit(result.path, class_shares(result.prediction.labels))
        self.state.set_status(result.path, Status.DONE)
        self.result_ready.emit(result.path)

    def _process_failed(self, path: str, message: str) -> None:
        self.state.set_status(path, Status.FAILED, message)
        if path == self.state.current:
            self.error.emit(f"{Path(path).name}: {message}")

    def _process_done(self) -> None:
        self.state.queue.finish()
        self.pump()

    def cancel(self) -> None:
        """Stop predicting and choosing: queued images stay pending, the model stays the one
        chosen before; a blocked call ends at its timeout."""
        self._stop_queue()
        if self.selection.cancel() is not None:
            self.state.end_selection()
            self.cancelled.emit()
        self.changed.emit()

    def close(self) -> None:
        self._stop_queue()
        self.selection.cancel()
        self._runner.cancel_all()
        self._runner.wait(5000)
        if self.backend is not None:
            self.backend.close()

"""What the viewer shows, without Qt: the model the windows observe (napari style).

The images and their status, the chosen model's identity, the prediction queue, the result on
screen and how it is drawn (palette, hidden classes, opacity, view mode). Each change fires an
`Event`; the main window, legend and compare window draw from these and never keep their own copy.

The screen never lies: `offer_result` is the one gate a prediction passes to be shown, and it only
lets through a result for the current image made by the model now chosen. Choosing another model
(`begin_selection`, `set_model`) clears the result on screen until the new one arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from segviewer.core.labels import Palette
from segviewer.core.palettes import background_id, shown_palette
from segviewer.core.serving.base import ModelMetadata, Prediction

FROM_MODEL = "model"  # palette choice: the model's own classes (see palettes.shown_palette)


class Event:
    """A list of callbacks called in order with the event's arguments."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class Status(Enum):
    PENDING = "pending"
    RUNNING = "running…"
    DONE = "done"
    FAILED = "failed"


class ViewMode(Enum):
    OVERLAY = "overlay"
    LABELS = "labels"
    IMAGE = "image"


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a result comes from: name, version and where it is served (the backend's
    description: a folder, a gRPC address, a REST URL)."""

    model: str
    version: int | None
    source: str

    def __str__(self) -> str:
        return f"{self.model} v{self.version}" if self.version is not None else self.model


@dataclass(frozen=True)
class Shown:
    """The result on screen, with what produced it (signature: the one the model ran). An
    edited result is the user's correction of that model's labels, and says so."""

    path: str
    identity: ModelIdentity
    signature: str
    prediction: Prediction
    edited: bool = False

    @property
    def label(self) -> str:
        """"pascal v1", or "edit of pascal v1": never an edit under the model's own name."""
        return f"edit of {self.identity}" if self.edited else str(self.identity)

    def describe(self) -> str:
        signature = f" · {self.signature}" if self.signature else ""
        return f"{self.label}{signature} · {self.identity.source}"


LOOK_AHEAD = 8  # images after the current one run before they are asked for


class PredictionQueue:
    """The images waiting for the model, in order, and the one running.

    Two kinds of wait: the view's plan (the current image, then at most `look_ahead` images that
    follow it in the list's order), replaced at each move, so a big folder never queues whole;
    and the backlog (`add`: Run All, everything listed), which runs after the plan and stays
    until it has run or is cancelled. Progress counts the distinct images of one busy spell:
    `done` of `total`, where total is what is done, waiting and running; it starts again from
    zero once the queue has drained."""

    def __init__(self, look_ahead: int = LOOK_AHEAD) -> None:
        self.look_ahead = look_ahead
        self._plan: list[str] = []  # short: the current image and its look-ahead
        self._backlog: deque[str] = deque()  # pruned lazily: what is in `_pending` still waits
        self._pending: set[str] = set()  # `in` on the deque would make a big folder quadratic
        self.running: str | None = None
        self._done = 0

    def plan(self, current: str | None, following: Iterable[str] = ()) -> None:
        """Run `current` next, then the first `look_ahead` of `following` (the images after it
        in viewing order that still need the model); the previous plan is dropped."""
        plan: list[str] = []
        for path in ([current] if current is not None else []) + list(following)[
                :self.look_ahead]:
            if path != self.running and path not in plan:
                plan.append(path)
        self._plan = plan

    def put_first(self, path: str) -> None:
        """Run `path` next (the image the user is looking at), keeping the rest of the plan;
        no-op while it runs."""
        if path != self.running:
            self._plan = [path] + [p for p in self._plan if p != path]

    def add(self, paths: Iterable[str]) -> None:
        """Put images on the backlog (Run All), after the plan, in order."""
        for path in paths:
            if path not in self._pending and path != self.running:
                self._backlog.append(path)
                self._pending.add(path)

    def remove(self, paths: Iterable[str]) -> None:
        """Images no longer listed wait no more (one running ends as it will)."""
        gone = set(paths)
        self._plan = [p for p in self._plan if p not in gone]
        self._pending -= gone
        if self.idle:
            self._done = 0

    def pop(self) -> str | None:
        """The next image to run (now `running`), or None when none waits or one runs."""
        if self.running is not None:
            return None
        if self._plan:
            self.running = self._plan.pop(0)
        else:
            while self._backlog and self.running is None:
                path = self._backlog.popleft()
                if path in self._pending:
                    self.running = path
        self._pending.discard(self.running)
        return self.running

    def skip(self) -> None:
        """The image just popped needed no run after all (its result is cached)."""
        self.finish()

    def finish(self) -> None:
        if self.running is not None:
            self.running = None
            self._done += 1
        if self.idle:
            self._done = 0

    def clear(self) -> list[str]:
        """Drop everything (a cancel or a model change); returns what was waiting or running."""
        dropped = ([self.running] if self.running is not None else []) + self.waiting
        self._plan = []
        self._backlog.clear()
        self._pending.clear()
        self.running = None
        self._done = 0
        return dropped

    @property
    def waiting(self) -> list[str]:
        """What waits, in the order it will run."""
        planned = set(self._plan)
        return self._plan + [p for p in self._backlog if p in self._pending
                             and p not in planned]

    @property
    def progress(self) -> tuple[int, int]:
        waiting = len(self._pending) + sum(p not in self._pending for p in self._plan)
        total = self._done + waiting + (1 if self.running is not None else 0)
        return self._done, total

    @property
    def idle(self) -> bool:
        return self.running is None and not self._plan and not self._pending

    def __contains__(self, path: object) -> bool:
        return path == self.running or path in self._pending or path in self._plan


class ViewerState:
    """The viewer's model. Every setter fires its event only when the value changes."""

    def __init__(self, palette_choice: str = FROM_MODEL) -> None:
        self.statuses: dict[str, Status] = {}  # every listed image, in list order
        self.current: str | None = None
        self.identity: ModelIdentity | None = None
        self.metadata: ModelMetadata | None = None
        self.selecting: str | None = None  # a model change in flight ("toy v2"): nothing shown
        self.queue = PredictionQueue()
        self.shown: Shown | None = None
        self.palette_choice = palette_choice
        self._base_palette = self._resolve(palette_choice, None)
        self.custom_colors: dict[int, tuple[int, int, int]] = {}  # the user's picks, kept
        self.hidden: frozenset[int] = frozenset()
        self.opacity = 0.5
        self.mode = ViewMode.OVERLAY

        self.images_added = Event()  # (list of new paths)
        self.status_changed = Event()  # (path, Status, message)
        self.current_changed = Event()  # (path)
        self.model_changed = Event()  # (ModelIdentity | None, selecting text | None)
        self.shown_changed = Event()  # (Shown | None)
        self.labels_edited = Event()  # (Shown): its labels were painted in place (edit mode)
        self.palette_changed = Event()  # (Palette, choice)
        self.hidden_changed = Event()  # (frozenset of ids)
        self.opacity_changed = Event()  # (float 0-1)
        self.mode_changed = Event()  # (ViewMode)

    # -- images ------------------------------------------------------------------------------
    @property
    def paths(self) -> list[str]:
        return list(self.statuses)

    def add_images(self, paths: Iterable[str]) -> list[str]:
        added = []
        for path in paths:
            if path not in self.statuses:
                self.statuses[path] = Status.PENDING
                added.append(path)
        if added:
            self.images_added.emit(added)
        return added

    def remove_images(self, paths: Iterable[str]) -> None:
        """Taken off the list (the files stay): not run any more; the current one is no longer
        shown."""
        paths = [p for p in paths if p in self.statuses]
        for path in paths:
            del self.statuses[path]
        self.queue.remove(paths)
        if self.current in paths:
            self.set_current(None)

    def set_status(self, path: str, status: Status, message: str = "") -> None:
        if path in self.statuses:
            self.statuses[path] = status
            self.status_changed.emit(path, status, message)

    def set_current(self, path: str | None) -> None:
        if path == self.current:
            return
        self.current = path
        if self.shown is not None and self.shown.path != path:
            self._set_shown(None)
        self.current_changed.emit(path)

    # -- the model -----------------------------------------------------------------------------
    def begin_selection(self, text: str) -> None:
        """A model change has started: what is on screen is the old model's, so it goes."""
        self.selecting = text
        self._set_shown(None)
        self.model_changed.emit(self.identity, text)

    def end_selection(self) -> None:
        """The change failed or was cancelled: the current model stays what it was."""
        if self.selecting is not None:
            self.selecting = None
            self.model_changed.emit(self.identity, None)

    def set_model(self, identity: ModelIdentity, metadata: ModelMetadata) -> None:
        self.selecting = None
        self.identity = identity
        self.metadata = metadata
        if self.shown is not None and self.shown.identity != identity:
            self._set_shown(None)
        self._base_palette = self._resolve(self.palette_choice, metadata)
        self.model_changed.emit(identity, None)
        self.palette_changed.emit(self.palette, self.palette_choice)
        self._hide_background()

    def offer_result(self, path: str, identity: ModelIdentity, prediction: Prediction,
                     edited: bool = False) -> bool:
        """Show `prediction` if it is for the current image and comes from the chosen model
        (also as the server says: a reply from another version is refused). `edited`: the
        labels are the user's correction of that model's result."""
        if (path != self.current or identity != self.identity or self.selecting is not None
                or (prediction.version is not None and identity.version is not None
                    and prediction.version != identity.version)):
            return False
        self._set_shown(Shown(path, identity, prediction.signature, prediction, edited))
        return True

    def edited_in_place(self) -> None:
        """The edited labels shown have changed in place (an edit, undo or redo): what is
        computed from them (shares, boundaries) follows; the colours were painted already."""
        if self.shown is not None and self.shown.edited:
            self.labels_edited.emit(self.shown)

    def clear_result(self) -> None:
        self._set_shown(None)

    def _set_shown(self, shown: Shown | None) -> None:
        if shown is None and self.shown is None:
            return
        self.shown = shown
        self.shown_changed.emit(shown)

    # -- drawing -------------------------------------------------------------------------------
    @property
    def palette(self) -> Palette:
        """The chosen palette with the user's own colours on top (they survive a reconnect)."""
        palette = self._base_palette
        for class_id, rgb in self.custom_colors.items():
            palette = palette.with_color(class_id, rgb)
        return palette

    @staticmethod
    def _resolve(choice: str, metadata: ModelMetadata | None) -> Palette:
        return shown_palette(None if choice == FROM_MODEL else choice, metadata)

    def _hide_background(self) -> None:
        """The background (see `palettes.background_id`) starts transparent with each palette."""
        background = background_id(self._base_palette)
        if background is not None:
            self.set_class_hidden(background, True)

    def choose_palette(self, choice: str) -> None:
        """"model", a built-in palette name or a JSON file; raises PaletteError (or OSError)
        and keeps the current palette when it cannot be used. A new palette drops the colours
        picked for the old one."""
        self._base_palette = self._resolve(choice, self.metadata)
        self.palette_choice = choice
        self.custom_colors = {}
        self.palette_changed.emit(self.palette, choice)
        self._hide_background()

    def set_class_color(self, class_id: int, rgb: tuple[int, int, int]) -> None:
        self.custom_colors[class_id] = tuple(int(c) for c in rgb)  # type: ignore[assignment]
        self.palette_changed.emit(self.palette, self.palette_choice)

    def set_class_hidden(self, class_id: int, hidden: bool) -> None:
        now = self.hidden | {class_id} if hidden else self.hidden - {class_id}
        if now != self.hidden:
            self.hidden = frozenset(now)
            self.hidden_changed.emit(self.hidden)

    def set_opacity(self, opacity: float) -> None:
        opacity = min(1.0, max(0.0, opacity))
        if opacity != self.opacity:
            self.opacity = opacity
            self.opacity_changed.emit(opacity)

    def set_mode(self, mode: ViewMode) -> None:
        if mode is not self.mode:
            self.mode = mode
            self.mode_changed.emit(mode)


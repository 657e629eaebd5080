"""Painting corrections into a label map: brush strokes, erasing, flood fill, polygon fill, and
undo records that hold only the pixels that changed.

Coordinates are image coordinates as floats (pixel (x, y) covers [x, x+1) x [y, y+1), its centre is
(x + 0.5, y + 0.5)), as a canvas maps the mouse. Every operation works on the bounding box of what
it touches and returns a `Change`: the box, the changed pixels' offsets inside it and their old
values, and the one value painted. So a stroke on a 4K map costs what the brush covers, and undo
memory is proportional to the changed pixels, not the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_IGNORE_LABEL = 255  # "unlabelled": what the eraser paints and scoring leaves out

Point = tuple[float, float]


@dataclass(frozen=True)
class Rect:
    """A pixel box: columns x0..x1-1, rows y0..y1-1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: Rect) -> Rect:
        if self.empty:
            return other
        if other.empty:
            return self
        return Rect(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1),
                    max(self.y1, other.y1))

    def clip(self, shape: tuple[int, int]) -> Rect:
        return Rect(max(0, self.x0), max(0, self.y0), min(shape[1], self.x1),
                    min(shape[0], self.y1))


EMPTY = Rect(0, 0, 0, 0)


@dataclass(frozen=True)
class Change:
    """One whole edit (a stroke, a fill, a polygon): inside `rect`, the pixels at row-major
    `offsets` went from `old` to `value`."""

    rect: Rect
    offsets: np.ndarray  # uint32 positions inside rect, row-major, ascending
    old: np.ndarray  # their values before, in the label map's dtype (one: all the same)
    value: int

    @property
    def pixels(self) -> int:
        return int(self.offsets.size)

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.old.nbytes)

    def _mask(self) -> np.ndarray:
        mask = np.zeros(self.rect.width * self.rect.height, bool)
        mask[self.offsets] = True
        return mask.reshape(self.rect.height, self.rect.width)

    def apply(self, labels: np.ndarray) -> None:
        np.copyto(labels[self.rect.slices], self.value, where=self._mask())

    def revert(self, labels: np.ndarray) -> None:
        box, mask = labels[self.rect.slices], self._mask()
        if self.old.size == 1:
            np.copyto(box, self.old[0], where=mask)
        else:
            box[mask] = self.old  # offsets ascend, as boolean indexing visits pixels


def paint_mask(labels: np.ndarray, rect: Rect, mask: np.ndarray, value: int,
               old_value: int | None = None) -> Change | None:
    """Set `value` where `mask` (the size of `rect`) is true; the Change, or None when no pixel
    changes. `old_value`: every masked pixel is known to hold it (a flood fill's region), so
    the record keeps one old value instead of one per pixel."""
    box = labels[rect.slices]
    hit = mask if old_value is not None else mask & (box != value)
    offsets = np.flatnonzero(hit).astype(np.uint32)
    if offsets.size == 0:
        return None
    old = np.full(1, old_value, box.dtype) if old_value is not None else box[hit]
    np.copyto(box, value, where=hit)
    return Change(rect, offsets, old, value)


def check_value(labels: np.ndarray, value: int) -> int:
    """`value` as a class id the label map's dtype can hold; ValueError naming the range."""
    info = np.iinfo(labels.dtype)
    if not info.min <= value <= info.max:
        raise ValueError(f"class id {value} does not fit this label map ({labels.dtype}: "
                         f"{info.min}-{info.max})")
    return int(value)


# ---------------------------------------------------------------------------------------------
# Brush


def segment_mask(p0: Point, p1: Point, radius: float,
                 shape: tuple[int, int]) -> tuple[Rect, np.ndarray]:
    """The pixels whose centre lies within `radius` of the segment p0-p1 (a capsule: a round
    brush dragged from p0 to p1, so consecutive mouse points leave no gap), in its clipped box."""
    radius = max(float(radius), 0.5)
    (ax, ay), (bx, by) = p0, p1
    rect = Rect(int(np.floor(min(ax, bx) - radius)), int(np.floor(min(ay, by) - radius)),
                int(np.ceil(max(ax, bx) + radius)) + 1,
                int(np.ceil(max(ay, by) + radius)) + 1).clip(shape)
    if rect.empty:
        return rect, np.zeros((0, 0), bool)
    xs = np.arange(rect.x0, rect.x1, dtype=np.float32) + 0.5 - ax
    ys = (np.arange(rect.y0, rect.y1, dtype=np.float32) + 0.5 - ay)[:, None]
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        dist2 = xs * xs + ys * ys
    else:
        t = np.clip((xs * dx + ys * dy) / length2, 0.0, 1.0)
        ex, ey = xs - t * dx, ys - t * dy
        dist2 = ex * ex + ey * ey
    return rect, dist2 <= radius * radius + 1e-6


class Stroke:
    """A brush stroke being drawn: each `extend` paints the segment from the last point and
    returns the box to repaint; `finish` gives the whole stroke as one Change."""

    def __init__(self, labels: np.ndarray, value: int, radius: float, start: Point) -> None:
        self.labels = labels
        self.value = check_value(labels, value)
        self.radius = radius
        self._last = start
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []  # (flat image indices, old)
        self.rect = EMPTY
        self._paint(start, start)

    def extend(self, point: Point) -> Rect:
        rect = self._paint(self._last, point)
        self._last = point
        return rect

    def _paint(self, p0: Point, p1: Point) -> Rect:
        rect, mask = segment_mask(p0, p1, self.radius, self.labels.shape[:2])
        if rect.empty:
            return rect
        change = paint_mask(self.labels, rect, mask, self.value)
        if change is None:
            return EMPTY
        ys, xs = np.divmod(change.offsets.astype(np.int64), rect.width)
        self._parts.append(((ys + rect.y0) * self.labels.shape[1] + xs + rect.x0, change.old))
        self.rect = self.rect.union(rect)
        return rect

    def finish(self) -> Change | None:
        """The stroke as one Change over its whole box (each pixel once: a pixel already painted
        is not painted again, so its first old value is the one kept)."""
        if not self._parts:
            return None
        flat = np.concatenate([p[0] for p in self._parts])
        old = np.concatenate([p[1] for p in self._parts])
        order = np.argsort(flat)
        ys, xs = np.divmod(flat[order], self.labels.shape[1])
        offsets = ((ys - self.rect.y0) * self.rect.width + xs - self.rect.x0).astype(np.uint32)
        return Change(self.rect, offsets, old[order], self.value)


def stroke(labels: np.ndarray, points: Sequence[Point], radius: float,
           value: int) -> Change | None:
    """Paint a whole polyline at once (what a mouse drag through `points` paints)."""
    drawing = Stroke(labels, value, radius, points[0])
    for point in points[1:]:
        drawing.extend(point)
    return drawing.finish()


# ---------------------------------------------------------------------------------------------
# Fills


def flood_region(labels: np.ndarray, x: int, y: int) -> tuple[Rect, np.ndarray]:
    """The 4-connected region of the class at (x, y): its box and its mask inside the box."""
    from scipy import ndimage  # on first fill: a second off the viewer's start-up

    same = labels == labels[y, x]
    # Label only inside the box of the whole class (row and column projections are cheap):
    # a class that covers part of the image costs that part.
    outer = _box_of(same)
    inside = same[outer.slices]
    components, count = ndimage.label(inside)  # default structure: 4-connectivity
    region = inside if count == 1 else components == components[y - outer.y0, x - outer.x0]
    rect = _box_of(region)
    return Rect(rect.x0 + outer.x0, rect.y0 + outer.y0, rect.x1 + outer.x0,
                rect.y1 + outer.y0), region[rect.slices]


def _box_of(mask: np.ndarray) -> Rect:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def flood_fill(labels: np.ndarray, x: int, y: int, value: int) -> Change | None:
    """Paint the 4-connected region of the class under (x, y) with `value`."""
    value = check_value(labels, value)
    if not (0 <= y < labels.shape[0] and 0 <= x < labels.shape[1]) or labels[y, x] == value:
        return None
    old = int(labels[y, x])
    rect, mask = flood_region(labels, x, y)
    return paint_mask(labels, rect, mask, value, old_value=old)


def polygon_mask(points: Sequence[Point], shape: tuple[int, int]) -> tuple[Rect, np.ndarray]:
    """The pixels of the polygon (closed through the last point back to the first), edges
    included, in its clipped box."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    rect = Rect(int(np.floor(min(xs))), int(np.floor(min(ys))), int(np.ceil(max(xs))) + 1,
                int(np.ceil(max(ys))) + 1).clip(shape)
    if rect.empty or len(points) < 3:
        return EMPTY, np.zeros((0, 0), bool)
    canvas = Image.new("1", (rect.width, rect.height), 0)
    # PIL puts integer coordinates at pixel centres; ours put centres at +0.5.
    ImageDraw.Draw(canvas).polygon([(px - rect.x0 - 0.5, py - rect.y0 - 0.5)
                                    for px, py in points], fill=1, outline=1)
    return rect, np.asarray(canvas, dtype=bool)


def polygon_fill(labels: np.ndarray, points: Sequence[Point], value: int) -> Change | None:
    value = check_value(labels, value)
    rect, mask = polygon_mask(points, labels.shape[:2])
    return None if rect.empty else paint_mask(labels, rect, mask, value)


# ---------------------------------------------------------------------------------------------
# Session


@dataclass
class EditSession:
    """Edits of one label map: a private copy (the model's output is never touched), the
    history of whole edits for undo and redo, and the count of pixels that differ from the
    start."""

    original: np.ndarray
    labels: np.ndarray = field(init=False)
    _done: list[Change] = field(default_factory=list, init=False)
    _undone: list[Change] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.original.ndim != 2 or not np.issubdtype(self.original.dtype, np.integer):
            raise ValueError("an edit needs a 2-D label map of integer class ids, got "
                             f"{self.original.shape} {self.original.dtype}")
        low = int(self.original.min()) if self.original.size else 0
        high = int(self.original.max()) if self.original.size else 0
        if low < 0 or high > 65535:
            raise ValueError(f"an edit needs class ids 0-65535, this map holds {low}-{high}")
        self.labels = self.original.astype(np.uint8 if high <= 255 else np.uint16)

    # -- edits ---------------------------------------------------------------------------------
    def begin_stroke(self, point: Point, radius: float, value: int) -> Stroke:
        """Start a brush (or, with the ignore id, eraser) stroke; `record(stroke.finish())` when
        the button is released."""
        self._widen_for(value)
        return Stroke(self.labels, value, radius, point)

    def fill(self, x: int, y: int, value: int) -> Change | None:
        self._widen_for(value)
        return self.record(flood_fill(self.labels, x, y, value))

    def polygon(self, points: Sequence[Point], value: int) -> Change | None:
        self._widen_for(value)
        return self.record(polygon_fill(self.labels, points, value))

    def pick(self, x: int, y: int) -> int:
        return int(self.labels[y, x])

    def record(self, change: Change | None) -> Change | None:
        """Add an edit already applied to `labels` to the history (a new edit drops redo)."""
        if change is not None:
            self._done.append(change)
            self._undone.clear()
        return change

    # -- history -------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def undo(self) -> Change | None:
        if not self._done:
            return None
        change = self._done.pop()
        change.revert(self.labels)
        self._undone.append(change)
        return change

    def redo(self) -> Change | None:
        if not self._undone:
            return None
        change = self._undone.pop()
        change.apply(self.labels)
        self._done.append(change)
        return change

    @property
    def last(self) -> Change | None:
        """The edit the next undo reverts."""
        return self._done[-1] if self._done else None

    @property
    def history_bytes(self) -> int:
        return sum(c.nbytes for c in (*self._done, *self._undone))

    def changed_pixels(self) -> int:
        """Pixels that now differ from the map the session started from."""
        return int(np.count_nonzero(self.labels != self.original))

    def _widen_for(self, value: int) -> None:
        if value < 0 or value > 65535:
            raise ValueError(f"class id {value} is outside 0-65535 (what a label PNG stores)")
        if value > 255 and self.labels.dtype == np.uint8:
            self.labels = self.labels.astype(np.uint16)  # history offsets stay valid

"""QA review of two models on one image set: per-image agreement and ground-truth scores, the
worst-first queue, and the verdicts a reviewer records.

`run_review(a, b, images, options)` segments every image with both sources (two versions on one
server, two servers, or a server and a local SavedModel) on a thread pool and returns a
`ReviewSession`: per-image results in input order, dataset-level totals (confusion matrices are
summed, then scored, as DeepLab's eval does) and sort keys for the review queue. Results and
progress come back in the caller's thread, so a GUI worker can forward them as signals.

Ground truth is a folder of label PNGs matched to images by file stem (gt/astronaut.png for
images/astronaut.jpg): gray or palette ("P", as PASCAL VOC ships) PNGs hold class ids; colour-coded
RGB ground truth is turned back into ids with the palette it was drawn with (`gt_from_color`).

Verdicts live in `<folder>/.segviewer-review.json` (hidden, so image searches skip it, and it moves
with the folder), keyed by the two sources compared and then by image path relative to the folder;
`VerdictStore` rewrites it atomically on every change, so a review can stop and resume any time.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from segviewer.core.compare import Scores, confusion_matrix, gt_from_color, iou_deltas, scores
from segviewer.core.images import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    atomic_write_bytes,
    label_array_for_png,
    load_image,
    load_label_png,
)
from segviewer.core.labels import Palette
from segviewer.core.overlay import class_counts, disagreement
from segviewer.core.palettes import num_classes_of, palette_for
from segviewer.core.pool import bounded_map
from segviewer.core.serving.base import Backend, BackendError, ModelRef

VERDICTS_FILE = ".segviewer-review.json"
_T = TypeVar("_T")
DEFAULT_IGNORE_LABEL = 255


class ReviewError(Exception):
    """A review that cannot start or a verdict file that cannot be used; one line for the user."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NEEDS_LOOK = "needs-look"


class SortKey(StrEnum):
    """Review-queue orders, worst first."""

    AGREEMENT = "agreement"  # lowest agreement of A and B
    MIOU_A = "miou-a"  # lowest mIoU of A against the ground truth
    MIOU_B = "miou-b"  # lowest mIoU of B
    MIOU_DROP = "miou-drop"  # largest mIoU drop from A to B (most negative B - A)


@dataclass(frozen=True)
class Source:
    """One side of the comparison: a model (version) on a backend."""

    backend: Backend
    ref: ModelRef
    signature: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    """What was compared, resolved: the version actually served and where."""

    model: str
    version: int | None
    backend: str  # Backend.description

    @property
    def description(self) -> str:
        version = f" v{self.version}" if self.version is not None else ""
        return f"{self.model}{version} ({self.backend})"


@dataclass
class ReviewOptions:
    gt_dir: Path | None = None  # folder of ground-truth label PNGs, matched by stem
    gt_palette: Palette | None = None  # reads colour-coded (RGB) ground truth
    ignore_label: int = DEFAULT_IGNORE_LABEL  # ground-truth id left out of every score
    num_classes: int | None = None  # None: from the models' metadata
    workers: int = 1  # images in flight at once


@dataclass
class ImageResult:
    """Both models on one image. `error` (one line) means the image was not compared; GT fields
    are None when there is no ground truth for it. Label maps are kept (uint8 when ids fit, else
    uint16) so a viewer can show the image at once and the report can draw it."""

    path: Path
    key: str  # path relative to the review folder, posix: the verdict key
    error: str = ""
    labels_a: np.ndarray | None = None
    labels_b: np.ndarray | None = None
    agreement: float | None = None  # percent of pixels where A and B agree
    agree_pixels: int = 0
    pixels: int = 0
    counts_a: dict[int, int] = field(default_factory=dict)  # pixels per predicted class
    counts_b: dict[int, int] = field(default_factory=dict)
    gt_path: Path | None = None
    scores_a: Scores | None = None
    scores_b: Scores | None = None

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def miou_a(self) -> float | None:
        return _finite(self.scores_a.mean_iou) if self.scores_a else None

    @property
    def miou_b(self) -> float | None:
        return _finite(self.scores_b.mean_iou) if self.scores_b else None

    @property
    def miou_delta(self) -> float | None:
        """mIoU of B minus that of A (negative: B is worse)."""
        a, b = self.miou_a, self.miou_b
        return None if a is None or b is None else b - a

    @property
    def pixel_accuracy_a(self) -> float | None:
        return _finite(self.scores_a.pixel_accuracy) if self.scores_a else None

    @property
    def pixel_accuracy_b(self) -> float | None:
        return _finite(self.scores_b.pixel_accuracy) if self.scores_b else None


@dataclass(frozen=True)
class ClassRow:
    """One class over the whole set: pixel shares in percent, IoU in [0, 1] (None: no GT, or
    the class is in neither the ground truth nor the prediction)."""

    id: int
    name: str
    color: tuple[int, int, int]
    share_a: float
    share_b: float
    iou_a: float | None = None
    iou_b: float | None = None

    @property
    def share_delta(self) -> float:
        return self.share_b - self.share_a

    @property
    def iou_delta(self) -> float | None:
        return None if self.iou_a is None or self.iou_b is None else self.iou_b - self.iou_a


@dataclass
class Totals:
    """Dataset-level numbers over the compared images."""

    images: int
    failed: int
    agreement: float | None  # percent of all pixels
    counts_a: dict[int, int]
    counts_b: dict[int, int]
    with_gt: int  # images scored against ground truth
    scores_a: Scores | None
    scores_b: Scores | None


@dataclass
class ReviewSession:
    """The results model the report and the viewer's compare mode read."""

    a: SourceInfo
    b: SourceInfo
    folder: Path  # where the verdicts live
    palette: Palette  # A's classes (names, colours)
    options: ReviewOptions
    num_classes: int | None
    results: list[ImageResult]  # input order; fewer than `total` when cancelled
    total: int = 0  # images asked for
    cancelled: bool = False
    interrupted: bool = False  # ... by Ctrl-C
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def has_gt(self) -> bool:
        return self.options.gt_dir is not None

    @property
    def failures(self) -> list[ImageResult]:
        return [r for r in self.results if not r.ok]

    def result(self, key: str) -> ImageResult:
        for r in self.results:
            if r.key == key:
                return r
        raise KeyError(key)

    def sorted(self, key: SortKey | str) -> list[ImageResult]:
        """The compared images worst first; images the key cannot rank (no ground truth) last,
        in input order. Failed images are left out."""
        return sort_results([r for r in self.results if r.ok], key)

    def totals(self) -> Totals:
        ok = [r for r in self.results if r.ok]
        pixels = sum(r.pixels for r in ok)
        agreement = 100.0 * sum(r.agree_pixels for r in ok) / pixels if pixels else None
        scored = [(r.scores_a, r.scores_b) for r in ok
                  if r.scores_a is not None and r.scores_b is not None]
        scores_a = scores_b = None
        if scored:
            scores_a = scores(sum(a.confusion for a, _ in scored))
            scores_b = scores(sum(b.confusion for _, b in scored))
        return Totals(len(ok), len(self.results) - len(ok), agreement,
                      _sum_counts(r.counts_a for r in ok), _sum_counts(r.counts_b for r in ok),
                      len(scored), scores_a, scores_b)

    def class_rows(self, totals: Totals | None = None) -> list[ClassRow]:
        """The legend/table rows over the whole set (see `class_rows`)."""
        t = totals or self.totals()
        return class_rows(self.palette, t.counts_a, t.counts_b, t.scores_a, t.scores_b)

    def iou_deltas(self) -> np.ndarray | None:
        """Per-class IoU of B minus A over the set (nan where either is undefined)."""
        totals = self.totals()
        if totals.scores_a is None or totals.scores_b is None:
            return None
        return iou_deltas(totals.scores_a, totals.scores_b)


def class_rows(
    palette: Palette,
    counts_a: Mapping[int, int],
    counts_b: Mapping[int, int],
    scores_a: Scores | None = None,
    scores_b: Scores | None = None,
) -> list[ClassRow]:
    """One row per class predicted by either model or present in the ground truth, by id: for a
    whole session, or for one image (`class_rows(palette, r.counts_a, r.counts_b, r.scores_a,
    r.scores_b)`, a compare-mode legend)."""
    ids = set(counts_a) | set(counts_b)
    iou_a = iou_b = None
    if scores_a is not None and scores_b is not None:
        ids |= {int(i) for i in np.flatnonzero(scores_a.confusion.sum(axis=1))}
        iou_a, iou_b = scores_a.per_class_iou, scores_b.per_class_iou
    all_a = sum(counts_a.values()) or 1
    all_b = sum(counts_b.values()) or 1
    rows = []
    for i in sorted(ids):
        rows.append(ClassRow(i, palette.class_name(i), palette.color(i),
                             100.0 * counts_a.get(i, 0) / all_a,
                             100.0 * counts_b.get(i, 0) / all_b,
                             _finite(iou_a[i]) if iou_a is not None else None,
                             _finite(iou_b[i]) if iou_b is not None else None))
    return rows


def sort_results(results: Sequence[ImageResult], key: SortKey | str) -> list[ImageResult]:
    key = SortKey(key)
    value: Callable[[ImageResult], float | None] = {
        SortKey.AGREEMENT: lambda r: r.agreement,
        SortKey.MIOU_A: lambda r: r.miou_a,
        SortKey.MIOU_B: lambda r: r.miou_b,
        SortKey.MIOU_DROP: lambda r: r.miou_delta,
    }[key]

    def order(item: tuple[int, ImageResult]) -> tuple[bool, float, int]:
        v = value(item[1])
        return (v is None, v if v is not None else 0.0, item[0])

    return [r for _, r in sorted(enumerate(results), key=order)]


# ---------------------------------------------------------------------------------------------
# Ground truth


def review_folder(images: Sequence[Path]) -> Path:
    """The folder a review belongs to: the images' deepest common folder."""
    if not images:
        raise ReviewError("no images to review")
    return Path(os.path.commonpath([Path(p).resolve().parent for p in images]))


def image_key(path: Path, folder: Path) -> str:
    return Path(path).resolve().relative_to(folder).as_posix()


def match_ground_truth(images: Sequence[Path], gt_dir: Path) -> dict[Path, Path | None]:
    """{image: its ground truth or None}, matching file stems; ground truth may sit in subfolders
    of `gt_dir`. Two ground-truth files with one stem are an error naming both."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise ReviewError(f"ground-truth folder '{gt_dir}' does not exist — pass the folder of "
                          "label PNGs named like the images")
    by_stem: dict[str, Path] = {}
    for path in sorted(gt_dir.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith(".") \
                or not path.is_file():
            continue
        if path.stem in by_stem:
            raise ReviewError(f"ground truth is ambiguous: '{by_stem[path.stem]}' and '{path}' "
                              f"both match images named '{path.stem}' — keep one")
        by_stem[path.stem] = path
    return {Path(p): by_stem.get(Path(p).stem) for p in images}


def load_ground_truth(path: Path, palette: Palette | None = None,
                      ignore_label: int = DEFAULT_IGNORE_LABEL) -> np.ndarray:
    """Class ids [H, W] from a ground-truth file: gray/palette PNGs as stored, colour (RGB)
    images through `palette` (unknown colours become `ignore_label`)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            colour = img.mode in ("RGB", "RGBA", "RGBX")
    except FileNotFoundError:
        raise ImageLoadError(f"cannot read ground truth '{path}': file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageLoadError(f"cannot read ground truth '{path}': not an image "
                             f"({type(exc).__name__})") from None
    if not colour:
        return load_label_png(path)
    if palette is None:
        raise ImageLoadError(f"ground truth '{path}' is a colour image — give the palette it "
                             "is drawn with (--gt-palette) to turn colours into class ids")
    return gt_from_color(load_image(path), palette, unknown_label=ignore_label)


# ---------------------------------------------------------------------------------------------
# Running


def run_review(
    a: Source,
    b: Source,
    images: Sequence[Path],
    options: ReviewOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    on_result: Callable[[ImageResult], None] | None = None,
) -> ReviewSession:
    """Segment `images` with `a` and `b` and score them; per-image failures are recorded in the
    results. Raises BackendError when a source's metadata cannot be read and ReviewError when the
    review cannot start (no images, bad ground-truth folder, unknown class count with GT)."""
    options = options or ReviewOptions()
    cancel = cancel or threading.Event()
    images = [Path(p) for p in images]
    folder = review_folder(images)
    gt_paths = match_ground_truth(images, options.gt_dir) if options.gt_dir else {}
    meta_a = _named("A", a, lambda: a.backend.metadata(a.ref))
    meta_b = _named("B", b, lambda: b.backend.metadata(b.ref))
    num_classes = options.num_classes
    if num_classes is None:
        known = [n for n in (num_classes_of(meta_a), num_classes_of(meta_b)) if n]
        num_classes = max(known) if known else None
    if options.gt_dir is not None and num_classes is None:
        raise ReviewError("the models do not say how many classes they have — give the number "
                          "(--num-classes) to score them against ground truth")
    session = ReviewSession(
        SourceInfo(a.ref.name, meta_a.version, a.backend.description),
        SourceInfo(b.ref.name, meta_b.version, b.backend.description),
        folder, palette_for(meta_a), options, num_classes, [], len(images))
    slots: list[ImageResult | None] = [None] * len(images)

    def process(index: int) -> ImageResult:
        path = images[index]
        result = ImageResult(path, image_key(path, folder), gt_path=gt_paths.get(path))
        try:
            _compare(result, load_image(path), a, b, options, num_classes)
        except (ImageLoadError, BackendError) as exc:
            result.error = _one_line(str(exc))
        except ValueError as exc:  # ids outside the class range, sizes that differ
            result.error = _one_line(f"{path}: {exc}")
        return result

    total = len(images)
    if progress is not None:
        progress(0, total)

    def interrupted() -> None:  # Ctrl-C: start no new image, let those in flight finish
        session.interrupted = True
        cancel.set()

    results = bounded_map(lambda i: (i, process(i)), range(total), options.workers,
                          cancel.is_set, interrupted, "segviewer-review")
    for done, (index, result) in enumerate(results, start=1):
        slots[index] = result
        if on_result is not None:
            on_result(result)
        if progress is not None:
            progress(done, total)
    session.results = [r for r in slots if r is not None]
    session.cancelled = len(session.results) < total
    return session


def _compare(result: ImageResult, image: np.ndarray, a: Source, b: Source,
             options: ReviewOptions, num_classes: int | None) -> None:
    labels_a = label_array_for_png(
        _named("A", a, lambda: a.backend.predict(image, a.ref, a.signature)).labels)
    labels_b = label_array_for_png(
        _named("B", b, lambda: b.backend.predict(image, b.ref, b.signature)).labels)
    mask, agree = disagreement(labels_a, labels_b)
    result.labels_a, result.labels_b = labels_a, labels_b
    result.agreement = agree
    result.pixels = mask.size
    result.agree_pixels = mask.size - int(np.count_nonzero(mask))
    result.counts_a, result.counts_b = class_counts(labels_a), class_counts(labels_b)
    if result.gt_path is None or num_classes is None:
        return
    gt = load_ground_truth(result.gt_path, options.gt_palette, options.ignore_label)
    if gt.shape != labels_a.shape:
        raise ImageLoadError(f"ground truth '{result.gt_path}' is {gt.shape[1]}x{gt.shape[0]} but "
                             f"'{result.path}' is {labels_a.shape[1]}x{labels_a.shape[0]} — "
                             "ground truth must have the image's size")
    result.scores_a = scores(confusion_matrix(gt, labels_a, num_classes, options.ignore_label))
    result.scores_b = scores(confusion_matrix(gt, labels_b, num_classes, options.ignore_label))


def _named(side: str, source: Source, call: Callable[[], _T]) -> _T:
    """`call()`, with "model A (name v1): " before its BackendError: both sides may be versions
    of one model, so the model's name alone does not say which failed."""
    try:
        return call()
    except BackendError as exc:
        raise BackendError(f"model {side} ({source.ref}): {exc}", exc.code) from None


def _sum_counts(many: Iterable[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for counts in many:
        for i, n in counts.items():
            total[i] = total.get(i, 0) + n
    return dict(sorted(total.items()))


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "failed"


# ---------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class VerdictEntry:
    verdict: Verdict
    note: str = ""
    time: str = ""  # UTC, ISO 8601


class VerdictStore:
    """The verdicts on one folder for one pair of sources, saved (atomically) on every change.

    The file may hold reviews of other pairs too; they are kept as they are."""

    def __init__(self, folder: Path, a: SourceInfo, b: SourceInfo) -> None:
        self.path = Path(folder) / VERDICTS_FILE
        self.a, self.b = a, b
        self._pair = f"{a.description} | {b.description}"
        self._lock = threading.Lock()
        review = self._read()["reviews"].get(self._pair, {})
        self.verdicts: dict[str, VerdictEntry] = {
            key: self._entry(key, value) for key, value in review.get("verdicts", {}).items()
        }

    @classmethod
    def for_session(cls, session: ReviewSession) -> VerdictStore:
        return cls(session.folder, session.a, session.b)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": 1, "reviews": {}}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReviewError(f"cannot read verdicts '{self.path}': "
                              f"{getattr(exc, 'strerror', None) or exc} (fix or move it)") from None
        if not isinstance(data, dict) or not isinstance(data.get("reviews"), dict):
            raise ReviewError(f"cannot read verdicts '{self.path}': not a SegViewer review file "
                              "(move it away)")
        return data

    def _entry(self, key: str, value: Any) -> VerdictEntry:
        try:
            return VerdictEntry(Verdict(value["verdict"]), str(value.get("note", "")),
                                str(value.get("time", "")))
        except (TypeError, KeyError, ValueError):
            raise ReviewError(f"cannot read verdicts '{self.path}': bad entry for '{key}' "
                              f"(verdicts are {', '.join(v.value for v in Verdict)})") from None

    def get(self, key: str) -> VerdictEntry | None:
        return self.verdicts.get(key)

    def set(self, key: str, verdict: Verdict | str | None, note: str = "") -> None:
        """Record (or, with None, clear) the verdict on one image and save the file."""
        with self._lock:
            if verdict is None:
                self.verdicts.pop(key, None)
            else:
                now = datetime.now(UTC).isoformat(timespec="seconds")
                self.verdicts[key] = VerdictEntry(Verdict(verdict), note, now)
            self._save()

    def counts(self) -> dict[Verdict, int]:
        found = {v: 0 for v in Verdict}
        for entry in self.verdicts.values():
            found[entry.verdict] += 1
        return found

    def _save(self) -> None:
        data = self._read()  # re-read: keep what another window saved for other pairs since
        data["reviews"][self._pair] = {
            "a": self.a.description,
            "b": self.b.description,
            "verdicts": {
                key: {"verdict": e.verdict.value, "note": e.note, "time": e.time}
                for key, e in sorted(self.verdicts.items())
            },
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        try:
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise ReviewError(f"cannot save verdicts '{self.path}': {exc.strerror or exc} "
                              "(is the folder writable?)") from None

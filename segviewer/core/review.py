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

A side is a model on a backend (`Source`) or a folder of label PNGs written earlier by
segviewer-predict (`PredictionFolder`); with two folders no image is even decoded. Each side is
named by its fingerprint (core.fingerprint) and each image by its content hash, which is how
verdicts are kept in the review store (core.review_store) and found again on any path to the
same models: `SessionVerdicts` is that store as one reviewer of one session sees it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from segviewer.core.compare import Scores, confusion_matrix, gt_from_color, iou_deltas, scores
from segviewer.core.fingerprint import Fingerprint, from_metadata, local_folder
from segviewer.core.images import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    label_array_for_png,
    load_image,
    load_label_png,
)
from segviewer.core.labels import Palette, get_palette
from segviewer.core.overlay import class_counts, disagreement
from segviewer.core.palettes import num_classes_of, palette_for
from segviewer.core.pool import bounded_map
from segviewer.core.prediction_source import PredictionFolder
from segviewer.core.review_store import (
    Pair,
    ReviewError,
    ReviewStore,
    Verdict,
    VerdictEntry,
    consensus,
    default_reviewer,
    file_sha256,
)
from segviewer.core.sampling import Sample, SampleError, SampleSpec, draw_sample
from segviewer.core.serving.base import Backend, BackendError, ModelMetadata, ModelRef
from segviewer.core.serving.calls import Reachability

LEGACY_VERDICTS_FILE = ".segviewer-review.json"  # what older versions wrote; imported on request
_T = TypeVar("_T")
DEFAULT_IGNORE_LABEL = 255


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


Side = Source | PredictionFolder  # a model to run, or its predictions made earlier


@dataclass(frozen=True)
class SourceInfo:
    """What was compared, resolved: the version actually served, where, and what it is."""

    model: str
    version: int | None
    backend: str  # Backend.description, or "predictions FOLDER"
    fingerprint: Fingerprint | None = None

    @property
    def name(self) -> str:
        return f"{self.model} v{self.version}" if self.version is not None else self.model

    @property
    def description(self) -> str:
        return f"{self.name} ({self.backend})"


@dataclass
class ReviewOptions:
    gt_dir: Path | None = None  # folder of ground-truth label PNGs, matched by stem
    gt_palette: Palette | None = None  # reads colour-coded (RGB) ground truth
    ignore_label: int = DEFAULT_IGNORE_LABEL  # ground-truth id left out of every score
    num_classes: int | None = None  # None: from the models' metadata (or the palette's size)
    workers: int = 1  # images in flight at once
    palette: Palette | None = None  # classes of prediction folders (default: A's model, pascal)


@dataclass
class ImageResult:
    """Both models on one image. `error` (one line) means the image was not compared; GT fields
    are None when there is no ground truth for it. Label maps are kept (uint8 when ids fit, else
    uint16) so a viewer can show the image at once and the report can draw it."""

    path: Path
    key: str  # path relative to the review folder, posix: how the image is shown
    error: str = ""
    sha256: str = ""  # the image file's content hash: what verdicts are kept by
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
    lost_connection: str = ""  # ... because a server stopped answering: the failure that said so
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    sample: Sample | None = None  # the spot-check sample the images are, if any

    @property
    def has_gt(self) -> bool:
        return self.options.gt_dir is not None

    @property
    def pair(self) -> Pair:
        """The two models as the review store keys them."""
        for side, info in (("A", self.a), ("B", self.b)):
            if info.fingerprint is None:
                raise ReviewError(f"model {side} ({info.description}) has no fingerprint; "
                                  "verdicts cannot be kept for it")
        return Pair(str(self.a.fingerprint), str(self.b.fingerprint), self.a.name, self.b.name)

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
            scores_a = scores(_sum_confusions([a.confusion for a, _ in scored]))
            scores_b = scores(_sum_confusions([b.confusion for _, b in scored]))
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


def draw_review_sample(images: Sequence[Path], spec: SampleSpec, a: Side, b: Side,
                       options: ReviewOptions) -> Sample:
    """The spot-check sample `spec` of `images`. A stratified one reads the classes in each
    image from the ground truth, else from a prediction folder's labels (raises SampleError
    when there is neither)."""
    images = [Path(p) for p in images]
    if not spec.min_per_class:
        return draw_sample(images, spec)
    if options.gt_dir is not None:
        gt = match_ground_truth(images, options.gt_dir)

        def classes_of(image: Path) -> set[int]:
            path = gt.get(image)
            if path is None:
                return set()
            labels = load_ground_truth(path, options.gt_palette, options.ignore_label)
            return {int(c) for c in np.unique(labels)} - {options.ignore_label}
        how = "ground truth"
    else:
        folder = a if isinstance(a, PredictionFolder) else b
        if not isinstance(folder, PredictionFolder):
            raise SampleError("a sample with a minimum per class needs the classes in each "
                              "image — give ground truth or a prediction folder")

        def classes_of(image: Path) -> set[int]:
            try:
                return {int(c) for c in np.unique(folder.labels(image))}
            except ImageLoadError:
                return set()
        how = f"the predictions in {folder.folder}"
    return draw_sample(images, replace(spec, classes_from=how), classes_of)


def run_review(
    a: Side,
    b: Side,
    images: Sequence[Path],
    options: ReviewOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    on_result: Callable[[ImageResult], None] | None = None,
    sample: Sample | None = None,
) -> ReviewSession:
    """Segment `images` with `a` and `b` (or read their prediction folders) and score them;
    per-image failures are recorded in the results; a server that stops answering
    (`Reachability`) ends the review early, with `lost_connection` saying why. Raises
    BackendError when a source's metadata cannot be read and ReviewError when the review cannot
    start (no images, bad ground-truth folder, unknown class count with GT). `sample`: what
    `images` were drawn as."""
    options = options or ReviewOptions()
    cancel = cancel or threading.Event()
    images = [Path(p) for p in images]
    folder = review_folder(images)
    gt_paths = match_ground_truth(images, options.gt_dir) if options.gt_dir else {}
    info_a, meta_a = resolve_side("A", a)
    info_b, meta_b = resolve_side("B", b)
    metas = [m for m in (meta_a, meta_b) if m is not None]
    palette = options.palette or (palette_for(metas[0]) if metas else get_palette("pascal"))
    num_classes = options.num_classes
    if num_classes is None:
        known = [n for n in map(num_classes_of, metas) if n]
        num_classes = max(known) if known else None
    # Prediction folders do not say how many classes there are: each image is then scored over
    # the ids it holds, and the totals pad the smaller matrices (absent classes score nothing).
    found_classes = num_classes is None and not metas
    if options.gt_dir is not None and num_classes is None and not found_classes:
        raise ReviewError("the models do not say how many classes they have — give the number "
                          "(--num-classes) to score them against ground truth")
    session = ReviewSession(info_a, info_b, folder, palette, options, num_classes, [],
                            len(images), sample=sample)
    slots: list[ImageResult | None] = [None] * len(images)

    stop = threading.Event()  # set by the review itself: a server stopped answering

    def process(index: int) -> tuple[ImageResult, str]:
        """The image's result, and the code of the BackendError that failed it ("" if none)."""
        path = images[index]
        result = ImageResult(path, image_key(path, folder), gt_path=gt_paths.get(path))
        try:
            result.sha256 = file_sha256(path)
            _compare(result, a, b, options, num_classes, found_classes)
        except OSError as exc:
            result.error = _one_line(f"cannot read '{path}': {exc.strerror or exc}")
        except BackendError as exc:
            result.error = _one_line(str(exc))
            return result, exc.code or ""
        except ImageLoadError as exc:
            result.error = _one_line(str(exc))
        except ValueError as exc:  # ids outside the class range, sizes that differ
            result.error = _one_line(f"{path}: {exc}")
        return result, ""

    total = len(images)
    if progress is not None:
        progress(0, total)

    def interrupted() -> None:  # Ctrl-C: start no new image, let those in flight finish
        session.interrupted = True
        cancel.set()

    reachability = Reachability(options.workers)
    results = bounded_map(lambda i: (i, *process(i)), range(total), options.workers,
                          lambda: cancel.is_set() or stop.is_set(), interrupted,
                          "segviewer-review")
    for done, (index, result, code) in enumerate(results, start=1):
        if reachability.lost(code) and not stop.is_set():  # not every image failing in turn
            session.lost_connection = result.error
            stop.set()
        slots[index] = result
        if on_result is not None:
            on_result(result)
        if progress is not None:
            progress(done, total)
    session.results = [r for r in slots if r is not None]
    session.cancelled = len(session.results) < total
    return session


def resolve_side(side: str, source: Side,
                 fingerprinted: bool = True) -> tuple[SourceInfo, ModelMetadata | None]:
    """What a side is: name, version, where and fingerprint (and a model's metadata).
    `fingerprinted=False` leaves a model's fingerprint out (it may hash a whole SavedModel)."""
    if isinstance(source, PredictionFolder):
        prov = source.provenance
        return SourceInfo(prov.model, prov.version, source.description, source.fingerprint), None
    meta = _named(side, source, lambda: source.backend.metadata(source.ref))
    if not fingerprinted:
        return SourceInfo(source.ref.name, meta.version, source.backend.description), meta
    fingerprint = from_metadata(meta, local_folder(source.backend, source.ref))
    return SourceInfo(source.ref.name, meta.version, source.backend.description,
                      fingerprint), meta


def _labels(side: str, source: Side, path: Path, image: Callable[[], np.ndarray]) -> np.ndarray:
    if isinstance(source, PredictionFolder):
        return source.labels(path)
    return label_array_for_png(
        _named(side, source, lambda: source.backend.predict(image(), source.ref,
                                                            source.signature)).labels)


def _compare(result: ImageResult, a: Side, b: Side, options: ReviewOptions,
             num_classes: int | None, found_classes: bool = False) -> None:
    decoded: list[np.ndarray] = []

    def image() -> np.ndarray:  # decoded once, and only when a model must run
        if not decoded:
            decoded.append(load_image(result.path))
        return decoded[0]

    labels_a = _labels("A", a, result.path, image)
    labels_b = _labels("B", b, result.path, image)
    if labels_a.shape != labels_b.shape:
        raise ImageLoadError(f"'{result.path}': A's labels are {labels_a.shape[1]}x"
                             f"{labels_a.shape[0]} but B's {labels_b.shape[1]}x"
                             f"{labels_b.shape[0]} — predictions of another image?")
    mask, agree = disagreement(labels_a, labels_b)
    result.labels_a, result.labels_b = labels_a, labels_b
    result.agreement = agree
    result.pixels = mask.size
    result.agree_pixels = mask.size - int(np.count_nonzero(mask))
    result.counts_a, result.counts_b = class_counts(labels_a), class_counts(labels_b)
    if result.gt_path is None or (num_classes is None and not found_classes):
        return
    gt = load_ground_truth(result.gt_path, options.gt_palette, options.ignore_label)
    if num_classes is None:
        num_classes = classes_present(gt, options.ignore_label, labels_a, labels_b)
    if gt.shape != labels_a.shape:
        raise ImageLoadError(f"ground truth '{result.gt_path}' is {gt.shape[1]}x{gt.shape[0]} but "
                             f"'{result.path}' is {labels_a.shape[1]}x{labels_a.shape[0]} — "
                             "ground truth must have the image's size")
    result.scores_a = scores(confusion_matrix(gt, labels_a, num_classes, options.ignore_label))
    result.scores_b = scores(confusion_matrix(gt, labels_b, num_classes, options.ignore_label))


def classes_present(gt: np.ndarray, ignore_label: int, *predictions: np.ndarray) -> int:
    """How many classes to score with when nothing says (prediction folders): up to the
    largest id the ground truth (its ignore id left out) and the predictions hold."""
    held = gt[gt != ignore_label]
    return 1 + max(int(held.max(initial=0)), *(int(p.max(initial=0)) for p in predictions))


def _named(side: str, source: Source, call: Callable[[], _T]) -> _T:
    """`call()`, with "model A (name v1): " before its BackendError: both sides may be versions
    of one model, so the model's name alone does not say which failed."""
    try:
        return call()
    except BackendError as exc:
        raise BackendError(f"model {side} ({source.ref}): {exc}", exc.code) from None


def _sum_confusions(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """The sum of confusion matrices, the smaller ones padded with zeros (classes they lack)."""
    size = max(m.shape[0] for m in matrices)
    total = np.zeros((size, size), np.int64)
    for m in matrices:
        total[:m.shape[0], :m.shape[1]] += m
    return total


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


class SessionVerdicts:
    """The review store's verdicts on one session's images and models, as `reviewer` sees and
    edits them: their own verdict per image, and every reviewer's."""

    def __init__(self, store: ReviewStore, session: ReviewSession,
                 reviewer: str | None = None) -> None:
        self.store = store
        self.session = session
        self.pair = session.pair
        self.reviewer = (reviewer or "").strip() or default_reviewer()
        self._hash = {r.key: r.sha256 for r in session.results if r.sha256}
        self._lock = threading.Lock()
        self.refresh()

    @property
    def path(self) -> Path:
        return self.store.path

    def refresh(self) -> None:
        """Read again what every reviewer has recorded (others may write at the same time)."""
        by_hash = self.store.verdicts(self.pair)
        with self._lock:
            self._by_hash = by_hash

    def all(self, key: str) -> list[VerdictEntry]:
        """Every reviewer's verdict on the image, by reviewer name."""
        return list(self._by_hash.get(self._hash.get(key, ""), []))

    def get(self, key: str) -> VerdictEntry | None:
        """This reviewer's verdict on the image."""
        return next((e for e in self.all(key) if e.reviewer == self.reviewer), None)

    def set(self, key: str, verdict: Verdict | str | None, note: str = "",
            provenance: str = "") -> None:
        """Record (or, with None, clear) this reviewer's verdict on one image, in the store;
        `provenance`: a "fixed" verdict's record."""
        sha = self._hash.get(key)
        if sha is None:
            raise ReviewError(f"'{key}' was not compared in this review")
        entry = self.store.record(self.pair, sha, key, self.reviewer, verdict, note, provenance)
        with self._lock:
            others = [e for e in self._by_hash.get(sha, []) if e.reviewer != self.reviewer]
            self._by_hash[sha] = sorted(others + ([entry] if entry else []),
                                        key=lambda e: e.reviewer)

    @property
    def verdicts(self) -> dict[str, list[VerdictEntry]]:
        """{image key: every reviewer's verdict} for the images that have any."""
        return {key: self.all(key) for key in self._hash if self.all(key)}

    def import_legacy(self, path: Path) -> int:
        """Import an old `.segviewer-review.json` for these images, as this reviewer."""
        count = self.store.import_legacy(path, self.pair, self._hash, self.reviewer)
        self.refresh()
        return count

    def export(self, path: Path) -> int:
        """Write every reviewer's verdicts on these two models to a .csv or .json file."""
        return self.store.export(path, self.pair)

    @property
    def reviewers(self) -> list[str]:
        return sorted({e.reviewer for entries in self._by_hash.values() for e in entries})

    def counts(self) -> dict[Verdict, int]:
        """Images per verdict, each counted once by its reviewers' consensus."""
        found = {v: 0 for v in Verdict}
        for key in self._hash:
            verdict = consensus(self.all(key))
            if verdict is not None:
                found[verdict] += 1
        return found

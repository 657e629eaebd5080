"""Saving a corrected label map as ground truth, with where it came from.

The file goes into the ground-truth folder the user picked, under the name the review matches on
(the image's stem, `match_ground_truth`): an existing PNG for that stem is replaced, so the match
stays unambiguous. It is a lossless gray PNG with the ids unchanged (8-bit, or 16-bit when an id
is above 255), written to a temporary file and renamed. Its provenance (the model and version the
correction started from, who, when) is a JSON tEXt chunk `segviewer-edit`, and `fixed_verdict`
gives the same as a record for a review store's "fixed" verdict.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from segviewer.core.images import atomic_write_bytes, encode_png, label_array_for_png
from segviewer.core.provenance import insert_text

if TYPE_CHECKING:
    from segviewer.core.review import ImageResult

PROVENANCE_KEY = "segviewer-edit"


class GroundTruthError(Exception):
    """Ground truth that cannot be saved; one line for the user, naming the file and the fix."""


@dataclass(frozen=True)
class Provenance:
    image: str  # the photo the labels belong to
    model: str  # what the correction started from: a model and version, or "ground truth"
    version: int | None
    source: str  # the backend (server address or SavedModel folder), or the file edited
    changed_pixels: int
    edits: int  # strokes, fills and polygons kept
    editor: str
    time: str  # UTC, ISO 8601

    @classmethod
    def now(cls, image: str | Path, model: str, version: int | None, source: str,
            changed_pixels: int, edits: int, editor: str = "") -> Provenance:
        if not editor:
            try:
                editor = getpass.getuser()
            except (KeyError, OSError):  # no passwd entry (containers)
                editor = "unknown"
        return cls(str(image), model, version, source, changed_pixels, edits, editor,
                   datetime.now(UTC).isoformat(timespec="seconds"))


def ground_truth_path(image: str | Path, gt_dir: str | Path) -> Path:
    """Where the ground truth of `image` goes in `gt_dir`: the PNG already matched to it, else
    `<gt_dir>/<stem>.png`."""
    from segviewer.core.review import ReviewError, match_ground_truth  # not at viewer start-up

    gt_dir = Path(gt_dir)
    if gt_dir.exists() and not gt_dir.is_dir():
        raise GroundTruthError(f"cannot save ground truth into '{gt_dir}': it is a file, not a "
                               "folder — pick a folder")
    existing = None
    if gt_dir.is_dir():
        try:
            existing = match_ground_truth([Path(image)], gt_dir)[Path(image)]
        except ReviewError as exc:
            raise GroundTruthError(str(exc)) from None
    if existing is None:
        return gt_dir / f"{Path(image).stem}.png"
    if existing.suffix.lower() != ".png":
        raise GroundTruthError(f"'{existing}' is already the ground truth of "
                               f"'{Path(image).name}' — remove it or pick another folder")
    return existing


def save_ground_truth(labels: np.ndarray, image: str | Path, gt_dir: str | Path,
                      provenance: Provenance) -> Path:
    """Write `labels` as the ground truth of `image` in `gt_dir` (created if missing); the path
    written. GroundTruthError (one line) when it cannot be written; nothing half-written."""
    path = ground_truth_path(image, gt_dir)
    data = insert_text(encode_png(label_array_for_png(labels)), PROVENANCE_KEY,
                       json.dumps(asdict(provenance), sort_keys=True))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GroundTruthError(f"cannot save ground truth '{path}': {reason} — pick a folder "
                               "you can write to") from None
    return path


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The provenance saved in a ground-truth PNG, or None when it has none."""
    with Image.open(path) as img:
        text = img.text.get(PROVENANCE_KEY) if hasattr(img, "text") else None
    return None if text is None else json.loads(text)


def fixed_verdict(provenance: Provenance, gt_path: str | Path) -> dict[str, Any]:
    """The record a review store keeps next to a "fixed" verdict for this image."""
    return {"verdict": "fixed", "ground_truth": str(gt_path), **asdict(provenance)}


def fixed_note(provenance: Provenance, gt_path: str | Path) -> str:
    """A "fixed" verdict's note, as the queue and the report show it: from what, how much,
    where the ground truth went."""
    start = provenance.model if provenance.version is None \
        else f"{provenance.model} v{provenance.version}"
    return (f"fixed from {start}: {provenance.changed_pixels:,} px in {provenance.edits} "
            f"edit(s), ground truth {gt_path}")


def rescore(result: ImageResult, gt_path: Path, gt: np.ndarray, num_classes: int | None,
            ignore_label: int) -> None:
    """Score both models of a review result against ground truth just saved, as `run_review`
    does, so the compare window's numbers use it at once. `num_classes` None (prediction
    folders): the ids present."""
    from segviewer.core.compare import confusion_matrix, scores
    from segviewer.core.review import classes_present

    if num_classes is None:
        num_classes = classes_present(gt, ignore_label, result.labels_a, result.labels_b)
    result.gt_path = Path(gt_path)
    result.scores_a = scores(confusion_matrix(gt, result.labels_a, num_classes, ignore_label))
    result.scores_b = scores(confusion_matrix(gt, result.labels_b, num_classes, ignore_label))

"""Scoring label maps: a bincount confusion matrix, pixel accuracy, per-class and mean IoU, and
the agreement of two models on the same images.

Confusion matrices add up: sum the matrices of many images, then call `scores` once, to get
dataset-level numbers (as DeepLab's eval computes mIoU), not a mean of per-image numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segviewer.core.labels import Palette
from segviewer.core.overlay import disagreement


def confusion_matrix(
    gt: np.ndarray,
    pred: np.ndarray,
    num_classes: int,
    ignore_label: int | None = 255,
) -> np.ndarray:
    """int64 [C, C]: entry [g, p] counts pixels of ground-truth class g predicted as p.

    Pixels whose ground truth is `ignore_label` are left out. Any other id outside 0..C-1 is an
    error (the wrong `num_classes`, or a label map from another dataset)."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    for what, array in (("ground truth", gt), ("prediction", pred)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what} must hold integer class ids, got dtype {array.dtype}")
    keep = gt != ignore_label if ignore_label is not None else np.ones(gt.shape, dtype=bool)
    g = gt[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    for what, values in (("ground truth", g), ("prediction", p)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(f"{what} has class id {int(bad[0])}, outside 0-{num_classes - 1} "
                             "(check num_classes and ignore_label)")
    counts = np.bincount(g * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass
class Scores:
    """pixel_accuracy in [0, 1]; per_class_iou [C] with nan where a class is in neither map;
    mean_iou is the mean over the classes that are not nan (nan when there are none)."""

    pixel_accuracy: float
    per_class_iou: np.ndarray
    mean_iou: float
    confusion: np.ndarray


def scores(confusion: np.ndarray) -> Scores:
    confusion = np.asarray(confusion, dtype=np.int64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {confusion.shape}")
    total = int(confusion.sum())
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    iou = np.full(len(hits), np.nan)
    present = union > 0
    iou[present] = hits[present] / union[present]
    return Scores(
        pixel_accuracy=float(hits.sum() / total) if total else float("nan"),
        per_class_iou=iou,
        mean_iou=float(iou[present].mean()) if present.any() else float("nan"),
        confusion=confusion,
    )


def iou_deltas(a: Scores, b: Scores) -> np.ndarray:
    """Per-class IoU of `b` minus that of `a` (nan where either is nan)."""
    if a.per_class_iou.shape != b.per_class_iou.shape:
        raise ValueError(f"scores cover {len(a.per_class_iou)} and {len(b.per_class_iou)} classes")
    return b.per_class_iou - a.per_class_iou


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Percent of pixels where two label maps give the same class (100 for empty maps)."""
    return disagreement(a, b)[1]


def gt_from_color(rgb: np.ndarray, palette: Palette, unknown_label: int = 255) -> np.ndarray:
    """Turn a colour-coded ground-truth image back into class ids.

    A colour shared by several classes maps to the lowest id; colours not in the palette become
    `unknown_label`. Returns uint8 when every id fits, else uint16."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"a colour ground truth must be uint8 [H, W, 3], got {rgb.dtype} "
                         f"{rgb.shape}")
    dtype = np.uint8 if max(len(palette) - 1, unknown_label) < 256 else np.uint16
    keys = _pack(rgb.reshape(-1, 3))
    palette_keys = _pack(palette.colors)
    # Lowest id per colour: np.unique returns the first occurrence of each key.
    unique_keys, first = np.unique(palette_keys, return_index=True)
    image_keys, inverse = np.unique(keys, return_inverse=True)
    pos = np.clip(np.searchsorted(unique_keys, image_keys), 0, len(unique_keys) - 1)
    found = unique_keys[pos] == image_keys
    ids = np.where(found, first[pos], unknown_label).astype(dtype)
    return ids[inverse].reshape(rgb.shape[:2])


def _pack(colors: np.ndarray) -> np.ndarray:
    colors = colors.astype(np.uint32)
    return (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]

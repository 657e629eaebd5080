"""compare.py against confusion matrices and IoUs worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segviewer.core.compare import (
    agreement,
    confusion_matrix,
    gt_from_color,
    iou_deltas,
    scores,
)
from segviewer.core.labels import colorize, get_palette

GT = np.array([[0, 0, 1],
               [1, 255, 2]], dtype=np.uint8)
PRED = np.array([[0, 1, 1],
                 [1, 2, 0]], dtype=np.int64)


def test_confusion_matrix_by_hand():
    # kept pixels (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0); the 255 pixel is ignored
    expected = [[1, 1, 0],
                [0, 2, 0],
                [1, 0, 0]]
    matrix = confusion_matrix(GT, PRED, 3)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, expected)


def test_confusion_matrix_without_ignore_label():
    gt = np.array([[0, 1]])
    pred = np.array([[1, 1]])
    matrix = confusion_matrix(gt, pred, 2, ignore_label=None)
    np.testing.assert_array_equal(matrix, [[0, 1], [0, 1]])


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(GT, PRED[:1], 3)
    with pytest.raises(ValueError, match="prediction has class id 2, outside 0-1"):
        confusion_matrix(np.array([[0, 1]]), np.array([[2, 0]]), 2)
    with pytest.raises(ValueError, match="ground truth has class id 255"):
        confusion_matrix(GT, PRED, 3, ignore_label=None)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(GT.astype(float), PRED, 3)


def test_scores_by_hand():
    result = scores(confusion_matrix(GT, PRED, 3))
    assert result.pixel_accuracy == pytest.approx(3 / 5)
    # class 0: tp 1, fn 1, fp 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 0, fn 1 -> 0
    np.testing.assert_allclose(result.per_class_iou, [1 / 3, 2 / 3, 0.0])
    assert result.mean_iou == pytest.approx(1 / 3)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 0]])
    result = scores(confusion_matrix(gt, pred, 4))
    # class 0: tp 2, fp 1 -> 2/3; class 1: tp 1, fn 1 -> 1/2; classes 2, 3 absent
    np.testing.assert_allclose(result.per_class_iou[:2], [2 / 3, 1 / 2])
    assert np.isnan(result.per_class_iou[2:]).all()
    assert result.mean_iou == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_confusion_matrices_add_up_over_images():
    a = confusion_matrix(np.array([[0, 1]]), np.array([[0, 0]]), 2)
    b = confusion_matrix(np.array([[1, 1]]), np.array([[1, 1]]), 2)
    result = scores(a + b)
    # totals: [[1, 0], [1, 2]] -> class 0: 1/2, class 1: 2/3
    np.testing.assert_allclose(result.per_class_iou, [1 / 2, 2 / 3])
    assert result.pixel_accuracy == pytest.approx(3 / 4)


def test_empty_scores():
    result = scores(np.zeros((3, 3), dtype=np.int64))
    assert math.isnan(result.pixel_accuracy) and math.isnan(result.mean_iou)
    with pytest.raises(ValueError, match="square"):
        scores(np.zeros((2, 3)))


def test_iou_deltas():
    base = scores(np.array([[1, 1], [0, 2]]))  # 1/2, 2/3
    better = scores(np.array([[2, 0], [0, 2]]))  # 1, 1
    np.testing.assert_allclose(iou_deltas(base, better), [1 / 2, 1 / 3])


def test_agreement():
    assert agreement(np.array([[1, 2, 3, 4]]), np.array([[1, 2, 0, 0]])) == 50.0
    assert agreement(np.zeros((0, 0)), np.zeros((0, 0))) == 100.0


def test_gt_from_color_round_trip():
    pascal = get_palette("pascal")
    labels = np.array([[0, 15, 255], [3, 20, 1]], dtype=np.uint8)
    rgb, _ = colorize(labels, pascal)
    rgb[1, 2] = (1, 2, 3)  # not a PASCAL colour
    ids = gt_from_color(rgb, pascal)
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, [[0, 15, 255], [3, 20, 255]])


def test_gt_from_color_shared_colour_takes_lowest_id():
    shared = get_palette("cityscapes").with_color(5, (255, 0, 0))  # 5 and 12 (rider) both red
    rgb = np.array([[[255, 0, 0], [128, 64, 128], [9, 9, 9]]], dtype=np.uint8)
    np.testing.assert_array_equal(gt_from_color(rgb, shared, unknown_label=99), [[5, 0, 99]])


def test_gt_from_color_reads_mapillary_ground_truth():
    vistas = get_palette("mapillary")  # the dataset's own colours: one per class
    rgb = np.array([[[255, 0, 100], [120, 10, 10], [0, 0, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(gt_from_color(rgb, vistas), [[21, 64, 65]])


def test_gt_from_color_wide_ids_use_uint16():
    palette = get_palette("cityscapes").with_color(400, (5, 5, 5))
    ids = gt_from_color(np.array([[[5, 5, 5]]], dtype=np.uint8), palette)
    assert ids.dtype == np.uint16 and ids[0, 0] == 400

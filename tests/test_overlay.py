"""overlay.py against values worked out by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from segviewer.core.overlay import (
    DIFF_COLOR,
    blend,
    boundaries,
    class_counts,
    class_shares,
    disagreement,
    disagreement_image,
)

IMAGE = np.array([[[100, 10, 0], [255, 255, 255]],
                  [[0, 0, 0], [7, 8, 9]]], dtype=np.uint8)
COLORS = np.array([[[201, 20, 255], [0, 0, 0]],
                   [[255, 255, 255], [7, 8, 9]]], dtype=np.uint8)
LABELS = np.array([[1, 2], [3, 2]], dtype=np.uint16)


def test_blend_opacity_zero_is_the_image():
    np.testing.assert_array_equal(blend(IMAGE, COLORS, 0.0), IMAGE)


def test_blend_opacity_one_is_the_colour_map():
    np.testing.assert_array_equal(blend(IMAGE, COLORS, 1.0), COLORS)


def test_blend_half_rounds_half_up():
    out = blend(IMAGE, COLORS, 0.5)
    assert out.dtype == np.uint8
    # (100+201)/2 = 150.5 -> 151, (10+20)/2 = 15, (0+255)/2 = 127.5 -> 128, (255+0)/2 -> 128
    np.testing.assert_array_equal(out[0, 0], [151, 15, 128])
    np.testing.assert_array_equal(out[0, 1], [128, 128, 128])
    np.testing.assert_array_equal(out[1, 1], [7, 8, 9])


def test_blend_quarter():
    out = blend(IMAGE, COLORS, 0.25)
    # 100*0.75 + 201*0.25 = 125.25 -> 125; 10*0.75 + 20*0.25 = 12.5 -> 13; 255*0.25 = 63.75 -> 64
    np.testing.assert_array_equal(out[0, 0], [125, 13, 64])


def test_blend_any_opacity_is_within_one_level():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    colors = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for opacity in (0.1, 0.33, 0.6, 0.9):
        exact = np.floor(image * (1 - opacity) + colors * opacity + 0.5)
        assert np.abs(blend(image, colors, opacity) - exact).max() <= 1


def test_hidden_classes_show_the_image():
    out = blend(IMAGE, COLORS, 1.0, labels=LABELS, hidden=[2, 99])
    np.testing.assert_array_equal(out[0, 1], IMAGE[0, 1])  # class 2: image
    np.testing.assert_array_equal(out[1, 1], IMAGE[1, 1])
    np.testing.assert_array_equal(out[0, 0], COLORS[0, 0])  # class 1, 3: colour
    np.testing.assert_array_equal(out[1, 0], COLORS[1, 0])


def test_blend_rejects_bad_input():
    with pytest.raises(ValueError, match="opacity"):
        blend(IMAGE, COLORS, 1.5)
    with pytest.raises(ValueError, match="differ in size"):
        blend(IMAGE, COLORS[:1], 0.5)
    with pytest.raises(ValueError, match="needs the label map"):
        blend(IMAGE, COLORS, 0.5, hidden=[1])
    with pytest.raises(ValueError, match="differ in size"):
        blend(IMAGE, COLORS, 0.5, labels=LABELS[:1], hidden=[1])
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        blend(IMAGE.astype(np.float32), COLORS, 0.5)


def test_class_counts_and_shares():
    labels = np.array([[0, 0, 5], [5, 5, 300], [0, 0, 0]], dtype=np.uint16)
    assert class_counts(labels) == {0: 5, 5: 3, 300: 1}
    shares = class_shares(labels)
    assert list(shares) == [0, 5, 300]
    assert shares[0] == pytest.approx(500 / 9) and shares[300] == pytest.approx(100 / 9)
    assert sum(shares.values()) == pytest.approx(100.0)
    assert class_counts(np.zeros((0, 4), dtype=np.uint8)) == {}


def test_shares_sum_to_100_on_a_big_map():
    labels = np.random.default_rng(3).integers(0, 151, (257, 311))
    assert sum(class_shares(labels).values()) == pytest.approx(100.0)


def test_boundaries():
    labels = np.array([[1, 1, 2],
                       [1, 1, 2],
                       [3, 3, 3]])
    expected = np.array([[False, True, True],
                         [True, True, True],
                         [True, True, True]])
    np.testing.assert_array_equal(boundaries(labels), expected)
    assert not boundaries(np.full((3, 4), 7)).any()


def test_disagreement():
    a = np.array([[1, 2], [3, 4]])
    b = np.array([[1, 0], [3, 0]])
    mask, agree = disagreement(a, b)
    np.testing.assert_array_equal(mask, [[False, True], [False, True]])
    assert agree == 50.0
    assert disagreement(a, a)[1] == 100.0
    with pytest.raises(ValueError, match="differ in size"):
        disagreement(a, b[:1])


def test_disagreement_image():
    a = np.array([[1, 2], [3, 4]])
    b = np.array([[1, 0], [3, 4]])
    out = disagreement_image(IMAGE, a, b, dim=0.5)
    np.testing.assert_array_equal(out[0, 1], DIFF_COLOR)
    np.testing.assert_array_equal(out[0, 0], [50, 5, 0])  # dimmed to half
    np.testing.assert_array_equal(out[1, 1], [4, 4, 5])  # 3.5 -> 4, 4 -> 4, 4.5 -> 5

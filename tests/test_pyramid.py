"""Pyramid levels of a photo (what a zoomed-out view of a huge image draws). No Qt."""

from __future__ import annotations

import numpy as np

from segviewer.core.pyramid import build_levels, half, level_for


def test_half_averages_2x2_blocks_rounding_half_up_and_drops_an_odd_edge():
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[0:2, 0:2] = [[[0, 0, 0], [1, 0, 0]], [[1, 0, 0], [0, 255, 9]]]
    out = half(rgb)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [1, 64, 2]  # (0+1+1+0)/4 = 0.5 -> 1; 255/4 -> 64; 9/4 -> 2


def test_half_works_in_strips_like_at_once():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1300, 40, 3), np.uint8)  # more rows than one strip
    expected = (rgb.reshape(650, 2, 20, 2, 3).astype(np.uint16).sum(axis=(1, 3)) + 2) // 4
    np.testing.assert_array_equal(half(rgb), expected)


def test_levels_stop_at_the_smallest_size_and_keep_the_image_itself():
    rgb = np.zeros((5000, 3000, 3), np.uint8)
    levels = build_levels(rgb, smallest=1024)
    assert levels[0] is rgb
    assert [level.shape[:2] for level in levels] == [(5000, 3000), (2500, 1500), (1250, 750),
                                                     (625, 375)]
    assert len(build_levels(np.zeros((600, 800, 3), np.uint8))) == 1  # small: no levels


def test_the_level_drawn_never_has_fewer_pixels_than_the_screen():
    assert level_for(1.0, 5) == 0 and level_for(0.6, 5) == 0
    assert level_for(0.5, 5) == 1 and level_for(0.3, 5) == 1
    assert level_for(0.25, 5) == 2 and level_for(0.01, 5) == 4  # no coarser than the last

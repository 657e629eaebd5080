"""Downsampled levels of a photo, so a zoomed-out view of a huge image draws few pixels.

Level 0 is the image itself; each next level halves both sides (2x2 box average, rounded), until
the longer side is at most `smallest`. A 10000x10000 RGB image (300 MB) gets levels adding a
third of that. Built in horizontal strips so the temporaries stay small.
"""

from __future__ import annotations

import numpy as np

SMALLEST = 1024  # no level below this: a screen shows at least this much at once anyway
_STRIP = 512  # rows of the smaller level computed at once


def half(rgb: np.ndarray) -> np.ndarray:
    """`rgb` [H, W, C] uint8 at half size (odd last row/column dropped), 2x2 averages."""
    height, width = rgb.shape[0] // 2, rgb.shape[1] // 2
    out = np.empty((height, width, *rgb.shape[2:]), np.uint8)
    for top in range(0, height, _STRIP):
        rows = rgb[2 * top:2 * min(height, top + _STRIP), : 2 * width]
        acc = rows[0::2, 0::2].astype(np.uint16)
        acc += rows[1::2, 0::2]
        acc += rows[0::2, 1::2]
        acc += rows[1::2, 1::2]
        acc += 2  # round half up
        acc >>= 2
        out[top:top + acc.shape[0]] = acc
    return out


def build_levels(rgb: np.ndarray, smallest: int = SMALLEST) -> list[np.ndarray]:
    """[rgb, rgb/2, rgb/4, ...] down to the first level whose longer side is <= `smallest`."""
    levels = [rgb]
    while max(levels[-1].shape[:2]) > smallest and min(levels[-1].shape[:2]) >= 2:
        levels.append(half(levels[-1]))
    return levels


def level_for(scale: float, count: int) -> int:
    """The level to draw at `scale` screen pixels per image pixel: the smallest that still has
    at least one pixel per screen pixel (so zooming out never shows a coarser picture)."""
    level = 0
    while level + 1 < count and scale * (1 << (level + 1)) <= 1.0:
        level += 1
    return level

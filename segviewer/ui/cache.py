"""Predictions kept per (image, model identity) so that flipping back is instant."""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from segviewer.core.serving.base import Prediction
from segviewer.core.viewer_state import ModelIdentity


class CacheKey(NamedTuple):
    path: str
    identity: ModelIdentity
    probabilities: bool = False  # asked for class probabilities too


def _nbytes(prediction: Prediction) -> int:
    probs = prediction.probabilities
    return prediction.labels.nbytes + (probs.nbytes if probs is not None else 0)


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """The smallest unsigned dtype that holds the ids (int64 maps are 8x larger than needed)."""
    if labels.size and labels.min() >= 0:
        top = int(labels.max())
        for dtype in (np.uint8, np.uint16):
            if top <= np.iinfo(dtype).max:
                return labels.astype(dtype, copy=False)
    return labels


class PredictionCache:
    """Least-recently-used, bounded by memory rather than count (a 4K label map is 8 MB)."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, Prediction] = OrderedDict()
        self._bytes = 0

    def get(self, key: CacheKey) -> Prediction | None:
        prediction = self._items.get(key)
        if prediction is not None:
            self._items.move_to_end(key)
        return prediction

    def put(self, key: CacheKey, prediction: Prediction) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        self._items[key] = prediction
        self._bytes += _nbytes(prediction)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= _nbytes(evicted)

    def forget_path(self, path: str) -> None:
        """Drop every model's result for one image (the file changed on disk)."""
        for key in [k for k in self._items if k.path == path]:
            self._bytes -= _nbytes(self._items.pop(key))

    def __contains__(self, key: CacheKey) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

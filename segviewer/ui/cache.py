"""Results and decoded images kept per image, so flipping back is instant: one LRU with one
memory limit (settings.CACHE_MB) for both. The image on screen is pinned: evicting never drops
what is shown (its result is also held by the state while shown)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from segviewer.core.serving.base import Prediction
from segviewer.core.viewer_state import ModelIdentity

if TYPE_CHECKING:
    from segviewer.ui.tasks import Loaded


class CacheKey(NamedTuple):
    path: str
    identity: ModelIdentity
    probabilities: bool = False  # asked for class probabilities too


class ImageKey(NamedTuple):
    path: str


def _nbytes(item: Prediction | Loaded) -> int:
    if isinstance(item, Prediction):
        probs = item.probabilities
        return item.labels.nbytes + (probs.nbytes if probs is not None else 0)
    return sum(level.nbytes for level in item.levels)  # levels[0] is the image itself


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
        self.pinned: str | None = None  # the path on screen
        self._items: OrderedDict[CacheKey | ImageKey, Prediction | Loaded] = OrderedDict()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: CacheKey) -> Prediction | None:
        return self._get(key)

    def image(self, path: str) -> Loaded | None:
        return self._get(ImageKey(path))

    def _get(self, key):
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: CacheKey, prediction: Prediction) -> None:
        self._put(key, prediction)

    def put_image(self, loaded: Loaded) -> None:
        self._put(ImageKey(loaded.path), loaded)

    def _put(self, key: CacheKey | ImageKey, item: Prediction | Loaded) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        self._items[key] = item
        self._bytes += _nbytes(item)
        self._evict()

    def pin(self, path: str | None) -> None:
        """Keep `path`'s image and results whatever the limit (the image on screen)."""
        self.pinned = path
        self._evict()

    def _evict(self) -> None:
        kept = []  # the pinned image's entries, put back as the most recent
        while self._bytes > self.max_bytes and self._items:
            key, item = self._items.popitem(last=False)  # the least recently used
            if key.path == self.pinned:
                kept.append((key, item))
            else:
                self._bytes -= _nbytes(item)
        self._items.update(kept)

    def forget_path(self, path: str) -> None:
        """Drop every model's result and the decoded image of one image (the file changed)."""
        for key in [k for k in self._items if k.path == path]:
            self._bytes -= _nbytes(self._items.pop(key))

    def __contains__(self, key: CacheKey) -> bool:
        return key in self._items

    def __len__(self) -> int:
        """How many results are held (decoded images not counted)."""
        return sum(isinstance(key, CacheKey) for key in self._items)

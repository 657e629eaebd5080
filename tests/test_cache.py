"""The viewer's one LRU for results and decoded images: bounded by memory, never dropping the
image on screen. Plain objects, no widgets or event loop."""

from __future__ import annotations

import numpy as np

from segviewer.core.serving.base import Prediction
from segviewer.core.viewer_state import ModelIdentity
from segviewer.ui.cache import CacheKey, PredictionCache
from segviewer.ui.tasks import Loaded

MODEL = ModelIdentity("toy", 1, "in-process")


def result(size: int) -> Prediction:
    return Prediction(np.zeros((size, 1000), np.uint8), None, "toy", 1, "serving_default")


def image(path: str, size: int) -> Loaded:
    rgb = np.zeros((size, 1000, 3), np.uint8)
    return Loaded(path, rgb, [rgb])


def test_least_recently_used_goes_first_within_the_memory_limit():
    cache = PredictionCache(max_bytes=10_000)  # ten 1,000-byte results
    for i in range(10):
        cache.put(CacheKey(f"{i}", MODEL), result(1))
    assert cache.get(CacheKey("0", MODEL)) is not None  # now the most recent
    cache.put(CacheKey("10", MODEL), result(1))
    assert CacheKey("1", MODEL) not in cache and CacheKey("0", MODEL) in cache
    assert len(cache) == 10 and cache.nbytes == 10_000


def test_decoded_images_share_the_limit_and_the_image_on_screen_stays():
    cache = PredictionCache(max_bytes=10_000)
    cache.put(CacheKey("shown", MODEL), result(1))
    cache.put_image(image("shown", 2))  # 6,000 bytes
    cache.pin("shown")
    cache.put_image(image("next", 1))  # 3,000 bytes: 10,000 in all
    assert cache.image("next") is not None and len(cache) == 1  # images are not results
    cache.put(CacheKey("other", MODEL), result(3))  # 3,000 more: the oldest unpinned goes
    assert cache.image("next") is None
    assert cache.image("shown") is not None and CacheKey("shown", MODEL) in cache
    cache.put_image(image("huge", 20))  # larger than the limit: it goes, the pinned stay
    assert cache.image("huge") is None and cache.image("shown") is not None
    cache.forget_path("shown")  # the file changed on disk
    assert cache.image("shown") is None and CacheKey("shown", MODEL) not in cache

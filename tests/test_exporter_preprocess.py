"""The align_corners resizes and resize_to_range against TF's own TF1 kernels and float32 maths."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from exporter import preprocess  # noqa: E402

SIZES = [((7, 9), (13, 4)), ((65, 65), (513, 513)), ((300, 451), (341, 513)), ((5, 6), (1, 1)),
         ((1, 1), (4, 3)), ((513, 513), (385, 385))]


@pytest.mark.parametrize(("src", "dst"), SIZES)
def test_bilinear_matches_tf1_kernel_exactly(src, dst):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-50, 300, (1, *src, 3)).astype(np.float32))
    ours = preprocess.resize_bilinear(images, tf.constant(dst)).numpy()
    tf1 = tf.raw_ops.ResizeBilinear(images=images, size=dst, align_corners=True).numpy()
    assert ours.shape == tf1.shape
    np.testing.assert_array_equal(ours, tf1)


@pytest.mark.parametrize(("src", "dst"), [*SIZES, ((341, 513), (300, 451)), ((9, 9), (18, 18))])
def test_nearest_matches_tf1_kernel_exactly(src, dst):
    labels = tf.constant(np.arange(src[0] * src[1], dtype=np.float32).reshape(1, *src, 1))
    ours = preprocess.resize_nearest(labels, tf.constant(dst)).numpy()
    tf1 = tf.raw_ops.ResizeNearestNeighbor(images=labels, size=dst, align_corners=True).numpy()
    np.testing.assert_array_equal(ours, tf1)


@pytest.mark.parametrize(("h", "w"), [(512, 512), (300, 451), (517, 333), (1080, 1920), (1, 900)])
def test_resize_to_range_uses_float32_floor(h, w):
    target = np.float32(513)
    small = target / np.float32(max(h, w))
    large = target / np.float32(min(h, w))
    large_size = np.floor(np.array([h, w], np.float32) * large).astype(int)
    want = large_size if large_size.max() <= 513 else np.floor(
        np.array([h, w], np.float32) * small).astype(int)
    got = preprocess.resize_to_range_size(tf.constant(h), tf.constant(w), 513).numpy()
    np.testing.assert_array_equal(got, want)
    assert got.max() <= 513


def test_prepare_pads_with_the_mean_pixel():
    image = tf.constant(np.full((1, 10, 20, 3), 200, np.uint8))
    padded, size = preprocess.prepare(image, (513, 513), preprocess.padding_pixel("scale"))
    assert padded.shape == (1, 513, 513, 3)
    assert size.numpy().tolist() == [256, 513]
    np.testing.assert_allclose(padded.numpy()[0, :256], 200, atol=1e-4)
    assert np.all(padded.numpy()[0, 256:] == 127.5)
    assert np.all(preprocess.normalize(padded, "scale").numpy()[0, 256:] == 0.0)

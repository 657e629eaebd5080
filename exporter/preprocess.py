"""The research export's pre- and post-processing, numerically as TF1 did it.

TF2's `tf.image.resize` has no `align_corners`, so the two TF1 resizes the research code relies on
are written here with gathers: the legacy scaler `x * (in - 1) / (out - 1)` and the kernel's exact
float32 interpolation order (resize_bilinear_op.cc, resize_nearest_neighbor_op.cc).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

# research mean_pixel() of every supported variant (the resnet _beta ones included: only the
# non-beta resnets, which we do not support, subtract the ImageNet mean).
MEAN_PIXEL = 127.5


def scale_dimension(dim: int, scale: float) -> int:
    """research model.scale_dimension for a static size."""
    return int((float(dim) - 1.0) * scale + 1.0)


def _source_coords(in_size: tf.Tensor, out_size: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    in_f = tf.cast(in_size, tf.float32)
    out_f = tf.cast(out_size, tf.float32)
    scale = tf.where(out_size > 1, (in_f - 1.0) / tf.maximum(out_f - 1.0, 1.0), in_f / out_f)
    return tf.cast(tf.range(out_size), tf.float32) * scale


def _linear_weights(in_size: tf.Tensor, out_size: tf.Tensor):
    import tensorflow as tf

    coords = _source_coords(in_size, out_size)
    floor = tf.floor(coords)
    lower = tf.maximum(tf.cast(floor, tf.int32), 0)
    upper = tf.minimum(tf.cast(tf.math.ceil(coords), tf.int32), tf.cast(in_size, tf.int32) - 1)
    return lower, upper, coords - floor


def resize_bilinear(images: tf.Tensor, size) -> tf.Tensor:
    """TF1 resize_bilinear(align_corners=True) of float32 NHWC images to `size` (h, w)."""
    import tensorflow as tf

    shape = tf.shape(images)
    y0, y1, ly = _linear_weights(shape[1], size[0])
    x0, x1, lx = _linear_weights(shape[2], size[1])
    top_rows = tf.gather(images, y0, axis=1)
    bottom_rows = tf.gather(images, y1, axis=1)
    lx = tf.reshape(lx, [1, 1, -1, 1])
    ly = tf.reshape(ly, [1, -1, 1, 1])
    top_left = tf.gather(top_rows, x0, axis=2)
    top = top_left + (tf.gather(top_rows, x1, axis=2) - top_left) * lx
    bottom_left = tf.gather(bottom_rows, x0, axis=2)
    bottom = bottom_left + (tf.gather(bottom_rows, x1, axis=2) - bottom_left) * lx
    return top + (bottom - top) * ly


def _nearest_index(in_size: tf.Tensor, out_size: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    coords = _source_coords(in_size, out_size)
    # roundf: halves away from zero (coords are >= 0), not tf.round's halves to even.
    floor = tf.floor(coords)
    rounded = floor + tf.cast(coords - floor >= 0.5, tf.float32)
    return tf.minimum(tf.cast(rounded, tf.int32), tf.cast(in_size, tf.int32) - 1)


def resize_nearest(images: tf.Tensor, size) -> tf.Tensor:
    """TF1 resize_nearest_neighbor(align_corners=True) of NHW or NHWC tensors to `size`."""
    import tensorflow as tf

    shape = tf.shape(images)
    rows = tf.gather(images, _nearest_index(shape[1], size[0]), axis=1)
    return tf.gather(rows, _nearest_index(shape[2], size[1]), axis=2)


def resize_to_range_size(height: tf.Tensor, width: tf.Tensor, size: int) -> tf.Tensor:
    """research preprocess_utils.resize_to_range with min_size = max_size = `size`: new [h, w].

    Kept in float32 like the research graph: floor(side * scale) may differ from float64 maths.
    """
    import tensorflow as tf

    target = tf.constant(float(size), tf.float32)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    large_scale = target / tf.minimum(h, w)
    large = tf.cast(tf.floor(tf.stack([h * large_scale, w * large_scale])), tf.int32)
    small_scale = target / tf.maximum(h, w)
    small = tf.cast(tf.floor(tf.stack([h * small_scale, w * small_scale])), tf.int32)
    return tf.where(tf.cast(tf.reduce_max(large), tf.float32) > target, small, large)


def prepare(image: tf.Tensor, crop: tuple[int, int], pad_value: tuple[float, float, float]):
    """uint8 [1, H, W, 3] -> (float32 [1, crop_h, crop_w, 3] padded image, resized [h, w]).

    As research input_preprocess for evaluation: resize so the long side fits the crop (the crop
    is square in practice; the research code takes min = max = crop side), then pad bottom/right
    to the crop size with the mean pixel.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    resized_size = resize_to_range_size(shape[1], shape[2], max(crop))
    resized = resize_bilinear(tf.cast(image, tf.float32), resized_size)
    # pad_to_bounding_box subtracts the pad value, pads with zeros and adds it back.
    mean = tf.constant(pad_value, tf.float32)
    target_h = tf.maximum(crop[0], resized_size[0])
    target_w = tf.maximum(crop[1], resized_size[1])
    padded = tf.pad(
        resized - mean,
        [[0, 0], [0, target_h - resized_size[0]], [0, target_w - resized_size[1]], [0, 0]],
    )
    padded = padded + mean
    return tf.ensure_shape(padded, [1, crop[0], crop[1], 3]), resized_size


def normalize(images: tf.Tensor, preprocessing: str) -> tf.Tensor:
    """research feature_extractor preprocessing of padded float images."""
    if preprocessing != "scale":
        raise ValueError(f"unknown preprocessing {preprocessing!r}")
    return (2.0 / 255.0) * images - 1.0


def padding_pixel(preprocessing: str) -> tuple[float, float, float]:
    """The mean pixel the research code pads with: it becomes 0 after `normalize`."""
    if preprocessing != "scale":
        raise ValueError(f"unknown preprocessing {preprocessing!r}")
    return (MEAN_PIXEL, MEAN_PIXEL, MEAN_PIXEL)

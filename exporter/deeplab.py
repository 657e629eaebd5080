"""The DeepLab V3+ network (research model.py) on top of a backbone, in TF2 ops.

Head: image pooling + ASPP (1x1, atrous separable 3x3s) + concat projection, optional decoder,
logits. `DeepLab.predict` is the research export graph: preprocess, single- or multi-scale (and
flipped) inference, argmax, slice the valid region, resize back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from exporter import ExportError, preprocess
from exporter.backbones import (
    Weights,
    batch_norm,
    batch_norm_shapes,
    conv2d,
    depthwise_conv2d,
    make_backbone,
)

if TYPE_CHECKING:
    import tensorflow as tf

HEAD_EPSILON = 1e-5  # model.py: get_batch_norm_params(epsilon=1e-5) for ASPP and the decoder
ASPP_DEPTH = 256  # aspp_convs_filters
DECODER_DEPTH = 256  # decoder_filters
PROJECTION_DEPTH = 48  # decoder feature projection


@dataclass(frozen=True)
class NetworkConfig:
    variant: str
    num_classes: int
    crop_size: tuple[int, int]
    output_stride: int
    atrous_rates: tuple[int, ...] = ()
    decoder_output_stride: int | None = None
    image_pooling: bool = True
    inference_scales: tuple[float, ...] = (1.0,)
    add_flipped_images: bool = False


def head_variables(
    config: NetworkConfig, feature_depth: int, low_level_depth: int | None
) -> dict[str, tuple[int, ...]]:
    """Every head variable the config reads, with its shape (low_level_depth: decoder input)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(scope: str, shape: tuple[int, ...], key: str = "weights") -> None:
        shapes[f"{scope}/{key}"] = shape
        shapes.update(batch_norm_shapes(scope, shape[-1] if key == "weights" else shape[2]))

    branches = 0
    if config.image_pooling:
        conv("image_pooling", (1, 1, feature_depth, ASPP_DEPTH))
        branches += 1
    conv("aspp0", (1, 1, feature_depth, ASPP_DEPTH))
    branches += 1
    for i in range(1, len(config.atrous_rates) + 1):
        conv(f"aspp{i}_depthwise", (3, 3, feature_depth, 1), key="depthwise_weights")
        conv(f"aspp{i}_pointwise", (1, 1, feature_depth, ASPP_DEPTH))
        branches += 1
    conv("concat_projection", (1, 1, branches * ASPP_DEPTH, ASPP_DEPTH))
    depth = ASPP_DEPTH
    if config.decoder_output_stride:
        conv("decoder/feature_projection0", (1, 1, low_level_depth, PROJECTION_DEPTH))
        depth = ASPP_DEPTH + PROJECTION_DEPTH
        for k in (0, 1):
            conv(f"decoder/decoder_conv{k}_depthwise", (3, 3, depth, 1), key="depthwise_weights")
            conv(f"decoder/decoder_conv{k}_pointwise", (1, 1, depth, DECODER_DEPTH))
            depth = DECODER_DEPTH
    shapes["logits/semantic/weights"] = (1, 1, depth, config.num_classes)
    shapes["logits/semantic/biases"] = (config.num_classes,)
    return shapes


def feature_depths(
    config: NetworkConfig, weights: Weights
) -> tuple[dict[str, tuple[int, ...]], int, int | None]:
    """The backbone's variables, and the depth of its features and of the decoder's input.

    The depths come from running the backbone once on a small image, so they hold for any
    backbone; that needs the backbone's variables, so call it after checking those.
    """
    import tensorflow as tf

    backbone = make_backbone(config.variant, weights, config.output_stride)
    side = 2 * config.output_stride + 1
    features, low_level = backbone(tf.zeros([1, side, side, 3]))
    low_depth = None
    if config.decoder_output_stride:
        if config.decoder_output_stride not in low_level:
            strides = ", ".join(str(s) for s in sorted(low_level)) or "none"
            raise ExportError(
                f"--decoder-output-stride {config.decoder_output_stride} is not available: "
                f"{config.variant} has decoder features at strides {strides}"
            )
        low_depth = low_level[config.decoder_output_stride].shape[-1]
    return backbone.expected_variables(), features.shape[-1], low_depth


class DeepLab:
    """The network with its weights as tf.Variables named as in the checkpoint.

    Not a tf.Module itself: the exporter attaches `variables` and the tf.functions to the module
    it saves, so that every signature shares one copy of the weights. With `frozen`, the weights
    are constants instead: the SavedModel then has no variables, and so none of the ops that
    TensorFlow >= 2.10 writes to save them (DisableCopyOnRead), which older servers cannot load.
    """

    def __init__(
        self, config: NetworkConfig, weights: Mapping[str, np.ndarray], frozen: bool = False
    ) -> None:
        import tensorflow as tf

        self.config = config
        self.variables = {
            name: tf.constant(value) if frozen else tf.Variable(value, trainable=False, name=name)
            for name, value in weights.items()
        }
        self.backbone = make_backbone(config.variant, self.variables, config.output_stride)
        self._padding = preprocess.padding_pixel(self.backbone.preprocessing)
        # One graph per input size, shared by every signature, scale and flip of the SavedModel.
        self._network = tf.function(self.network)

    def _conv_bn_relu(self, x: tf.Tensor, scope: str, rate: int = 1, depthwise: bool = False):
        import tensorflow as tf

        conv = depthwise_conv2d if depthwise else conv2d
        x = conv(x, self.variables, scope, 1, rate)
        return tf.nn.relu(batch_norm(x, self.variables, scope, HEAD_EPSILON))

    def _separable(self, x: tf.Tensor, scope: str, rate: int = 1) -> tf.Tensor:
        x = self._conv_bn_relu(x, f"{scope}_depthwise", rate=rate, depthwise=True)
        return self._conv_bn_relu(x, f"{scope}_pointwise")

    def network(self, images: tf.Tensor, crop: Sequence[int]) -> tf.Tensor:
        """Logits of padded float32 images [N, crop_h, crop_w, 3] (research `_get_logits`)."""
        import tensorflow as tf

        c = self.config
        features, low_level = self.backbone(
            preprocess.normalize(images, self.backbone.preprocessing)
        )
        size = [preprocess.scale_dimension(d, 1.0 / c.output_stride) for d in crop]
        branches = []
        if c.image_pooling:
            # Research pools with a fixed window of crop/output_stride (VALID), then resizes back.
            pooled = tf.nn.avg_pool2d(features, size, 1, "VALID")
            pooled = self._conv_bn_relu(pooled, "image_pooling")
            branches.append(preprocess.resize_bilinear(pooled, size))
        branches.append(self._conv_bn_relu(features, "aspp0"))
        for i, rate in enumerate(c.atrous_rates, 1):
            branches.append(self._separable(features, f"aspp{i}", rate))
        net = self._conv_bn_relu(tf.concat(branches, 3), "concat_projection")
        if c.decoder_output_stride:
            projected = self._conv_bn_relu(
                low_level[c.decoder_output_stride], "decoder/feature_projection0"
            )
            size = [preprocess.scale_dimension(d, 1.0 / c.decoder_output_stride) for d in crop]
            parts = [preprocess.resize_bilinear(t, size) for t in (net, projected)]
            net = self._separable(tf.concat(parts, 3), "decoder/decoder_conv0")
            net = self._separable(net, "decoder/decoder_conv1")
        logits = tf.nn.conv2d(net, self.variables["logits/semantic/weights"], 1, "SAME")
        return tf.nn.bias_add(logits, self.variables["logits/semantic/biases"])

    def _scale_logits(self, padded: tf.Tensor, scale: float, flip: bool) -> tf.Tensor:
        """research multi_scale_logits for one scale, resized to the crop size."""
        import tensorflow as tf

        c = self.config
        crop = c.crop_size
        images = padded
        if scale != 1.0:
            crop = tuple(preprocess.scale_dimension(d, scale) for d in c.crop_size)
            images = preprocess.resize_bilinear(padded, crop)
        if flip:
            images = tf.reverse(images, [2])
        logits_stride = c.decoder_output_stride or c.output_stride
        logits_size = [
            preprocess.scale_dimension(d, max(1.0, scale) / logits_stride) for d in c.crop_size
        ]
        logits = preprocess.resize_bilinear(self._network(images, tuple(crop)), logits_size)
        if flip:
            logits = tf.reverse(logits, [2])
        return preprocess.resize_bilinear(logits, c.crop_size)

    def predict(self, image: tf.Tensor, probabilities: bool = False):
        """uint8 [1, H, W, 3] -> int64 labels [1, H, W] (and float32 [1, H, W, C] if asked)."""
        import tensorflow as tf

        c = self.config
        padded, resized = preprocess.prepare(image, c.crop_size, self._padding)
        if c.inference_scales == (1.0,) and not c.add_flipped_images:
            # research predict_labels: argmax of the upsampled logits.
            scores = self._scale_logits(padded, 1.0, flip=False)
            probs = tf.nn.softmax(scores) if probabilities else None
        else:
            # research predict_labels_multi_scale: mean of the softmaxes.
            softmaxes = [
                tf.nn.softmax(self._scale_logits(padded, scale, flip))
                for scale in c.inference_scales
                for flip in ((False, True) if c.add_flipped_images else (False,))
            ]
            # reduce_mean over a stack, as the research code does: tf.add_n here makes the graph
            # unsafe to run from two threads at once in one process.
            scores = probs = tf.reduce_mean(tf.stack(softmaxes, axis=4), axis=4)
        labels = tf.argmax(scores, 3)[:, : resized[0], : resized[1]]
        original = tf.shape(image)[1:3]
        labels = preprocess.resize_nearest(labels, original)
        if not probabilities:
            return labels
        probs = preprocess.resize_bilinear(probs[:, : resized[0], : resized[1]], original)
        return labels, probs

"""MobileNetV2 as DeepLab uses it: slim `mobilenet_base` up to `layer_18` (Conv_1 left out).

Layer N of the research code is `Conv` (N=1) or `expanded_conv[_K]` (N=K+2). Once the requested
output stride is reached, later strides become 1 and the depthwise convolutions dilate instead
(slim's `mobilenet_base`: the layer that would have strided keeps the current rate, the rate is
multiplied for the layers after it).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.backbones import (
    DenseStrides,
    Weights,
    batch_norm,
    batch_norm_shapes,
    conv2d,
    depthwise_conv2d,
)

if TYPE_CHECKING:
    import tensorflow as tf

VARIANTS = ("mobilenet_v2",)
SCOPE = "MobilenetV2"
EPSILON = 1e-3  # slim batch_norm default, kept by mobilenet's training_scope
# (stride, output channels) of expanded_conv .. expanded_conv_16 in slim's V2_DEF.
_BLOCKS = (
    (1, 16), (2, 24), (1, 24), (2, 32), (1, 32), (1, 32), (2, 64), (1, 64), (1, 64), (1, 64),
    (1, 96), (1, 96), (1, 96), (2, 160), (1, 160), (1, 160), (1, 320),
)  # fmt: skip
_FIRST_CONV = 32
_EXPANSION = 6
# Depth multipliers of the published checkpoints; the one matching the checkpoint's shapes is used.
_MULTIPLIERS = (1.0, 0.75, 0.5, 0.35, 1.4, 1.3)
# Decoder end points of research feature_extractor.networks_to_feature_maps, by stride.
_DECODER_LAYERS = {4: 4, 8: 7, 16: 14}


def _make_divisible(value: float, divisor: int, min_value: int) -> int:
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


@dataclass(frozen=True)
class _Block:
    scope: str
    layer: int  # research end point number: layer_<layer>
    expand: int | None  # channels after the 1x1 expansion, None when there is none
    depth: int  # output channels
    stride: int
    rate: int
    residual: bool


def _plan(multiplier: float, output_stride: int) -> tuple[int, list[_Block]]:
    # DeepLab's _mobilenet_v2 rounds to multiples of 8 only at multiplier 1.0; the expansion always
    # rounds to 8 (expand_input_by_factor), except the first block's factor-1 "expansion".
    divisor = 8 if multiplier == 1.0 else 1
    first = _make_divisible(_FIRST_CONV * multiplier, divisor, divisor)
    dense = DenseStrides(2, output_stride)  # after Conv (stride 2; output strides are >= 4)
    blocks, depth_in = [], first
    for k, (stride, depth) in enumerate(_BLOCKS):
        depth_out = _make_divisible(depth * multiplier, divisor, divisor)
        layer_stride, layer_rate = dense.next(stride)
        expand = _make_divisible(depth_in * _EXPANSION, 8, 8) if k else depth_in
        blocks.append(
            _Block(
                scope=f"{SCOPE}/expanded_conv" + (f"_{k}" if k else ""),
                layer=k + 2,
                expand=expand if expand > depth_in else None,
                depth=depth_out,
                stride=layer_stride,
                rate=layer_rate,
                residual=layer_stride == 1 and depth_in == depth_out,
            )
        )
        depth_in = depth_out
    return first, blocks


def _variables(first: int, blocks: list[_Block]) -> dict[str, tuple[int, ...]]:
    shapes = {f"{SCOPE}/Conv/weights": (3, 3, 3, first)}
    shapes.update(batch_norm_shapes(f"{SCOPE}/Conv", first))
    depth_in = first
    for b in blocks:
        inner = depth_in
        if b.expand:
            inner = b.expand
            shapes[f"{b.scope}/expand/weights"] = (1, 1, depth_in, inner)
            shapes.update(batch_norm_shapes(f"{b.scope}/expand", inner))
        shapes[f"{b.scope}/depthwise/depthwise_weights"] = (3, 3, inner, 1)
        shapes.update(batch_norm_shapes(f"{b.scope}/depthwise", inner))
        shapes[f"{b.scope}/project/weights"] = (1, 1, inner, b.depth)
        shapes.update(batch_norm_shapes(f"{b.scope}/project", b.depth))
        depth_in = b.depth
    return shapes


def depth_multiplier(weights: Weights) -> float:
    """The multiplier whose layer shapes match most of the checkpoint's MobilenetV2 variables."""

    def score(multiplier: float) -> int:
        expected = _variables(*_plan(multiplier, 32))
        return sum(
            1 for name, shape in expected.items()
            if name in weights and tuple(weights[name].shape) == shape
        )  # fmt: skip

    return max(_MULTIPLIERS, key=score)


class MobilenetV2:
    variant = "mobilenet_v2"
    batch_norm_epsilon = EPSILON
    preprocessing = "scale"

    def __init__(self, weights: Weights, output_stride: int) -> None:
        self.weights = weights
        self.output_stride = output_stride
        self.depth_multiplier = depth_multiplier(weights)
        self._first, self._blocks = _plan(self.depth_multiplier, output_stride)

    @property
    def output_depth(self) -> int:
        return self._blocks[-1].depth

    def expected_variables(self) -> dict[str, tuple[int, ...]]:
        return _variables(self._first, self._blocks)

    def _conv_bn(
        self, x: tf.Tensor, scope: str, relu6: bool, stride: int = 1, rate: int = 1,
        depthwise: bool = False,
    ) -> tf.Tensor:
        import tensorflow as tf

        conv = depthwise_conv2d if depthwise else conv2d
        x = batch_norm(conv(x, self.weights, scope, stride, rate), self.weights, scope, EPSILON)
        return tf.nn.relu6(x) if relu6 else x

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, dict[int, tf.Tensor]]:
        net = self._conv_bn(images, f"{SCOPE}/Conv", relu6=True, stride=2)
        low_level: dict[int, tf.Tensor] = {}
        wanted = {layer: stride for stride, layer in _DECODER_LAYERS.items()}
        for b in self._blocks:
            x = net
            if b.expand:
                x = self._conv_bn(x, f"{b.scope}/expand", relu6=True)
            x = self._conv_bn(
                x, f"{b.scope}/depthwise", relu6=True, stride=b.stride, rate=b.rate, depthwise=True
            )
            if b.layer in wanted:
                low_level[wanted[b.layer]] = x
            x = self._conv_bn(x, f"{b.scope}/project", relu6=False)
            net = x + net if b.residual else x
        return net, low_level


def detect(names: Collection[str]) -> str | None:
    return "mobilenet_v2" if any(n.startswith(f"{SCOPE}/") for n in names) else None


def build(variant: str, weights: Weights, output_stride: int) -> MobilenetV2:
    return MobilenetV2(weights, output_stride)

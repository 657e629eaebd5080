"""Xception 41/65/71 of research/deeplab/core/xception.py, with the checkpoints' names.

DeepLab's modified Xception: two root convs, then blocks of `xception_module`s, each three
separable convs split into `separable_convN_depthwise` / `_pointwise` (each with BatchNorm; the
checkpoints use regularize_depthwise=False) plus a shortcut (1x1 conv, identity or none).
Strided depthwise convs pad explicitly ('VALID'); once the output stride is reached, strides
become 1 and the depthwise convs dilate instead (xception.stack_blocks_dense).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.backbones import DenseStrides, Weights, batch_norm, batch_norm_shapes, conv2d
from exporter.backbones.resnet import conv2d_same, conv_shapes, fixed_padding

if TYPE_CHECKING:
    import tensorflow as tf

VARIANTS = ("xception_41", "xception_65", "xception_71")
EPSILON = 1e-3  # feature_extractor: xception_arg_scope(batch_norm_epsilon=1e-3, scale=True)
OUTPUT_STRIDES = (8, 16, 32)
_FLOW_728 = (728, 728, 728)
# (scope, depth_list, skip connection, activation_fn_in_separable_conv, units, stride)
_BLOCKS = {
    variant: (
        ("entry_flow/block1", (128, 128, 128), "conv", False, 1, 2),
        *entry,
        ("middle_flow/block1", _FLOW_728, "sum", False, middle_units, 1),
        ("exit_flow/block1", (728, 1024, 1024), "conv", False, 1, 2),
        ("exit_flow/block2", (1536, 1536, 2048), "none", True, 1, 1),
    )
    for variant, entry, middle_units in (
        (
            "xception_41",
            (
                ("entry_flow/block2", (256, 256, 256), "conv", False, 1, 2),
                ("entry_flow/block3", _FLOW_728, "conv", False, 1, 2),
            ),
            8,
        ),
        (
            "xception_65",
            (
                ("entry_flow/block2", (256, 256, 256), "conv", False, 1, 2),
                ("entry_flow/block3", _FLOW_728, "conv", False, 1, 2),
            ),
            16,
        ),
        (
            "xception_71",
            (
                ("entry_flow/block2", (256, 256, 256), "conv", False, 1, 1),
                ("entry_flow/block3", (256, 256, 256), "conv", False, 1, 2),
                ("entry_flow/block4", _FLOW_728, "conv", False, 1, 1),
                ("entry_flow/block5", _FLOW_728, "conv", False, 1, 2),
            ),
            16,
        ),
    )
}
# Decoder end points of research feature_extractor.networks_to_feature_maps, by stride: the
# second separable conv's pointwise output (BatchNorm, no ReLU) of these blocks' first unit.
_DECODER_BLOCKS = {
    "xception_41": {4: "entry_flow/block2", 8: "entry_flow/block3", 16: "exit_flow/block1"},
    "xception_65": {4: "entry_flow/block2", 8: "entry_flow/block3", 16: "exit_flow/block1"},
    "xception_71": {4: "entry_flow/block3", 8: "entry_flow/block5", 16: "exit_flow/block1"},
}
_ROOT = (("entry_flow/conv1_1", 3, 32, 2), ("entry_flow/conv1_2", 32, 64, 1))
_KERNEL = 3


@dataclass(frozen=True)
class _Unit:
    """One xception_module, with the stride and rates stack_blocks_dense gives it."""

    scope: str  # e.g. "xception_65/entry_flow/block1/unit_1/xception_module"
    depth_in: int
    depths: tuple[int, int, int]
    skip: str  # "conv", "sum" or "none"
    relu_inside: bool  # ReLU after each BatchNorm instead of before each separable conv
    stride: int  # of the third separable conv and the shortcut
    rates: tuple[int, int, int]


def _plan(variant: str, output_stride: int, multi_grid: Sequence[int]) -> list[_Unit]:
    dense = DenseStrides(1, output_stride // 2)  # entry_flow/conv1_1 strides by 2 first
    depth_in, units = 64, []
    for block, depths, skip, relu_inside, n, stride in _BLOCKS[variant]:
        # multi_grid only sets exit_flow/block2's unit rates; the other blocks use [1, 1, 1].
        unit_rates = multi_grid if block == "exit_flow/block2" else (1, 1, 1)
        for i in range(n):
            unit_stride, stack_rate = dense.next(stride)
            units.append(
                _Unit(
                    f"{variant}/{block}/unit_{i + 1}/xception_module",
                    depth_in,
                    depths,
                    skip,
                    relu_inside,
                    unit_stride,
                    tuple(stack_rate * r for r in unit_rates),
                )
            )
            depth_in = depths[-1]
    return units


class Xception:
    """A DeepLab Xception feature extractor; features have 2048 channels."""

    batch_norm_epsilon = EPSILON
    preprocessing = "scale"  # feature_extractor: _preprocess_zero_mean_unit_range
    output_depth = 2048

    def __init__(
        self,
        weights: Weights,
        variant: str = "xception_65",
        output_stride: int = 16,
        multi_grid: Sequence[int] | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown xception variant {variant!r}; use one of {', '.join(VARIANTS)}"
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output stride {output_stride} is not supported; use 8, 16 or 32")
        multi_grid = tuple(multi_grid or (1, 1, 1))
        if len(multi_grid) != 3:
            raise ValueError(f"multi_grid needs 3 unit rates, got {list(multi_grid)}")
        self.weights = weights
        self.variant = variant
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self._units = _plan(variant, output_stride, multi_grid)
        self._decoder_end_points = {
            f"{variant}/{block}/unit_1/xception_module": stride
            for stride, block in _DECODER_BLOCKS[variant].items()
        }

    def expected_variables(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for name, depth_in, depth, _ in _ROOT:
            shapes |= conv_shapes(f"{self.variant}/{name}", (3, 3, depth_in, depth))
        for u in self._units:
            depth_in = u.depth_in
            for i, depth in enumerate(u.depths):
                scope = f"{u.scope}/separable_conv{i + 1}"
                shapes[f"{scope}_depthwise/depthwise_weights"] = (_KERNEL, _KERNEL, depth_in, 1)
                shapes |= batch_norm_shapes(f"{scope}_depthwise", depth_in)
                shapes |= conv_shapes(f"{scope}_pointwise", (1, 1, depth_in, depth))
                depth_in = depth
            if u.skip == "conv":
                shapes |= conv_shapes(f"{u.scope}/shortcut", (1, 1, u.depth_in, u.depths[-1]))
        return shapes

    def _bn(self, x: tf.Tensor, scope: str, relu: bool) -> tf.Tensor:
        import tensorflow as tf

        x = batch_norm(x, self.weights, scope, EPSILON)
        return tf.nn.relu(x) if relu else x

    def _separable(self, x: tf.Tensor, scope: str, stride: int, rate: int, relu: bool) -> tf.Tensor:
        """separable_conv2d_same, split into depthwise and pointwise halves."""
        import tensorflow as tf

        padding = "SAME"
        if stride > 1:
            x = fixed_padding(x, _KERNEL, rate)
            padding = "VALID"
        kernel = self.weights[f"{scope}_depthwise/depthwise_weights"]
        x = tf.nn.depthwise_conv2d(
            x, kernel, [1, stride, stride, 1], padding, dilations=[rate, rate]
        )
        x = self._bn(x, f"{scope}_depthwise", relu)
        return self._bn(conv2d(x, self.weights, f"{scope}_pointwise"), f"{scope}_pointwise", relu)

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, dict[int, tf.Tensor]]:
        """Features at the output stride; decoder inputs {stride: a separable_conv2_pointwise}."""
        import tensorflow as tf

        net = images
        for name, _, _, stride in _ROOT:
            scope = f"{self.variant}/{name}"
            net = self._bn(conv2d_same(net, self.weights, scope, stride), scope, relu=True)
        low_level: dict[int, tf.Tensor] = {}
        for u in self._units:
            residual = net
            for i in range(3):
                if not u.relu_inside:
                    residual = tf.nn.relu(residual)
                residual = self._separable(
                    residual,
                    f"{u.scope}/separable_conv{i + 1}",
                    u.stride if i == 2 else 1,
                    u.rates[i],
                    u.relu_inside,
                )
                if i == 1 and u.scope in self._decoder_end_points:
                    low_level[self._decoder_end_points[u.scope]] = residual
            if u.skip == "conv":
                scope = f"{u.scope}/shortcut"
                shortcut = conv2d(net, self.weights, scope, stride=u.stride)
                residual += self._bn(shortcut, scope, relu=False)
            elif u.skip == "sum":
                residual += net
            net = residual
        return net, low_level


def detect(names: Collection[str]) -> str | None:
    """xception_41/65/71 from the scope of the entry flow's first conv."""
    for variant in VARIANTS:
        if f"{variant}/entry_flow/conv1_1/weights" in names:
            return variant
    return None


def build(variant: str, weights: Weights, output_stride: int) -> Xception:
    return Xception(weights, variant, output_stride)

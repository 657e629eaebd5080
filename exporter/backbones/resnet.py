"""ResNet-v1 beta (50, 101) of research/deeplab/core/resnet_v1_beta.py, with the checkpoints' names.

The beta variants replace the 7x7 root conv with three 3x3 convs (conv1_1..conv1_3), then run
max pool and four blocks of bottleneck_v1 units; once the output stride is reached, strides
become 1 and the 3x3 convs dilate instead (slim resnet_utils.stack_blocks_dense). Also home of
`fixed_padding` / `conv2d_same`, which xception.py shares as the research xception shares
slim's resnet_utils.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from exporter.backbones import DenseStrides, Weights, batch_norm, batch_norm_shapes, conv2d

if TYPE_CHECKING:
    import tensorflow as tf

VARIANTS = ("resnet_v1_50_beta", "resnet_v1_101_beta")
# feature_extractor.name_scope: both beta variants keep the ImageNet checkpoints' scope.
SCOPES = {"resnet_v1_50_beta": "resnet_v1_50", "resnet_v1_101_beta": "resnet_v1_101"}
EPSILON = 1e-5  # feature_extractor: resnet_arg_scope(batch_norm_epsilon=1e-5, scale=True)
_UNITS = {"resnet_v1_50_beta": (3, 4, 6, 3), "resnet_v1_101_beta": (3, 4, 23, 3)}
_BASE_DEPTHS = (64, 128, 256, 512)
_ROOT = (("conv1_1", 3, 64, 2), ("conv1_2", 64, 64, 1), ("conv1_3", 64, 128, 1))
# Decoder end points of research feature_extractor.networks_to_feature_maps, by stride.
_DECODER_UNITS = {
    "resnet_v1_50_beta": {4: "block1/unit_2", 8: "block2/unit_3", 16: "block3/unit_5"},
    "resnet_v1_101_beta": {4: "block1/unit_2", 8: "block2/unit_3", 16: "block3/unit_22"},
}
OUTPUT_STRIDES = (8, 16, 32)


def fixed_padding(x: tf.Tensor, kernel_size: int, rate: int = 1) -> tf.Tensor:
    """Pad H and W as research `fixed_padding`, whatever the input size (for 'VALID' convs)."""
    import tensorflow as tf

    kernel_size_effective = kernel_size + (kernel_size - 1) * (rate - 1)
    pad_total = kernel_size_effective - 1
    pad_beg = pad_total // 2
    pad_end = pad_total - pad_beg
    return tf.pad(x, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end], [0, 0]])


def conv2d_same(
    x: tf.Tensor, weights: Weights, scope: str, stride: int, rate: int = 1
) -> tf.Tensor:
    """slim resnet_utils.conv2d_same (no BatchNorm): strided convs pad explicitly, run 'VALID'.

    Unlike 'SAME' with a stride, the result does not depend on whether H and W are even.
    """
    import tensorflow as tf

    if stride == 1:
        return conv2d(x, weights, scope, rate=rate)
    kernel = weights[f"{scope}/weights"]
    x = fixed_padding(x, int(kernel.shape[0]), rate)
    return tf.nn.conv2d(x, kernel, stride, "VALID", dilations=rate)


def conv_shapes(scope: str, shape: tuple[int, int, int, int]) -> dict[str, tuple[int, ...]]:
    """A slim conv with BatchNorm (so no bias): its variables and their shapes."""
    return {f"{scope}/weights": shape, **batch_norm_shapes(f"{scope}", shape[3])}


@dataclass(frozen=True)
class _Unit:
    """One bottleneck_v1 unit, with the stride and rate stack_blocks_dense gives it."""

    scope: str  # e.g. "resnet_v1_50/block1/unit_1/bottleneck_v1"
    depth_in: int
    depth: int
    depth_bottleneck: int
    stride: int
    rate: int  # stack rate x unit rate (multi_grid, block4 only)


def _plan(variant: str, output_stride: int, multi_grid: Sequence[int]) -> list[_Unit]:
    dense = DenseStrides(1, output_stride // 4)  # conv1_1 and pool1 stride by 4 before the blocks
    depth_in, units = 128, []
    for b, (base, n) in enumerate(zip(_BASE_DEPTHS, _UNITS[variant], strict=True)):
        for i in range(n):
            # Blocks 1-3 stride 2 in their last unit; block4 keeps the stride, rates multi_grid.
            stride = 2 if b < 3 and i == n - 1 else 1
            unit_rate = multi_grid[i] if b == 3 else 1
            unit_stride, stack_rate = dense.next(stride)
            scope = f"{SCOPES[variant]}/block{b + 1}/unit_{i + 1}/bottleneck_v1"
            units.append(
                _Unit(scope, depth_in, base * 4, base, unit_stride, stack_rate * unit_rate)
            )
            depth_in = base * 4
    return units


class ResNetV1Beta:
    """A resnet_v1 beta feature extractor; features have 2048 channels."""

    batch_norm_epsilon = EPSILON
    # feature_extractor._PREPROCESS_FN maps the _beta variants to _preprocess_zero_mean_unit_range
    # (mean subtraction is for the non-beta resnet_v1_50/101), and mean_pixel() pads with 127.5.
    preprocessing = "scale"
    output_depth = 2048

    def __init__(
        self,
        weights: Weights,
        variant: str = "resnet_v1_101_beta",
        output_stride: int = 16,
        multi_grid: Sequence[int] | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown resnet variant {variant!r}; use one of {', '.join(VARIANTS)}"
            )
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output stride {output_stride} is not supported; use 8, 16 or 32")
        multi_grid = tuple(multi_grid or (1, 1, 1))
        if len(multi_grid) != 3:
            raise ValueError(f"multi_grid needs 3 unit rates for block4, got {list(multi_grid)}")
        self.weights = weights
        self.variant = variant
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self._scope = SCOPES[variant]
        self._units = _plan(variant, output_stride, multi_grid)
        self._decoder_end_points = {
            f"{self._scope}/{unit}/bottleneck_v1": stride
            for stride, unit in _DECODER_UNITS[variant].items()
        }

    def expected_variables(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for name, depth_in, depth, _ in _ROOT:
            shapes |= conv_shapes(f"{self._scope}/{name}", (3, 3, depth_in, depth))
        for u in self._units:
            if u.depth != u.depth_in:
                shapes |= conv_shapes(f"{u.scope}/shortcut", (1, 1, u.depth_in, u.depth))
            shapes |= conv_shapes(f"{u.scope}/conv1", (1, 1, u.depth_in, u.depth_bottleneck))
            shapes |= conv_shapes(
                f"{u.scope}/conv2", (3, 3, u.depth_bottleneck, u.depth_bottleneck)
            )
            shapes |= conv_shapes(f"{u.scope}/conv3", (1, 1, u.depth_bottleneck, u.depth))
        return shapes

    def _bn(self, x: tf.Tensor, scope: str, relu: bool = True) -> tf.Tensor:
        import tensorflow as tf

        x = batch_norm(x, self.weights, scope, EPSILON)
        return tf.nn.relu(x) if relu else x

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, dict[int, tf.Tensor]]:
        """Features at the output stride; decoder inputs {stride: a unit's conv3, BN, no ReLU}."""
        import tensorflow as tf

        w, net = self.weights, images
        for name, _, _, stride in _ROOT:
            scope = f"{self._scope}/{name}"
            net = self._bn(conv2d_same(net, w, scope, stride), scope)
        net = tf.nn.max_pool2d(net, 3, 2, "SAME")
        low_level: dict[int, tf.Tensor] = {}
        for u in self._units:
            if u.depth == u.depth_in:
                # resnet_utils.subsample: a 1x1 max pool with this stride, i.e. a strided slice.
                shortcut = net[:, :: u.stride, :: u.stride, :] if u.stride > 1 else net
            else:
                scope = f"{u.scope}/shortcut"
                shortcut = self._bn(conv2d(net, w, scope, stride=u.stride), scope, relu=False)
            x = self._bn(conv2d(net, w, f"{u.scope}/conv1"), f"{u.scope}/conv1")
            x = self._bn(
                conv2d_same(x, w, f"{u.scope}/conv2", u.stride, u.rate), f"{u.scope}/conv2"
            )
            x = self._bn(conv2d(x, w, f"{u.scope}/conv3"), f"{u.scope}/conv3", relu=False)
            if u.scope in self._decoder_end_points:
                low_level[self._decoder_end_points[u.scope]] = x
            net = tf.nn.relu(shortcut + x)
        return net, low_level


def detect(names: Collection[str]) -> str | None:
    """The beta variant whose root conv is in these names (non-beta resnets have `conv1`)."""
    for variant in VARIANTS:
        if f"{SCOPES[variant]}/conv1_1/weights" in names:
            return variant
    return None


def build(variant: str, weights: Weights, output_stride: int) -> ResNetV1Beta:
    return ResNetV1Beta(weights, variant, output_stride)

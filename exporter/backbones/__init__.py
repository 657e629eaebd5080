"""DeepLab feature extractors, built in TF2 with the research checkpoints' variable names.

Plug-in contract for a backbone module (mobilenet_v2.py, xception.py, resnet.py):

* `VARIANTS: tuple[str, ...]` - the research `model_variant` names it builds.
* `detect(names: Collection[str]) -> str | None` - the variant whose variables these checkpoint
  names contain, or None.
* `build(variant, weights, output_stride) -> Backbone` - a feature extractor.

`weights` maps research variable names to array-likes: numpy arrays when the exporter only checks
the checkpoint, `tf.Variable`s when it builds the model. A backbone may read shapes at build time
(`tuple(w.shape)`, e.g. to find mobilenet's depth multiplier), must tolerate missing names there
(`expected_variables` is how they get reported), and uses the values directly in tf ops when
called. It declares every name it reads, with the shape it expects, so the exporter can report
missing and unexpected variables before building anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import tensorflow as tf

Weights = Mapping[str, Any]  # research name -> numpy array or tf.Variable
# Every supported variant scales to [-1, 1]; the non-beta resnets would add "mean_subtraction".
Preprocessing = Literal["scale"]

# Backbone modules, tried in this order by `detect_variant`; a module not written yet is skipped.
_MODULES = ("mobilenet_v2", "xception", "resnet")


class Backbone(Protocol):
    """A feature extractor of one research `model_variant`."""

    variant: str  # e.g. "mobilenet_v2", "xception_65", "resnet_v1_101_beta"
    batch_norm_epsilon: float
    preprocessing: Preprocessing  # "scale": x/127.5-1, padded with 127.5

    def expected_variables(self) -> dict[str, tuple[int, ...]]:
        """Every checkpoint variable this backbone reads (research names) and its shape."""
        ...

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, dict[int, tf.Tensor]]:
        """Run on preprocessed float32 images [N, H, W, 3].

        Returns the final feature map (at the configured output stride) and the low-level
        features the decoder may use, keyed by their stride (e.g. {4: layer_4 depthwise output}).
        """
        ...


class UnknownVariantError(ValueError):
    """No backbone module builds this variant (message names the known ones)."""


def _modules() -> list[Any]:
    found = []
    for name in _MODULES:
        try:
            found.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return found


def known_variants() -> list[str]:
    return [v for module in _modules() for v in module.VARIANTS]


def detect_variant(names: Collection[str]) -> str | None:
    """The model_variant whose backbone variables appear in these checkpoint names, or None."""
    for module in _modules():
        variant = module.detect(names)
        if variant:
            return variant
    return None


def make_backbone(variant: str, weights: Weights, output_stride: int) -> Backbone:
    for module in _modules():
        if variant in module.VARIANTS:
            return module.build(variant, weights, output_stride)
    raise UnknownVariantError(
        f"unknown model variant {variant!r}; use one of: {', '.join(known_variants())}"
    )


class DenseStrides:
    """Output-stride control as slim's `stack_blocks_dense` and `mobilenet_base` do it: units keep
    their stride until the running stride `current` reaches `target`; after that they run at
    stride 1 and dilate by the strides they skip."""

    def __init__(self, current: int, target: int) -> None:
        self.current, self.target, self.rate = current, target, 1

    def next(self, stride: int) -> tuple[int, int]:
        """The (stride, rate) of the next unit, whose nominal stride is `stride`."""
        if self.current == self.target:
            rate = self.rate
            self.rate *= stride
            return 1, rate
        self.current *= stride
        return stride, 1


# Layer helpers shared by the backbones and the DeepLab head: slim's conv2d / separable_conv2d with
# padding="SAME", weights looked up by research name, BatchNorm in inference mode.


# slim.batch_norm runs TF's fused kernel, which raises epsilon to at least this (cuDNN's minimum).
FUSED_MIN_EPSILON = 1.001e-5


def batch_norm(x: tf.Tensor, weights: Weights, scope: str, epsilon: float) -> tf.Tensor:
    """Inference-mode BatchNorm as slim ran it (fused, so epsilon >= FUSED_MIN_EPSILON)."""
    import tensorflow as tf

    return tf.nn.batch_normalization(
        x,
        weights[f"{scope}/BatchNorm/moving_mean"],
        weights[f"{scope}/BatchNorm/moving_variance"],
        weights[f"{scope}/BatchNorm/beta"],
        weights[f"{scope}/BatchNorm/gamma"],
        max(epsilon, FUSED_MIN_EPSILON),
    )


def conv2d(x: tf.Tensor, weights: Weights, scope: str, stride: int = 1, rate: int = 1) -> tf.Tensor:
    import tensorflow as tf

    return tf.nn.conv2d(x, weights[f"{scope}/weights"], stride, "SAME", dilations=rate)


def depthwise_conv2d(
    x: tf.Tensor, weights: Weights, scope: str, stride: int = 1, rate: int = 1
) -> tf.Tensor:
    import tensorflow as tf

    return tf.nn.depthwise_conv2d(
        x, weights[f"{scope}/depthwise_weights"], [1, stride, stride, 1], "SAME",
        dilations=[rate, rate],
    )


def batch_norm_shapes(scope: str, depth: int) -> dict[str, tuple[int, ...]]:
    """The four BatchNorm variables of `scope` with their shapes."""
    return {
        f"{scope}/BatchNorm/{part}": (depth,)
        for part in ("beta", "gamma", "moving_mean", "moving_variance")
    }

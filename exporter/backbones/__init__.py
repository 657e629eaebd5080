"""DeepLab feature extractors, built in TF2 with the research checkpoints' variable names.

Each backbone module (mobilenet_v2.py, xception.py, resnet.py) provides a class implementing
`Backbone`. Weights come from a `Weights` mapping (research variable name -> numpy array) that the
checkpoint reader fills; a backbone declares every name it reads, with the shape it expects, so the
exporter can report missing and unexpected variables before building anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

Weights = Mapping[str, np.ndarray]
Preprocessing = Literal["scale", "mean_subtraction"]


class Backbone(Protocol):
    """A feature extractor of one research `model_variant`."""

    variant: str  # e.g. "mobilenet_v2", "xception_65", "resnet_v1_101_beta"
    batch_norm_epsilon: float
    preprocessing: Preprocessing  # "scale": x/127.5-1; "mean_subtraction": x - _MEAN_RGB

    def expected_variables(self) -> dict[str, tuple[int, ...]]:
        """Every checkpoint variable this backbone reads (research names) and its shape."""
        ...

    def __call__(self, images: tf.Tensor) -> tuple[tf.Tensor, dict[int, tf.Tensor]]:
        """Run on preprocessed float32 images [N, H, W, 3].

        Returns the final feature map (at the configured output stride) and the low-level
        features the decoder may use, keyed by their stride (e.g. {4: layer_4 depthwise output}).
        """
        ...

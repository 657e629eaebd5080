"""Research-format DeepLab checkpoints with random weights, for the xception and resnet variants.

The names and shapes are transcribed here from tensorflow/models research/deeplab (core/xception.py,
core/resnet_v1_beta.py, model.py) separately from exporter/backbones, so that the tests compare two
readings of the research code rather than one with itself. The networks are full size (up to ~45 M
parameters, ~180 MB), so tests write them to a temporary folder and never commit them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from checkpoint_factory import write_research_checkpoint

Shapes = dict[str, tuple[int, ...]]

_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def _conv(scope: str, k: int, cin: int, cout: int) -> Shapes:
    """slim.conv2d with normalizer_fn=batch_norm (scale=True): weights, no biases, 4 BN stats."""
    return {
        f"{scope}/weights": (k, k, cin, cout),
        **{f"{scope}/BatchNorm/{s}": (cout,) for s in _BN},
    }


def _depthwise(scope: str, k: int, cin: int) -> Shapes:
    """slim.separable_conv2d(num_outputs=None), depth_multiplier 1, with BatchNorm."""
    return {
        f"{scope}/depthwise_weights": (k, k, cin, 1),
        **{f"{scope}/BatchNorm/{s}": (cin,) for s in _BN},
    }


def _separable(scope: str, cin: int, cout: int) -> Shapes:
    """split_separable_conv2d / separable_conv2d_same(regularize_depthwise=False)."""
    return _depthwise(f"{scope}_depthwise", 3, cin) | _conv(f"{scope}_pointwise", 1, cin, cout)


def xception_variables(variant: str) -> Shapes:
    """xception_41 / _65 / _71 as xception.py's factories list their blocks."""
    n_middle = {"xception_41": 8, "xception_65": 16, "xception_71": 16}[variant]
    if variant == "xception_71":
        entry = [(128,) * 3, (256,) * 3, (256,) * 3, (728,) * 3, (728,) * 3]
    else:
        entry = [(128,) * 3, (256,) * 3, (728,) * 3]
    blocks = [(f"entry_flow/block{i + 1}", 1, d, "conv") for i, d in enumerate(entry)]
    blocks += [
        ("middle_flow/block1", n_middle, (728,) * 3, "sum"),
        ("exit_flow/block1", 1, (728, 1024, 1024), "conv"),
        ("exit_flow/block2", 1, (1536, 1536, 2048), "none"),
    ]
    shapes = _conv(f"{variant}/entry_flow/conv1_1", 3, 3, 32)
    shapes |= _conv(f"{variant}/entry_flow/conv1_2", 3, 32, 64)
    depth = 64
    for block, units, depths, skip in blocks:
        for unit in range(1, units + 1):
            module = f"{variant}/{block}/unit_{unit}/xception_module"
            cin = depth
            for i, d in enumerate(depths, start=1):
                shapes |= _separable(f"{module}/separable_conv{i}", cin, d)
                cin = d
            if skip == "conv":
                shapes |= _conv(f"{module}/shortcut", 1, depth, depths[-1])
            depth = depths[-1]
    return shapes


def resnet_variables(variant: str) -> Shapes:
    """resnet_v1_50_beta / _101_beta: root_block_fn_for_beta_variant + bottleneck blocks."""
    scope, block3_units = {
        "resnet_v1_50_beta": ("resnet_v1_50", 6),
        "resnet_v1_101_beta": ("resnet_v1_101", 23),
    }[variant]
    shapes = _conv(f"{scope}/conv1_1", 3, 3, 64)
    shapes |= _conv(f"{scope}/conv1_2", 3, 64, 64)
    shapes |= _conv(f"{scope}/conv1_3", 3, 64, 128)
    depth_in = 128
    for b, (base, units) in enumerate(((64, 3), (128, 4), (256, block3_units), (512, 3)), 1):
        for u in range(1, units + 1):
            unit = f"{scope}/block{b}/unit_{u}/bottleneck_v1"
            if depth_in != base * 4:
                shapes |= _conv(f"{unit}/shortcut", 1, depth_in, base * 4)
            shapes |= _conv(f"{unit}/conv1", 1, depth_in, base)
            shapes |= _conv(f"{unit}/conv2", 3, base, base)
            shapes |= _conv(f"{unit}/conv3", 1, base, base * 4)
            depth_in = base * 4
    return shapes


def backbone_variables(variant: str) -> Shapes:
    return xception_variables(variant) if "xception" in variant else resnet_variables(variant)


def head_variables(
    num_classes: int = 21,
    atrous_rates: int = 3,
    decoder: bool = True,
    features_depth: int = 2048,
    low_level_depth: int = 256,
) -> Shapes:
    """model.py: image pooling, ASPP (separable branches), concat projection, decoder, logits."""
    shapes = _conv("image_pooling", 1, features_depth, 256) | _conv("aspp0", 1, features_depth, 256)
    for i in range(1, atrous_rates + 1):
        shapes |= _separable(f"aspp{i}", features_depth, 256)
    shapes |= _conv("concat_projection", 1, 256 * (2 + atrous_rates), 256)
    if decoder:
        shapes |= _conv("decoder/feature_projection0", 1, low_level_depth, 48)
        shapes |= _separable("decoder/decoder_conv0", 256 + 48, 256)
        shapes |= _separable("decoder/decoder_conv1", 256, 256)
    shapes["logits/semantic/weights"] = (1, 1, 256, num_classes)
    shapes["logits/semantic/biases"] = (num_classes,)
    return shapes


def random_weights(shapes: Shapes, seed: int = 0) -> dict[str, np.ndarray]:
    """Values that keep activations finite and of order 1 through a deep random network.

    tests/data/research_features was computed from these exact values: changing how they are drawn
    means making those references again (see the README there).
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.5, 1.0, shape)
        elif name.endswith(("beta", "moving_mean", "biases")):
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = shape[0] * shape[1] * (1 if name.endswith("depthwise_weights") else shape[2])
            value = rng.standard_normal(shape, dtype=np.float32) * np.sqrt(1.0 / fan_in)
        weights[name] = np.asarray(value, np.float32)
    return weights


def write_deeplab_checkpoint(
    directory: Path,
    variant: str,
    num_classes: int = 21,
    atrous_rates: int = 3,
    decoder: bool = True,
    seed: int = 0,
) -> Path:
    """A DeepLab checkpoint of `variant` as research train.py saves it; returns its prefix."""
    shapes = backbone_variables(variant) | head_variables(num_classes, atrous_rates, decoder)
    arrays: dict[str, np.ndarray] = random_weights(shapes, seed)
    arrays["global_step"] = np.array(30000, np.int64)
    return Path(write_research_checkpoint(directory / "model.ckpt", arrays))

"""The xception and resnet_v1 beta backbones against research-format checkpoints.

tests/research_fixtures.py transcribes the research variable names and shapes on its own, so these
tests compare two readings of research/deeplab; tests/data/research_features holds outputs of the
research code itself; the atrous checks hold by construction in the research code (strided convs
with fixed padding equal a dense conv subsampled).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA
from research_fixtures import (
    backbone_variables,
    head_variables,
    random_weights,
    write_deeplab_checkpoint,
)

from exporter.backbones import detect_variant, make_backbone, resnet, xception
from exporter.backbones.resnet import conv2d_same, fixed_padding

VARIANTS = [
    "xception_41",
    pytest.param("xception_65", marks=pytest.mark.slow),
    pytest.param("xception_71", marks=pytest.mark.slow),
    "resnet_v1_50_beta",
    pytest.param("resnet_v1_101_beta", marks=pytest.mark.slow),
]
ALL_VARIANTS = [*xception.VARIANTS, *resnet.VARIANTS]
RESEARCH_FEATURES = DATA / "research_features"


class _ReadRecorder(Mapping[str, Any]):
    """The checkpoint's weights, remembering which names the network read."""

    def __init__(self, weights: Mapping[str, Any]) -> None:
        self._weights = weights
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return self._weights[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)


@pytest.mark.parametrize(
    ("kernel_size", "rate", "pads"),
    [
        (1, 1, (0, 0)),
        (3, 1, (1, 1)),
        (3, 2, (2, 2)),
        (4, 1, (1, 2)),
        (7, 1, (3, 3)),
        (3, 4, (4, 4)),
    ],
)
def test_fixed_padding_pads_as_research(kernel_size, rate, pads):
    # pad_total = kernel_size_effective - 1, pad_beg = pad_total // 2, the rest at the end.
    padded = fixed_padding(tf.ones([1, 5, 6, 2]), kernel_size, rate).numpy()
    beg, end = pads
    assert padded.shape == (1, 5 + beg + end, 6 + beg + end, 2)
    assert padded[0, beg : beg + 5, beg : beg + 6].min() == 1
    assert padded.sum() == 5 * 6 * 2


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("rate", [1, 2])
def test_strided_conv_is_dense_conv_subsampled(size, rate):
    # The reason research uses fixed padding: odd and even inputs stay aligned (plain 'SAME' with
    # stride 2 pads an even input only at the end, shifting the sampling grid by one pixel).
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal([1, size, size, 4]), tf.float32)
    weights = {"c/weights": rng.standard_normal([3, 3, 4, 5]).astype(np.float32)}
    dense = conv2d_same(x, weights, "c", stride=1, rate=rate).numpy()
    strided = conv2d_same(x, weights, "c", stride=2, rate=rate).numpy()
    np.testing.assert_allclose(strided, dense[:, ::2, ::2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_expected_variables_are_the_research_names(variant):
    expected = make_backbone(variant, {}, 16).expected_variables()
    research = backbone_variables(variant)
    assert sorted(set(research) - set(expected)) == []
    assert sorted(set(expected) - set(research)) == []
    assert expected == research  # shapes too


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_variant_is_detected_from_checkpoint_names(variant):
    names = set(backbone_variables(variant)) | set(head_variables()) | {"global_step"}
    assert detect_variant(names) == variant


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="output stride 4"):
        xception.Xception({}, "xception_65", output_stride=4)
    with pytest.raises(ValueError, match="multi_grid"):
        resnet.ResNetV1Beta({}, "resnet_v1_101_beta", multi_grid=(1, 2))


def test_xception_atrous_rates_and_multi_grid():
    def _rates(units, block):
        return [(u.stride, u.rates) for u in units if f"/{block}/" in u.scope]

    # DeepLab v3+: output stride 16 with multi_grid (1, 2, 4) gives exit_flow/block2 rates 2, 4, 8.
    units = xception._plan("xception_65", 16, (1, 2, 4))
    assert _rates(units, "entry_flow/block3") == [(2, (1, 1, 1))]
    assert _rates(units, "exit_flow/block1") == [(1, (1, 1, 1))]
    assert _rates(units, "exit_flow/block2") == [(1, (2, 4, 8))]
    units = xception._plan("xception_65", 8, (1, 2, 4))
    assert _rates(units, "entry_flow/block3") == [(1, (1, 1, 1))]
    assert set(_rates(units, "middle_flow/block1")) == {(1, (2, 2, 2))}
    assert _rates(units, "exit_flow/block1") == [(1, (2, 2, 2))]
    assert _rates(units, "exit_flow/block2") == [(1, (4, 8, 16))]


def test_resnet_atrous_rates_and_multi_grid():
    def _rates(units, block):
        return [(u.stride, u.rate) for u in units if f"/{block}/" in u.scope]

    units = resnet._plan("resnet_v1_101_beta", 16, (1, 2, 4))
    assert _rates(units, "block2/unit_4") == [(2, 1)]
    assert set(_rates(units, "block3")) == {(1, 1)}
    assert _rates(units, "block4") == [(1, 2), (1, 4), (1, 8)]
    units = resnet._plan("resnet_v1_101_beta", 8, (1, 2, 4))
    assert _rates(units, "block2/unit_4") == [(1, 1)]
    assert set(_rates(units, "block3")) == {(1, 2)}
    assert _rates(units, "block4") == [(1, 4), (1, 8), (1, 16)]


@pytest.mark.parametrize("size", [64, 65])
@pytest.mark.parametrize("variant", ["xception_41", "resnet_v1_50_beta"])
def test_atrous_features_are_the_dense_version_of_strided_ones(variant, size):
    # With fixed padding a strided unit equals a dense one subsampled, so the features at output
    # stride 8 subsampled by 2 are those at 16 (and 16 subsampled by 2 those at 32): this checks
    # where each variant stops striding and which rates it dilates by afterwards.
    weights = random_weights(backbone_variables(variant), seed=1)
    images = tf.random.stateless_uniform([1, size, size, 3], (1, 2), -1.0, 1.0)
    features = {s: make_backbone(variant, weights, s)(images)[0].numpy() for s in (8, 16, 32)}
    for fine, coarse in ((8, 16), (16, 32)):
        assert features[coarse].shape[1] == math.ceil(size / coarse)
        np.testing.assert_allclose(
            features[fine][:, ::2, ::2], features[coarse], rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_match_the_research_graph(variant):
    # References from research/deeplab's own feature extractor (see the README beside them).
    weights = random_weights(backbone_variables(variant), seed=2)
    for output_stride in (8, 16):
        backbone = make_backbone(variant, weights, output_stride)
        for size in (64, 65):
            images = np.random.default_rng(size).uniform(-1, 1, (1, size, size, 3))
            net, low_level = backbone(tf.constant(images, tf.float32))
            reference = np.load(RESEARCH_FEATURES / f"{variant}_os{output_stride}_{size}.npz")
            channels = reference["features"].shape[-1]
            np.testing.assert_allclose(
                net.numpy()[..., :channels], reference["features"], rtol=1e-4, atol=2e-5
            )
            np.testing.assert_allclose(
                low_level[4].numpy()[..., :channels], reference["stride4"], rtol=1e-4, atol=2e-5
            )


@pytest.mark.parametrize("variant", VARIANTS)
def test_backbone_restores_every_checkpoint_variable_and_runs(variant, tmp_path):
    prefix = write_deeplab_checkpoint(tmp_path / variant, variant)
    reader = tf.train.load_checkpoint(str(prefix))
    names = reader.get_variable_to_shape_map()
    weights = {name: reader.get_tensor(name) for name in names}
    head = set(head_variables()) | {"global_step"}
    images = tf.random.stateless_uniform([1, 65, 65, 3], (3, 4), -1.0, 1.0)
    features = {}
    for output_stride in (16, 8):
        recorder = _ReadRecorder(weights)
        backbone = make_backbone(variant, recorder, output_stride)
        expected = backbone.expected_variables()
        assert set(expected) == set(names) - head
        assert all(tuple(names[n]) == shape for n, shape in expected.items())

        net, low_level = backbone(images)
        assert recorder.read == set(expected)  # the network reads exactly what it declares
        side = math.ceil(65 / output_stride)  # research 'SAME'/fixed-padding output sizes
        assert net.shape == (1, side, side, 2048)
        assert np.isfinite(net.numpy()).all() and float(tf.reduce_max(net)) > 0
        assert low_level[4].shape == (1, 17, 17, 256)  # decoder input: stride 4, 256 channels
        assert sorted(low_level) == [4, 8, 16]
        features[output_stride] = net.numpy()
    np.testing.assert_allclose(features[8][:, ::2, ::2], features[16], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["xception_41", "resnet_v1_50_beta"])
def test_export_runs_as_a_saved_model(variant, tmp_path):
    import imageio.v3 as iio

    from exporter.export import ExportOptions, export_model

    prefix = write_deeplab_checkpoint(tmp_path / "ckpt", variant, num_classes=5)
    options = ExportOptions(
        checkpoint=prefix.parent,
        export_dir=tmp_path / "models",
        model_name="net",
        crop_size=(65, 65),
        atrous_rates=(6, 12, 18),
        output_stride=16,
    )
    result = export_model(options)
    assert result.variant == variant and result.num_classes == 5
    assert result.settings["decoder_output_stride"] == 4
    shutil.rmtree(tmp_path / "ckpt")

    image = iio.imread(DATA / "deeplab" / "images" / "chelsea.png")
    model = tf.saved_model.load(str(result.path))
    labels = model.signatures["serving_default"](images=tf.constant(image[None]))
    labels = labels["segmentation_map"].numpy()
    assert labels.shape == (1, *image.shape[:2]) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 5

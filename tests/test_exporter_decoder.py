"""A DeepLab V3+ checkpoint with ASPP atrous branches and a decoder: detected and exported.

The head's names and shapes come from tests/research_fixtures.py (a separate transcription of the
research model.py); the backbone is the reference mobilenet_v2's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from checkpoint_factory import read_research_checkpoint, write_research_checkpoint
from conftest import DATA
from research_fixtures import head_variables, random_weights

from exporter.checkpoint import inspect_checkpoint
from exporter.export import ExportOptions, export_model

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    weights = read_research_checkpoint(DATA / "deeplab/mobilenet_v2/model.ckpt")
    backbone = {n: v for n, v in weights.items() if n.startswith("MobilenetV2/")}
    # mobilenet_v2: 320 feature channels; decoder input = layer_4 (expanded_conv_2) depthwise, 144.
    head = random_weights(head_variables(num_classes=5, features_depth=320, low_level_depth=144))
    return write_research_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt",
                                     {**backbone, **head})


def test_inspect_detects_aspp_and_decoder(checkpoint):
    info = inspect_checkpoint(checkpoint)
    assert info.variant == "mobilenet_v2"
    assert info.num_classes == 5
    assert info.has_decoder
    assert info.aspp_branches == 3 and info.atrous_rates == (6, 12, 18)


def test_export_with_research_defaults(checkpoint, tmp_path):
    result = export_model(ExportOptions(checkpoint, tmp_path, "v3plus", crop_size=(129, 129)))
    settings = result.settings
    assert settings["output_stride"] == 16
    assert settings["atrous_rates"] == [6, 12, 18]
    assert settings["decoder_output_stride"] == 4
    model = tf.saved_model.load(str(result.path))
    image = np.random.default_rng(1).integers(0, 256, (1, 70, 90, 3), dtype=np.uint8)
    out = model.signatures["probabilities"](images=tf.constant(image))
    assert out["segmentation_map"].shape == (1, 70, 90)
    assert out["probabilities"].shape == (1, 70, 90, 5)
    meta = json.loads(model.signatures["segviewer_metadata"]()["metadata_json"].numpy())
    assert [c["name"] for c in meta["classes"]] == [f"class {i}" for i in range(5)]

"""Real PASCAL weights: a faithful export sees the person and the cat, and the shipped demo models
are what the exporter makes of the shipped checkpoint today."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import DEMO

from exporter.export import ExportOptions, export_model

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
PERSON, CAT = 15, 8


def _segment(model, name: str) -> np.ndarray:
    image = iio.imread(DEMO / "images" / f"{name}.png")[..., :3]
    out = model.signatures["serving_default"](images=tf.constant(image[None]))
    return out["segmentation_map"].numpy()[0]


@pytest.fixture(scope="module")
def reexported(tmp_path_factory):
    options = ExportOptions(DEMO / "checkpoint" / "pascal_mobilenet_v2",
                            tmp_path_factory.mktemp("models"), "pascal", output_stride=8,
                            crop_size=(513, 513))
    return tf.saved_model.load(str(export_model(options).path))


def _shares(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=21) / labels.size


def test_astronaut_is_mostly_person(reexported):
    shares = _shares(_segment(reexported, "astronaut"))
    assert shares[1:].argmax() + 1 == PERSON  # the main non-background class
    assert shares[PERSON] > 0.3


def test_chelsea_is_mostly_cat(reexported):
    shares = _shares(_segment(reexported, "chelsea"))
    assert shares.argmax() == CAT
    assert shares[CAT] > 0.6


@pytest.mark.parametrize("name", PHOTOS)
def test_shipped_version_1_is_reproduced(reexported, name):
    shipped = tf.saved_model.load(str(DEMO / "models" / "pascal" / "1"))
    np.testing.assert_array_equal(_segment(shipped, name), _segment(reexported, name))


def test_shipped_version_2_is_multi_scale_and_flipped():
    shipped = tf.saved_model.load(str(DEMO / "models" / "pascal" / "2"))
    meta = json.loads(shipped.signatures["segviewer_metadata"]()["metadata_json"].numpy())
    assert meta["settings"]["inference_scales"] == [0.75, 1.0, 1.25]
    assert meta["settings"]["add_flipped_images"] is True
    assert meta["classes"][CAT]["name"] == "cat"
    assert _shares(_segment(shipped, "chelsea")).argmax() == CAT

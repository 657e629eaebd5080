"""THE correctness check: our export of the reference checkpoint against the research export graph.

tests/data/deeplab/README.md: exported with output stride 8, crop 513, 21 classes; >= 99.9 % of
the pixels of every image must equal the research graph's labels. The export runs through the CLI
(the "done means" command), so this also covers its success path and summary.
"""

from __future__ import annotations

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import DATA

import segviewer
from exporter.defaults import MIN_TF_SERVING

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow
IMAGES = ["astronaut.png", "chelsea.png", "coffee_portrait_517x333.png", "img_1080x1920.png"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    cmd = [sys.executable, "-m", "exporter.cli", "--checkpoint", str(DATA / "deeplab/mobilenet_v2"),
           "--export-dir", str(out), "--model-name", "deeplab"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    model_dir = out / "deeplab" / "1"
    return model_dir, run.stdout, tf.saved_model.load(str(model_dir))


def _labels(model, image: np.ndarray) -> np.ndarray:
    out = model.signatures["serving_default"](images=tf.constant(image[None]))
    return out["segmentation_map"].numpy()[0]


@pytest.mark.parametrize("name", IMAGES)
def test_matches_research_export(exported, name):
    _, _, model = exported
    image = iio.imread(DATA / "deeplab/images" / name)
    expected = iio.imread(DATA / "deeplab/expected" / name)
    labels = _labels(model, image)
    assert labels.shape == expected.shape
    assert labels.dtype == np.int64
    assert (labels == expected).mean() >= 0.999


def test_cli_summary(exported):
    model_dir, stdout, _ = exported
    assert str(model_dir) in stdout
    assert "mobilenet_v2 (21 classes, output stride 8, crop 513x513" in stdout
    for signature in ("serving_default", "probabilities", "encoded", "segviewer_metadata"):
        assert f"signature_def['{signature}']" in stdout
    assert "inputs['images'] dtype: DT_UINT8 shape: (1, -1, -1, 3)" in stdout
    assert f"serves on: TF Serving {MIN_TF_SERVING} or newer" in stdout


def test_probabilities_and_encoded_agree_with_serving_default(exported):
    _, _, model = exported
    image = iio.imread(DATA / "deeplab/images/chelsea.png")
    labels = _labels(model, image)
    out = model.signatures["probabilities"](images=tf.constant(image[None]))
    probs = out["probabilities"].numpy()
    assert probs.shape == (1, 300, 451, 21) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(out["segmentation_map"].numpy()[0], labels)
    png = model.signatures["encoded"](image_bytes=tf.constant(iio.imwrite("<bytes>", image,
                                                                          extension=".png")))
    decoded = iio.imread(png["segmentation_png_bytes"].numpy())
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, labels)


def test_metadata_signature_and_asset(exported):
    model_dir, _, model = exported
    text = model.signatures["segviewer_metadata"]()["metadata_json"].numpy().decode()
    meta = json.loads(text)
    assert (model_dir / "assets/segviewer_metadata.json").read_text() == text
    classes = meta["classes"]
    assert [c["id"] for c in classes] == list(range(21))
    assert classes[15] == {"id": 15, "name": "person", "color": [192, 128, 128]}
    assert classes[8]["name"] == "cat"
    settings = meta["settings"]
    assert settings["variant"] == "mobilenet_v2"
    assert settings["num_classes"] == 21
    assert settings["crop_size"] == [513, 513]
    assert settings["output_stride"] == 8
    assert settings["atrous_rates"] == []
    assert settings["decoder_output_stride"] is None
    assert settings["inference_scales"] == [1.0]
    assert settings["add_flipped_images"] is False
    assert settings["exporter_version"] == segviewer.__version__  # one version source
    assert settings["min_tensorflow_serving"] == MIN_TF_SERVING
    assert settings["compat_older_servers"] is False
    assert settings["checkpoint"].endswith("mobilenet_v2/model.ckpt")

"""LocalBackend on real SavedModels written here with tf.Module (the exporter's signature set and
a foreign Keras-style model), run in-process with TensorFlow."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from toy_savedmodels import NUM_CLASSES, save_toy_model, toy_labels

from segviewer.core.serving.base import BackendError, ClassInfo, ModelRef, ModelVersion
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.local_backend import LocalBackend


def save_foreign_model(folder: Path) -> Path:
    """A model exported by someone else: float input `input_1`, logits `[N,H,W,3]` only."""
    import tensorflow as tf

    class Foreign(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, input_1):
            cls = tf.cast(input_1[..., 1] // 86.0, tf.int32)  # green channel thirds
            return {"logits": tf.one_hot(cls, 3, on_value=5.0, off_value=-5.0)}

    module = Foreign()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="session")
def model_base(tmp_path_factory) -> Path:
    """<base>/toy/{1,2} (v2 shifts labels by one) and <base>/foreign/7."""
    base = tmp_path_factory.mktemp("models")
    save_toy_model(base / "toy" / "1", shift=0)
    save_toy_model(base / "toy" / "2", shift=1)
    (base / "toy" / "3-partial").mkdir()  # not numeric: ignored, as TF Serving does
    (base / "toy" / "9").mkdir()  # no saved_model.pb: ignored
    save_foreign_model(base / "foreign" / "7")
    return base


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


def test_layouts_mirror_tf_serving(model_base):
    base = LocalBackend(model_base)
    assert base.models() == ["foreign", "toy"]
    assert base.versions("toy") == [ModelVersion(1), ModelVersion(2)]
    assert LocalBackend(model_base / "toy").models() == ["toy"]
    pinned = LocalBackend(model_base / "toy" / "1")
    assert (pinned.models(), pinned.versions("toy")) == (["toy"], [ModelVersion(1)])


def test_predict_newest_and_pinned_versions(model_base, image):
    backend = LocalBackend(model_base)
    newest = backend.predict(image, ModelRef("toy"))
    assert (newest.version, newest.signature) == (2, "serving_default")
    assert newest.labels.shape == image.shape[:2]
    assert np.array_equal(newest.labels, toy_labels(image, shift=1))
    v1 = backend.predict(image, ModelRef("toy", version=1))
    assert np.array_equal(v1.labels, toy_labels(image, shift=0))


def test_metadata_signatures_and_classes(model_base):
    meta = LocalBackend(model_base).metadata(ModelRef("toy", version=1))
    assert set(meta.signatures) == {"serving_default", "probabilities", "encoded",
                                    "segviewer_metadata"}
    images = meta.signatures["serving_default"].inputs["images"]
    assert (images.dtype, images.shape) == ("uint8", (1, None, None, 3))
    seg = meta.signatures["serving_default"].outputs["segmentation_map"]
    assert (seg.dtype, seg.shape) == ("int64", (1, None, None))
    assert meta.signatures["encoded"].inputs["image_bytes"].dtype == "string"
    assert meta.classes[1] == ClassInfo(1, "class1", (60, 195, 7))
    assert meta.settings == {"num_classes": NUM_CLASSES, "shift": 0}


def test_every_signature_gives_the_same_labels(model_base, image):
    backend = LocalBackend(model_base / "toy")
    expected = toy_labels(image, shift=1)
    probs = backend.predict(image, ModelRef("toy"), want_probabilities=True)
    assert probs.signature == "probabilities"
    assert probs.probabilities.shape == (*image.shape[:2], NUM_CLASSES)
    assert probs.probabilities.dtype == np.float32
    assert np.array_equal(probs.probabilities.argmax(-1), expected)
    for name in ("serving_default", "encoded"):
        got = backend.predict(image, ModelRef("toy"), signature=name)
        assert np.array_equal(got.labels, expected), name


def test_foreign_model_float_input_logits_output(model_base, image):
    prediction = LocalBackend(model_base).predict(image, ModelRef("foreign"),
                                                  want_probabilities=True)
    assert prediction.version == 7
    assert np.array_equal(prediction.labels, image[..., 1].astype(np.float32) // 86.0)
    assert prediction.probabilities.shape == (*image.shape[:2], 3)


def test_concurrent_predictions_from_threads(model_base):
    backend = LocalBackend(model_base)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8) for i in range(8)]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = backend.predict(images[i], ModelRef("toy", version=1)).labels

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, img in enumerate(images):
        assert np.array_equal(results[i], toy_labels(img, shift=0))


def test_errors_are_one_line_backend_errors(model_base, tmp_path, image):
    with pytest.raises(BackendError) as err:
        LocalBackend(tmp_path)
    assert str(err.value) == (
        f"'{tmp_path}' is not a SavedModel folder (no saved_model.pb) — pick the folder that holds "
        "saved_model.pb or its parent model folder")
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(BackendError, match="is not a SavedModel folder"):
        LocalBackend(tmp_path / "notes.txt")
    with pytest.raises(BackendError, match="does not exist") as err:
        LocalBackend(tmp_path / "missing")
    assert err.value.code == "NOT_FOUND"
    backend = LocalBackend(model_base)
    with pytest.raises(BackendError, match=r"no version 5 \(versions: 1, 2\)") as err:
        backend.metadata(ModelRef("toy", version=5))
    assert err.value.code == "NOT_FOUND"
    with pytest.raises(BackendError, match="no model 'nope'") as err:
        backend.predict(image, ModelRef("nope"))
    assert err.value.code == "NOT_FOUND"
    with pytest.raises(BackendError, match="labels need"):
        backend.metadata(ModelRef("toy", label="stable"))
    with pytest.raises(BackendError, match="no signature 'nope'"):
        backend.predict(image, ModelRef("toy"), signature="nope")
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(BackendError, match="cannot load SavedModel") as err:
        LocalBackend(broken).metadata(ModelRef("broken"))
    assert "\n" not in str(err.value)


def test_connection_spec_opens_each_kind(model_base, tmp_path, monkeypatch):
    from segviewer.core.serving.grpc_backend import GrpcBackend
    from segviewer.core.serving.rest_backend import RestBackend

    assert isinstance(ConnectionSpec.parse(str(model_base)).open(), LocalBackend)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "localhost:8500").symlink_to(model_base / "toy")
    # An existing folder wins over a host:port of the same name.
    assert ConnectionSpec.parse("localhost:8500").open().models() == ["toy"]
    for spec in ("localhost:8501", "grpc://localhost:8500", "[::1]:8500"):
        backend = ConnectionSpec.parse(spec).open()
        assert isinstance(backend, GrpcBackend), spec
        backend.close()
    assert isinstance(ConnectionSpec.parse("http://localhost:8501").open(), RestBackend)
    with pytest.raises(BackendError, match="unknown server address 'ftp://x'"):
        ConnectionSpec.parse("ftp://x").open()
    with pytest.raises(BackendError, match="'nowhere' does not exist"):
        ConnectionSpec.parse("nowhere").open()

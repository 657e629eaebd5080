"""An exported DeepLab SavedModel served by the stand-in TF Serving, asked as a seed-style
client asks: the official stubs, a uint8 [1,H,W,3] `images` tensor, an int64 `segmentation_map`
[1,H,W] back in TF Serving's typed int64_val field, at every input size a user may send."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from conftest import DEMO

from segviewer.core.images import load_image
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.local_backend import LocalBackend
from segviewer.devserver.server import start

tf = pytest.importorskip("tensorflow")
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

# (height, width): tiny, odd, portrait taller than the 513 crop, landscape wider than it, exactly
# the crop, and both sides beyond it.
SIZES = [(5, 7), (37, 91), (517, 333), (300, 451), (513, 513), (700, 1001)]


@pytest.fixture(scope="module")
def served_v1():
    server = start(DEMO / "models", versions={"pascal": [1]})
    with grpc.insecure_channel(server.grpc_address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    server.stop()


@pytest.fixture(scope="module")
def in_process():
    return LocalBackend(DEMO / "models")


def _photo_at(height: int, width: int) -> np.ndarray:
    photo = tf.constant(load_image(DEMO / "images" / "chelsea.png"))
    return tf.cast(tf.image.resize(photo, (height, width)), tf.uint8).numpy()


@pytest.mark.slow
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_served_export_answers_int64_labels_at_the_input_size(served_v1, in_process, height,
                                                              width):
    image = _photo_at(height, width)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "pascal"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(image[None]))

    response = served_v1.Predict(request, timeout=300)

    output = response.outputs["segmentation_map"]
    assert output.dtype == tf.int64.as_datatype_enum
    assert output.int64_val and not output.tensor_content
    labels = tf.make_ndarray(output)
    assert labels.shape == (1, height, width)
    expected = in_process.predict(image, ModelRef("pascal", 1)).labels
    np.testing.assert_array_equal(labels[0], expected)
    assert labels.min() >= 0 and labels.max() < 21

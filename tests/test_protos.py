"""protos.py: the official TF Serving messages, read from the installed packages without TF."""

from __future__ import annotations

import pytest

from segviewer.core.serving import protos
from segviewer.core.serving.base import Signature, TensorSpec

tf = pytest.importorskip("tensorflow")
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)


@pytest.mark.parametrize(
    "ours, official",
    [
        (protos.PredictRequest, predict_pb2.PredictRequest),
        (protos.PredictResponse, predict_pb2.PredictResponse),
        (protos.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
        (protos.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
        (protos.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest),
        (protos.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse),
        (protos.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
    ],
)
def test_same_messages_as_the_official_modules(ours, official) -> None:
    assert ours.DESCRIPTOR.full_name == official.DESCRIPTOR.full_name
    assert ours is not official  # ours live in a private pool
    ours_file = ours.DESCRIPTOR.file.serialized_pb
    assert ours_file == official.DESCRIPTOR.file.serialized_pb


def test_messages_cross_the_wire_both_ways() -> None:
    request = protos.GetModelStatusRequest()
    request.model_spec.name = "tiny"
    request.model_spec.version.value = 3
    official = get_model_status_pb2.GetModelStatusRequest.FromString(request.SerializeToString())
    assert (official.model_spec.name, official.model_spec.version.value) == ("tiny", 3)

    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.add(version=2, state=30).status.error_message = "fine"
    ours = protos.GetModelStatusResponse.FromString(response.SerializeToString())
    assert ours.model_version_status[0].version == 2
    assert ours.model_version_status[0].status.error_message == "fine"


def test_signatures_from_a_signature_def_map() -> None:
    official = get_model_metadata_pb2.SignatureDefMap()
    sig = official.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    images = sig.inputs["images"]
    images.dtype = tf.uint8.as_datatype_enum
    for size in (1, -1, -1, 3):
        images.tensor_shape.dim.add(size=size)
    sig.outputs["segmentation_map"].dtype = tf.int64.as_datatype_enum
    sig.outputs["segmentation_map"].tensor_shape.unknown_rank = True
    sig.outputs["png"].dtype = tf.string.as_datatype_enum
    official.signature_def["__saved_model_init_op"].outputs["x"].dtype = 1

    found = protos.signatures(protos.SignatureDefMap.FromString(official.SerializeToString()))
    assert found == {
        "serving_default": Signature(
            "serving_default",
            {"images": TensorSpec("images", "uint8", (1, None, None, 3))},
            {
                "png": TensorSpec("png", "string", ()),
                "segmentation_map": TensorSpec("segmentation_map", "int64", None),
            },
        )
    }


@pytest.mark.parametrize(
    "dtype, name",
    [(tf.float32, "float32"), (tf.float16, "float16"), (tf.float64, "float64"),
     (tf.bfloat16, "bfloat16"), (tf.uint8, "uint8"), (tf.int64, "int64"), (tf.bool, "bool"),
     (tf.string, "string")],
)
def test_dtype_names_match_tensorflow(dtype, name) -> None:
    assert protos.dtype_name(dtype.as_datatype_enum) == name == (
        "string" if dtype == tf.string else dtype.name
    )

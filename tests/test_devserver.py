"""The stand-in TF Serving, checked with the official TF Serving client stubs and raw REST JSON."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from PIL import Image

from segviewer.devserver import cli
from segviewer.devserver.toy_models import NUM_CLASSES, tiny_labels

tf = pytest.importorskip("tensorflow")
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

IMAGE = np.random.default_rng(11).integers(0, 256, (9, 14, 3), dtype=np.uint8)


@pytest.fixture
def channel(tf_serving):
    with grpc.insecure_channel(tf_serving.grpc_address) as channel:
        yield channel


def _predict_request(name="tiny", version=None, signature="", inputs=None, output_filter=()):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for alias, value in (inputs if inputs is not None else {"images": IMAGE[None]}).items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_predict_answers_in_typed_fields_like_tf_serving(channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(_predict_request(version=1))
    labels = response.outputs["segmentation_map"]
    assert labels.int64_val and not labels.tensor_content
    assert response.outputs["probabilities"].float_val
    np.testing.assert_array_equal(tf.make_ndarray(labels), tiny_labels(IMAGE[None]))
    assert response.model_spec.name == "tiny"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_output_filter(channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(_predict_request(output_filter=["segmentation_map"]))
    assert list(response.outputs) == ["segmentation_map"]


def test_tensor_content_mode(start_tf_serving, tiny_base) -> None:
    server = start_tf_serving(tiny_base, tensor_content=True)
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        labels = stub.Predict(_predict_request()).outputs["segmentation_map"]
    assert labels.tensor_content and not labels.int64_val
    np.testing.assert_array_equal(tf.make_ndarray(labels), tiny_labels(IMAGE[None], 1))


@pytest.mark.parametrize(
    "request_kwargs, code, message",
    [
        ({"name": "nope"}, grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Latest(nope)"),
        ({"version": 5}, grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(tiny, 5)"),
        ({"signature": "other"}, grpc.StatusCode.FAILED_PRECONDITION,
         'Serving signature key "other" not found.'),
        ({"inputs": {"pixels": IMAGE[None]}}, grpc.StatusCode.INVALID_ARGUMENT,
         "input tensor alias not found in signature: pixels. "
         "Inputs expected to be in the set {images}."),
        ({"inputs": {}}, grpc.StatusCode.INVALID_ARGUMENT,
         "input size does not match signature: 0!=1"),
        ({"inputs": {"images": IMAGE[None].astype(np.float32)}}, grpc.StatusCode.INVALID_ARGUMENT,
         "Expects arg[0] to be uint8 but float is provided"),
        ({"inputs": {"images": IMAGE}}, grpc.StatusCode.INVALID_ARGUMENT,
         "input 'images' has shape [9, 14, 3]"),
        ({"output_filter": ["logits"]}, grpc.StatusCode.INVALID_ARGUMENT,
         "output tensor alias not found in signature: logits Outputs expected to be in the set "
         "{probabilities,segmentation_map}."),
    ],
)
def test_predict_errors_like_tf_serving(channel, request_kwargs, code, message) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(_predict_request(**request_kwargs))
    assert caught.value.code() == code
    assert caught.value.details().startswith(message)


def test_model_metadata(channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tiny"
    response = stub.GetModelMetadata(request)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    images = signatures.signature_def["serving_default"].inputs["images"]
    assert images.dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in images.tensor_shape.dim] == [1, -1, -1, 3]
    assert set(signatures.signature_def["segviewer_metadata"].outputs) == {"metadata_json"}

    for fields, text in (([], "must specify at least one metadata_field"),
                         (["graph"], "Metadata field graph is not supported")):
        del request.metadata_field[:]
        request.metadata_field.extend(fields)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetModelMetadata(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert text in caught.value.details()


def test_model_status(channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "tiny"
    response = stub.GetModelStatus(request)
    assert [(s.version, s.state) for s in response.model_version_status] == [(1, 30), (2, 30)]
    request.model_spec.version_label = "canary"
    assert [s.version for s in stub.GetModelStatus(request).model_version_status] == [2]
    request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Could not find version 9 of model tiny"


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rest_status_and_metadata_json(tf_serving) -> None:
    status, answer = _http(f"{tf_serving.rest_url}/v1/models/tiny/labels/stable")
    assert status == 200
    assert answer == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    status, answer = _http(f"{tf_serving.rest_url}/v1/models/tiny/versions/2/metadata")
    assert answer["model_spec"] == {"name": "tiny", "signature_name": "", "version": "2"}
    images = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"][
        "images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["1", "-1", "-1", "3"]


def test_rest_row_and_columnar_formats(tf_serving) -> None:
    url = f"{tf_serving.rest_url}/v1/models/tiny/versions/1:predict"
    expected = tiny_labels(IMAGE).tolist()
    status, answer = _http(url, {"instances": [IMAGE.tolist()]})
    assert status == 200
    rows = answer["predictions"]  # two outputs: one object per instance
    assert rows[0]["segmentation_map"] == expected
    assert np.shape(rows[0]["probabilities"]) == (*IMAGE.shape[:2], NUM_CLASSES)
    status, answer = _http(url, {"instances": [{"images": IMAGE.tolist()}],
                                 "output_filter": ["segmentation_map"]})
    assert answer == {"predictions": [expected]}  # one output: bare values
    status, answer = _http(url, {"inputs": {"images": [IMAGE.tolist()]}})
    assert answer["outputs"]["segmentation_map"] == [expected]


def test_rest_b64_string_input(tf_serving) -> None:
    png = io.BytesIO()
    Image.fromarray(IMAGE).save(png, format="PNG")
    body = {"inputs": {"image_bytes": {"b64": base64.b64encode(png.getvalue()).decode()}}}
    status, answer = _http(f"{tf_serving.rest_url}/v1/models/encoded:predict", body)
    assert status == 200
    assert isinstance(answer["outputs"], str)  # alias not named *_bytes: sent as a plain string


@pytest.mark.parametrize(
    "path, body, status, error",
    [
        ("/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("/v1/models/tiny/versions/7:predict", {"instances": [1]}, 404,
         "Servable not found for request: Specific(tiny, 7)"),
        ("/v1/models/tiny/labels/gold/metadata", None, 400,
         "Unrecognized servable version label: gold"),
        ("/v1/models/tiny:predict", {"signature_name": "x", "instances": [1]}, 400,
         'Serving signature key "x" not found.'),
        ("/v1/models/tiny:predict", {"instances": [[[1.5, 2, 3]]]}, 400,
         "input 'images' has shape"),
        ("/v1/models/tiny:predict", {}, 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/tiny:classify", {}, 400, "Malformed request: POST /v1/models/tiny:classify"),
    ],
)
def test_rest_errors(tf_serving, path, body, status, error) -> None:
    got_status, answer = _http(tf_serving.rest_url + path, body)
    assert got_status == status
    assert answer["error"].startswith(error)


def test_cli_help_says_it_is_not_tf_serving(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "It is NOT TF Serving" in capsys.readouterr().out.replace("\n", " ")


def test_cli_bad_base_is_one_line(tmp_path, capsys) -> None:
    assert cli.main(["--model-base", str(tmp_path / "none"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder" in err


def test_cli_broken_saved_model_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    assert cli.main(["--model-base", str(tmp_path), "--port", "0", "--rest-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot load the SavedModel in {tmp_path / 'broken' / '1'}" in err


def test_cli_serves(tiny_base) -> None:
    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.grpc_backend import GrpcBackend

    process = subprocess.Popen(
        [sys.executable, "-m", "segviewer.devserver.cli", "--model-base", str(tiny_base),
         "--port", "0", "--rest-port", "0", "--label", "tiny/live=2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        banner = process.stdout.readline()
        assert "stand-in, not TF Serving" in banner and "tiny v2" in banner
        address = banner.split("gRPC ")[1].split(",")[0]
        prediction = GrpcBackend(address).predict(IMAGE, ModelRef("tiny", label="live"))
        np.testing.assert_array_equal(prediction.labels, tiny_labels(IMAGE, 1))
    finally:
        process.terminate()
        process.wait(timeout=30)

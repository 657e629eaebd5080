"""GrpcBackend against the stand-in TF Serving over real gRPC on 127.0.0.1."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

from segviewer.core.serving import calls
from segviewer.core.serving.base import Backend, BackendError, ModelRef, ModelVersion
from segviewer.core.serving.grpc_backend import GrpcBackend
from segviewer.devserver.repository import Servable
from segviewer.devserver.toy_models import NUM_CLASSES, tiny_labels


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (23, 31, 3), dtype=np.uint8)


@pytest.fixture
def backend(tf_serving):
    backend = GrpcBackend(tf_serving.grpc_address, ["tiny", "logits"])
    yield backend
    backend.close()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The backoff delays the backend waits, recorded instead of slept."""
    recorded: list[float] = []

    def sleep(self, seconds: float) -> bool:
        recorded.append(round(seconds, 3))
        return False

    monkeypatch.setattr(calls.Interrupt, "sleep", sleep)
    return recorded


def test_is_a_backend_and_lists_the_configured_models(backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.models() == ["tiny", "logits"]
    assert backend.description.startswith("gRPC 127.0.0.1:")


def test_versions_from_model_status(backend) -> None:
    assert backend.versions("tiny") == [ModelVersion(1, "AVAILABLE"), ModelVersion(2, "AVAILABLE")]


@pytest.mark.parametrize(
    "ref, version",
    [(ModelRef("tiny"), 2), (ModelRef("tiny", 1), 1), (ModelRef("tiny", label="stable"), 1),
     (ModelRef("tiny", label="canary"), 2)],
)
def test_metadata_signatures_and_stored_classes(backend, ref, version) -> None:
    meta = backend.metadata(ref)
    assert meta.version == version
    assert set(meta.signatures) == {"serving_default", "segviewer_metadata"}
    images = meta.signatures["serving_default"].inputs["images"]
    assert (images.dtype, images.shape) == ("uint8", (1, None, None, 3))
    assert [c.name for c in meta.classes] == [f"class{i}" for i in range(NUM_CLASSES)]
    assert meta.classes[1].color == (50, 205, 9)
    assert meta.settings["shift"] == version - 1


@pytest.mark.parametrize(
    "ref, version, shift",
    [(ModelRef("tiny"), 2, 1), (ModelRef("tiny", 1), 1, 0),
     (ModelRef("tiny", label="stable"), 1, 0), (ModelRef("tiny", label="canary"), 2, 1),
     (ModelRef("logits"), 1, 0), (ModelRef("hwc"), 1, 0), (ModelRef("encoded"), 1, 0)],
    ids=str,
)
def test_predict_every_model_kind(backend, image, ref, version, shift) -> None:
    prediction = backend.predict(image, ref)
    assert prediction.labels.shape == image.shape[:2]
    np.testing.assert_array_equal(prediction.labels, tiny_labels(image, shift))
    assert (prediction.model, prediction.version) == (ref.name, version)
    assert prediction.signature == "serving_default"
    assert prediction.probabilities is None


def test_only_the_label_map_is_asked_for(backend, image, monkeypatch) -> None:
    asked = []
    real = Servable.predict

    def spy(self, signature, inputs, output_filter):
        asked.append(list(output_filter))
        return real(self, signature, inputs, output_filter)

    monkeypatch.setattr(Servable, "predict", spy)
    backend.predict(image, ModelRef("tiny", 1))
    with_probabilities = backend.predict(image, ModelRef("tiny", 1), want_probabilities=True)
    assert asked[-2:] == [["segmentation_map"], ["segmentation_map", "probabilities"]]
    probabilities = with_probabilities.probabilities
    assert probabilities.shape == (*image.shape[:2], NUM_CLASSES)
    np.testing.assert_array_equal(probabilities.argmax(-1), with_probabilities.labels)


@pytest.mark.parametrize(
    "call, code, text",
    [
        (lambda b, im: b.predict(im, ModelRef("nope")), "NOT_FOUND",
         "Servable not found for request: Latest(nope) — check the model name and version"),
        (lambda b, im: b.predict(im, ModelRef("tiny", 9)), "NOT_FOUND",
         "Servable not found for request: Specific(tiny, 9)"),
        (lambda b, im: b.predict(im, ModelRef("tiny", label="gold")), "INVALID_ARGUMENT",
         "Unrecognized servable version label: gold"),
        (lambda b, im: b.versions("nope"), "NOT_FOUND",
         "Could not find any versions of model nope"),
        (lambda b, im: b.predict(im, ModelRef("tiny"), signature="nope"), "FAILED_PRECONDITION",
         "no signature 'nope'"),
        (lambda b, im: b._run(ModelRef("tiny"), "nope", {}, []), "FAILED_PRECONDITION",
         'Serving signature key "nope" not found. — pick another signature'),
        (lambda b, im: b._run(ModelRef("tiny"), "serving_default", {"x": im}, []),
         "INVALID_ARGUMENT", "input tensor alias not found in signature: x."),
        (lambda b, im: b._run(ModelRef("tiny"), "serving_default", {"images": im[None]}, ["y"]),
         "INVALID_ARGUMENT", "output tensor alias not found in signature: y"),
        (lambda b, im: b._run(ModelRef("tiny"), "serving_default", {"images": im}, []),
         "INVALID_ARGUMENT", "has shape [23, 31, 3]"),
    ],
)
def test_each_status_is_one_clear_line(backend, image, sleeps, call, code, text) -> None:
    with pytest.raises(BackendError) as caught:
        call(backend, image)
    assert caught.value.code == code
    assert text in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sleeps == []  # only UNAVAILABLE is retried


def test_server_down_retries_with_backoff_then_says_so(image, sleeps) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = GrpcBackend(f"127.0.0.1:{port}", ["tiny"], retry_for=1.0)
    with pytest.raises(BackendError) as caught:
        backend.predict(image, ModelRef("tiny"))
    assert caught.value.code == "UNAVAILABLE"
    assert str(caught.value).startswith(f"cannot reach 127.0.0.1:{port} — is TF Serving running?")
    assert "retried for 1 s" in str(caught.value)
    assert sleeps[:4] == [0.1, 0.2, 0.4, 0.8]


@pytest.fixture
def stalled_server():
    """A gRPC server whose ModelService answers only when the test ends."""
    release = threading.Event()

    def stall(request: bytes, context) -> bytes:
        release.wait(30)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "tensorflow.serving.ModelService",
        {"GetModelStatus": grpc.unary_unary_rpc_method_handler(stall)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    release.set()
    server.stop(grace=None)


def test_deadline_is_the_whole_call_and_never_retried(stalled_server, sleeps) -> None:
    backend = GrpcBackend(stalled_server, ["tiny"], timeout=0.2)
    with pytest.raises(BackendError) as caught:
        backend.versions("tiny")
    assert caught.value.code == "DEADLINE_EXCEEDED"
    assert "no answer from" in str(caught.value) and "within 0.2 s" in str(caught.value)
    assert sleeps == []


def test_4k_image_both_ways(backend) -> None:
    """25 MB request, 8 MB typed label map back: both above gRPC's 4 MB default."""
    image = np.random.default_rng(4).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    prediction = backend.predict(image, ModelRef("tiny", 1))
    np.testing.assert_array_equal(prediction.labels, tiny_labels(image))


def test_tensor_content_answers(start_tf_serving, tiny_base, image) -> None:
    server = start_tf_serving(tiny_base, tensor_content=True)
    backend = GrpcBackend(server.grpc_address, ["tiny"])
    prediction = backend.predict(image, ModelRef("tiny"), want_probabilities=True)
    np.testing.assert_array_equal(prediction.labels, tiny_labels(image, 1))
    assert prediction.probabilities.dtype == np.float32


def test_auth_metadata_reaches_the_server(start_tf_serving, tiny_base, image) -> None:
    server = start_tf_serving(tiny_base, token="s3cret")
    good = GrpcBackend(server.grpc_address, ["tiny"], metadata=[("Authorization", "Bearer s3cret")])
    np.testing.assert_array_equal(good.predict(image, ModelRef("tiny")).labels,
                                  tiny_labels(image, 1))
    with pytest.raises(BackendError) as caught:
        GrpcBackend(server.grpc_address, ["tiny"]).versions("tiny")
    assert caught.value.code == "UNAUTHENTICATED"
    assert "check the access token" in str(caught.value)


def test_tls_with_a_custom_ca(start_tf_serving, tiny_base, tls_files, image, sleeps) -> None:
    cert, key = tls_files
    server = start_tf_serving(tiny_base, cert_files=(cert, key))
    port = server.grpc_address.rsplit(":", 1)[1]
    for address in (server.grpc_address, f"localhost:{port}"):
        backend = GrpcBackend(address, ["tiny"], ca_file=cert)
        assert backend.description.endswith("(TLS)")
        np.testing.assert_array_equal(backend.predict(image, ModelRef("tiny")).labels,
                                      tiny_labels(image, 1))
    for untrusted in (GrpcBackend(server.grpc_address, ["tiny"], tls=True, retry_for=0),
                      GrpcBackend(server.grpc_address, ["tiny"], retry_for=0)):
        with pytest.raises(BackendError) as caught:
            untrusted.versions("tiny")
        assert caught.value.code == "UNAVAILABLE"


def test_client_certificate(start_tf_serving, tiny_base, tls_files, image) -> None:
    """Mutual TLS: the self-signed certificate doubles as the client's and as the client CA."""
    cert, key = tls_files
    server = start_tf_serving(tiny_base, cert_files=(cert, key), client_ca_file=cert)
    backend = GrpcBackend(server.grpc_address, ["tiny"], ca_file=cert, cert_file=cert,
                          key_file=key)
    np.testing.assert_array_equal(backend.predict(image, ModelRef("tiny")).labels,
                                  tiny_labels(image, 1))
    with pytest.raises(BackendError) as caught:
        GrpcBackend(server.grpc_address, ["tiny"], ca_file=cert, retry_for=0).versions("tiny")
    assert caught.value.code == "UNAVAILABLE"


def test_unreadable_tls_files_are_named(tmp_path) -> None:
    with pytest.raises(BackendError, match=r"cannot read --ca-file .*missing\.pem"):
        GrpcBackend("127.0.0.1:1", ca_file=tmp_path / "missing.pem")
    with pytest.raises(BackendError, match="needs both --cert-file and --key-file"):
        GrpcBackend("127.0.0.1:1", cert_file=tmp_path / "c.pem")


@pytest.mark.slow
def test_demo_deeplab_served_matches_in_process(start_tf_serving) -> None:
    from conftest import DEMO

    from segviewer.core.images import load_image
    from segviewer.core.serving.local_backend import LocalBackend

    base = DEMO / "models"
    if not (base / "pascal").is_dir():
        pytest.skip("the demo SavedModels (resources/demo/models/pascal) are not exported yet")
    server = start_tf_serving(base)
    image = load_image(DEMO / "images" / "chelsea.png")
    served = GrpcBackend(server.grpc_address, ["pascal"], timeout=300)
    local = LocalBackend(base)
    remote, in_process = served.predict(image, ModelRef("pascal")), local.predict(
        image, ModelRef("pascal"))
    np.testing.assert_array_equal(remote.labels, in_process.labels)
    assert served.metadata(ModelRef("pascal")).classes == local.metadata(ModelRef("pascal")).classes

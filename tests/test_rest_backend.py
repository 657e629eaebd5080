"""RestBackend against the stand-in TF Serving's REST API over real HTTP(S) on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from segviewer.core.serving.base import Backend, BackendError, ModelRef, ModelVersion
from segviewer.core.serving.grpc_backend import GrpcBackend
from segviewer.core.serving.rest_backend import RestBackend
from segviewer.devserver.toy_models import NUM_CLASSES, save_tiny, tiny_labels


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (19, 26, 3), dtype=np.uint8)


@pytest.fixture
def backend(tf_serving):
    backend = RestBackend(tf_serving.rest_url, ["tiny"])
    yield backend
    backend.close()


def test_is_a_backend(backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.models() == ["tiny"]
    assert backend.description.startswith("REST http://127.0.0.1:")


def test_versions(backend) -> None:
    assert backend.versions("tiny") == [ModelVersion(1, "AVAILABLE"), ModelVersion(2, "AVAILABLE")]
    assert backend.versions("tiny") == backend.versions("tiny")  # kept-alive connection reused


@pytest.mark.parametrize(
    "ref, version", [(ModelRef("tiny"), 2), (ModelRef("tiny", 1), 1),
                     (ModelRef("tiny", label="stable"), 1)],
)
def test_metadata(backend, ref, version) -> None:
    meta = backend.metadata(ref)
    assert meta.version == version
    outputs = meta.signatures["serving_default"].outputs
    assert (outputs["segmentation_map"].dtype, outputs["segmentation_map"].shape) == (
        "int64", (1, None, None))
    assert len(meta.classes) == NUM_CLASSES
    assert meta.settings["shift"] == version - 1


@pytest.mark.parametrize(
    "ref, shift",
    [(ModelRef("tiny"), 1), (ModelRef("tiny", 1), 0), (ModelRef("tiny", label="canary"), 1),
     (ModelRef("logits"), 0), (ModelRef("hwc"), 0)],
    ids=str,
)
def test_predict(backend, image, ref, shift) -> None:
    prediction = backend.predict(image, ref, want_probabilities=True)
    np.testing.assert_array_equal(prediction.labels, tiny_labels(image, shift))
    if ref.name in ("tiny", "logits"):
        assert prediction.probabilities.shape == (*image.shape[:2], NUM_CLASSES)


@pytest.mark.parametrize(
    "call, code, text",
    [
        (lambda b, im: b.predict(im, ModelRef("nope")), "NOT_FOUND",
         "nope: Servable not found for request: Latest(nope) — check the model name and version"),
        (lambda b, im: b.predict(im, ModelRef("tiny", 9)), "NOT_FOUND",
         "Servable not found for request: Specific(tiny, 9)"),
        (lambda b, im: b.predict(im, ModelRef("tiny", label="gold")), "INVALID_ARGUMENT",
         "Unrecognized servable version label: gold"),
        (lambda b, im: b.versions("nope"), "NOT_FOUND",
         "Could not find any versions of model nope"),
        (lambda b, im: b._request("POST", "/v1/models/tiny:predict", "tiny",
                                  {"signature_name": "nope", "instances": [1]}),
         "FAILED_PRECONDITION", 'Serving signature key "nope" not found.'),
        (lambda b, im: b._request("POST", "/v1/models/tiny:predict", "tiny", {"inputs": {"x": 1}}),
         "INVALID_ARGUMENT", "input tensor alias not found in signature: x."),
        (lambda b, im: b.predict(im, ModelRef("encoded")), "FAILED_PRECONDITION",
         "only sends binary outputs named '*_bytes' — use gRPC"),
    ],
)
def test_each_status_is_one_clear_line(backend, image, call, code, text) -> None:
    with pytest.raises(BackendError) as caught:
        call(backend, image)
    assert caught.value.code == code
    assert text in str(caught.value)
    assert "\n" not in str(caught.value)


def test_server_down(image) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendError) as caught:
        RestBackend(f"http://127.0.0.1:{port}", ["tiny"]).versions("tiny")
    assert caught.value.code == "UNAVAILABLE"
    assert str(caught.value).startswith(f"cannot reach 127.0.0.1:{port} — is TF Serving running?")


def test_timeout_when_the_server_never_answers() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(BackendError) as caught:
            RestBackend(url, ["tiny"], timeout=0.2).versions("tiny")
    assert caught.value.code == "DEADLINE_EXCEEDED"


def test_bad_url() -> None:
    with pytest.raises(BackendError, match="bad REST URL"):
        RestBackend("ftp://host:8501")


def test_https_with_a_ca_file_and_auth_header(start_tf_serving, tiny_base, tls_files, image):
    cert, key = tls_files
    server = start_tf_serving(tiny_base, cert_files=(cert, key), token="t0k")
    assert server.rest_url.startswith("https://")
    good = RestBackend(server.rest_url, ["tiny"], ca_file=cert,
                       headers=[("Authorization", "Bearer t0k")])
    np.testing.assert_array_equal(good.predict(image, ModelRef("tiny")).labels,
                                  tiny_labels(image, 1))
    with pytest.raises(BackendError) as caught:
        RestBackend(server.rest_url, ["tiny"], ca_file=cert).versions("tiny")
    assert caught.value.code == "UNAUTHENTICATED"
    with pytest.raises(BackendError) as caught:
        RestBackend(server.rest_url, ["tiny"]).versions("tiny")  # system CAs: not trusted
    assert caught.value.code == "UNAVAILABLE"
    assert "TLS with" in str(caught.value)


@pytest.mark.parametrize(
    "array",
    [np.arange(256, dtype=np.uint8).reshape(1, 8, 32, 1).repeat(3, axis=-1),
     np.array([[0.0, 255.0], [7.0, 8.0]], np.float32),  # integral floats: the fast path too
     np.array([[0.5, 300.0]]), np.array([-1, 2], np.int32), np.uint8(9)],
)
def test_request_json_is_what_json_reads_back(array) -> None:
    import json

    from segviewer.core.serving.rest_json import encode

    np.testing.assert_array_equal(np.asarray(json.loads(encode(array))), array)


def test_the_encoded_signature_is_used_over_rest_when_the_model_has_one(start_tf_serving,
                                                                       tmp_path, image) -> None:
    save_tiny(tmp_path / "both" / "1", encoded=True)
    server = start_tf_serving(tmp_path)
    rest = RestBackend(server.rest_url, ["both"])
    grpc = GrpcBackend(server.grpc_address, ["both"])
    try:
        sent = rest.predict(image, ModelRef("both"))
        assert sent.signature == "encoded"  # PNG bytes both ways, not JSON numbers
        np.testing.assert_array_equal(sent.labels, tiny_labels(image))
        named = rest.predict(image, ModelRef("both"), signature="serving_default")
        assert named.signature == "serving_default"
        assert grpc.predict(image, ModelRef("both")).signature == "serving_default"
    finally:
        rest.close()
        grpc.close()


class _Proxy(BaseHTTPRequestHandler):
    """A forwarding HTTP proxy that notes the URLs it was asked for."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        _Proxy.seen.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.path, body, method=self.command)
        with direct.open(request) as answer:
            data = answer.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward


def test_proxies_come_from_the_environment(tf_serving, monkeypatch) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        through = RestBackend(tf_serving.rest_url, ["tiny"])
        assert [v.version for v in through.versions("tiny")] == [1, 2]
        assert _Proxy.seen == [f"{tf_serving.rest_url}/v1/models/tiny"]
        assert "via proxy" in through.description
        through.close()
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct = RestBackend(tf_serving.rest_url, ["tiny"])
        assert [v.version for v in direct.versions("tiny")] == [1, 2]
        assert len(_Proxy.seen) == 1
        direct.close()
    finally:
        proxy.shutdown()

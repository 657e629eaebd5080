"""Misbehaving TF Serving servers for the fault-injection tests: real grpcio and real HTTP on
127.0.0.1, speaking TF Serving's protocols with the real protos (segviewer.core.serving.protos)
but answering whatever a test tells them to — wrong shapes, dtypes, sizes, malformed JSON — and
able to hang, die and come back on the same port. No TensorFlow: they start in milliseconds.

The model they serve is "tiny": uint8 `images` [1,H,W,3] -> int64 `segmentation_map` [1,H,W]
with label (R+G+B) % 4, four classes stored in its `segviewer_metadata` signature.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format

from segviewer.core.serving import codec, protos

MODEL = "tiny"
NUM_CLASSES = 4
METADATA_JSON = json.dumps({"classes": [{"id": i, "name": f"c{i}", "color": [i, i, i]}
                                        for i in range(NUM_CLASSES)]})
# TF DataType numbers (tensorflow/core/framework/types.proto).
DT_FLOAT, DT_UINT8, DT_STRING, DT_INT64 = 1, 4, 7, 9

# An answer: given the sent image [1,H,W,3], the outputs to send, or raw bytes sent as they are
# (gRPC: the serialized `outputs` map of a PredictResponse; REST: the whole body).
Answer = Callable[[np.ndarray], "dict[str, np.ndarray] | bytes"]


def tiny_labels(image: np.ndarray) -> np.ndarray:
    return image.astype(np.int64).sum(axis=-1) % NUM_CLASSES


def good_answer(image: np.ndarray) -> dict[str, np.ndarray]:
    return {"segmentation_map": tiny_labels(image)}


def signature_def_map() -> Any:
    result = protos.SignatureDefMap()
    serve = result.signature_def["serving_default"]
    serve.method_name = "tensorflow/serving/predict"
    images = serve.inputs["images"]
    images.dtype = DT_UINT8
    for size in (1, -1, -1, 3):
        images.tensor_shape.dim.add(size=size)
    labels = serve.outputs["segmentation_map"]
    labels.dtype = DT_INT64
    for size in (1, -1, -1):
        labels.tensor_shape.dim.add(size=size)
    meta = result.signature_def["segviewer_metadata"]
    meta.method_name = "tensorflow/serving/predict"
    meta.outputs["metadata_json"].dtype = DT_STRING
    return result


class _Behaviour:
    """What both servers do, changed by the tests while they run."""

    def __init__(self) -> None:
        self.answer: Answer = good_answer
        self.version = 1
        self.hang_predict = threading.Event()  # set: Predict waits until `release` is set
        self.hang_metadata = threading.Event()
        self.hang_status = threading.Event()
        self.release = threading.Event()
        self.metadata_called = threading.Event()
        self.predicts = 0
        self.lock = threading.Lock()

    def wait_if(self, hang: threading.Event) -> None:
        if hang.is_set():
            self.release.wait(60)

    def count(self) -> None:
        with self.lock:
            self.predicts += 1


class HostileGrpc(_Behaviour):
    def __init__(self, tls: tuple[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.tls = tls
        self.port = 0
        self._server: grpc.Server | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (again, on the same port after `stop`)."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers(self._handlers())
        address = f"127.0.0.1:{self.port}"
        if self.tls is None:
            self.port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(self.tls[1], self.tls[0])])
            self.port = server.add_secure_port(address, credentials)
        server.start()
        self._server = server

    def stop(self) -> None:
        """Die: stop listening and cancel every call in flight."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=None).wait()
        self.release.set()

    def _spec(self, signature: str = "") -> Any:
        spec = protos.ModelSpec(name=MODEL, signature_name=signature)
        spec.version.value = self.version
        return spec

    def _predict(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        request = protos.PredictRequest.FromString(raw)
        signature = request.model_spec.signature_name or "serving_default"
        head = protos.PredictResponse(model_spec=self._spec(signature)).SerializeToString()
        if signature == "segviewer_metadata":
            return head + codec.encode_tensor_map(1, {"metadata_json": np.array(
                METADATA_JSON.encode(), dtype=object)})
        self.count()
        self.wait_if(self.hang_predict)
        tensors, _ = codec.split_tensor_map(raw, 2)
        answer = self.answer(codec.decode_tensor(tensors["images"]))
        if isinstance(answer, bytes):
            return head + answer
        return head + codec.encode_tensor_map(1, answer, typed=True)

    def _metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.metadata_called.set()
        self.wait_if(self.hang_metadata)
        response = protos.GetModelMetadataResponse(model_spec=self._spec())
        packed = response.metadata["signature_def"]
        packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        packed.value = signature_def_map().SerializeToString()
        return response

    def _status(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.wait_if(self.hang_status)
        response = protos.GetModelStatusResponse()
        response.model_version_status.add(version=self.version, state=30)  # AVAILABLE
        return response

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        def serialize(message: Any) -> bytes:
            return message.SerializeToString()

        return [
            grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
                "Predict": grpc.unary_unary_rpc_method_handler(self._predict),
                "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
                    self._metadata, protos.GetModelMetadataRequest.FromString, serialize),
            }),
            grpc.method_handlers_generic_handler("tensorflow.serving.ModelService", {
                "GetModelStatus": grpc.unary_unary_rpc_method_handler(
                    self._status, protos.GetModelStatusRequest.FromString, serialize),
            }),
        ]


class HostileRest(_Behaviour):
    """metadata_body: raw bytes to answer /metadata with instead of the real metadata."""

    def __init__(self, cert_files: tuple[str, str] | None = None,
                 client_ca: str | None = None) -> None:
        super().__init__()
        self.cert_files = cert_files
        self.client_ca = client_ca
        self.metadata_body: bytes | None = None
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.cert_files else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                owner._connections.add(self.connection)

            def do_GET(self) -> None:
                owner._get(self)

            def do_POST(self) -> None:
                owner._post(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.cert_files is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.cert_files)
            if self.client_ca:
                context.load_verify_locations(self.client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        """Die: stop listening and cut every connection, calls in flight included."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            server.server_close()
        self.release.set()  # hung handlers end, on cut connections

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        with contextlib.suppress(OSError):  # the client may be gone: a cut or cancelled call
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/metadata"):
            self.metadata_called.set()
            self.wait_if(self.hang_metadata)
            if self.metadata_body is not None:
                self._send(handler, 200, self.metadata_body)
                return
            sigs = json_format.MessageToDict(signature_def_map(),
                                             preserving_proto_field_name=True)
            spec = {"name": MODEL, "signature_name": "", "version": str(self.version)}
            body = {"model_spec": spec, "metadata": {"signature_def": sigs}}
        else:
            body = {"model_version_status": [{"version": str(self.version),
                                              "state": "AVAILABLE"}]}
        self._send(handler, 200, json.dumps(body).encode())

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        request = json.loads(handler.rfile.read(length))
        wanted = f"/versions/{self.version}:"
        if "/versions/" in handler.path and wanted not in handler.path:
            self._send(handler, 404, json.dumps({"error": "Servable not found"}).encode())
            return
        if request.get("signature_name") == "segviewer_metadata":
            self._send(handler, 200, json.dumps({"outputs": METADATA_JSON}).encode())
            return
        self.count()
        self.wait_if(self.hang_predict)
        answer = self.answer(np.asarray(request["instances"], dtype=np.uint8))
        if not isinstance(answer, bytes):
            answer = json.dumps({"predictions": next(iter(answer.values())).tolist()}).encode()
        self._send(handler, 200, answer)

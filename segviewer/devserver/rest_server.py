"""TF Serving's REST API (`/v1/models/...`) over a `Repository`, with http.server from the stdlib.

JSON as TF Serving writes it: row format ("instances" -> "predictions") and columnar ("inputs" ->
"outputs"); `{"b64": ...}` for binary string inputs and for string outputs whose alias ends in
`_bytes`; errors as `{"error": "..."}` with TF Serving's status -> HTTP code mapping.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from google.protobuf import json_format

from segviewer.devserver.grpc_server import signature_def_map
from segviewer.devserver.repository import DEFAULT_SIGNATURE, Repository, Servable, ServingError

# tensorflow_serving/model_servers/http_rest_api_handler ToHTTPStatusCode.
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:predict)?$"
)


def _from_json(value: Any, dtype: Any) -> np.ndarray:
    if dtype.name != "string":
        return np.asarray(value, dtype=dtype.as_numpy_dtype)

    def decode(v: Any) -> Any:
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict) and set(v) == {"b64"}:
            return base64.b64decode(v["b64"])
        if isinstance(v, str):
            return v.encode("utf-8")
        raise ServingError("INVALID_ARGUMENT", f"JSON value {v!r} is not a string")

    decoded = decode(value)
    out = np.empty(np.shape(np.asarray(decoded, dtype=object)), dtype=object)
    out[...] = decoded
    return out


def _to_json(array: np.ndarray, alias: str) -> Any:
    if array.dtype != object:
        return array.tolist()
    binary = alias.endswith("_bytes")

    def encode(v: Any) -> Any:
        if isinstance(v, list):
            return [encode(x) for x in v]
        if binary:
            return {"b64": base64.b64encode(v).decode("ascii")}
        return v.decode("utf-8", errors="replace")

    return encode(array.tolist())


def predict_json(servable: Servable, body: dict[str, Any]) -> dict[str, Any]:
    signature = body.get("signature_name") or DEFAULT_SIGNATURE
    sig = servable.signatures.get(signature)
    if sig is None:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{signature}" not found.')
    row = "instances" in body
    if row == ("inputs" in body):
        raise ServingError(
            "INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key" if not row else
            "Request must have either 'inputs' or 'instances' key, not both"
        )
    raw = body["instances"] if row else body["inputs"]
    if row:
        if not isinstance(raw, list) or not raw:
            raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
        if isinstance(raw[0], dict):
            named = {alias: [inst[alias] for inst in raw] for alias in raw[0]}
        else:
            named = {next(iter(sig.inputs)): raw} if len(sig.inputs) == 1 else {}
    else:
        named = raw if isinstance(raw, dict) else {next(iter(sig.inputs)): raw}
    inputs = {}
    for alias, value in named.items():
        if alias not in sig.inputs:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{','.join(sig.inputs)}}}.",
            )
        try:
            inputs[alias] = _from_json(value, sig.inputs[alias].dtype)
        except (ValueError, TypeError) as exc:
            raise ServingError("INVALID_ARGUMENT", f"input '{alias}': {exc}") from exc
    outputs = servable.predict(signature, inputs, body.get("output_filter") or [])
    if not row:
        if len(outputs) == 1:
            alias, value = next(iter(outputs.items()))
            return {"outputs": _to_json(value, alias)}
        return {"outputs": {alias: _to_json(v, alias) for alias, v in outputs.items()}}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise ServingError(
            "INVALID_ARGUMENT",
            "Tensor name: all outputs must have the same 0th dimension size in row format",
        )
    if len(outputs) == 1:
        alias, value = next(iter(outputs.items()))
        return {"predictions": _to_json(value, alias)}
    batch = sizes.pop()
    return {
        "predictions": [
            {alias: _to_json(v[i], alias) for alias, v in outputs.items()} for i in range(batch)
        ]
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection
    server: _RestServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and dev runs
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            token = self.server.token
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                raise ServingError("UNAUTHENTICATED", "missing or wrong bearer token")
            self._send(200, self._route(method, body))
        except ServingError as exc:
            self._send(HTTP_STATUS.get(exc.code, 500), {"error": exc.message})
        except Exception as exc:  # a bug here must still answer, as a 500 with its message
            self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _route(self, method: str, body: bytes) -> dict[str, Any]:
        match = _PATH.match(self.path)
        tail = match["tail"] if match else None
        if not match or (method == "POST") != (tail == ":predict"):
            raise ServingError("INVALID_ARGUMENT", f"Malformed request: {method} {self.path}")
        repo = self.server.repository
        name, label = match["name"], match["label"] or ""
        version = int(match["version"]) if match["version"] else None
        if tail is None:
            return {
                "model_version_status": [
                    {"version": str(v), "state": "AVAILABLE",
                     "status": {"error_code": "OK", "error_message": ""}}
                    for v in repo.status(name, version, label)
                ]
            }
        servable = repo.resolve(name, version, label)
        if tail == "/metadata":
            sigs = json_format.MessageToDict(
                signature_def_map(servable), preserving_proto_field_name=True
            )
            spec = {"name": name, "signature_name": "", "version": str(servable.version)}
            return {"model_spec": spec, "metadata": {"signature_def": sigs}}
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {exc}") from exc
        if not isinstance(request, dict):
            raise ServingError("INVALID_ARGUMENT", "JSON Value: not an object")
        return predict_json(servable, request)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], repository: Repository, token: str | None):
        super().__init__(address, _Handler)
        self.repository = repository
        self.token = token
        self.connections: set[socket.socket] = set()

    def stop(self) -> None:
        """Stop serving and drop kept-alive connections, as a stopped server would."""
        self.shutdown()
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()


def start_rest(
    repository: Repository,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    cert_files: tuple[str, str] | None = None,
) -> tuple[_RestServer, int]:
    """Serve on a background thread; returns the server and its bound port.
    cert_files: (certificate PEM path, key PEM path) for HTTPS."""
    server = _RestServer((host, port), repository, token)
    if cert_files is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert_files)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="rest-stand-in").start()
    return server, server.server_address[1]


"""TF Serving over its REST API (`:8501/v1/models/...`), with the stdlib's http.client.

One keep-alive connection per thread. Images go in the row format ("instances") when the input
is batched, else columnar ("inputs"); string values as `{"b64": ...}`. TF Serving maps statuses to
HTTP codes lossily (FAILED_PRECONDITION and INVALID_ARGUMENT are both 400); we map back.
TF Serving has no "list models" call: `models()` returns the names this backend was given.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from segviewer.core.serving import protos
from segviewer.core.serving.base import (
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    BackendError,
    ModelMetadata,
    ModelRef,
    ModelVersion,
    Prediction,
)
from segviewer.core.serving.discovery import (
    parse_metadata_json,
    plan_prediction,
    prepare_input,
    to_prediction,
)

_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


# What the user can do about each status, appended to the server's message (as GrpcBackend does).
_ADVICE = {
    "NOT_FOUND": "check the model name and version",
    "FAILED_PRECONDITION": "pick another signature",
    "UNAUTHENTICATED": "check the access token",
    "PERMISSION_DENIED": "check the access token",
}


def _code(status: int, message: str) -> str:
    if status == 400 and message.startswith("Serving signature key"):
        return "FAILED_PRECONDITION"
    return _CODES.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")


# JSON text of 0..255 right-aligned in three characters: leading spaces are JSON whitespace, so
# every number has the same width and a whole image can be laid out with numpy, no Python loop.
_BYTE_TEXT = np.frombuffer("".join(f"{v:3d}" for v in range(256)).encode(), np.uint8)
_BYTE_TEXT = _BYTE_TEXT.reshape(256, 3)


def _byte_array_json(array: np.ndarray) -> bytes:
    """Nested JSON lists of an array of integers 0..255 (any numeric dtype), e.g. an image."""
    block = _BYTE_TEXT[array.astype(np.uint8)]  # (*shape, 3) characters
    for _ in range(array.ndim):
        # Join the last axis with "," and close it with "]", then open it with "[".
        ends = np.full((*block.shape[:-1], 1), ord(","), np.uint8)
        ends[..., -1, 0] = ord("]")
        block = np.concatenate([block, ends], axis=-1)
        block = block.reshape(*block.shape[:-2], -1)
        block = np.concatenate([np.full((*block.shape[:-1], 1), ord("["), np.uint8), block], -1)
    return block.tobytes()


def _json_value(array: np.ndarray) -> bytes:
    """JSON for a tensor value: bytes as {"b64": ...}; small-integer images by the fast path."""
    if array.dtype == object:

        def encode(v: Any) -> Any:
            if isinstance(v, list):
                return [encode(x) for x in v]
            data = v.encode() if isinstance(v, str) else bytes(v)
            return {"b64": base64.b64encode(data).decode("ascii")}

        return json.dumps(encode(array.tolist())).encode()
    if array.size and array.ndim and array.dtype.kind in "uif":
        low, high = array.min(), array.max()
        if low >= 0 and high <= 255 and (array.dtype.kind != "f" or np.all(array % 1 == 0)):
            return _byte_array_json(array)
    return json.dumps(array.tolist()).encode()


def _from_json(value: Any) -> np.ndarray:
    """A JSON tensor value -> numpy; strings and {"b64": ...} -> an object array of bytes."""
    leaf = value
    while isinstance(leaf, list) and leaf:
        leaf = leaf[0]
    if not isinstance(leaf, str | dict):
        return np.asarray(value)  # numbers: numpy converts the nested lists in C

    def decode(v: Any) -> Any:
        if isinstance(v, list):
            return [decode(x) for x in v]
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        return v.encode("utf-8") if isinstance(v, str) else v

    decoded = decode(value)
    out = np.empty(np.shape(np.asarray(decoded, dtype=object)), dtype=object)
    out[...] = decoded
    return out


class RestBackend:
    """A TF Serving reached over REST at `url` (e.g. "http://localhost:8501").

    models: the model names to offer. ca_file: CA bundle to verify an https server (default: the
    system's). headers: extra HTTP headers, e.g. [("Authorization", "Bearer x")]. timeout: seconds.
    """

    def __init__(
        self,
        url: str,
        models: Sequence[str] = (),
        *,
        ca_file: str | Path | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendError(f"bad REST URL '{url}' — use http://HOST:8501 or https://...",
                               "INVALID_ARGUMENT")
        self.url = url
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._prefix = parsed.path.rstrip("/")
        self._models = list(models)
        self._headers = {"Content-Type": "application/json", **dict(headers)}
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None
        if self._https:
            try:
                self._context = ssl.create_default_context(
                    cafile=str(ca_file) if ca_file is not None else None
                )
            except (OSError, ssl.SSLError) as exc:
                raise BackendError(f"cannot read the CA file '{ca_file}': {exc}",
                                   "INVALID_ARGUMENT") from exc
        self.description = f"REST {parsed.scheme}://{parsed.netloc}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[http.client.HTTPConnection] = set()  # all threads', for close()
        self._metadata: dict[ModelRef, ModelMetadata] = {}

    # --- HTTP --------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.add(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._connections.discard(conn)

    def _request(self, method: str, path: str, what: str, body: Any = None) -> Any:
        """One HTTP call; `body` is JSON-encoded unless it is bytes already."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        netloc = f"{self._host}:{self._port}"
        # Two tries: the first may meet a keep-alive connection the server has since closed.
        for attempt in range(2):
            try:
                conn = self._connection()
                conn.request(method, self._prefix + path, body=data, headers=self._headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except TimeoutError as exc:
                self._drop_connection()
                raise BackendError(f"{what}: no answer from {netloc} within {self.timeout:g} s "
                                   "— raise the timeout or check the server",
                                   "DEADLINE_EXCEEDED") from exc
            except ssl.SSLError as exc:
                self._drop_connection()
                raise BackendError(f"TLS with {netloc} failed: {exc.reason or exc} — check the "
                                   "CA file and the URL's host name", "UNAVAILABLE") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                if attempt == 0 and not isinstance(exc, ConnectionRefusedError | socket.gaierror):
                    continue
                raise BackendError(f"cannot reach {netloc} — is TF Serving running? ({exc})",
                                   "UNAVAILABLE") from exc
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if response.status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            message = str(error or f"HTTP {response.status} {response.reason}").splitlines()[0]
            code = _code(response.status, message)
            advice = f" — {_ADVICE[code]}" if code in _ADVICE else ""
            raise BackendError(f"{what}: {message}{advice}", code)
        if answer is None:
            raise BackendError(f"{what}: the server's answer is not JSON", "INTERNAL")
        return answer

    @staticmethod
    def _path(ref: ModelRef) -> str:
        path = f"/v1/models/{urllib.parse.quote(ref.name, safe='')}"
        if ref.version is not None:
            path += f"/versions/{ref.version}"
        elif ref.label:
            path += f"/labels/{urllib.parse.quote(ref.label, safe='')}"
        return path

    # --- Backend -----------------------------------------------------------------------------

    def models(self) -> list[str]:
        return list(self._models)

    def versions(self, model: str) -> list[ModelVersion]:
        answer = self._request("GET", self._path(ModelRef(model)), f"model '{model}'")
        found = [
            ModelVersion(int(s["version"]), s.get("state", "UNKNOWN"),
                         error=s.get("status", {}).get("error_message", ""))
            for s in answer.get("model_version_status", [])
        ]
        return sorted(found, key=lambda v: v.version)

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        with self._lock:
            cached = self._metadata.get(ref)
        if cached is not None:
            return cached
        answer = self._request("GET", self._path(ref) + "/metadata", str(ref))
        try:
            raw = answer["metadata"]["signature_def"]
            sigmap = json_format.ParseDict(raw, protos.SignatureDefMap(),
                                           ignore_unknown_fields=True)
            version_text = answer.get("model_spec", {}).get("version")
        except (KeyError, TypeError, json_format.ParseError) as exc:
            raise BackendError(f"{ref}: unexpected metadata from the server ({exc})",
                               "INTERNAL") from exc
        signatures = protos.signatures(sigmap)
        version = int(version_text) if version_text else ref.version
        classes, settings = None, {}
        if METADATA_SIGNATURE in signatures:
            pinned = ModelRef(ref.name, version) if version is not None else ref
            body = {"signature_name": METADATA_SIGNATURE, "inputs": {}}
            outputs = self._outputs(self._request("POST", self._path(pinned) + ":predict",
                                                  str(ref), body), METADATA_OUTPUT)
            value = outputs.get(METADATA_OUTPUT)
            if value is not None and value.size:
                classes, settings = parse_metadata_json(value.reshape(-1)[0])
        meta = ModelMetadata(ref.name, version, signatures, classes, settings)
        with self._lock:
            self._metadata[ref] = meta
        return meta

    @staticmethod
    def _outputs(answer: dict, only: str) -> dict[str, np.ndarray]:
        """The outputs of a predict answer, in either format. Row-format outputs keep their
        batch dimension; a bare value (one output) is named `only`."""
        if "predictions" in answer:
            rows = answer["predictions"]
            if rows and isinstance(rows[0], dict):
                return {k: _from_json([row[k] for row in rows]) for k in rows[0]}
            return {only: _from_json(rows)}
        if "outputs" in answer:
            outputs = answer["outputs"]
            if isinstance(outputs, dict) and "b64" not in outputs:
                return {k: _from_json(v) for k, v in outputs.items()}
            return {only: _from_json(outputs)}
        raise BackendError("the server's answer has neither 'predictions' nor 'outputs'",
                           "INTERNAL")

    def predict(
        self,
        image: np.ndarray,
        ref: ModelRef,
        signature: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        want_probabilities: bool = False,
    ) -> Prediction:
        meta = self.metadata(ref)
        plan = plan_prediction(meta, signature, input_name, output_name, want_probabilities)
        if plan.output_kind == "encoded" and not plan.output.name.endswith("_bytes"):
            raise BackendError(
                f"{ref}: output '{plan.output.name}' is binary, and TF Serving's REST API only "
                "sends binary outputs named '*_bytes' — use gRPC or another signature",
                "FAILED_PRECONDITION")
        sent = prepare_input(image, plan)
        head = json.dumps({"signature_name": plan.signature})[:-1].encode()
        if plan.batched:
            body = head + b', "instances": ' + _json_value(sent) + b"}"
        else:
            name = json.dumps(plan.input.name).encode()
            body = head + b', "inputs": {' + name + b": " + _json_value(sent) + b"}}"
        answer = self._request("POST", self._path(ref) + ":predict", str(ref), body)
        outputs = self._outputs(answer, plan.output.name)
        if plan.output.name not in outputs:
            raise BackendError(f"{ref}: the server's answer lacks output '{plan.output.name}'",
                               "INTERNAL")
        return to_prediction(outputs, plan, image.shape[:2], ref, meta.version,
                             want_probabilities)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            conn.close()

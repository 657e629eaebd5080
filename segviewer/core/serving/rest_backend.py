"""TF Serving over its REST API (`:8501/v1/models/...`); the HTTP is `rest_http`'s (urllib3).

A model with a PNG-bytes signature (the exporter's `encoded`) is called through it unless
another is named: a compressed image instead of a JSON number per value. Images go in the row
format ("instances") when the input is batched, else columnar ("inputs"); the JSON itself is
`rest_json`'s. Predictions are sent to the version the cached metadata describes, so the answer
is from the model the request was planned for. Bodies are bounded both ways (max_message_mb).
TF Serving maps statuses to HTTP codes lossily (FAILED_PRECONDITION and INVALID_ARGUMENT are
both 400); we map back.
TF Serving has no "list models" call: `models()` returns the names this backend was given.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format

from segviewer.core.serving import protos, rest_json
from segviewer.core.serving import tls as tls_files
from segviewer.core.serving.base import (
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    BackendError,
    ModelMetadata,
    ModelRef,
    ModelVersion,
    Prediction,
)
from segviewer.core.serving.calls import (
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_RETRY_FOR,
    DEFAULT_TIMEOUT,
    CallPolicy,
    Interrupt,
    with_retries,
)
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.discovery import (
    class_count,
    parse_metadata_json,
    plan_prediction,
    prepare_input,
    to_prediction,
)
from segviewer.core.serving.metadata_cache import MetadataCache
from segviewer.core.serving.rest_http import HttpClient

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


def open_spec(spec: ConnectionSpec) -> RestBackend:
    return RestBackend(spec.target, spec.models, tls=spec.tls, ca_file=spec.ca_file,
                       cert_file=spec.cert_file, key_file=spec.key_file, headers=spec.headers,
                       timeout=spec.timeout, retry_for=spec.retry_for,
                       max_message_mb=spec.max_message_mb)


# What a malformed JSON answer raises while we take it apart: each becomes one BackendError.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
              RecursionError, json_format.ParseError)


class RestBackend:
    """A TF Serving reached over REST at `url` (e.g. "http://localhost:8501").

    models: the model names to offer. ca_file: CA bundle to verify an https server (default: the
    system's); cert_file/key_file: client certificate. tls: insist on https (an http:// URL is
    refused). headers: extra HTTP headers, e.g. [("Authorization", "Bearer x")].
    timeout, retry_for, max_message_mb: see `calls.CallPolicy`.
    """

    def __init__(
        self,
        url: str,
        models: Sequence[str] = (),
        *,
        tls: bool = False,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float = DEFAULT_RETRY_FOR,
        max_message_mb: float = DEFAULT_MAX_MESSAGE_MB,
    ) -> None:
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendError(f"bad REST URL '{url}' — use http://HOST:8501 or https://...",
                               "INVALID_ARGUMENT")
        ca, cert, key = (str(p) if p else "" for p in (ca_file, cert_file, key_file))
        self._https = parsed.scheme == "https"
        tls_files.check_flags(url if "://" in url else f"http://{url}", tls, ca, cert, key)
        self.url = url
        self._host = parsed.hostname
        try:
            self._port = parsed.port or (443 if self._https else 80)
        except ValueError as exc:
            raise BackendError(f"bad REST URL '{url}': {exc}", "INVALID_ARGUMENT") from None
        self._netloc = f"{self._host}:{self._port}"
        self._prefix = parsed.path.rstrip("/")
        self._models = list(models)
        self._headers = {"Content-Type": "application/json", **dict(headers)}
        self.policy = CallPolicy(timeout, retry_for, max_message_mb)
        self.timeout = timeout
        context = tls_files.client_context(ca, cert, key) if self._https else None
        self.description = f"REST {parsed.scheme}://{parsed.netloc}"
        # JSON is text: a model's PNG-bytes signature beats a JSON number per pixel.
        self.prefers_encoded = True
        self._interrupt = Interrupt()
        self._http = HttpClient(parsed.scheme, self._host, self._port, context, self._headers,
                                self.policy, self._interrupt)
        self.description += self._http.description_proxy
        self._metadata = MetadataCache(self._fetch_metadata)

    # --- HTTP --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, what: str, body: Any = None) -> Any:
        """One HTTP call (retried while the server is unavailable); `body` is JSON-encoded
        unless it is bytes already. Returns the parsed JSON answer."""
        data = body if body is None or isinstance(body, bytes) else rest_json.dumps(body)
        if data is not None and len(data) > self.policy.max_bytes:
            raise BackendError(f"{what}: the request is {len(data) / 2**20:.0f} MB, above "
                               f"--max-message-mb {self.policy.max_message_mb:g}",
                               "INVALID_ARGUMENT")
        status, reason, payload = with_retries(
            lambda: self._http.exchange(method, self._prefix + path, data, what), self.policy,
            self._interrupt, what)
        not_json = ""
        try:
            answer = rest_json.loads(payload)
        except ValueError as exc:
            answer, not_json = None, str(exc)
        if status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            message = str(error or f"HTTP {status} {reason}").splitlines()[0]
            code = _code(status, message)
            advice = f" — {_ADVICE[code]}" if code in _ADVICE else ""
            raise BackendError(f"{what}: {message}{advice}", code)
        if answer is None:
            raise BackendError(f"{what}: bad answer from {self._netloc}: {not_json}", "INTERNAL")
        return answer

    def _path(self, ref: ModelRef) -> str:
        path = f"/v1/models/{urllib.parse.quote(ref.name, safe='')}"
        if ref.version is not None:
            path += f"/versions/{ref.version}"
        elif ref.label:
            path += f"/labels/{urllib.parse.quote(ref.label, safe='')}"
        return path

    def _malformed(self, what: str, exc: BaseException) -> BackendError:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, RecursionError):
            detail = "JSON nested too deeply"
        return BackendError(f"{what}: bad answer from {self._netloc}: {detail[:200]}",
                            "INTERNAL")

    # --- Backend -----------------------------------------------------------------------------

    def models(self) -> list[str]:
        return list(self._models)

    def versions(self, model: str) -> list[ModelVersion]:
        what = f"model '{model}'"
        answer = self._request("GET", self._path(ModelRef(model)), what)
        try:
            found = [
                ModelVersion(int(s["version"]), str(s.get("state", "UNKNOWN")),
                             error=str((s.get("status") or {}).get("error_message", "")))
                for s in answer.get("model_version_status", [])
            ]
        except _MALFORMED as exc:
            raise self._malformed(what, exc) from None
        return sorted(found, key=lambda v: v.version)

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        return self._metadata.get(ref)

    def _fetch_metadata(self, ref: ModelRef) -> ModelMetadata:
        answer = self._request("GET", self._path(ref) + "/metadata", str(ref))
        try:
            raw = answer["metadata"]["signature_def"]
            sigmap = json_format.ParseDict(raw, protos.SignatureDefMap(),
                                           ignore_unknown_fields=True)
            spec = answer.get("model_spec", {})
            if not isinstance(spec, dict):
                raise TypeError("'model_spec' is not an object")
            text = spec.get("version")
            if text not in (None, "") and not str(text).isdigit():
                raise ValueError(f"model_spec.version {text!r} is not a version number")
            version = int(text) if text not in (None, "") else ref.version
            signatures = protos.signatures(sigmap)
        except _MALFORMED as exc:
            raise self._malformed(f"{ref} metadata", exc) from None
        classes, settings = None, {}
        if METADATA_SIGNATURE in signatures:
            pinned = ModelRef(ref.name, version) if version is not None else ref
            body = {"signature_name": METADATA_SIGNATURE, "inputs": {}}
            answer = self._request("POST", self._path(pinned) + ":predict", str(ref), body)
            try:
                value = rest_json.outputs(answer, METADATA_OUTPUT).get(METADATA_OUTPUT)
            except _MALFORMED as exc:
                raise self._malformed(f"{ref} metadata", exc) from None
            if value is not None and value.dtype == object and value.size:
                classes, settings = parse_metadata_json(value.reshape(-1)[0])
        return ModelMetadata(ref.name, version, signatures, classes, settings)

    def predict(
        self,
        image: np.ndarray,
        ref: ModelRef,
        signature: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        want_probabilities: bool = False,
    ) -> Prediction:
        for attempt in range(2):
            meta = self.metadata(ref)
            # Pinned to the version the metadata describes, so the answer is from the model the
            # plan was made for and the Prediction names it; when that version is gone, the
            # server moved: read its metadata again, once.
            pinned = ModelRef(ref.name, meta.version) if meta.version is not None else ref
            try:
                return self._predict(image, ref, pinned, meta, signature, input_name,
                                     output_name, want_probabilities)
            except BackendError as exc:
                if exc.code != "NOT_FOUND" or pinned == ref or attempt:
                    raise
                self._metadata.forget(ref)
        raise AssertionError("unreachable")

    def _predict(self, image: np.ndarray, ref: ModelRef, pinned: ModelRef, meta: ModelMetadata,
                 signature: str | None, input_name: str | None, output_name: str | None,
                 want_probabilities: bool) -> Prediction:
        plan = plan_prediction(meta, signature, input_name, output_name, want_probabilities,
                               prefer_encoded=self.prefers_encoded)
        if plan.output_kind == "encoded" and not plan.output.name.endswith("_bytes"):
            raise BackendError(
                f"{ref}: output '{plan.output.name}' is binary, and TF Serving's REST API only "
                "sends binary outputs named '*_bytes' — use gRPC or another signature",
                "FAILED_PRECONDITION")
        sent = prepare_input(image, plan)
        # Four characters a value ("255,"): refuse before building a body over the limit.
        estimate = 4 * sent.size if sent.dtype != object else 2 * len(sent.reshape(-1)[0])
        if estimate > self.policy.max_bytes:
            raise BackendError(f"{ref}: the image makes a REST request of about "
                               f"{estimate / 2**20:.0f} MB, above --max-message-mb "
                               f"{self.policy.max_message_mb:g} — use gRPC or raise the limit",
                               "INVALID_ARGUMENT")
        head = rest_json.dumps({"signature_name": plan.signature})[:-1]
        if plan.batched:
            body = head + b', "instances": ' + rest_json.encode(sent) + b"}"
        else:
            name = rest_json.dumps(plan.input.name)
            body = head + b', "inputs": {' + name + b": " + rest_json.encode(sent) + b"}}"
        answer = self._request("POST", self._path(pinned) + ":predict", str(ref), body)
        try:
            outputs = rest_json.outputs(answer, plan.output.name)
        except _MALFORMED as exc:
            raise self._malformed(str(ref), exc) from None
        return to_prediction(outputs, plan, image.shape[:2], ref, meta.version,
                             want_probabilities, source=self._netloc,
                             num_classes=class_count(meta))

    def interrupt(self) -> None:
        self._interrupt.set()

    def close(self) -> None:
        self._interrupt.set()
        self._http.close()

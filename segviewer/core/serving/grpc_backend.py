"""TF Serving over gRPC: PredictionService.Predict/GetModelMetadata, ModelService.GetModelStatus.

No TensorFlow: messages come from `protos`, tensors are (de)serialized by `codec`, and the stubs
are plain grpcio callables on the method paths. Predict sends and receives raw bytes so that the
image and the label map never pass through protobuf's Python objects.

TF Serving has no "list models" RPC: `models()` returns the names this backend was given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from segviewer.core.serving import codec, protos
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
    needed_outputs,
    parse_metadata_json,
    plan_prediction,
    prepare_input,
    to_prediction,
)

# Room for a 4K RGB image going and its label map coming back (the gRPC default is 4 MB).
MAX_MESSAGE = 256 * 1024 * 1024
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_STATE = protos.message("tensorflow.serving.ModelVersionStatus").DESCRIPTOR.enum_types_by_name[
    "State"
]
# What the user can do about each status, appended to the server's message.
_ADVICE = {
    grpc.StatusCode.NOT_FOUND: "check the model name and version",
    grpc.StatusCode.FAILED_PRECONDITION: "pick another signature",
    grpc.StatusCode.UNAUTHENTICATED: "check the access token",
    grpc.StatusCode.PERMISSION_DENIED: "check the access token",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the server is overloaded or the image too large",
    grpc.StatusCode.UNIMPLEMENTED: "is this a TF Serving server?",
}


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


def _read(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BackendError(f"cannot read the {what} '{path}': {exc.strerror}",
                           "INVALID_ARGUMENT") from exc


class GrpcBackend:
    """A TF Serving reached over gRPC.

    models: the model names to offer (TF Serving cannot list them). TLS is used when `tls` is set
    or any of ca_file (server CA, else the system roots), cert_file/key_file (client certificate)
    is given. metadata: extra headers on every call, e.g. [("authorization", "Bearer x")].
    timeout: seconds per call. retries: extra attempts, with exponential backoff from `backoff`
    seconds, when the server is UNAVAILABLE or the deadline passes.
    """

    def __init__(
        self,
        address: str,
        models: Sequence[str] = (),
        *,
        tls: bool = False,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        server_name: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.address = address
        self._models = list(models)
        # gRPC metadata keys must be lower case ("Authorization" would be refused).
        self._call_metadata = tuple((key.lower(), value) for key, value in metadata)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
        ]
        secure = tls or any(p is not None for p in (ca_file, cert_file, key_file))
        if secure:
            if (cert_file is None) != (key_file is None):
                raise BackendError("a client certificate needs both --tls-cert and --tls-key",
                                   "INVALID_ARGUMENT")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file, "CA file"),
                private_key=_read(key_file, "client key"),
                certificate_chain=_read(cert_file, "client certificate"),
            )
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self.description = f"gRPC {address}" + (" (TLS)" if secure else "")
        # Predict goes as raw bytes both ways (None serializers): the codec does the work.
        self._predict = self._channel.unary_unary(protos.PREDICT)
        self._get_metadata = self._channel.unary_unary(
            protos.GET_MODEL_METADATA, _serialize, protos.GetModelMetadataResponse.FromString
        )
        self._get_status = self._channel.unary_unary(
            protos.GET_MODEL_STATUS, _serialize, protos.GetModelStatusResponse.FromString
        )
        self._lock = threading.Lock()
        self._metadata: dict[ModelRef, ModelMetadata] = {}
        self._classes: dict[tuple[str, int | None], tuple[Any, dict]] = {}

    # --- calls -------------------------------------------------------------------------------

    def _call(self, stub: Any, request: Any, what: str) -> Any:
        attempt = 0
        while True:
            try:
                return stub(request, timeout=self.timeout, metadata=self._call_metadata)
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE or attempt >= self.retries:
                    raise self._error(exc, what) from None
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _error(self, exc: grpc.RpcError, what: str) -> BackendError:
        code = exc.code()
        details = (exc.details() or "").strip().splitlines()
        detail = details[0] if details else code.name
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"cannot reach {self.address} — is TF Serving running? ({detail})"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = (f"{what}: no answer from {self.address} within {self.timeout:g} s — "
                       "raise the timeout or check the server")
        elif code in _ADVICE:
            message = f"{what}: {detail} — {_ADVICE[code]}"
        else:
            message = f"{what}: {detail}"
        return BackendError(message, code.name)

    @staticmethod
    def _spec(ref: ModelRef, signature: str = "") -> Any:
        spec = protos.ModelSpec(name=ref.name, signature_name=signature)
        if ref.version is not None:
            spec.version.value = ref.version
        elif ref.label:
            spec.version_label = ref.label
        return spec

    # --- Backend -----------------------------------------------------------------------------

    def models(self) -> list[str]:
        return list(self._models)

    def versions(self, model: str) -> list[ModelVersion]:
        request = protos.GetModelStatusRequest(model_spec=self._spec(ModelRef(model)))
        response = self._call(self._get_status, request, f"model '{model}'")
        found = []
        for status in response.model_version_status:
            state = _STATE.values_by_number.get(status.state)
            name = state.name if state is not None else str(status.state)
            found.append(ModelVersion(int(status.version), name,
                                      error=status.status.error_message))
        return sorted(found, key=lambda v: v.version)

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        with self._lock:
            cached = self._metadata.get(ref)
        if cached is not None:
            return cached
        request = protos.GetModelMetadataRequest(
            model_spec=self._spec(ref), metadata_field=["signature_def"]
        )
        response = self._call(self._get_metadata, request, str(ref))
        packed = response.metadata.get("signature_def")
        if packed is None or not packed.type_url.endswith("tensorflow.serving.SignatureDefMap"):
            raise BackendError(f"{ref}: the server sent no signature_def metadata", "INTERNAL")
        signatures = protos.signatures(protos.SignatureDefMap.FromString(packed.value))
        spec = response.model_spec
        version = spec.version.value if spec.HasField("version") else ref.version
        classes, settings = self._stored_metadata(ref, version, signatures)
        meta = ModelMetadata(ref.name, version, signatures, classes, settings)
        with self._lock:
            self._metadata[ref] = meta
        return meta

    def _stored_metadata(self, ref: ModelRef, version: int | None, signatures: dict) -> tuple:
        """Class names/colours from the `segviewer_metadata` signature, once per version."""
        key = (ref.name, version)
        with self._lock:
            if key in self._classes:
                return self._classes[key]
        found: tuple[Any, dict] = (None, {})
        if METADATA_SIGNATURE in signatures:
            pinned = ModelRef(ref.name, version) if version is not None else ref
            outputs, _ = self._run(pinned, METADATA_SIGNATURE, {}, [METADATA_OUTPUT])
            value = outputs.get(METADATA_OUTPUT)
            if value is not None and value.size:
                found = parse_metadata_json(value.reshape(-1)[0])
        with self._lock:
            self._classes[key] = found
        return found

    def _run(
        self, ref: ModelRef, signature: str, inputs: dict[str, np.ndarray], output_filter: list[str]
    ) -> tuple[dict[str, np.ndarray], Any]:
        head = protos.PredictRequest(
            model_spec=self._spec(ref, signature), output_filter=output_filter
        )
        request = head.SerializeToString() + codec.encode_inputs(inputs)
        raw = self._call(self._predict, request, str(ref))
        try:
            outputs, spec = codec.decode_predict_response(raw)
        except ValueError as exc:
            raise BackendError(f"{ref}: malformed answer from the server: {exc}",
                               "INTERNAL") from exc
        return outputs, protos.ModelSpec.FromString(spec)

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
        wanted = needed_outputs(plan, want_probabilities)
        sent = prepare_input(image, plan)
        outputs, spec = self._run(ref, plan.signature, {plan.input.name: sent}, wanted)
        missing = [name for name in wanted if name not in outputs]
        if missing:
            raise BackendError(f"{ref}: the server's answer lacks output '{missing[0]}'",
                               "INTERNAL")
        version = spec.version.value if spec.HasField("version") else meta.version
        if version != meta.version:
            # The server moved to another version: plan again from its metadata next time.
            with self._lock:
                self._metadata.pop(ref, None)
        return to_prediction(outputs, plan, image.shape[:2], ref, version, want_probabilities)

    def close(self) -> None:
        self._channel.close()

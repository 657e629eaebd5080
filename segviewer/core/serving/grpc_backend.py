"""TF Serving over gRPC: PredictionService.Predict/GetModelMetadata, ModelService.GetModelStatus.

No TensorFlow: messages come from `protos`, tensors are (de)serialized by `codec`, and the stubs
are plain grpcio callables on the method paths. Predict sends and receives raw bytes so that the
image and the label map never pass through protobuf's Python objects.

TF Serving has no "list models" RPC: `models()` returns the names this backend was given.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from segviewer.core.serving import codec, protos
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
    cancelled,
    with_retries,
)
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.discovery import (
    class_count,
    needed_outputs,
    parse_metadata_json,
    plan_prediction,
    prepare_input,
    to_prediction,
)
from segviewer.core.serving.metadata_cache import MetadataCache

_STATE = protos.message("tensorflow.serving.ModelVersionStatus").DESCRIPTOR.enum_types_by_name[
    "State"
]
_MAX_VERSION = 2**63 - 1  # ModelSpec.version is an Int64Value
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


def open_spec(spec: ConnectionSpec) -> GrpcBackend:
    return GrpcBackend(spec.target, spec.models, tls=spec.tls, ca_file=spec.ca_file,
                       cert_file=spec.cert_file, key_file=spec.key_file, metadata=spec.headers,
                       timeout=spec.timeout, retry_for=spec.retry_for,
                       max_message_mb=spec.max_message_mb)


class GrpcBackend:
    """A TF Serving reached over gRPC.

    models: the model names to offer (TF Serving cannot list them). TLS is used when `tls` is set
    or any of ca_file (server CA, else the system roots), cert_file/key_file (client certificate)
    is given. metadata: extra headers on every call, e.g. [("authorization", "Bearer x")].
    timeout, retry_for, max_message_mb: see `calls.CallPolicy`.
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
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float = DEFAULT_RETRY_FOR,
        max_message_mb: float = DEFAULT_MAX_MESSAGE_MB,
    ) -> None:
        self.address = address
        self._models = list(models)
        # gRPC metadata keys must be lower case ("Authorization" would be refused).
        self._call_metadata = tuple((key.lower(), value) for key, value in metadata)
        self.policy = CallPolicy(timeout, retry_for, max_message_mb)
        self.timeout = timeout
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", self.policy.max_bytes),
            ("grpc.max_receive_message_length", self.policy.max_bytes),
            # Reconnect soon after a restart (gRPC's default backoff grows to 2 minutes).
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # A name resolving to several addresses (dns:///serving:8500, a Kubernetes headless
            # Service) spreads calls over all of them; grpc's default would use only the first.
            ("grpc.lb_policy_name", "round_robin"),
        ]
        ca, cert, key = (str(p) if p else "" for p in (ca_file, cert_file, key_file))
        self._secure = secure = tls or any((ca, cert, key))
        if secure:
            tls_files.client_context(ca, cert, key)  # names a missing or garbage file now
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_files.read_file(ca, "--ca-file"),
                private_key=tls_files.read_file(key, "--key-file"),
                certificate_chain=tls_files.read_file(cert, "--cert-file"),
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
        self._in_flight: set[grpc.Future] = set()
        self._interrupt = Interrupt()
        self._interrupt.on_set(self._cancel_in_flight)
        self._metadata = MetadataCache(self._fetch_metadata)

    # --- calls -------------------------------------------------------------------------------

    def _call(self, stub: Any, request: Any, what: str) -> Any:
        return with_retries(lambda: self._attempt(stub, request, what), self.policy,
                            self._interrupt, what)

    def _attempt(self, stub: Any, request: Any, what: str) -> Any:
        future = stub.future(request, timeout=self.timeout, metadata=self._call_metadata)
        with self._lock:
            self._in_flight.add(future)
        try:
            if self._interrupt.is_set():
                future.cancel()
            return future.result()
        except grpc.FutureCancelledError:
            raise cancelled(what) from None
        except grpc.RpcError as exc:
            raise self._error(exc, what) from None
        finally:
            with self._lock:
                self._in_flight.discard(future)

    def _cancel_in_flight(self) -> None:
        with self._lock:
            in_flight = list(self._in_flight)
        for future in in_flight:
            future.cancel()

    def _error(self, exc: grpc.RpcError, what: str) -> BackendError:
        code = exc.code()
        details = (exc.details() or "").strip().splitlines()
        detail = details[0] if details else code.name
        if code == grpc.StatusCode.CANCELLED and self._interrupt.is_set():
            return cancelled(what)
        if code == grpc.StatusCode.CANCELLED:  # not by us: a server shutting down cuts its calls
            return BackendError(f"{what}: {self.address} cancelled the call ({detail}) — it may "
                                "be restarting", "UNAVAILABLE")
        if code == grpc.StatusCode.UNAVAILABLE:
            reason = tls_files.handshake_reason(detail) if self._secure else None
            if reason is not None:
                return tls_files.failure(self.address, reason)
            message = f"cannot reach {self.address} — is TF Serving running? ({detail})"
            if not self._secure and "Socket closed" in detail:
                message += " — if the server uses TLS, add --tls"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = (f"{what}: no answer from {self.address} within {self.timeout:g} s — "
                       "raise --timeout or check the server")
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message larger than" in detail:
            message = (f"{what}: {detail} — above --max-message-mb "
                       f"{self.policy.max_message_mb:g}; raise it if the server is trusted")
        elif code in _ADVICE:
            message = f"{what}: {detail} — {_ADVICE[code]}"
        else:
            message = f"{what}: {detail}"
        return BackendError(message, code.name)

    @staticmethod
    def _spec(ref: ModelRef, signature: str = "") -> Any:
        spec = protos.ModelSpec(name=ref.name, signature_name=signature)
        if ref.version is not None:
            if not 0 <= ref.version <= _MAX_VERSION:
                raise BackendError(f"version {ref.version} of '{ref.name}' is out of range — "
                                   f"versions are whole numbers from 0 to {_MAX_VERSION}",
                                   "INVALID_ARGUMENT")
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
        return self._metadata.get(ref)

    def _fetch_metadata(self, ref: ModelRef) -> ModelMetadata:
        request = protos.GetModelMetadataRequest(
            model_spec=self._spec(ref), metadata_field=["signature_def"]
        )
        response = self._call(self._get_metadata, request, str(ref))
        packed = response.metadata.get("signature_def")
        if packed is None or not packed.type_url.endswith("tensorflow.serving.SignatureDefMap"):
            raise BackendError(f"{ref}: {self.address} sent no signature_def metadata",
                               "INTERNAL")
        try:
            signatures = protos.signatures(protos.SignatureDefMap.FromString(packed.value))
        except (DecodeError, ValueError, KeyError) as exc:
            raise BackendError(f"{ref}: bad metadata from {self.address}: {exc}",
                               "INTERNAL") from exc
        spec = response.model_spec
        version = spec.version.value if spec.HasField("version") else ref.version
        classes, settings = None, {}
        if METADATA_SIGNATURE in signatures:
            pinned = ModelRef(ref.name, version) if version is not None else ref
            outputs, _ = self._run(pinned, METADATA_SIGNATURE, {}, [METADATA_OUTPUT])
            value = outputs.get(METADATA_OUTPUT)
            if value is not None and value.dtype == object and value.size:
                classes, settings = parse_metadata_json(value.reshape(-1)[0])
        return ModelMetadata(ref.name, version, signatures, classes, settings)

    def _run(
        self, ref: ModelRef, signature: str, inputs: dict[str, np.ndarray], output_filter: list[str]
    ) -> tuple[dict[str, np.ndarray], Any]:
        head = protos.PredictRequest(
            model_spec=self._spec(ref, signature), output_filter=output_filter
        )
        request = codec.encode_inputs(inputs, head=head.SerializeToString())
        if len(request) > self.policy.max_bytes:
            raise BackendError(f"{ref}: the request is {len(request) / 2**20:.0f} MB, above "
                               f"--max-message-mb {self.policy.max_message_mb:g}",
                               "INVALID_ARGUMENT")
        raw = self._call(self._predict, request, str(ref))
        try:
            outputs, spec = codec.decode_predict_response(raw)
            return outputs, protos.ModelSpec.FromString(spec)
        except (ValueError, DecodeError) as exc:
            raise BackendError(f"{ref}: bad answer from {self.address}: {exc}",
                               "INTERNAL") from exc

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
        version = spec.version.value if spec.HasField("version") else meta.version
        # The server moved to another version: plan again from its metadata next time.
        self._metadata.answered(ref, version)
        return to_prediction(outputs, plan, image.shape[:2], ref, version, want_probabilities,
                             source=self.address, num_classes=class_count(meta))

    def interrupt(self) -> None:
        self._interrupt.set()

    def close(self) -> None:
        self._interrupt.set()
        self._channel.close()

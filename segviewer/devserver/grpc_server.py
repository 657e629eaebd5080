"""TF Serving's gRPC API (PredictionService.Predict/GetModelMetadata, ModelService.GetModelStatus)
over a `Repository`, with the official messages from `segviewer.core.serving.protos`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from segviewer.core.serving import codec, protos
from segviewer.devserver.repository import Repository, Servable, ServingError

# TF Serving accepts messages up to 2 GB; clients are the ones with a 4 MB default.
MAX_MESSAGE = 1 << 30
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
AVAILABLE = protos.enum_value("tensorflow.serving.ModelVersionStatus.State", "AVAILABLE")


def model_spec(servable: Servable, signature: str = "") -> Any:
    spec = protos.ModelSpec(name=servable.name, signature_name=signature)
    spec.version.value = servable.version
    return spec


def signature_def_map(servable: Servable) -> Any:
    """The SignatureDefMap GetModelMetadata returns (also the REST /metadata JSON)."""
    result = protos.SignatureDefMap()
    for key, sig in servable.signatures.items():
        out = result.signature_def[key]
        out.method_name = "tensorflow/serving/predict"
        for field, tensors in (("inputs", sig.inputs), ("outputs", sig.outputs)):
            for alias, info in tensors.items():
                tensor_info = getattr(out, field)[alias]
                tensor_info.name = f"{key}_{alias}:0"
                tensor_info.dtype = info.dtype.as_datatype_enum
                if info.shape is None:
                    tensor_info.tensor_shape.unknown_rank = True
                for size in info.shape or ():
                    tensor_info.tensor_shape.dim.add(size=-1 if size is None else size)
    return result


def _version(spec: Any) -> int | None:
    return spec.version.value if spec.HasField("version") else None


class PredictionHandlers:
    def __init__(
        self, repository: Repository, tensor_content: bool = False, token: str | None = None
    ) -> None:
        self.repository = repository
        self.tensor_content = tensor_content
        self.token = token

    def _guard(self, fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable:
        """Authorization check, and ServingError -> the gRPC status TF Serving would send."""

        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            if self.token is not None:
                sent = dict(context.invocation_metadata()).get("authorization")
                if sent != f"Bearer {self.token}":
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            try:
                return fn(request, context)
            except ServingError as exc:
                context.abort(grpc.StatusCode[exc.code], exc.message)

        return handler

    def predict(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        # Inputs are decoded from the raw bytes with the codec; the rest parses as the message.
        tensors, _ = codec.split_tensor_map(raw, 2)
        request = protos.PredictRequest.FromString(raw)
        spec = request.model_spec
        servable = self.repository.resolve(spec.name, _version(spec), spec.version_label)
        try:
            inputs = {name: codec.decode_tensor(t) for name, t in tensors.items()}
        except ValueError as exc:
            raise ServingError("INVALID_ARGUMENT", f"tensor parsing error: {exc}") from exc
        outputs = servable.predict(spec.signature_name, inputs, list(request.output_filter))
        signature = spec.signature_name or "serving_default"
        head = protos.PredictResponse(model_spec=model_spec(servable, signature))
        return head.SerializeToString() + codec.encode_tensor_map(
            1, outputs, typed=not self.tensor_content
        )

    def metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        fields = list(request.metadata_field)
        if not fields:
            message = "GetModelMetadataRequest must specify at least one metadata_field"
            raise ServingError("INVALID_ARGUMENT", message)
        for name in fields:
            if name != "signature_def":
                raise ServingError("INVALID_ARGUMENT", f"Metadata field {name} is not supported")
        spec = request.model_spec
        servable = self.repository.resolve(spec.name, _version(spec), spec.version_label)
        response = protos.GetModelMetadataResponse(model_spec=model_spec(servable))
        packed = response.metadata["signature_def"]
        packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        packed.value = signature_def_map(servable).SerializeToString()
        return response

    def status(self, request: Any, context: grpc.ServicerContext) -> Any:
        spec = request.model_spec
        versions = self.repository.status(spec.name, _version(spec), spec.version_label)
        response = protos.GetModelStatusResponse()
        for version in versions:
            response.model_version_status.add(version=version, state=AVAILABLE)
        return response

    def generic_handlers(self) -> list[grpc.GenericRpcHandler]:
        def serialize(message: Any) -> bytes:
            return message.SerializeToString()

        prediction = grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {
                # Raw bytes both ways: the codec does the (de)serialization of tensors.
                "Predict": grpc.unary_unary_rpc_method_handler(self._guard(self.predict)),
                "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
                    self._guard(self.metadata),
                    request_deserializer=protos.GetModelMetadataRequest.FromString,
                    response_serializer=serialize,
                ),
            },
        )
        model = grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {
                "GetModelStatus": grpc.unary_unary_rpc_method_handler(
                    self._guard(self.status),
                    request_deserializer=protos.GetModelStatusRequest.FromString,
                    response_serializer=serialize,
                ),
            },
        )
        return [prediction, model]


def start_grpc(
    handlers: PredictionHandlers,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: tuple[bytes, bytes] | None = None,
    client_ca: bytes | None = None,
    workers: int = 4,
) -> tuple[grpc.Server, int]:
    """Start serving; returns the server and the bound port (port 0: any free one).
    tls: (PEM certificate chain, PEM private key). client_ca: require client certificates
    signed by this PEM CA (mutual TLS)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=_OPTIONS)
    server.add_generic_rpc_handlers(handlers.generic_handlers())
    address = f"{host}:{port}"
    try:
        bound = _add_port(server, address, tls, client_ca)
    except RuntimeError as exc:  # grpcio's "failed to bind"
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, bound


def _add_port(
    server: grpc.Server, address: str, tls: tuple[bytes, bytes] | None, client_ca: bytes | None
) -> int:
    if tls is None:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(tls[1], tls[0])], root_certificates=client_ca, require_client_auth=bool(client_ca)
    )
    return server.add_secure_port(address, credentials)

"""One stand-in server: gRPC and REST on the same models, started and stopped together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segviewer.devserver.grpc_server import PredictionHandlers, start_grpc
from segviewer.devserver.repository import Capacity, Repository
from segviewer.devserver.rest_server import start_rest


@dataclass
class StandIn:
    """A running stand-in: addresses to give clients, and stop()."""

    base: Path
    repository: Repository
    grpc_address: str
    rest_url: str
    _grpc: Any
    _rest: Any

    def stop(self) -> None:
        self._grpc.stop(grace=None).wait()
        self._rest.stop()


def start(
    base: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    rest_port: int = 0,
    versions: Mapping[str, list[int]] | None = None,
    labels: Mapping[str, Mapping[str, int]] | None = None,
    tensor_content: bool = False,
    token: str | None = None,
    cert_files: tuple[str | Path, str | Path] | None = None,
    client_ca_file: str | Path | None = None,
    latency: float = 0.0,
    max_concurrent: int = 0,
) -> StandIn:
    """Load the models under `base` and serve them (port 0: any free port).

    versions: model -> versions to serve (default: the latest, TF Serving's default policy).
    labels: model -> {label: version}. tensor_content: answer in `tensor_content` as TF Serving
    does with --enable_serialization_as_tensor_content (default: typed fields). token: require
    "authorization: Bearer TOKEN". cert_files: (certificate, key) PEM files for TLS/HTTPS.
    client_ca_file: with cert_files, gRPC requires client certificates signed by this CA.
    latency, max_concurrent: seconds added to each predict, and the most predicts run at once
    (0: no cap), so a benchmark's replica has a capacity that does not depend on the CPUs.
    """
    repository = Repository(base, versions, labels, Capacity(latency, max_concurrent))
    handlers = PredictionHandlers(repository, tensor_content, token)
    tls = None
    if cert_files is not None:
        tls = (Path(cert_files[0]).read_bytes(), Path(cert_files[1]).read_bytes())
    client_ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    # Enough threads that a capped replica queues its calls rather than refusing them.
    grpc_server, bound = start_grpc(handlers, host, port, tls, client_ca,
                                    workers=max(4, 2 * max_concurrent))
    files = (str(cert_files[0]), str(cert_files[1])) if cert_files else None
    rest, rest_bound = start_rest(repository, host, rest_port, token, files)
    scheme = "https" if files else "http"
    return StandIn(
        Path(base), repository, f"{host}:{bound}", f"{scheme}://{host}:{rest_bound}", grpc_server,
        rest,
    )

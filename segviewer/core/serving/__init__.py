"""Model-, image- and network-side logic. Never imports Qt.

`open_backend(spec)` turns what a user types into a Backend: "host:port" or "grpc://host:port"
(gRPC), "http(s)://..." (REST) or a folder (SavedModels run in-process). Each backend module is
imported only when chosen, so opening a remote one never loads TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from segviewer.core.serving.base import Backend, BackendError

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$")


def open_backend(
    spec: str,
    *,
    models: Sequence[str] = (),
    tls: bool = False,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float | None = None,
) -> Backend:
    """A backend for `spec`; `models` names the model(s) a remote server is asked about."""
    spec = spec.strip()
    remote: dict = {"models": list(models)}
    if timeout is not None:
        remote["timeout"] = timeout
    if spec.startswith(("http://", "https://")):
        from segviewer.core.serving.rest_backend import RestBackend

        return RestBackend(spec, ca_file=ca_file, headers=list(headers), **remote)
    address = spec.removeprefix("grpc://").removeprefix("grpcs://")
    if address != spec or (_HOST_PORT.match(spec) and not Path(spec).exists()):
        from segviewer.core.serving.grpc_backend import GrpcBackend

        return GrpcBackend(address, tls=tls or spec.startswith("grpcs://"), ca_file=ca_file,
                           cert_file=cert_file, key_file=key_file, metadata=list(headers),
                           **remote)
    if "://" in spec:
        raise BackendError(f"unknown server address '{spec}' — use host:port or grpc://host:port "
                           "for gRPC, http(s)://host:port for REST", "INVALID_ARGUMENT")
    from segviewer.core.serving.local_backend import LocalBackend

    return LocalBackend(spec)

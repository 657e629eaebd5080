"""Model-, image- and network-side logic. Never imports Qt.

`ConnectionSpec` (in `connection`) says where the models are; `open_backend(text)` is the short
form for what a user typed: "host:port" or "grpc://host:port" (gRPC), "http(s)://..." (REST) or
a folder (SavedModels run in-process). Each backend module is imported only when chosen, so
opening a remote one never loads TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

from segviewer.core.serving.base import Backend
from segviewer.core.serving.connection import ConnectionSpec

# gRPC's C core writes informational lines (a server's GOAWAY when it restarts) to stderr; it
# reads this when grpc is first imported, which is later (grpc_backend, when chosen). The user
# sees our one-line errors instead.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def open_backend(text: str, **options: Any) -> Backend:
    """A backend for `text`; `options` are ConnectionSpec fields (models, tls, timeout...)."""
    options = {k: v for k, v in options.items() if v is not None}
    if "models" in options:
        options["models"] = tuple(options["models"])
    if "headers" in options:
        options["headers"] = tuple(tuple(h) for h in options["headers"])
    return ConnectionSpec.parse(text, **options).open()

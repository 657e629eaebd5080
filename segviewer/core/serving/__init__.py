"""Model-, image- and network-side logic. Never imports Qt.

`ConnectionSpec` (in `connection`) says where the models are and opens the Backend (`base`) for
them: "host:port" or "grpc://host:port" (gRPC), "http(s)://..." (REST) or a folder (SavedModels
run in-process). Each backend module is imported only when chosen, so opening a remote one never
loads TensorFlow.
"""

import os

# gRPC's C core writes informational lines (a server's GOAWAY when it restarts) to stderr; it
# reads this when grpc is first imported, which is later (grpc_backend, when chosen). The user
# sees our one-line errors instead.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

"""One metadata cache for every backend: what a model reference (name, version or label, or
"latest") resolved to, kept until an answer shows that the server moved.

Backends supply the fetch and call `answered(ref, version)` with the version an answer came from:
gRPC reads it from each Predict answer, REST pins requests to the cached version and drops the
entry when that version is gone, the in-process backend re-resolves "latest" on each call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from segviewer.core.serving.base import ModelMetadata, ModelRef


class MetadataCache:
    def __init__(self, fetch: Callable[[ModelRef], ModelMetadata]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._entries: dict[ModelRef, ModelMetadata] = {}

    def get(self, ref: ModelRef) -> ModelMetadata:
        with self._lock:
            cached = self._entries.get(ref)
        if cached is not None:
            return cached
        meta = self._fetch(ref)  # outside the lock: one slow server must not block other refs
        with self._lock:
            self._entries[ref] = meta
        return meta

    def answered(self, ref: ModelRef, version: int | None) -> None:
        """An answer for `ref` came from `version`: if the cache says another, forget it so the
        next call reads the metadata of what the server serves now."""
        with self._lock:
            cached = self._entries.get(ref)
            if cached is not None and version is not None and cached.version != version:
                del self._entries[ref]

    def forget(self, ref: ModelRef) -> None:
        with self._lock:
            self._entries.pop(ref, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

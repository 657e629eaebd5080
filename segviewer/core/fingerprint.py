"""What a model version *is*, independent of the path, host or protocol it is reached by.

`fingerprint(backend, ref, local_path)` returns a `Fingerprint`, one of three kinds, strongest
first:

- "content": the SavedModel was made by our exporter, which stores the digest of its weights
  (`weights_sha256`) in the `segviewer_metadata` JSON. The fingerprint hashes that JSON (classes,
  export settings, weights digest) with the signatures' names, tensors and dtypes, so an
  in-process folder, a gRPC and a REST server give the same value for the same version, and two
  versions that differ only in their export settings (scales, flipping) differ.
- "files": a SavedModel not made by our exporter, read from a local folder: the hash of its
  `saved_model.pb` and `variables/` files.
- "signature-only": such a model reached over the network, where no content is exposed: the hash
  of the signatures and any stored metadata. Weaker (two trainings of one architecture collide),
  and marked so wherever it is shown.

A fingerprint is written as "kind:hex" (`str(fp)`), how the review store and prediction
provenance record it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segviewer.core.serving.base import Backend, ModelMetadata, ModelRef

WEIGHTS_KEY = "weights_sha256"  # in the exporter's metadata settings
CONTENT, FILES, SIGNATURE_ONLY = "content", "files", "signature-only"
KINDS = (CONTENT, FILES, SIGNATURE_ONLY)
_CHUNK = 1 << 20


class FingerprintError(ValueError):
    """A recorded fingerprint that cannot be read; one line for the user."""


@dataclass(frozen=True)
class Fingerprint:
    kind: str  # CONTENT, FILES or SIGNATURE_ONLY
    digest: str  # sha256, hex

    def __str__(self) -> str:
        return f"{self.kind}:{self.digest}"

    @property
    def short(self) -> str:
        """12 hex digits, with the weak kind spelled out (what a label or table shows)."""
        weak = " (signature only)" if self.kind == SIGNATURE_ONLY else ""
        return f"{self.digest[:12]}{weak}"

    @property
    def weak(self) -> bool:
        return self.kind == SIGNATURE_ONLY

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        kind, _, digest = str(text).partition(":")
        if kind not in KINDS or len(digest) != 64 \
                or any(c not in "0123456789abcdef" for c in digest):
            raise FingerprintError(f"'{text}' is not a model fingerprint (kind:sha256)")
        return cls(kind, digest)


def weights_digest(variables: Iterable[tuple[str, tuple[int, ...], Any]]) -> str:
    """sha256 of a model's weights given as (dtype name, shape, values): order-independent (the
    per-tensor hashes are sorted), so it does not depend on how the variables are listed."""
    hashes = []
    for dtype, shape, values in variables:
        h = hashlib.sha256(f"{dtype}{list(shape)}".encode())
        h.update(np.ascontiguousarray(values).tobytes())
        hashes.append(h.hexdigest())
    return hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()


def _signatures(meta: ModelMetadata) -> dict[str, Any]:
    """Names, tensor names and dtypes: what every protocol reports alike (shapes are not: REST
    and gRPC spell unknown dimensions differently from TensorFlow)."""
    return {
        name: {"inputs": {k: t.dtype for k, t in sorted(sig.inputs.items())},
               "outputs": {k: t.dtype for k, t in sorted(sig.outputs.items())}}
        for name, sig in sorted(meta.signatures.items())
    }


def _stored_metadata(meta: ModelMetadata) -> dict[str, Any]:
    classes = [[c.id, c.name, list(c.color)] for c in meta.classes or []]
    return {"classes": classes, "settings": meta.settings}


def _hash_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def from_metadata(meta: ModelMetadata, local_path: Path | None = None) -> Fingerprint:
    """The fingerprint of a version whose metadata is known (see the module doc)."""
    if isinstance(meta.settings.get(WEIGHTS_KEY), str):
        return Fingerprint(CONTENT, _hash_json({"metadata": _stored_metadata(meta),
                                                "signatures": _signatures(meta)}))
    if local_path is not None and (Path(local_path) / "saved_model.pb").is_file():
        return Fingerprint(FILES, files_digest(Path(local_path)))
    return Fingerprint(SIGNATURE_ONLY, _hash_json({"metadata": _stored_metadata(meta),
                                                   "signatures": _signatures(meta)}))


def files_digest(folder: Path) -> str:
    """sha256 over `saved_model.pb` and the `variables/` files (names and bytes, sorted)."""
    total = hashlib.sha256()
    files = [folder / "saved_model.pb", *sorted((folder / "variables").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        total.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                total.update(chunk)
    return total.hexdigest()


def local_folder(backend: Backend, ref: ModelRef) -> Path | None:
    """The SavedModel folder of `ref` when `backend` runs it in this process, else None."""
    folder_of = getattr(backend, "version_folder", None)
    return folder_of(ref) if callable(folder_of) else None


def fingerprint(backend: Backend, ref: ModelRef, local_path: Path | None = None) -> Fingerprint:
    """The fingerprint of the version `ref` names on `backend` (raises BackendError as the
    backend's `metadata` does). `local_path`: the version's SavedModel folder when known; an
    in-process backend is asked for it."""
    meta = backend.metadata(ref)
    if local_path is None:
        local_path = local_folder(backend, ref)
    return from_metadata(meta, local_path)


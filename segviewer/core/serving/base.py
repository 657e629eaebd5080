"""The Backend protocol shared by the gRPC, REST and in-process implementations.

Everything a caller (CLI, batch runner, GUI worker) needs to talk to a model lives here, as plain
dataclasses and numpy arrays, so that no caller depends on protobuf, HTTP or TensorFlow types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Name of the signature the exporter adds with the class names/colours and export settings. It takes
# no input and returns one string tensor `metadata_json` (UTF-8 JSON, see `ModelMetadata`).
METADATA_SIGNATURE = "segviewer_metadata"
METADATA_OUTPUT = "metadata_json"


class BackendError(Exception):
    """A failure talking to a model, with a one-line message meant for the user.

    `code` names the kind of failure in TF Serving's vocabulary (e.g. "NOT_FOUND", "UNAVAILABLE",
    "INVALID_ARGUMENT", "FAILED_PRECONDITION", "DEADLINE_EXCEEDED") so callers can react to it.
    """

    def __init__(self, message: str, code: str = "UNKNOWN", *, retry: bool = True) -> None:
        super().__init__(message)
        self.code = code
        # False for an UNAVAILABLE that waiting cannot cure (a TLS certificate the client refuses).
        self.retry = retry


def status_code(exc: BaseException) -> str:
    """A TensorFlow error as a TF Serving status code, from its class name (InvalidArgumentError ->
    INVALID_ARGUMENT): TF's OpError classes are named after the status codes. No TF import."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() or "UNKNOWN"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature. dtype is a numpy dtype name, or "string"."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None  # None: unknown rank


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    method: str = "tensorflow/serving/predict"


@dataclass(frozen=True)
class ModelVersion:
    """A version as the model status API reports it.

    state: START, LOADING, AVAILABLE, UNLOADING or END."""

    version: int
    state: str = "AVAILABLE"
    labels: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]


@dataclass
class ModelMetadata:
    """What a client knows about one model version: its signatures and, when the exporter stored
    them, the class names/colours and the export settings."""

    name: str
    version: int | None
    signatures: dict[str, Signature]
    classes: list[ClassInfo] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """labels: integer class ids [H, W] at the input image's size.
    probabilities: [H, W, C] float32 when the signature used gives them, else None."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    model: str = ""
    version: int | None = None
    signature: str = ""


@dataclass(frozen=True)
class ModelRef:
    """Which model to ask for: version by number, by label, or neither (the server's latest)."""

    name: str
    version: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name} v{self.version}"
        if self.label:
            return f"{self.name} @{self.label}"
        return self.name


@runtime_checkable
class Backend(Protocol):
    """A place models run: a TF Serving (gRPC/REST) or a SavedModel in this process.

    All methods may block and must be called off the GUI thread. They raise BackendError with a
    one-line message on every failure.
    """

    description: str  # e.g. "gRPC localhost:8500", "in-process /path/to/models"

    def models(self) -> list[str]:
        """Names of the models this backend can serve (for TF Serving: the one(s) configured)."""
        ...

    def versions(self, model: str) -> list[ModelVersion]:
        ...

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        ...

    def predict(
        self,
        image: np.ndarray,
        ref: ModelRef,
        signature: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        want_probabilities: bool = False,
    ) -> Prediction:
        """Segment one RGB uint8 [H, W, 3] image; labels come back at [H, W]."""
        ...

    def interrupt(self) -> None:
        """Cancel the calls in flight and refuse new ones (Ctrl-C): they raise BackendError with
        code CANCELLED. Safe to call from a signal handler or another thread."""
        ...

    def close(self) -> None:
        ...


# What a live server answers about a model it does not have; anything else (cannot reach, refused
# credentials) is the reason the server cannot be used.
_ANSWERED = ("NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION")


def served_models(backend: Backend) -> list[str]:
    """The backend's models. TF Serving cannot list its models, so an empty list from a server is
    checked by asking about a model: a dead server then raises "cannot reach …" (and refused
    credentials their own error) instead of passing for a server without models."""
    names = backend.models()
    if not names:
        try:
            backend.versions("segviewer-probe")
        except BackendError as exc:
            if exc.code not in _ANSWERED:
                raise
    return names

"""The models a stand-in server serves: `<base>/<model>/<version>/` SavedModels, TF Serving's way.

Version policy as in TF Serving's model config: the latest version by default, or the versions
listed; labels map names to served versions. Errors carry TF Serving's status codes and texts
(servables/tensorflow/predict_util.cc, util.cc, model_servers/server_core.cc,
get_model_status_impl.cc) so clients meet the same failures they will meet in production.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segviewer.core.quiet_tensorflow import import_tensorflow
from segviewer.core.serving.base import status_code

DEFAULT_SIGNATURE = "serving_default"


class ServingError(Exception):
    """A request failure with TF Serving's status code name (e.g. "NOT_FOUND") and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message




@dataclass(frozen=True)
class TensorInfo:
    dtype: Any  # tf.DType
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class SignatureInfo:
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


class Capacity:
    """What a replica can take, for benchmarks whose figures must not depend on the CPU count:
    `latency` seconds added to every predict, and at most `max_concurrent` predicts at once
    (0: no cap) — the others queue, as on a busy TF Serving."""

    def __init__(self, latency: float = 0.0, max_concurrent: int = 0) -> None:
        self.latency = latency
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots if self._slots is not None else contextlib.nullcontext():
            if self.latency:
                time.sleep(self.latency)
            yield


@dataclass
class Servable:
    name: str
    version: int
    obj: Any
    signatures: dict[str, SignatureInfo]
    capacity: Capacity = field(default_factory=Capacity)

    def predict(
        self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: list[str]
    ) -> dict[str, np.ndarray]:
        with self.capacity.slot():
            return self._predict(signature, inputs, output_filter)

    def _predict(
        self, signature: str, inputs: Mapping[str, np.ndarray], output_filter: list[str]
    ) -> dict[str, np.ndarray]:
        key = signature or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{key}" not found.')
        expected = ",".join(sig.inputs)
        for alias in inputs:
            if alias not in sig.inputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{expected}}}.",
                )
        missing = sorted(set(sig.inputs) - set(inputs))
        if missing:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(inputs)}!={len(sig.inputs)} "
                f"len({{{','.join(inputs)}}}) != len({{{expected}}}). "
                f"Sent extra: {{}}. Missing but required: {{{','.join(missing)}}}.",
            )
        for alias in output_filter:
            if alias not in sig.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{','.join(sig.outputs)}}}.",
                )
        tf = import_tensorflow()
        feeds = {}
        for alias, value in inputs.items():
            info = sig.inputs[alias]
            if np.dtype(value.dtype) != np.dtype(info.dtype.as_numpy_dtype):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{list(sig.inputs).index(alias)}] to be {_c_name(info.dtype)} "
                    f"but {_c_name(tf.as_dtype(value.dtype))} is provided",
                )
            if not tf.TensorShape(info.shape).is_compatible_with(value.shape):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"input '{alias}' has shape {list(value.shape)}, the signature expects "
                    f"{tf.TensorShape(info.shape)}",
                )
            feeds[alias] = tf.constant(value)
        try:
            outputs = self.obj.signatures[key](**feeds)
        except tf.errors.OpError as exc:
            raise ServingError(status_code(exc), exc.message.splitlines()[0]) from exc
        wanted = output_filter or list(outputs)
        return {alias: _numpy(outputs[alias], tf) for alias in wanted}


def _c_name(dtype: Any) -> str:
    """TensorFlow's C++ DataTypeString, which TF Serving's messages use: float32 -> "float"."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def _numpy(tensor: Any, tf: Any) -> np.ndarray:
    # String scalars come back from .numpy() as bare bytes: keep them a 0-d object array.
    return np.asarray(tensor.numpy(), dtype=object if tensor.dtype == tf.string else None)


def _signature_infos(obj: Any) -> dict[str, SignatureInfo]:
    def info(spec: Any) -> TensorInfo:
        shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
        return TensorInfo(spec.dtype, shape)

    found = {}
    for key, fn in obj.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        found[key] = SignatureInfo(
            {k: info(kwargs[k]) for k in sorted(kwargs)},
            {k: info(outputs[k]) for k in sorted(outputs)},
        )
    return found


class Repository:
    """Loads the served versions of every model under `base` at start (as TF Serving does).
    capacity: shared by all of them (one replica's)."""

    def __init__(
        self,
        base: str | Path,
        versions: Mapping[str, list[int]] | None = None,
        labels: Mapping[str, Mapping[str, int]] | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self.base = Path(base)
        if not self.base.is_dir():
            raise ValueError(f"model base '{base}' is not a folder")
        self.labels = {m: dict(v) for m, v in (labels or {}).items()}
        self.servables: dict[str, dict[int, Servable]] = {}
        tf = import_tensorflow()
        for model_dir in sorted(p for p in self.base.iterdir() if p.is_dir()):
            found = sorted(
                int(p.name)
                for p in model_dir.iterdir()
                if p.name.isdigit() and (p / "saved_model.pb").is_file()
            )
            if not found:
                continue
            wanted = list((versions or {}).get(model_dir.name, found[-1:]))
            loaded = {}
            for version in wanted:
                if version not in found:
                    raise ValueError(f"{model_dir.name}: no version {version} in {model_dir}")
                folder = model_dir / str(version)
                try:
                    obj = tf.saved_model.load(str(folder))
                except Exception as exc:  # any load failure: one line naming the folder
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise ValueError(f"cannot load the SavedModel in {folder}: {first}") from exc
                loaded[version] = Servable(model_dir.name, version, obj, _signature_infos(obj),
                                           capacity or Capacity())
            self.servables[model_dir.name] = loaded
        for model, mapping in self.labels.items():
            for label, version in mapping.items():
                if version not in self.servables.get(model, {}):
                    raise ValueError(f"label {label!r} of {model!r}: version {version} not served")

    def resolve(self, name: str, version: int | None = None, label: str = "") -> Servable:
        """The servable a ModelSpec names, with server_core.cc's errors."""
        if label:
            version = self.labels.get(name, {}).get(label)
            if version is None:
                raise ServingError(
                    "INVALID_ARGUMENT", f"Unrecognized servable version label: {label}"
                )
        served = self.servables.get(name, {})
        if version is None:
            if not served:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            return served[max(served)]
        if version not in served:
            raise ServingError(
                "NOT_FOUND", f"Servable not found for request: Specific({name}, {version})"
            )
        return served[version]

    def status(self, name: str, version: int | None = None, label: str = "") -> list[int]:
        """Versions whose state to report, with get_model_status_impl.cc's errors."""
        served = self.servables.get(name, {})
        if label:
            version = self.resolve(name, None, label).version
        if version is None:
            if not served:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
            return sorted(served)
        if version not in served:
            raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return [version]

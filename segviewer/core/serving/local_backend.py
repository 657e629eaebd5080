"""Run SavedModels in this process: the embedded default, no server needed.

The folder layout is TF Serving's (`<base>/<model>/<version>/saved_model.pb`), so a tree that works
here works behind TF Serving, and `models()`/`versions()`/`metadata()` report what it would.
TensorFlow is imported on first use only: opening the backend is cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segviewer.core.quiet_tensorflow import import_tensorflow as _tf
from segviewer.core.serving.base import (
    METADATA_OUTPUT,
    METADATA_SIGNATURE,
    BackendError,
    ModelMetadata,
    ModelRef,
    ModelVersion,
    Prediction,
    Signature,
    TensorSpec,
    status_code,
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

SAVED_MODEL_FILE = "saved_model.pb"


def _version_dirs(model_dir: Path) -> dict[int, Path]:
    """Numeric subfolders holding a SavedModel, as TF Serving's file-system source finds them."""
    found = {}
    for child in model_dir.iterdir() if model_dir.is_dir() else ():
        if child.name.isdigit() and (child / SAVED_MODEL_FILE).is_file():
            found[int(child.name)] = child
    return found


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _spec(name: str, tensor: Any) -> TensorSpec:
    shape = None if tensor.shape.rank is None else tuple(tensor.shape.as_list())
    return TensorSpec(name, tensor.dtype.name, shape)


def open_spec(spec: ConnectionSpec) -> LocalBackend:
    return LocalBackend(spec.target)


@dataclass
class _Loaded:
    """One loaded version: the TF object and its metadata."""

    obj: Any
    metadata: ModelMetadata


class LocalBackend:
    """SavedModels from a folder: a SavedModel itself, a model folder of numeric versions, or a
    base folder of model folders. Every version found is reported AVAILABLE (like TF Serving
    with the "all" version policy) and loaded on first use, then kept."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists():
            raise BackendError(f"'{path}' does not exist — pass a SavedModel or model folder",
                               "NOT_FOUND")
        self._pinned: dict[str, dict[int, Path]] | None = None
        if (self.path / SAVED_MODEL_FILE).is_file():
            # A single SavedModel: its parent names the model when the folder is a version number.
            if self.path.name.isdigit():
                self._pinned = {self.path.parent.name: {int(self.path.name): self.path}}
            else:
                self._pinned = {self.path.name: {1: self.path}}
        elif not self._scan():
            raise BackendError(
                f"'{path}' is not a SavedModel folder (no {SAVED_MODEL_FILE}) — pick the folder "
                f"that holds {SAVED_MODEL_FILE} or its parent model folder", "FAILED_PRECONDITION")
        self.description = f"in-process {self.path}"
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int], _Loaded] = {}
        self._metadata = MetadataCache(lambda ref: self._load(ref).metadata)
        self._interrupted = threading.Event()

    def _scan(self) -> dict[str, dict[int, Path]]:
        """model -> version -> folder; re-read each time, as TF Serving polls its base path."""
        if self._pinned is not None:
            return self._pinned
        own = _version_dirs(self.path)
        if own:
            return {self.path.name: own}
        if not self.path.is_dir():  # a file, or a folder removed since
            return {}
        models = {}
        for child in sorted(self.path.iterdir()):
            versions = _version_dirs(child)
            if versions:
                models[child.name] = versions
        return models

    def models(self) -> list[str]:
        return sorted(self._scan())

    def _versions_of(self, model: str) -> dict[int, Path]:
        tree = self._scan()
        if model not in tree:
            raise BackendError(f"no model '{model}' in {self.path} (models: "
                               f"{', '.join(sorted(tree)) or 'none'})", "NOT_FOUND")
        return tree[model]

    def versions(self, model: str) -> list[ModelVersion]:
        return [ModelVersion(v) for v in sorted(self._versions_of(model))]

    def _resolve(self, ref: ModelRef) -> tuple[int, Path]:
        versions = self._versions_of(ref.name)
        listed = ", ".join(map(str, sorted(versions)))
        if ref.label:
            raise BackendError(f"version labels need TF Serving's model config; '{ref.name}' "
                               f"in-process has versions {listed} — pick one with --version",
                               "INVALID_ARGUMENT")
        if ref.version is None:
            newest = max(versions)
            return newest, versions[newest]
        if ref.version not in versions:
            raise BackendError(f"model '{ref.name}' has no version {ref.version} "
                               f"(versions: {listed})", "NOT_FOUND")
        return ref.version, versions[ref.version]

    def _load(self, ref: ModelRef) -> _Loaded:
        if self._interrupted.is_set():
            raise BackendError(f"{ref}: cancelled", "CANCELLED")
        version, folder = self._resolve(ref)
        key = (ref.name, version)
        # One lock for loading: loads are rare and TF would serialise much of them anyway.
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._load_folder(ref.name, version, folder)
            return self._loaded[key]

    def _load_folder(self, name: str, version: int, folder: Path) -> _Loaded:
        tf = _tf()
        try:
            obj = tf.saved_model.load(str(folder))
        except Exception as exc:  # any load failure is the model's fault, reported in one line
            raise BackendError(f"cannot load SavedModel '{folder}': {_one_line(exc)}",
                               "FAILED_PRECONDITION") from exc
        signatures = {}
        for key, fn in obj.signatures.items():
            _, kwargs = fn.structured_input_signature
            inputs = {k: _spec(k, s) for k, s in sorted(kwargs.items())}
            outputs = {k: _spec(k, t) for k, t in sorted(fn.structured_outputs.items())}
            signatures[key] = Signature(key, inputs, outputs)
        classes, settings = None, {}
        if METADATA_SIGNATURE in obj.signatures:
            try:
                raw = obj.signatures[METADATA_SIGNATURE]()[METADATA_OUTPUT].numpy()
            except Exception as exc:  # a broken metadata signature must not hide the model
                raise BackendError(f"model '{name}' v{version}: its {METADATA_SIGNATURE} "
                                   f"signature failed: {_one_line(exc)}", "INTERNAL") from exc
            classes, settings = parse_metadata_json(np.asarray(raw).reshape(-1)[0])
        return _Loaded(obj, ModelMetadata(name, version, signatures, classes, settings))

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        return self._metadata.get(ref)

    def predict(
        self,
        image: np.ndarray,
        ref: ModelRef,
        signature: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        want_probabilities: bool = False,
    ) -> Prediction:
        loaded = self._load(ref)  # "latest" re-resolved: a new version folder is picked up
        self._metadata.answered(ref, loaded.metadata.version)
        plan = plan_prediction(loaded.metadata, signature, input_name, output_name,
                               want_probabilities)
        sent = prepare_input(image, plan)
        tf = _tf()
        try:
            # Concrete functions are safe to call from many threads at once.
            outputs = loaded.obj.signatures[plan.signature](**{plan.input.name: tf.constant(sent)})
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            code = status_code(exc) if isinstance(exc, tf.errors.OpError) else "INVALID_ARGUMENT"
            raise BackendError(f"model '{ref.name}' failed on the image: {_one_line(exc)}",
                               code) from exc
        # .numpy() copies: the labels handed out stay writable (the tensor's own memory is not).
        arrays = {name: outputs[name].numpy() for name in needed_outputs(plan, want_probabilities)}
        return to_prediction(arrays, plan, image.shape[:2], ref, loaded.metadata.version,
                             want_probabilities, source=f"in-process '{ref.name}'",
                             num_classes=class_count(loaded.metadata))

    def interrupt(self) -> None:
        """TensorFlow calls cannot be cancelled: the ones running finish, no new one starts."""
        self._interrupted.set()

    def close(self) -> None:
        self._metadata.clear()
        with self._lock:
            self._loaded.clear()

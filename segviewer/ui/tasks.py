"""What the main window runs in its workers: plain functions of (state, ...) with no widgets.

Each returns a plain value for the GUI thread (or raises; the worker turns that into a one-line
message). Image I/O (Pillow) is imported here, on first use, to keep start-up short.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segviewer.core.fingerprint import Fingerprint, from_metadata, local_folder
from segviewer.core.serving.base import (
    Backend,
    ModelMetadata,
    ModelRef,
    ModelVersion,
    Prediction,
    served_models,
)
from segviewer.ui.cache import CacheKey, compact_labels
from segviewer.ui.settings import MAX_PIXELS
from segviewer.ui.workers import TaskState

if TYPE_CHECKING:
    from segviewer.core.serving.connection import ConnectionSpec
    from segviewer.ui.legend import LegendRow

THUMB_SIZE = 112  # pixels on the long side; the list shows them at half size (sharp on HiDPI)


@dataclass
class Loaded:
    path: str
    rgb: np.ndarray
    levels: list[np.ndarray]  # core.pyramid levels (levels[0] is rgb), made off the GUI thread


@dataclass
class Processed:
    path: str
    key: CacheKey | None
    thumbnail: np.ndarray
    prediction: Prediction | None
    loaded: Loaded  # the decoded image, for the cache (a look-ahead image shows at once)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image)


def process(state: TaskState, path: str, backend: Backend | None, ref: ModelRef | None,
             key: CacheKey | None, probabilities: bool, max_pixels: int,
             loaded: Loaded | None = None) -> Processed:
    """Predict one image (decoded here unless the cache had it)."""
    if loaded is None:
        loaded = load(state, path, max_pixels)
    rgb = loaded.rgb
    prediction = None
    if backend is not None and ref is not None and key is not None and not state.cancelled():
        prediction = backend.predict(rgb, ref, want_probabilities=probabilities)
        wanted = key.identity.version
        if prediction.version is not None and wanted is not None and prediction.version != wanted:
            raise ValueError(f"{backend.description} answered with version {prediction.version} "
                             f"when asked for {key.identity} — reconnect to see the versions "
                             "it serves now")
        prediction.labels = compact_labels(np.asarray(prediction.labels))
    # The smallest pyramid level is enough for a thumbnail (and quick for a huge image).
    return Processed(path, key, thumbnail(loaded.levels[-1]), prediction, loaded)


@dataclass
class Connected:
    backend: Backend
    models: list[str]
    model: str
    versions: list[ModelVersion]
    version: int | None
    metadata: ModelMetadata
    fingerprint: Fingerprint  # what the Model tab shows; with the local files when in-process


def choose(backend: Backend, model: str | None, version: int | None,
            models: list[str] | None = None) -> Connected:
    models = models if models is not None else served_models(backend)
    if model is None:
        if not models:
            raise ValueError(f"{backend.description} does not list its models — name one (the "
                             "Connect dialog's Model field, or --model NAME)")
        model = models[0]
    versions = backend.versions(model)
    if version is None:
        available = [v.version for v in versions if v.state == "AVAILABLE"]
        version = max(available) if available else None
    ref = ModelRef(model, version)
    metadata = backend.metadata(ref)
    # Here in the worker: a SavedModel not made by our exporter is hashed file by file.
    fingerprint = from_metadata(metadata, local_folder(backend, ref))
    return Connected(backend, models, model, versions, version, metadata, fingerprint)


def connect(state: TaskState, spec: ConnectionSpec, model: str | None,
             version: int | None) -> Connected:
    backend = spec.open()
    try:
        connected = choose(backend, model, version)
    except BaseException:
        backend.close()
        raise
    if state.cancelled():  # a newer connection replaced this one: nobody will close it later
        backend.close()
    return connected


def select(state: TaskState, backend: Backend, models: list[str], model: str,
            version: int | None) -> Connected:
    return choose(backend, model, version, models)


def load(state: TaskState, path: str, max_pixels: int) -> Loaded:
    from segviewer.core.images import load_image
    from segviewer.core.pyramid import build_levels

    rgb = load_image(path, max_pixels, raise_hint=f"raise {MAX_PIXELS.key} in the viewer's "
                     "settings file if you trust it")
    return Loaded(path, rgb, build_levels(rgb))


def save(state: TaskState, writer, path: str, *args) -> str:
    """Run one of core's atomic writers; returns the path for the status message."""
    writer(path, *args)
    return path


def write_csv(path: str, rows: list[LegendRow]) -> None:
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["id", "name", "r", "g", "b", "share_percent"])
    for row in rows:
        share = "" if row.share is None else f"{row.share:.4f}"
        out.writerow([row.id, row.name, *row.color, share])
    from segviewer.core.images import atomic_write_bytes

    atomic_write_bytes(path, text.getvalue().encode("utf-8"))

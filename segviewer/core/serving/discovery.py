"""Find the image input and the label output of a model's signatures, whoever exported it.

Pure numpy (plus Pillow for PNG bytes), no TensorFlow: the gRPC, REST and in-process backends all
plan a request from the `ModelMetadata` they read, convert the image with `prepare_input` and the
answer with `to_labels`, so every backend treats a given model the same way.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from segviewer.core.images import encode_png
from segviewer.core.serving.base import (
    METADATA_SIGNATURE,
    BackendError,
    ClassInfo,
    ModelMetadata,
    ModelRef,
    Prediction,
    Signature,
    TensorSpec,
)

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
INT_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"})
# Best first: the preference order for inputs and outputs when no names are given.
INPUT_RANK = {"uint8": 0, "float": 1, "encoded": 2}
OUTPUT_RANK = {"labels": 0, "scores": 1, "encoded": 2}


@dataclass(frozen=True)
class Plan:
    signature: str  # signature key to call
    input: TensorSpec  # chosen image input
    input_kind: str  # "uint8" | "float" | "encoded"
    batched: bool  # input has a leading batch dim of 1
    output: TensorSpec  # chosen output
    output_kind: str  # "labels" (int [1,H,W]/[H,W]) | "scores" (float [1,H,W,C]) | "encoded" (PNG)
    probabilities: TensorSpec | None  # a float [1,H,W,C] output in the same signature, if any


def _fits(dim: int | None, size: int) -> bool:
    return dim is None or dim < 0 or dim == size


def input_kind(spec: TensorSpec) -> tuple[str, bool] | None:
    """(kind, batched) if `spec` can take one RGB image, else None."""
    shape = spec.shape
    if spec.dtype == "string":
        if shape is None or shape == ():
            return "encoded", False
        if len(shape) == 1 and _fits(shape[0], 1):
            return "encoded", True
        return None
    if spec.dtype == "uint8":
        kind = "uint8"
    elif spec.dtype in FLOAT_DTYPES:
        kind = "float"
    else:
        return None
    if shape is None or not _fits(shape[-1], 3):
        return None
    if len(shape) == 4 and _fits(shape[0], 1):
        return kind, True
    if len(shape) == 3:
        return kind, False
    return None


def output_kind(spec: TensorSpec) -> str | None:
    """"labels", "scores" or "encoded" if `spec` can carry one label map, else None."""
    shape = spec.shape
    if spec.dtype == "string":
        scalar = shape is None or shape == () or (len(shape) == 1 and _fits(shape[0], 1))
        return "encoded" if scalar else None
    if shape is None:
        return None
    if spec.dtype in INT_DTYPES:
        batched = len(shape) == 3 and _fits(shape[0], 1)
        with_channel = len(shape) == 4 and _fits(shape[0], 1) and _fits(shape[3], 1)
        return "labels" if len(shape) == 2 or batched or with_channel else None
    if spec.dtype in FLOAT_DTYPES and ((len(shape) == 4 and _fits(shape[0], 1)) or len(shape) == 3):
        return "scores"
    return None


def _probabilities_output(sig: Signature) -> TensorSpec | None:
    """The float [1,H,W,C] output of `sig`; one named like probabilities wins over logits."""
    scores = [s for s in sig.outputs.values() if output_kind(s) == "scores"]
    scores.sort(key=lambda s: "prob" not in s.name.lower())
    return scores[0] if scores else None


def _pick(
    specs: list[TensorSpec], classify: Callable[[TensorSpec], Any], rank: dict[str, int]
) -> tuple[TensorSpec, Any] | None:
    """The best (spec, classification) by `rank`, ties broken by name; None if none fits."""
    usable = [(spec, kind) for spec in specs if (kind := classify(spec)) is not None]

    def order(item: tuple[TensorSpec, Any]) -> tuple[int, str]:
        kind = item[1][0] if isinstance(item[1], tuple) else item[1]
        return rank[kind], item[0].name

    return min(usable, key=order) if usable else None


def _named(specs: dict[str, TensorSpec], name: str | None) -> list[TensorSpec]:
    return list(specs.values()) if name is None else [specs[name]] if name in specs else []


def _plan_for(sig: Signature, input_name: str | None, output_name: str | None) -> Plan | str:
    """A plan for `sig`, or the reason it cannot be used (one clause, for error messages)."""
    where = f"signature '{sig.name}'"
    if input_name is not None and input_name not in sig.inputs:
        return f"{where} has no input '{input_name}' (inputs: {_names(sig.inputs)})"
    if output_name is not None and output_name not in sig.outputs:
        return f"{where} has no output '{output_name}' (outputs: {_names(sig.outputs)})"
    if len(sig.inputs) != 1:
        return f"{where} takes {len(sig.inputs)} inputs ({_names(sig.inputs)}), not one image"
    chosen_in = _pick(_named(sig.inputs, input_name), input_kind, INPUT_RANK)
    if chosen_in is None:
        return f"{where} has no image input ({_describe(sig.inputs)})"
    chosen_out = _pick(_named(sig.outputs, output_name), output_kind, OUTPUT_RANK)
    if chosen_out is None:
        return f"{where} has no label-map output ({_describe(sig.outputs)})"
    (in_spec, (in_kind, batched)), (out_spec, out_kind) = chosen_in, chosen_out
    probabilities = out_spec if out_kind == "scores" else _probabilities_output(sig)
    return Plan(sig.name, in_spec, in_kind, batched, out_spec, out_kind, probabilities)


def _names(specs: dict[str, TensorSpec]) -> str:
    return ", ".join(specs) or "none"


def _describe(specs: dict[str, TensorSpec]) -> str:
    def shape(s: TensorSpec) -> str:
        if s.shape is None:
            return "?"
        return "[" + ",".join("-1" if d is None else str(d) for d in s.shape) + "]"

    return ", ".join(f"{s.name}: {s.dtype}{shape(s)}" for s in specs.values()) or "none"


def plan_prediction(
    meta: ModelMetadata,
    signature: str | None = None,
    input_name: str | None = None,
    output_name: str | None = None,
    want_probabilities: bool = False,
    prefer_encoded: bool = False,
) -> Plan:
    """Choose the signature, image input and label output to use for `meta`'s model.

    Explicit names win; otherwise "serving_default" if usable, else the first usable signature by
    name. With `want_probabilities` and no explicit signature, a usable signature that also returns
    probabilities is preferred (the exporter's "probabilities" signature). With `prefer_encoded`
    (a backend whose wire is text, see `prefers_encoded`) and no explicit signature, one taking
    and giving PNG bytes (the exporter's "encoded") is preferred: a compressed image instead of
    a JSON number per value.
    """
    if signature is not None:
        if signature not in meta.signatures:
            raise BackendError(
                f"model '{meta.name}' has no signature '{signature}' "
                f"(signatures: {', '.join(meta.signatures) or 'none'})", "FAILED_PRECONDITION")
        plan = _plan_for(meta.signatures[signature], input_name, output_name)
        if isinstance(plan, str):
            raise BackendError(f"{plan} — pick another with --signature/--input-name/--output-name",
                               "FAILED_PRECONDITION")
        return plan

    keys = sorted(k for k in meta.signatures if k != METADATA_SIGNATURE)
    if DEFAULT_SIGNATURE in keys:
        keys.remove(DEFAULT_SIGNATURE)
        keys.insert(0, DEFAULT_SIGNATURE)
    plans: list[Plan] = []
    reasons: list[str] = []
    for key in keys:
        plan = _plan_for(meta.signatures[key], input_name, output_name)
        if isinstance(plan, str):
            reasons.append(plan)
        else:
            plans.append(plan)
    if not plans:
        detail = "; ".join(reasons) or "it has no signatures"
        raise BackendError(f"model '{meta.name}' has no usable image signature: {detail}",
                           "FAILED_PRECONDITION")
    if want_probabilities:
        with_probs = [p for p in plans if p.probabilities is not None]
        if with_probs:
            return with_probs[0]
    if prefer_encoded and (signature is None and input_name is None and output_name is None):
        encoded = [p for p in plans if p.input_kind == p.output_kind == "encoded"]
        if encoded:
            return encoded[0]
    return plans[0]


def prefers_encoded(backend: object) -> bool:
    """Whether `backend` plans with `prefer_encoded` (REST: images as PNG bytes, not JSON
    numbers), so that callers naming the signature up front name the one it will use."""
    return bool(getattr(backend, "prefers_encoded", False))


def prepare_input(image: np.ndarray, plan: Plan) -> np.ndarray:
    """uint8 HxWx3 -> the array to send: [1,H,W,3]/[H,W,3] uint8 or float, or PNG bytes."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise BackendError(f"expected an RGB uint8 [H,W,3] image, got {image.dtype} {image.shape}",
                           "INVALID_ARGUMENT")
    if plan.input_kind == "encoded":
        value = np.empty((1,) if plan.batched else (), dtype=object)
        value[...] = encode_png(image)
        return value
    if plan.input_kind == "float":
        # Pixel values stay 0..255: models that want another range scale inside the graph.
        dtype = np.float32 if plan.input.dtype == "bfloat16" else np.dtype(plan.input.dtype)
        image = image.astype(dtype)
    image = np.ascontiguousarray(image)
    return image[np.newaxis] if plan.batched else image


# The one resize of an answer: labels at 1/k of the image on both axes (a network's output
# stride, k <= 32), scaled up by nearest neighbour. Anything else is a wrong answer.
MAX_UPSCALE = 32
MAX_LABEL = 65535  # what a label-map PNG can hold


class AnswerError(ValueError):
    """An answer that does not fit what was asked: wrong rank, size, dtype or label id."""


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the first two axes (pixel centres), for labels or scores."""
    h, w = array.shape[:2]
    if (h, w) == tuple(size):
        return array
    rows = ((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp)
    cols = ((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp)
    return array[np.minimum(rows, h - 1)][:, np.minimum(cols, w - 1)]


def _check_size(shape: tuple[int, ...], image_shape: tuple[int, int], name: str) -> None:
    h, w = shape[:2]
    height, width = image_shape
    if (h, w) == (height, width):
        return
    factor = height // h if h else 0
    if not (h and w and factor <= MAX_UPSCALE and h * factor == height and w * factor == width):
        raise AnswerError(f"output '{name}' is {h}x{w} (HxW) for a {height}x{width} image")


def _check_dtype(array: np.ndarray, spec: TensorSpec) -> None:
    """The answer's values are of the kind the signature declares (ints where it says int64)."""
    kind = array.dtype.kind
    if spec.dtype in INT_DTYPES:
        ok = kind in "iu"
    elif spec.dtype in FLOAT_DTYPES:
        ok = kind in "fiu"  # JSON writes whole floats as ints
    else:
        ok = kind in "OSa"
    if not ok:
        shown = str(array.dtype)
        if kind == "O":
            first = array.reshape(-1)[0] if array.size else None
            shown = "strings" if isinstance(first, bytes | str) else "big integers"
        raise AnswerError(f"output '{spec.name}' holds {shown}, the signature declares "
                          f"{spec.dtype}")


def _squeeze_batch(array: np.ndarray, rank: int) -> np.ndarray:
    while array.ndim > rank and array.shape[0] == 1:
        array = array[0]
    return array


def to_labels(output: np.ndarray, plan: Plan, image_shape: tuple[int, int],
              num_classes: int | None = None) -> np.ndarray:
    """The chosen output -> labels [H, W] at the image's size, after checking its rank, size,
    dtype and label ids (0 <= id < num_classes when known): uint8 when every id is below 256,
    else uint16, the arrays a label-map PNG holds. Raises AnswerError."""
    array = np.asarray(output)
    _check_dtype(array, plan.output)
    if plan.output_kind == "encoded":
        data = array.reshape(-1)[0] if array.size == 1 else None
        if not isinstance(data, bytes):
            raise AnswerError(f"output '{plan.output.name}' is not one PNG image")
        try:
            png = Image.open(io.BytesIO(data))
            if png.width * png.height > image_shape[0] * image_shape[1]:
                raise AnswerError(f"output '{plan.output.name}' is a {png.width}x{png.height} "
                                  f"PNG for a {image_shape[1]}x{image_shape[0]} image")
            array = np.asarray(png)
        except (OSError, ValueError, SyntaxError) as exc:
            if isinstance(exc, AnswerError):
                raise
            raise AnswerError(f"output '{plan.output.name}' is not a PNG image: {exc}") from exc
        if array.ndim == 3:
            array = array[..., 0]
    elif plan.output_kind == "scores":
        array = _squeeze_batch(array, 3)
        if array.ndim != 3 or not array.shape[-1]:
            raise AnswerError(f"output '{plan.output.name}' has shape {list(np.shape(output))}, "
                              "expected scores [1,H,W,C]")
        _check_size(array.shape, image_shape, plan.output.name)
        array = array.argmax(axis=-1)
    else:
        array = _squeeze_batch(array, 2)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
    if array.ndim != 2:
        raise AnswerError(f"output '{plan.output.name}' has shape {list(np.shape(output))}, "
                          "expected a label map [1,H,W] or [H,W]")
    _check_size(array.shape, image_shape, plan.output.name)
    high = 0
    if array.size:
        low, high = array.min(), array.max()
        limit = num_classes if num_classes is not None else MAX_LABEL + 1
        if low < 0 or high >= limit:
            bad = int(low) if low < 0 else int(high)
            known = f"the model's {num_classes} classes" if num_classes else "0-65535"
            raise AnswerError(f"output '{plan.output.name}' has label id {bad}, outside {known}")
    stored = np.uint8 if high < 256 else np.uint16
    return _resize_nearest(array.astype(stored, copy=False), image_shape)


def to_probabilities(output: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """A float [1,H,W,C] output -> float32 [H, W, C] at the image's size."""
    array = _squeeze_batch(np.asarray(output), 3)
    if array.ndim != 3 or array.dtype.kind not in "fiu":
        raise AnswerError(f"probabilities of shape {list(np.shape(output))} and dtype "
                          f"{array.dtype}, expected float [1,H,W,C]")
    _check_size(array.shape, image_shape, "probabilities")
    return _resize_nearest(array.astype(np.float32, copy=False), image_shape)


def needed_outputs(plan: Plan, want_probabilities: bool) -> list[str]:
    """The outputs `to_prediction` reads: the label map, and the probabilities if wanted."""
    names = [plan.output.name]
    extra = plan.probabilities if want_probabilities else None
    if extra is not None and extra.name != plan.output.name:
        names.append(extra.name)
    return names


def class_count(meta: ModelMetadata) -> int | None:
    """How many class ids the model may answer, when it says: past its highest stored class id
    and its exporter's num_classes setting, whichever is larger; None when it says neither."""
    count = meta.settings.get("num_classes")
    known = [count] if isinstance(count, int) and not isinstance(count, bool) and count > 0 else []
    if meta.classes:
        known.append(max(c.id for c in meta.classes) + 1)
    return max(known) if known else None


def to_prediction(
    outputs: Mapping[str, np.ndarray],
    plan: Plan,
    image_shape: tuple[int, int],
    ref: ModelRef,
    version: int | None,
    want_probabilities: bool,
    *,
    source: str = "the model",
    num_classes: int | None = None,
) -> Prediction:
    """A model's answer -> a Prediction at the image's size, with probabilities when they are
    wanted and the answer carries them. A wrong answer raises one BackendError naming `source`
    (the server) and what was wrong."""
    try:
        if plan.output.name not in outputs:
            raise AnswerError(f"it lacks output '{plan.output.name}'")
        labels = to_labels(outputs[plan.output.name], plan, image_shape, num_classes)
        probabilities = None
        extra = plan.probabilities if want_probabilities else None
        if extra is not None and extra.name in outputs:
            probabilities = to_probabilities(outputs[extra.name], image_shape)
    except AnswerError as exc:
        raise BackendError(f"{ref}: bad answer from {source}: {exc}", "INTERNAL") from None
    return Prediction(labels, probabilities, ref.name, version, plan.signature)


def _color(value: Any) -> tuple[int, int, int]:
    if isinstance(value, str):  # "#rrggbb"
        text = value.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    r, g, b = (int(c) for c in value)
    return r, g, b


def _classes(raw: Any, colors: Any) -> list[ClassInfo]:
    if not isinstance(raw, list):
        raise ValueError("'classes' is not a list")
    classes = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            color = _color(colors[index]) if colors else (0, 0, 0)
            classes.append(ClassInfo(index, item, color))
        else:
            color = item.get("color", item.get("colour"))
            classes.append(ClassInfo(int(item.get("id", index)), str(item["name"]),
                                     _color(color) if color is not None else (0, 0, 0)))
    return classes


def parse_metadata_json(text: str | bytes) -> tuple[list[ClassInfo] | None, dict]:
    """The exporter's `segviewer_metadata` JSON -> (classes or None, the other settings).

    The exporter writes `{"classes": [{"id", "name", "color": [r,g,b]}], "settings": {...}}`;
    also accepted: colours as "#rrggbb", class names with a parallel `colors` list, and settings at
    the top level. Broken metadata is logged and ignored: it must not stop predictions.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        settings = dict(data)
        nested = settings.pop("settings", None)  # the exporter nests its export settings
        if isinstance(nested, dict):
            settings = nested | settings
        raw = settings.pop("classes", None)
        colors = settings.pop("colors", settings.pop("colours", None))
        classes = _classes(raw, colors) if raw is not None else None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        log.warning("ignoring the model's stored metadata: %s", reason)
        return None, {}
    return classes, settings

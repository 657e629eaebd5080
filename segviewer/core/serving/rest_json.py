"""numpy <-> TF Serving's REST JSON: request values (images fast, laid out with numpy) and the
outputs of a predict answer in either format. Malformed answers raise KeyError, TypeError or
ValueError for the backend to turn into one line. JSON text is read and written with orjson
(about twice the speed of the stdlib on a label map's numbers)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import orjson

# JSON text of 0..255 right-aligned in three characters: leading spaces are JSON whitespace, so
# every number has the same width and a whole image can be laid out with numpy, no Python loop.
_BYTE_TEXT = np.frombuffer("".join(f"{v:3d}" for v in range(256)).encode(), np.uint8)
_BYTE_TEXT = _BYTE_TEXT.reshape(256, 3)


def _byte_array_json(array: np.ndarray) -> bytes:
    """Nested JSON lists of an array of integers 0..255 (any numeric dtype), e.g. an image."""
    block = _BYTE_TEXT[array.astype(np.uint8)]  # (*shape, 3) characters
    for _ in range(array.ndim):
        # Join the last axis with "," and close it with "]", then open it with "[".
        ends = np.full((*block.shape[:-1], 1), ord(","), np.uint8)
        ends[..., -1, 0] = ord("]")
        block = np.concatenate([block, ends], axis=-1)
        block = block.reshape(*block.shape[:-2], -1)
        block = np.concatenate([np.full((*block.shape[:-1], 1), ord("["), np.uint8), block], -1)
    return block.tobytes()


def encode(array: np.ndarray) -> bytes:
    """JSON for a tensor value: bytes as {"b64": ...}; small-integer images by the fast path."""
    if array.dtype == object:

        def b64(v: Any) -> Any:
            if isinstance(v, list):
                return [b64(x) for x in v]
            data = v.encode() if isinstance(v, str) else bytes(v)
            return {"b64": base64.b64encode(data).decode("ascii")}

        return orjson.dumps(b64(array.tolist()))
    if array.size and array.ndim and array.dtype.kind in "uif":
        low, high = array.min(), array.max()
        if low >= 0 and high <= 255 and (array.dtype.kind != "f" or np.all(array % 1 == 0)):
            return _byte_array_json(array)
    return orjson.dumps(array.tolist())


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(payload: bytes) -> Any:
    """Parse a JSON answer; ValueError "not JSON" or "JSON nested too deeply" if it is not."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise ValueError("JSON nested too deeply") from None
    try:  # TF Serving writes NaN and Infinity for such floats; orjson refuses them, json not
        return json.loads(payload)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError:
        raise ValueError("not JSON") from None


def decode(value: Any) -> np.ndarray:
    """A JSON tensor value -> numpy; strings and {"b64": ...} -> an object array of bytes."""
    leaf = value
    while isinstance(leaf, list) and leaf:
        leaf = leaf[0]
    if not isinstance(leaf, str | dict):
        return np.asarray(value)  # numbers: numpy converts the nested lists in C

    def unpack(v: Any) -> Any:
        if isinstance(v, list):
            return [unpack(x) for x in v]
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        return v.encode("utf-8") if isinstance(v, str) else v

    decoded = unpack(value)
    out = np.empty(np.shape(np.asarray(decoded, dtype=object)), dtype=object)
    out[...] = decoded
    return out


def outputs(answer: Any, only: str) -> dict[str, np.ndarray]:
    """The outputs of a predict answer, in either format. Row-format outputs keep their
    batch dimension; a bare value (one output) is named `only`."""
    if not isinstance(answer, dict):
        raise TypeError("not a JSON object")
    if "predictions" in answer:
        rows = answer["predictions"]
        if not isinstance(rows, list):
            raise TypeError("'predictions' is not a list")
        if rows and isinstance(rows[0], dict):
            return {k: decode([row[k] for row in rows]) for k in rows[0]}
        return {only: decode(rows)}
    if "outputs" in answer:
        outputs = answer["outputs"]
        if isinstance(outputs, dict) and "b64" not in outputs:
            return {k: decode(v) for k, v in outputs.items()}
        return {only: decode(outputs)}
    raise KeyError("neither 'predictions' nor 'outputs'")


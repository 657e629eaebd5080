"""numpy <-> serialized TensorProto / PredictRequest / PredictResponse, with numpy only.

Why by hand: protobuf's Python objects turn a packed `int64_val` of a 1080p label map into two
million Python ints (~100 ms with tf.make_ndarray). The wire format is simple enough that we read
and write the few messages on the hot path directly: packed fixed-width fields are a
`np.frombuffer`, packed varints are decoded and encoded vectorised (one byte per value when values
are < 128, which is the common case for label maps). Decoding follows tf.make_ndarray, except
that every element must be present: its "fewer values than elements: repeat the last one" rule
would let a few bytes declare gigabytes, and TF Serving always writes every value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

# tensorflow/core/framework/types.proto DataType numbers -> numpy dtypes.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    7: np.dtype(object),
    8: np.dtype(np.complex64),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    17: np.dtype(np.uint16),
    18: np.dtype(np.complex128),
    19: np.dtype(np.float16),
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}
DT_STRING = 7
_DT_OF: dict[str, int] = {dt.str: number for number, dt in DTYPES.items() if number != DT_STRING}

# TensorProto field numbers (tensorflow/core/framework/tensor.proto).
_F_DTYPE, _F_SHAPE, _F_CONTENT, _F_STRING = 1, 2, 4, 8
# dtype -> (typed field, how its packed payload is laid out): as TensorFlow's AsProtoField fills it.
_TYPED: dict[int, tuple[int, str]] = {
    1: (5, "<f4"),
    2: (6, "<f8"),
    3: (7, "varint"),
    4: (7, "varint"),
    5: (7, "varint"),
    6: (7, "varint"),
    8: (9, "<f4"),
    9: (10, "varint"),
    10: (11, "varint"),
    17: (7, "varint"),
    18: (12, "<f8"),
    19: (13, "varint"),
    22: (16, "varint"),
    23: (17, "varint"),
}

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
Buffer = bytes | memoryview


class DecodeError(ValueError):
    """The bytes are not a well-formed message of the expected type."""


# --- wire primitives -------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos  # protobuf keeps the low 64 bits
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value): an int for varint/fixed, a memoryview for LEN."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > end:
                raise DecodeError("truncated field")
            yield field, wire, buf[pos : pos + size]
            pos += size
        elif wire in (_FIXED32, _FIXED64):
            width = 4 if wire == _FIXED32 else 8
            if pos + width > end:
                raise DecodeError("truncated field")
            yield field, wire, int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise DecodeError(f"unsupported wire type {wire}")


def _want(field: int, wire: int, expected: int) -> None:
    """A known field must come with its wire type: a varint read as a length would allocate."""
    if wire != expected:
        raise DecodeError(f"field {field} has wire type {wire}, expected {expected}")


def decode_varints(payload: bytes | memoryview, narrow: bool = False) -> np.ndarray:
    """A packed varint payload -> uint64 values, vectorised; uint8 values when `narrow` and
    every varint is one byte (values 0-127)."""
    b = np.frombuffer(payload, np.uint8)
    last = b < 0x80
    if last.all():
        return b.copy() if narrow else b.astype(np.uint64)
    ends = np.flatnonzero(last)
    if ends.size == 0 or ends[-1] != b.size - 1:
        raise DecodeError("truncated packed varints")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise DecodeError("varint too long")
    out = (b[starts] & 0x7F).astype(np.uint64)
    for k in range(1, int(lengths.max())):
        sel = np.flatnonzero(lengths > k)
        out[sel] |= (b[starts[sel] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return out


def encode_varints(values: np.ndarray) -> bytes:
    """uint64 values -> a packed varint payload, vectorised."""
    u = np.ascontiguousarray(values, dtype=np.uint64).ravel()
    if u.size == 0:
        return b""
    sizes = np.ones(u.size, np.int64)
    for k in range(1, 10):
        sizes += u >= np.uint64(1 << (7 * k))
    longest = int(sizes.max())
    if longest == 1:
        return u.astype(np.uint8).tobytes()
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), np.uint8)
    for k in range(longest):
        sel = np.flatnonzero(sizes > k)
        byte = ((u[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        byte[sizes[sel] > k + 1] |= 0x80
        out[starts[sel] + k] = byte
    return out.tobytes()


# --- TensorProto -----------------------------------------------------------------------------


def _dtype_number(array: np.ndarray) -> int:
    if array.dtype.kind in "OSU":
        return DT_STRING
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    number = _DT_OF.get(dtype.str)
    if number is None:
        raise ValueError(f"cannot send a {array.dtype} tensor to TF Serving")
    return number


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"string tensors hold bytes or str, not {type(value).__name__}")


def encode_tensor(array: np.ndarray | bytes | str, typed: bool = False) -> bytes:
    """A serialized TensorProto. Numbers go in `tensor_content` (what clients should send); with
    typed=True they go in the typed repeated fields instead, as TF Serving answers by default."""
    return b"".join(_tensor_parts(array, typed))


def _size(parts: list[Buffer]) -> int:
    return sum(memoryview(p).nbytes for p in parts)


def _len_parts(field: int, parts: list[Buffer]) -> list[Buffer]:
    # Length-delimited field from pieces, so a large payload is copied once, by the final join.
    return [_key(field, _LEN) + _varint(_size(parts)), *parts]


def _tensor_parts(array: np.ndarray | bytes | str, typed: bool) -> list[Buffer]:
    array = np.asarray(array, dtype=object) if isinstance(array, bytes | str) else np.asarray(array)
    dtype = _dtype_number(array)
    shape = b"".join(
        _len_field(2, _key(1, _VARINT) + _varint(size) if size else b"") for size in array.shape
    )
    out: list[Buffer] = [_key(_F_DTYPE, _VARINT) + _varint(dtype), _len_field(_F_SHAPE, shape)]
    if dtype == DT_STRING:
        out += [_len_field(_F_STRING, _as_bytes(v)) for v in array.ravel()]
    elif array.size and not typed:
        little = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        out += _len_parts(_F_CONTENT, [memoryview(little.reshape(-1)).cast("B")])
    elif array.size:
        field, layout = _TYPED[dtype]
        flat = array.ravel()
        if layout != "varint":
            payload = flat.view(flat.real.dtype) if flat.dtype.kind == "c" else flat
            out.append(_len_field(field, payload.astype(layout).tobytes()))
        elif dtype == 19:
            out.append(_len_field(field, encode_varints(flat.view(np.uint16))))
        elif flat.dtype.kind == "i":
            # Negative ints are sign-extended to 64 bits on the wire (10-byte varints).
            out.append(_len_field(field, encode_varints(flat.astype(np.int64).view(np.uint64))))
        else:
            out.append(_len_field(field, encode_varints(flat)))
    return out


def _shape(buf: memoryview) -> tuple[int, ...]:
    dims = []
    for field, wire, dim in _fields(buf):
        if field == 2:
            _want(field, wire, _LEN)
            size = 0
            for f, w, v in _fields(dim):  # type: ignore[arg-type]
                if f == 1:
                    _want(f, w, _VARINT)
                    size = int(np.uint64(v).view(np.int64))  # type: ignore[arg-type]
            dims.append(size)
        elif field == 3:
            raise DecodeError("tensor of unknown rank")
    return tuple(dims)


def decode_tensor(data: bytes | memoryview, narrow: bool = False) -> np.ndarray:
    """A serialized TensorProto -> numpy, matching tf.make_ndarray; but with `narrow`, integers
    sent as one-byte varints (all values 0-127) come back as uint8 whatever width the tensor
    declares."""
    buf = memoryview(data).cast("B")
    dtype_number, shape, content = 0, (), None
    chunks: dict[int, list[tuple[int, int | memoryview]]] = {}
    for field, wire, value in _fields(buf):
        if field == _F_DTYPE:
            _want(field, wire, _VARINT)
            dtype_number = int(value)  # type: ignore[arg-type]
        elif field == _F_SHAPE:
            _want(field, wire, _LEN)
            shape = _shape(value)  # type: ignore[arg-type]
        elif field == _F_CONTENT:
            _want(field, wire, _LEN)
            content = value
        else:
            chunks.setdefault(field, []).append((wire, value))
    if dtype_number not in DTYPES:
        raise DecodeError(f"unsupported tensor dtype number {dtype_number}")
    dtype = DTYPES[dtype_number]
    if any(size < 0 for size in shape):
        raise DecodeError(f"negative dimension in shape {list(shape)}")
    count = 1
    for size in shape:  # Python ints: a huge declared shape must not overflow to a small count
        count *= size
    # Every element must be present: the declared count is checked against the bytes before any
    # array of that size exists (a [1,100000,100000] shape with one value must not allocate).
    if dtype_number == DT_STRING:
        strings = chunks.get(_F_STRING, [])
        for wire, _ in strings:
            _want(_F_STRING, wire, _LEN)
        values = [bytes(v) for _, v in strings]  # type: ignore[arg-type]
        if len(values) != count:
            raise DecodeError(f"shape {list(shape)} declares {count} strings, "
                              f"{len(values)} present")
        out = np.empty(count, dtype=object)
        out[:] = values
        return out.reshape(shape)
    if content is not None:
        if len(content) != count * dtype.itemsize:
            raise DecodeError(f"shape {list(shape)} declares {count} values, "
                              f"{len(content) // max(1, dtype.itemsize)} present")
        # A copy: writable, and it does not keep the whole response buffer alive.
        return np.frombuffer(content, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    field, layout = _TYPED[dtype_number]
    values = _typed_values(chunks.get(field, []), layout, dtype, dtype_number, narrow)
    if values.size != count:
        raise DecodeError(f"shape {list(shape)} declares {count} values, {values.size} present")
    return values.reshape(shape)


def _typed_values(
    chunks: list[tuple[int, int | memoryview]], layout: str, dtype: np.dtype, dtype_number: int,
    narrow: bool = False,
) -> np.ndarray:
    parts = []
    for wire, value in chunks:
        if wire == _LEN:  # packed, what every proto3 writer emits
            if layout == "varint":
                parts.append(decode_varints(value, narrow))  # type: ignore[arg-type]
            else:
                parts.append(np.frombuffer(value, layout))  # type: ignore[arg-type]
        elif layout == "varint":  # unpacked: one value per field
            _want(0, wire, _VARINT)
            parts.append(np.array([value], np.uint64))
        else:
            width = int(layout[-1])
            _want(0, wire, _FIXED32 if width == 4 else _FIXED64)
            parts.append(np.frombuffer(int(value).to_bytes(width, "little"), layout))  # type: ignore[arg-type]
    if not parts:
        return np.zeros(0, dtype)
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if layout != "varint":
        return raw.view(dtype) if dtype.kind == "c" else raw.astype(dtype, copy=False)
    if dtype_number == 19:
        return raw.astype(np.uint16).view(np.float16)
    if dtype.kind == "b":
        return raw != 0
    if raw.dtype == np.uint8:  # narrowed: 0-127 fits every integer dtype
        return raw
    if dtype.kind == "i":
        return raw.view(np.int64).astype(dtype, copy=False)
    return raw.astype(dtype, copy=False)


# --- Predict messages ------------------------------------------------------------------------


def encode_inputs(inputs: Mapping[str, np.ndarray | bytes | str], typed: bool = False,
                  head: bytes = b"") -> bytes:
    """The `inputs` map of a PredictRequest (field 2), after `head`: a serialized request holding
    its model_spec and output_filter (serialized messages concatenate into one; joined here, so
    the image is copied once)."""
    return encode_tensor_map(2, inputs, typed, head)


def encode_tensor_map(
    field: int, tensors: Mapping[str, np.ndarray | bytes | str], typed: bool = False,
    head: bytes = b"",
) -> bytes:
    parts: list[Buffer] = [head]
    for name, value in tensors.items():
        entry = [_len_field(1, name.encode()), *_len_parts(2, _tensor_parts(value, typed))]
        parts += _len_parts(field, entry)
    return b"".join(parts)


def split_tensor_map(data: bytes | memoryview, field: int) -> tuple[dict[str, memoryview], list]:
    """The map<string, TensorProto> at `field` as raw TensorProto bytes, and the other fields."""
    tensors: dict[str, memoryview] = {}
    others = []
    for number, wire, value in _fields(memoryview(data).cast("B")):
        if number != field or wire != _LEN:
            others.append((number, wire, value))
            continue
        key, tensor = "", memoryview(b"")
        for f, w, v in _fields(value):  # type: ignore[arg-type]
            if f in (1, 2):
                _want(f, w, _LEN)
            if f == 1:
                key = bytes(v).decode()  # type: ignore[arg-type]
            elif f == 2:
                tensor = v  # type: ignore[assignment]
        tensors[key] = tensor
    return tensors, others


def decode_predict_response(data: bytes) -> tuple[dict[str, np.ndarray], bytes]:
    """A serialized PredictResponse -> ({output name: array}, serialized ModelSpec).

    Integer outputs of small values come back narrowed to uint8 (see decode_tensor): a typed
    int64 label map of fewer than 128 classes is then 2 MB at 1080p, not 16 MB, and the checks
    and the PNG that follow read an eighth of the bytes."""
    raw, others = split_tensor_map(data, 1)
    spec = b"".join(bytes(v) for f, w, v in others if f == 2 and w == _LEN)  # type: ignore[arg-type]
    return {name: decode_tensor(t, narrow=True) for name, t in raw.items()}, spec

"""codec against TensorFlow's tf.make_tensor_proto / tf.make_ndarray and TF Serving's messages."""

from __future__ import annotations

import numpy as np
import pytest

from segviewer.core.serving import codec

tf = pytest.importorskip("tensorflow")
from tensorflow.core.framework import tensor_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

rng = np.random.default_rng(7)
INT64_EDGES = np.array([0, 1, 127, 128, 300, -1, -128, 2**31, 2**62, -(2**63), 2**63 - 1], np.int64)
CASES = {
    "uint8 image [1,H,W,3]": rng.integers(0, 256, (1, 5, 7, 3), dtype=np.uint8),
    "uint8 [H,W,3]": rng.integers(0, 256, (4, 6, 3), dtype=np.uint8),
    "uint8 scalar": np.uint8(200),
    "int8": np.array([-128, -1, 0, 127], np.int8),
    "int16": np.array([-32768, -5, 32767], np.int16),
    "uint16": np.array([0, 65535, 128], np.uint16),
    "int32 [1,H,W]": rng.integers(-(2**31), 2**31, (1, 3, 4), dtype=np.int64).astype(np.int32),
    "int32 scalar negative": np.int32(-7),
    "int64 labels [1,H,W]": rng.integers(0, 21, (1, 6, 9)).astype(np.int64),
    "int64 multi-byte and negative": INT64_EDGES,
    "int64 scalar": np.int64(-(2**40)),
    "uint32": np.array([0, 2**32 - 1, 129], np.uint32),
    "uint64": np.array([0, 2**64 - 1, 2**63], np.uint64),
    "float32 scores [1,H,W,C]": rng.standard_normal((1, 3, 4, 5)).astype(np.float32),
    "float32 scalar": np.float32(-0.5),
    "float64": np.array([np.pi, -np.inf, 1e300]),
    "float16": np.array([0.5, -2.0, 65504.0], np.float16),
    "complex64": np.array([1 + 2j, -3j], np.complex64),
    "complex128": np.array([1 + 2j, -3j], np.complex128),
    "bool": np.array([[True, False], [False, True]]),
    "empty int64": np.zeros((0, 3), np.int64),
    "empty uint8 [1,0,0,3]": np.zeros((1, 0, 0, 3), np.uint8),
    "empty float32": np.zeros((2, 0), np.float32),
    "string scalar": np.array(b"\x89PNG\r\n\x1a\n\x00\xff", dtype=object),
    "string [1]": np.array([b"abc"], dtype=object),
    "strings [2,2]": np.array([[b"", b"x" * 200], [b"\x00", "é".encode()]], dtype=object),
    "empty strings": np.zeros((0,), dtype=object),
}


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("typed", [False, True], ids=["tensor_content", "typed"])
def test_encode_matches_tensorflow(name: str, typed: bool) -> None:
    array = CASES[name]
    data = codec.encode_tensor(array, typed=typed)
    proto = tensor_pb2.TensorProto.FromString(data)
    if typed and array.size and array.dtype != object:
        assert not proto.tensor_content  # the typed fields, as TF Serving answers
    elif array.dtype != object and array.size:
        assert proto.tensor_content
    _same(tf.make_ndarray(proto), np.asarray(array))


@pytest.mark.parametrize("name", list(CASES))
def test_decode_matches_tensorflow(name: str) -> None:
    array = CASES[name]
    proto = tf.make_tensor_proto(array)
    _same(codec.decode_tensor(proto.SerializeToString()), tf.make_ndarray(proto))
    ours = codec.decode_tensor(codec.encode_tensor(array, typed=True))
    _same(ours, tf.make_ndarray(proto))


@pytest.mark.parametrize(
    "field, values, dtype",
    [
        ("int64_val", INT64_EDGES.tolist(), tf.int64),
        ("int_val", [-(2**31), -1, 0, 2**31 - 1], tf.int32),
        ("int_val", [0, 255, 7], tf.uint8),
        ("float_val", [1.5, -2.25], tf.float32),
        ("double_val", [1e-300, 2.5], tf.float64),
        ("bool_val", [True, False, True], tf.bool),
        ("half_val", np.array([1.5, -0.25], np.float16).view(np.uint16).tolist(), tf.float16),
        ("string_val", [b"a", b"\xff\x00"], tf.string),
        ("uint32_val", [0, 2**32 - 1], tf.uint32),
        ("uint64_val", [0, 2**64 - 1], tf.uint64),
    ],
)
def test_typed_fields_written_by_protobuf(field: str, values: list, dtype) -> None:
    """Tensors filled field by field, as TF Serving's C++ writes them (packed repeated fields)."""
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.dim.add(size=len(values))
    getattr(proto, field).extend(values)
    _same(codec.decode_tensor(proto.SerializeToString()), tf.make_ndarray(proto))


def test_fewer_values_than_elements_are_refused_before_allocating() -> None:
    """tf.make_ndarray repeats the last value; a few bytes could then declare gigabytes."""
    proto = tensor_pb2.TensorProto(dtype=tf.int64.as_datatype_enum)
    for size in (1, 100000, 100000):
        proto.tensor_shape.dim.add(size=size)
    proto.int64_val.extend([4])
    with pytest.raises(codec.DecodeError, match="declares 10000000000 values, 1 present"):
        codec.decode_tensor(proto.SerializeToString())
    proto.ClearField("int64_val")
    with pytest.raises(codec.DecodeError, match="0 present"):
        codec.decode_tensor(proto.SerializeToString())
    content = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, tensor_content=b"\0" * 4)
    content.tensor_shape.dim.add(size=3)
    with pytest.raises(codec.DecodeError, match="declares 3 values, 1 present"):
        codec.decode_tensor(content.SerializeToString())


def test_unpacked_repeated_fields_are_read() -> None:
    """proto3 readers must accept unpacked scalars too (field tag per value)."""
    shape = b"\x12\x04\x12\x02\x08\x03"  # tensor_shape { dim { size: 3 } }
    values = b"".join(b"\x50" + codec.encode_varints(np.array([v], np.uint64)) for v in (1, 200, 3))
    data = b"\x08\x09" + shape + values  # dtype DT_INT64, int64_val unpacked
    _same(codec.decode_tensor(data), tf.make_ndarray(tensor_pb2.TensorProto.FromString(data)))


def test_varints_round_trip_every_length() -> None:
    values = np.array([0] + [1 << (7 * k) for k in range(10)] + [(1 << 64) - 1], np.uint64)
    values = np.concatenate([values, values - np.uint64(1)])
    np.testing.assert_array_equal(codec.decode_varints(codec.encode_varints(values)), values)


@pytest.mark.parametrize("data", [b"\x08", b"\x08\x09\x22\x05ab", b"\x08\x09\x52\x02\x80\x80"])
def test_malformed_bytes_raise(data: bytes) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode_tensor(data)


def test_request_parses_as_the_official_predict_request() -> None:
    image = CASES["uint8 image [1,H,W,3]"]
    head = predict_pb2.PredictRequest(output_filter=["segmentation_map"])
    head.model_spec.name = "tiny"
    head.model_spec.version_label = "stable"
    data = head.SerializeToString() + codec.encode_inputs({"images": image, "key": b"k"})
    request = predict_pb2.PredictRequest.FromString(data)
    assert request.model_spec.version_label == "stable"
    assert list(request.output_filter) == ["segmentation_map"]
    _same(tf.make_ndarray(request.inputs["images"]), image)
    assert tf.make_ndarray(request.inputs["key"]) == b"k"


def test_response_decodes_from_the_official_predict_response() -> None:
    labels = CASES["int64 labels [1,H,W]"]
    scores = CASES["float32 scores [1,H,W,C]"]
    response = predict_pb2.PredictResponse()
    response.outputs["segmentation_map"].CopyFrom(tf.make_tensor_proto(labels))
    response.outputs["probabilities"].dtype = tf.float32.as_datatype_enum
    for size in scores.shape:
        response.outputs["probabilities"].tensor_shape.dim.add(size=size)
    response.outputs["probabilities"].float_val.extend(scores.ravel().tolist())
    response.model_spec.name = "tiny"
    response.model_spec.version.value = 2
    outputs, spec = codec.decode_predict_response(response.SerializeToString())
    _same(outputs["segmentation_map"], labels)
    _same(outputs["probabilities"], scores)
    assert spec == response.model_spec.SerializeToString()


@pytest.mark.parametrize(("high", "dtype"), [(21, np.uint8), (300, np.int64)])
def test_typed_label_maps_in_answers_come_back_as_narrow_as_their_values(high, dtype) -> None:
    """TF Serving writes int64 outputs as int64_val: ids below 128 are one byte each on the
    wire, and decode to uint8 (an eighth of the memory); anything larger keeps the int64."""
    labels = rng.integers(0, high, (1, 6, 9)).astype(np.int64)
    labels[0, 0, 0] = high - 1
    response = predict_pb2.PredictResponse()
    output = response.outputs["segmentation_map"]
    output.dtype = tf.int64.as_datatype_enum
    for size in labels.shape:
        output.tensor_shape.dim.add(size=size)
    output.int64_val.extend(labels.ravel().tolist())
    decoded = codec.decode_predict_response(response.SerializeToString())[0]["segmentation_map"]
    assert decoded.dtype == dtype and np.array_equal(decoded, labels)


@pytest.mark.parametrize("typed", [False, True])
def test_decoded_arrays_are_writable(typed: bool) -> None:
    decoded = codec.decode_tensor(codec.encode_tensor(np.arange(6, dtype=np.int64), typed))
    decoded[0] = 9  # callers may edit label maps in place
    assert decoded.flags.writeable


def test_1080p_label_map_round_trip() -> None:
    labels = rng.integers(0, 150, (1, 1080, 1920)).astype(np.int64)
    data = codec.encode_tensor(labels, typed=True)
    assert len(data) < labels.size * 2  # one or two bytes per value, not eight
    _same(codec.decode_tensor(data), labels)


def test_mutated_answers_raise_decode_errors_only() -> None:
    """Random damage to a PredictResponse gives a ValueError, never another exception (a varint
    where a length belongs once allocated its value in bytes)."""
    import contextlib
    import random

    head = b"\x12\x06\n\x04tiny"  # model_spec { name: "tiny" }
    good = head + codec.encode_tensor_map(1, {
        "labels": np.arange(12, dtype=np.int64).reshape(1, 3, 4),
        "name": np.array(b"x", dtype=object), "scores": np.ones((2, 2), np.float32),
        "half": np.ones(3, np.float16), "flags": np.ones(2, bool)}, typed=True)
    rng = random.Random(5)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.6:
                data[at] = rng.randrange(256)
            else:
                data[at:at] = b"\xff" * rng.randint(1, 11)
        with contextlib.suppress(ValueError):
            codec.decode_predict_response(bytes(data))
    varint_as_key = b"\x0a\x04" + b"\x08\xff\xff\x7f"  # map entry whose key is a varint
    with pytest.raises(codec.DecodeError, match="wire type"):
        codec.split_tensor_map(varint_as_key, 1)

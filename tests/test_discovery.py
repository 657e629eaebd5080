"""Signature discovery: choosing input/output for exporter-made and foreign models (pure numpy)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from segviewer.core.serving.base import (
    BackendError,
    ClassInfo,
    ModelMetadata,
    Signature,
    TensorSpec,
)
from segviewer.core.serving.discovery import (
    AnswerError,
    class_count,
    parse_metadata_json,
    plan_prediction,
    prepare_input,
    to_labels,
    to_probabilities,
)


def sig(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Signature:
    return Signature(name, {s.name: s for s in inputs}, {s.name: s for s in outputs})


def meta(*signatures: Signature) -> ModelMetadata:
    return ModelMetadata("m", 1, {s.name: s for s in signatures})


IMAGES = TensorSpec("images", "uint8", (1, None, None, 3))
SEG = TensorSpec("segmentation_map", "int64", (1, None, None))
PROBS = TensorSpec("probabilities", "float32", (1, None, None, 21))

# The exporter's full set of signatures (exporter/signatures.py).
EXPORTER = meta(
    sig("serving_default", [IMAGES], [SEG]),
    sig("probabilities", [IMAGES], [SEG, PROBS]),
    sig("encoded", [TensorSpec("image_bytes", "string", ())],
        [TensorSpec("segmentation_png", "string", ())]),
    sig("segviewer_metadata", [], [TensorSpec("metadata_json", "string", ())]),
)


def test_exporter_model_uses_serving_default():
    plan = plan_prediction(EXPORTER)
    assert (plan.signature, plan.input.name, plan.input_kind, plan.batched) == (
        "serving_default", "images", "uint8", True)
    assert (plan.output.name, plan.output_kind, plan.probabilities) == (
        "segmentation_map", "labels", None)


def test_want_probabilities_prefers_the_signature_that_has_them():
    plan = plan_prediction(EXPORTER, want_probabilities=True)
    assert plan.signature == "probabilities"
    assert plan.output.name == "segmentation_map"
    assert plan.probabilities == PROBS


def test_explicit_signature_and_names_are_honoured():
    plan = plan_prediction(EXPORTER, signature="encoded")
    assert (plan.input_kind, plan.batched, plan.output_kind) == ("encoded", False, "encoded")
    plan = plan_prediction(EXPORTER, signature="probabilities", output_name="probabilities")
    assert plan.output_kind == "scores"


def test_foreign_model_float_input_and_logits_output():
    foreign = meta(sig("serving_default", [TensorSpec("input_1", "float32", (None, None, None, 3))],
                       [TensorSpec("logits", "float32", (None, 64, 64, 5))]))
    plan = plan_prediction(foreign)
    assert (plan.input_kind, plan.batched, plan.output_kind) == ("float", True, "scores")
    assert plan.probabilities == foreign.signatures["serving_default"].outputs["logits"]


def test_unbatched_int32_labels_preferred_over_scores():
    model = meta(sig("predict", [TensorSpec("x", "uint8", (None, None, 3))],
                     [TensorSpec("a_scores", "float32", (1, None, None, 3)),
                      TensorSpec("z_labels", "int32", (None, None))]))
    plan = plan_prediction(model)
    assert (plan.signature, plan.batched, plan.output.name) == ("predict", False, "z_labels")
    assert plan.probabilities.name == "a_scores"


def test_skips_unusable_default_signature():
    model = meta(sig("serving_default", [TensorSpec("text", "int32", (None,))],
                     [TensorSpec("y", "float32", (None, 2))]),
                 sig("segment", [IMAGES], [SEG]))
    assert plan_prediction(model).signature == "segment"


def test_errors_name_what_was_found():
    model = meta(sig("serving_default", [TensorSpec("text", "int32", (None,))],
                     [TensorSpec("y", "float32", (None, 2))]))
    with pytest.raises(BackendError) as err:
        plan_prediction(model)
    assert err.value.code == "FAILED_PRECONDITION"
    assert "text: int32[-1]" in str(err.value)
    with pytest.raises(BackendError, match=r"no signature 'nope'.*serving_default"):
        plan_prediction(EXPORTER, signature="nope")
    with pytest.raises(BackendError, match=r"no input 'pixels'.*images"):
        plan_prediction(EXPORTER, signature="serving_default", input_name="pixels")
    with pytest.raises(BackendError, match="no output 'nope'"):
        plan_prediction(EXPORTER, signature="serving_default", output_name="nope")


def test_prepare_input_kinds():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    sent = prepare_input(image, plan_prediction(EXPORTER))
    assert sent.shape == (1, 2, 3, 3) and sent.dtype == np.uint8
    encoded = prepare_input(image, plan_prediction(EXPORTER, signature="encoded"))
    assert encoded.shape == () and encoded.dtype == object
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encoded.item()))), image)
    floats = meta(sig("s", [TensorSpec("x", "float64", (None, None, 3))], [SEG]))
    sent = prepare_input(image, plan_prediction(floats))
    assert sent.dtype == np.float64 and sent.shape == (2, 3, 3) and sent[1, 2, 2] == 17.0
    with pytest.raises(BackendError, match="RGB uint8"):
        prepare_input(image[..., 0], plan_prediction(EXPORTER))


def test_to_labels_squeezes_argmaxes_decodes_and_resizes():
    labels = np.array([[0, 1], [2, 3]], dtype=np.int64)
    plan = plan_prediction(EXPORTER)
    out = to_labels(labels[np.newaxis], plan, (2, 2))
    assert out.dtype == np.uint8 and np.array_equal(out, labels)  # what a label PNG holds
    wide = to_labels(np.array([[[0, 300]]], dtype=np.int64), plan, (1, 2))
    assert wide.dtype == np.uint16 and wide.tolist() == [[0, 300]]
    # Nearest-neighbour back to a larger image: each label becomes a 2x2 block.
    assert np.array_equal(to_labels(labels[np.newaxis], plan, (4, 4)),
                          np.kron(labels, np.ones((2, 2), dtype=np.int64)))

    scores = np.eye(4, dtype=np.float32)[labels][np.newaxis]  # one-hot [1,2,2,4]
    score_plan = plan_prediction(EXPORTER, signature="probabilities", output_name="probabilities")
    assert np.array_equal(to_labels(scores, score_plan, (2, 2)), labels)
    assert to_probabilities(scores, (2, 2)).shape == (2, 2, 4)

    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buffer, format="PNG")
    png = np.array(buffer.getvalue(), dtype=object)
    assert np.array_equal(to_labels(png, plan_prediction(EXPORTER, signature="encoded"), (2, 2)),
                          labels)


def test_parse_metadata_json_forms():
    classes, settings = parse_metadata_json(json.dumps({
        "classes": [{"id": 0, "name": "background", "color": [0, 0, 0]},
                    {"id": 1, "name": "cat", "color": "#ff8000"}],
        "model_variant": "mobilenet_v2",
    }).encode())
    assert classes == [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cat", (255, 128, 0))]
    assert settings == {"model_variant": "mobilenet_v2"}
    classes, _ = parse_metadata_json('{"classes": ["a", "b"], "colors": [[1, 2, 3], [4, 5, 6]]}')
    assert classes == [ClassInfo(0, "a", (1, 2, 3)), ClassInfo(1, "b", (4, 5, 6))]
    exporter = '{"classes":[{"id":0,"name":"bg","color":[1,2,3]}],"settings":{"num_classes":1}}'
    assert parse_metadata_json(exporter) == ([ClassInfo(0, "bg", (1, 2, 3))], {"num_classes": 1})
    assert parse_metadata_json("{not json") == (None, {})
    assert parse_metadata_json('{"num_classes": 21}') == (None, {"num_classes": 21})


def test_answers_are_checked_before_use():
    plan = plan_prediction(EXPORTER)
    labels = np.zeros((1, 3, 3), np.int64)
    with pytest.raises(AnswerError, match="is 3x3 \\(HxW\\) for a 4x4 image"):
        to_labels(labels, plan, (4, 4))  # not a whole factor: never stretched
    with pytest.raises(AnswerError, match="is 1x1"):
        to_labels(np.zeros((1, 1, 1), np.int64), plan, (64, 64))  # 64 is past the 32 stride
    with pytest.raises(AnswerError, match="holds float64"):
        to_labels(np.zeros((1, 4, 4)), plan, (4, 4))
    with pytest.raises(AnswerError, match="label id 21, outside the model's 21 classes"):
        to_labels(np.full((1, 4, 4), 21, np.int64), plan, (4, 4), num_classes=21)
    with pytest.raises(AnswerError, match="label id 65536, outside 0-65535"):
        to_labels(np.full((1, 4, 4), 65536, np.int64), plan, (4, 4))
    assert to_labels(np.full((1, 4, 4), 20, np.int64), plan, (4, 4), num_classes=21).max() == 20


def test_class_count_takes_the_larger_of_classes_and_settings():
    classes = [ClassInfo(0, "a", (0, 0, 0)), ClassInfo(5, "b", (0, 0, 0))]
    assert class_count(ModelMetadata("m", 1, {}, classes)) == 6
    assert class_count(ModelMetadata("m", 1, {}, classes, {"num_classes": 21})) == 21
    assert class_count(ModelMetadata("m", 1, {}, None, {"num_classes": True})) is None
    assert class_count(ModelMetadata("m", 1, {})) is None


def test_an_encoded_output_must_be_one_png():
    plan = plan_prediction(EXPORTER, signature="encoded")
    for value in (10**12, "text"):
        bad = np.empty((), dtype=object)
        bad[()] = value
        with pytest.raises(AnswerError, match="is not one PNG image"):
            to_labels(bad, plan, (2, 2))
    with pytest.raises(AnswerError, match="is not a PNG image"):
        to_labels(np.array(b"GIF89a", dtype=object), plan, (2, 2))


def test_broken_stored_metadata_is_ignored_not_raised():
    deep = '{"classes": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for text in (deep, '{"classes": [5, null]}', b"\xff\xfe", '{"classes": [{"id": 1}]}'):
        assert parse_metadata_json(text) == (None, {})

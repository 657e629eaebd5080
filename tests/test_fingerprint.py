"""Model fingerprints: the same for one version on every path, different between versions, and
honest about how strong they are for SavedModels our exporter did not make."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DEMO

from segviewer.core.fingerprint import (
    CONTENT,
    FILES,
    SIGNATURE_ONLY,
    Fingerprint,
    FingerprintError,
    fingerprint,
    from_metadata,
    weights_digest,
)
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.local_backend import LocalBackend

DEMO_MODELS = DEMO / "models"


def test_weights_digest_ignores_order_and_sees_every_value():
    a = ("float32", (2,), np.array([1.0, 2.0], np.float32))
    b = ("float32", (1, 2), np.array([[3.0, 4.0]], np.float32))
    assert weights_digest([a, b]) == weights_digest([b, a])
    changed = ("float32", (1, 2), np.array([[3.0, 4.5]], np.float32))
    assert weights_digest([a, changed]) != weights_digest([a, b])
    reshaped = ("float32", (2, 1), np.array([[3.0], [4.0]], np.float32))
    assert weights_digest([a, reshaped]) != weights_digest([a, b])


def test_parse_round_trip_and_errors():
    fp = Fingerprint(CONTENT, "0" * 64)
    assert Fingerprint.parse(str(fp)) == fp and not fp.weak
    weak = Fingerprint(SIGNATURE_ONLY, "ab" * 32)
    assert weak.weak and weak.short == "abababababab (signature only)"
    for text in ("", "content:xyz", "other:" + "0" * 64, "0" * 64):
        with pytest.raises(FingerprintError):
            Fingerprint.parse(text)


def test_the_exported_digest_is_the_saved_variables():
    """What our exporter embeds is the digest of the weights the SavedModel holds."""
    tf = pytest.importorskip("tensorflow")
    for version in ("1", "2"):
        folder = DEMO_MODELS / "pascal" / version
        settings = json.loads((folder / "assets" / "segviewer_metadata.json").read_text())[
            "settings"]
        reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
        keys = [k for k in shapes if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
        assert settings["weights_sha256"] == weights_digest(
            (dtypes[k].name, tuple(shapes[k]), reader.get_tensor(k)) for k in keys)


@pytest.mark.slow
def test_demo_versions_same_on_every_path_and_distinct(start_tf_serving):
    local = LocalBackend(DEMO_MODELS)
    server = start_tf_serving(DEMO_MODELS, versions={"pascal": [1, 2]})
    seen = {}
    for spec in (str(DEMO_MODELS), server.grpc_address, server.rest_url):
        backend = (local if spec == str(DEMO_MODELS)
                   else ConnectionSpec.parse(spec, models=("pascal",)).open())
        try:
            seen[spec] = [fingerprint(backend, ModelRef("pascal", v)) for v in (1, 2)]
        finally:
            backend.close()
    first = next(iter(seen.values()))
    assert all(fps == first for fps in seen.values())
    assert first[0].kind == first[1].kind == CONTENT and first[0] != first[1]  # scales differ


def test_a_foreign_saved_model_files_locally_signature_only_remotely(serving_models, tiny_base,
                                                                     start_tf_serving,
                                                                     tmp_path):
    """The devserver's toy model stores metadata without a weights digest."""
    ref = ModelRef("tiny", 2)
    backend = LocalBackend(serving_models / "tiny")
    local = fingerprint(backend, ref)
    assert local.kind == FILES
    server = start_tf_serving(tiny_base)
    remote = ConnectionSpec.parse(server.grpc_address, models=("tiny",)).open()
    try:
        served = fingerprint(remote, ref)
    finally:
        remote.close()
    assert served.kind == SIGNATURE_ONLY and served.weak and served != local

    # Files: a copy elsewhere is the same model; any change to its files makes another.
    copy = tmp_path / "tiny" / "2"
    shutil.copytree(serving_models / "tiny" / "2", copy)
    meta = backend.metadata(ref)
    assert from_metadata(meta, copy) == local
    (copy / "saved_model.pb").write_bytes((copy / "saved_model.pb").read_bytes() + b"\0")
    assert from_metadata(meta, copy) != local

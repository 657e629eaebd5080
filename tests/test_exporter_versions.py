"""Versioned, atomic export: next free version, refusing/overwriting a version, cancel and failure
leave nothing behind (real exports of the reference checkpoint at a small crop size)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA

from exporter import ExportError
from exporter.export import ExportOptions, export_model

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.slow
REFERENCE = DATA / "deeplab" / "mobilenet_v2"


def _options(export_dir, **kw) -> ExportOptions:
    return ExportOptions(REFERENCE, export_dir, "m", **{"crop_size": (65, 65), **kw})


def _metadata(path) -> dict:
    return json.loads((path / "assets" / "segviewer_metadata.json").read_text())


@pytest.fixture(scope="module")
def first_export(tmp_path_factory):
    export_dir = tmp_path_factory.mktemp("models")
    (export_dir / "m" / "3").mkdir(parents=True)  # an older version the model already has
    calls = []
    result = export_model(_options(export_dir), progress=lambda *a: calls.append(a))
    return export_dir, result, calls


def test_export_takes_the_next_free_version_and_reports_progress(first_export):
    export_dir, result, calls = first_export
    assert result.version == 4
    assert result.path == export_dir / "m" / "4"
    assert sorted(p.name for p in (export_dir / "m").iterdir()) == ["3", "4"]  # no temp left
    assert (result.path / "saved_model.pb").is_file()
    assert result.size_bytes > 8_000_000
    assert [c[0] for c in calls] == ["read checkpoint", "check variables", "build network",
                                     "write SavedModel", "verify", "done"]
    assert [c[1:] for c in calls] == [(i, 5) for i in range(6)]
    assert "signature_def['serving_default']" in result.signatures


def test_existing_version_is_refused_and_kept(first_export):
    export_dir, result, _ = first_export
    before = (result.path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        export_model(_options(export_dir, model_version=4))
    assert (result.path / "saved_model.pb").stat().st_mtime_ns == before


def test_overwrite_replaces_the_version(tmp_path):
    first = export_model(_options(tmp_path, model_version=2))
    assert _metadata(first.path)["settings"]["crop_size"] == [65, 65]
    second = export_model(_options(tmp_path, model_version=2, overwrite=True, output_stride=16,
                                   crop_size=(129, 129)))
    assert second.path == first.path
    settings = _metadata(second.path)["settings"]
    assert settings["crop_size"] == [129, 129] and settings["output_stride"] == 16
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["2"]
    model = tf.saved_model.load(str(second.path))
    labels = model.signatures["serving_default"](images=tf.zeros([1, 20, 30, 3], tf.uint8))
    assert labels["segmentation_map"].shape == (1, 20, 30)


def test_the_next_export_restores_a_version_a_killed_overwrite_moved_aside(tmp_path):
    first = export_model(_options(tmp_path, model_version=2))
    previous = (first.path / "saved_model.pb").read_bytes()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = f"{socket.gethostname()}-{dead.pid}"
    # What `--overwrite` of version 2 leaves when killed between its two renames.
    os.rename(first.path, tmp_path / "m" / f".2.old-{owner}-1")
    (tmp_path / "m" / f".2.tmp-{owner}-ab12" / "model").mkdir(parents=True)
    second = export_model(_options(tmp_path))  # the next free version is 3, not 2 again
    assert second.version == 3
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["2", "3"]
    assert (tmp_path / "m" / "2" / "saved_model.pb").read_bytes() == previous


def test_cancel_after_writing_leaves_nothing(tmp_path):
    steps = []

    def cancelled() -> bool:
        return steps[-1] == "verify" if steps else False

    with pytest.raises(ExportError, match="export cancelled"):
        export_model(_options(tmp_path), progress=lambda step, *_: steps.append(step),
                     cancelled=cancelled)
    assert steps[-1] == "verify"  # the SavedModel was written, then the export was cancelled
    assert list((tmp_path / "m").iterdir()) == []


def test_export_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="cannot create"):
        export_model(_options(tmp_path / "file"))


def _ops(path) -> set[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    return {n.op for n in graph.node} | {
        n.op for f in graph.library.function for n in f.node_def
    }


def test_compat_older_servers_has_no_variable_ops_and_the_same_answers(tmp_path):
    from exporter.defaults import MIN_TF_SERVING, MIN_TF_SERVING_COMPAT

    normal = export_model(_options(tmp_path, model_version=1))
    compat = export_model(_options(tmp_path, model_version=2, compat_older_servers=True))
    assert _metadata(normal.path)["settings"]["min_tensorflow_serving"] == MIN_TF_SERVING
    settings = _metadata(compat.path)["settings"]
    assert settings["min_tensorflow_serving"] == MIN_TF_SERVING_COMPAT
    assert settings["compat_older_servers"] is True
    # Saving the weights' variables is what needs TF >= 2.10 (README); should TensorFlow stop
    # writing this op, MIN_TF_SERVING is to be measured again.
    assert "DisableCopyOnRead" in _ops(normal.path)
    assert "DisableCopyOnRead" not in _ops(compat.path)
    stored = tf.train.load_checkpoint(str(compat.path / "variables" / "variables"))
    assert set(stored.get_variable_to_shape_map()) == {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    image = tf.constant(np.linspace(0, 255, 41 * 29 * 3).astype(np.uint8).reshape(1, 41, 29, 3))
    answers = []
    for result in (normal, compat):
        model = tf.saved_model.load(str(result.path))
        answers.append(model.signatures["probabilities"](images=image))
    for key in ("segmentation_map", "probabilities"):
        np.testing.assert_array_equal(answers[0][key].numpy(), answers[1][key].numpy())

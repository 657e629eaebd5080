"""run_batch: folder runs on real SavedModels (the stand-in's toy models), in-process and served."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_images import deeper_than_path_max, write_mixed_folder

from segviewer.core import provenance
from segviewer.core.batch import BatchOptions, BatchProgress, run_batch
from segviewer.core.fingerprint import fingerprint
from segviewer.core.images import encode_png, is_valid_png, load_image, load_label_png, temp_name
from segviewer.core.labels import colorize, palette_from_classes
from segviewer.core.overlay import blend
from segviewer.core.serving.base import ClassInfo, ModelRef
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.local_backend import LocalBackend
from segviewer.core.shards import Shard
from segviewer.devserver.toy_models import CLASSES, tiny_labels

TINY_V2 = ModelRef("tiny", version=2)


@pytest.fixture
def local(serving_models) -> LocalBackend:
    return LocalBackend(serving_models)


def test_mixed_folder_four_outputs_and_one_named_failure(local, tmp_path):
    good = write_mixed_folder(tmp_path / "in")
    inputs = sorted((tmp_path / "in").rglob("*.*"))
    events: list[BatchProgress] = []
    summary = run_batch(local, TINY_V2, inputs, tmp_path / "out",
                        BatchOptions(workers=2, count_classes=True), events.append)
    assert (summary.ok, summary.failed, summary.skipped, summary.cancelled) == (4, 1, 0, False)
    assert [f.input.name for f in summary.failures] == ["corrupt.png"]
    assert "corrupt.png" in summary.failures[0].reason
    assert "\n" not in summary.failures[0].reason
    for path in good:
        labels = load_label_png(tmp_path / "out" / f"{path.stem}.png")
        assert np.array_equal(labels, tiny_labels(load_image(path), shift=1)), path
    assert load_label_png(tmp_path / "out" / "portrait.png").shape == (28, 16)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "deep16.png", "gray.png", "portrait.png", "rgba.png"]
    # Progress: a start event, then one per input, counts only growing, failure reported once.
    assert events[0].done == 0 and events[0].path is None
    assert [e.done for e in events] == list(range(6))
    assert sum(e.failure is not None for e in events) == 1
    assert sum(summary.class_shares().values()) == pytest.approx(100.0)
    assert summary.latency.count == 4
    report = summary.to_json(palette_from_classes([ClassInfo(**c) for c in CLASSES]))
    assert report["failures"][0]["input"].endswith("corrupt.png")
    assert {c["name"] for c in report["class_shares"]} <= {f"class{i}" for i in range(4)}
    assert set(report["timings"]) >= {"total_s", "per_image_mean_s", "per_image_p50_s",
                                      "per_image_p95_s"}


def test_resume_skips_complete_outputs_and_redoes_broken_ones(local, tmp_path):
    good = write_mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    options = BatchOptions(overlay=True, resume=True)
    first = run_batch(local, TINY_V2, good, out, options)
    assert first.ok == 4
    overlay = out / "rgba_overlay.png"
    overlay.write_bytes(overlay.read_bytes()[:-20])  # a truncated file is not complete
    assert not is_valid_png(overlay)
    again = run_batch(local, TINY_V2, good, out, options)
    assert (again.ok, again.skipped, again.failed) == (1, 3, 0)
    assert is_valid_png(overlay)


def test_overlay_uses_the_models_classes(local, tmp_path):
    path = write_mixed_folder(tmp_path / "in")[1]
    run_batch(local, TINY_V2, [path], tmp_path / "out", BatchOptions(overlay=True, opacity=0.3))
    image = load_image(path)
    labels = tiny_labels(image, shift=1)
    colors, _ = colorize(labels, palette_from_classes([ClassInfo(**c) for c in CLASSES]))
    written = np.asarray(Image.open(tmp_path / "out" / "rgba_overlay.png"))
    assert np.array_equal(written, blend(image, colors, 0.3))


def test_cancel_stops_submitting_and_leaves_only_complete_files(local, tmp_path):
    rng = np.random.default_rng(3)
    inputs = []
    for i in range(30):
        path = tmp_path / "in" / f"img{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).save(path)
        inputs.append(path)
    cancel = threading.Event()

    def progress(p: BatchProgress) -> None:
        if p.done == 3:
            cancel.set()

    summary = run_batch(local, TINY_V2, inputs, tmp_path / "out", BatchOptions(workers=2),
                        progress, cancel)
    # The calls in flight may all finish (in-process calls are quick); no new one starts.
    assert summary.cancelled and summary.ok < len(inputs)
    # Inputs stream in: only those taken before the cancel count, and the listing says so.
    assert summary.ok + summary.not_run == summary.total < 30
    assert not summary.listing_complete
    written = sorted((tmp_path / "out").iterdir())
    assert len(written) == summary.ok  # nothing else: no temporary files left behind
    assert all(is_valid_png(p) for p in written)


@pytest.mark.parametrize("model", ["tiny", "logits", "hwc", "encoded"])
def test_served_and_in_process_give_identical_label_maps(model, serving_models, tf_serving,
                                                         tmp_path):
    """gRPC and REST against the stand-in, and LocalBackend on the same SavedModels."""
    inputs = write_mixed_folder(tmp_path / "in")
    ref = ModelRef(model, version=2 if model == "tiny" else 1)
    results = {}
    for spec in (str(serving_models), tf_serving.grpc_address, tf_serving.rest_url):
        backend = ConnectionSpec.parse(spec, models=(model,)).open()
        try:
            out = tmp_path / spec.replace("/", "_").replace(":", "_")
            summary = run_batch(backend, ref, inputs, out, BatchOptions(workers=4))
        finally:
            backend.close()
        if model == "encoded" and spec == tf_serving.rest_url:
            # TF Serving's REST API cannot return a binary output not named '*_bytes': each
            # input fails with that reason, named, instead of the run crashing.
            assert summary.failed == 4 and "_bytes" in summary.failures[0].reason
            continue
        assert summary.ok == 4, (spec, summary.failures)
        results[spec] = [load_label_png(out / f"{p.stem}.png") for p in inputs]
    local, *served = results.values()
    for other in served:
        for a, b in zip(local, other, strict=True):
            assert np.array_equal(a, b)
    shift = 1 if model == "tiny" else 0
    for path, labels in zip(inputs, local, strict=True):
        assert np.array_equal(labels, tiny_labels(load_image(path), shift))


def test_a_server_that_goes_away_stops_the_run(serving_models, start_tf_serving, tmp_path):
    from segviewer.core.serving.grpc_backend import GrpcBackend

    server = start_tf_serving(serving_models)
    rng = np.random.default_rng(4)
    inputs = []
    for i in range(40):
        inputs.append(tmp_path / "in" / f"{i:02d}.png")
        inputs[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(inputs[-1])

    def progress(p: BatchProgress) -> None:
        if p.done == 3:
            server.stop()

    backend = GrpcBackend(server.grpc_address, models=["tiny"], retry_for=0)
    try:
        summary = run_batch(backend, ModelRef("tiny"), inputs, tmp_path / "out",
                            BatchOptions(workers=2), progress)
    finally:
        backend.close()
    assert summary.ok >= 3 and summary.failed >= 1
    assert "cannot reach" in summary.lost_connection
    assert summary.cancelled and summary.ok + summary.failed < 40
    assert summary.to_json()["lost_connection"] == summary.lost_connection


# ---------------------------------------------------------------------------------------------
# Trust: provenance, pairs, temporary files, special files, limits (issue 13)


def write_images(folder: Path, count: int, size: int = 24) -> list[Path]:
    rng = np.random.default_rng(count)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_resume_skips_only_outputs_of_the_same_model_version(local, tmp_path):
    inputs = write_images(tmp_path / "in", 3)
    out = tmp_path / "out"
    run_batch(local, TINY_V2, [tmp_path / "in"], out, BatchOptions())
    made = provenance.read(out / "img00.png")
    assert (made.model, made.version, made.signature) == ("tiny", 2, "serving_default")
    assert made.source == local.description
    assert made.fingerprint == str(fingerprint(local, TINY_V2))  # what a review matches on
    v1 = run_batch(local, ModelRef("tiny", 1), [tmp_path / "in"], out, BatchOptions(resume=True))
    assert (v1.ok, v1.skipped, v1.recomputed) == (3, 0, 3)
    for path in inputs:  # version 1's labels now, not version 2's left behind
        assert np.array_equal(load_label_png(out / path.name), tiny_labels(load_image(path)))
    again = run_batch(local, ModelRef("tiny", 1), [tmp_path / "in"], out,
                      BatchOptions(resume=True))
    assert (again.ok, again.skipped, again.recomputed) == (0, 3, 0)
    # The same name and version with other content (a re-export): made again, not skipped.
    old = out / "img00.png"
    other = replace(provenance.read(old), fingerprint="content:" + "0" * 64)
    old.write_bytes(provenance.write(encode_png(load_label_png(old)), other))
    redone = run_batch(local, ModelRef("tiny", 1), [tmp_path / "in"], out,
                       BatchOptions(resume=True))
    assert (redone.ok, redone.skipped, redone.recomputed) == (1, 2, 1)


def test_a_failed_overlay_takes_its_label_map_with_it(local, tmp_path):
    (path,) = write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    (out / "img00_overlay.png").mkdir(parents=True)  # the overlay cannot be put in place
    summary = run_batch(local, TINY_V2, [path], out, BatchOptions(overlay=True))
    assert summary.failed == 1 and "img00" in summary.failures[0].reason
    assert sorted(p.name for p in out.iterdir()) == ["img00_overlay.png"]  # no label map alone


def test_stale_temporary_files_are_removed_and_long_names_work(local, tmp_path):
    long = write_images(tmp_path / "in", 1)[0].rename(tmp_path / "in" / ("n" * 242 + ".png"))
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs: its temporary files are leftovers
    stale = temp_name(out / "x.png").name.split("-")
    stale = out / "-".join([stale[0], stale[1], str(gone.pid), stale[3]])
    stale.write_bytes(b"half a png")
    live = temp_name(out / "y.png")  # this process's: a file in flight, kept
    live.write_bytes(b"in flight")
    summary = run_batch(local, TINY_V2, [long], out, BatchOptions())
    assert (summary.ok, summary.removed_temps) == (1, 1)
    assert not stale.exists() and live.exists()
    assert (out / ("n" * 242 + ".png")).is_file()


def test_special_files_fail_with_one_line_without_blocking(local, tmp_path):
    folder = tmp_path / "in"
    write_images(folder, 1)
    os.mkfifo(folder / "fifo.png")  # opening it for reading would wait for a writer forever
    os.symlink("loop.png", tmp_path / "loop.png")  # named explicitly, as in issue 13
    summary = run_batch(local, TINY_V2, [folder, tmp_path / "loop.png"], tmp_path / "out",
                        BatchOptions(workers=2))
    reasons = {f.input.name: f.reason for f in summary.failures}
    assert (summary.ok, summary.failed, summary.plan_error) == (1, 2, "")
    assert set(reasons) == {"fifo.png", "loop.png"}
    assert "not a regular file (a FIFO)" in reasons["fifo.png"]
    assert "symlink loop" in reasons["loop.png"]


def test_an_unreadable_subfolder_is_reported_in_one_line(local, tmp_path):
    folder = tmp_path / "in"
    write_images(folder, 1)
    (folder / "deep").mkdir()
    too_long = deeper_than_path_max(folder / "deep")
    notes: list[str] = []
    summary = run_batch(local, TINY_V2, [folder], tmp_path / "out", BatchOptions(),
                        note=notes.append)
    assert (summary.ok, summary.failed) == (1, 0)
    [line] = notes  # the folders under it are not reached: one line
    assert summary.unreadable == notes and summary.to_json()["unreadable"] == notes
    assert line == f"cannot read '{too_long}': File name too long — what it holds is left " \
        "out of this run"


def test_pixel_limit_from_the_header_and_a_budget_across_workers(local, tmp_path):
    big = write_images(tmp_path / "big", 1, size=64)[0]
    summary = run_batch(local, TINY_V2, [big], tmp_path / "o1", BatchOptions(max_pixels=4000))
    assert summary.failed == 1
    assert "64x64 is 4,096 pixels, above the limit of 4,000" in summary.failures[0].reason
    assert "--max-pixels" in summary.failures[0].reason

    class Counting:  # the real backend, counting the predictions in flight at once
        description = local.description
        most = now = 0
        lock = threading.Lock()

        def metadata(self, ref):
            return local.metadata(ref)

        def predict(self, *args, **kwargs):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(0.02)
                return local.predict(*args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

    inputs = write_images(tmp_path / "many", 12, size=40)
    counting = Counting()
    run_batch(counting, TINY_V2, inputs, tmp_path / "o2", BatchOptions(workers=4))
    assert counting.most > 1  # four workers do overlap ...
    counting = Counting()
    summary = run_batch(counting, TINY_V2, inputs, tmp_path / "o3",
                        BatchOptions(workers=4, max_pixels=2 * 40 * 40))
    assert summary.ok == 12 and counting.most <= 2  # ... but never beyond the pixel budget


def test_shards_write_each_output_exactly_once(local, tmp_path):
    write_images(tmp_path / "in" / "a", 9)
    write_images(tmp_path / "in" / "b", 7)
    out = tmp_path / "out"
    totals = [run_batch(local, TINY_V2, [tmp_path / "in"], out,
                        BatchOptions(shard=Shard(k, 3))).ok for k in range(3)]
    assert sum(totals) == 16 and all(totals)
    assert len(list(out.rglob("*.png"))) == 16
    again = [run_batch(local, TINY_V2, [tmp_path / "in"], out,
                       BatchOptions(shard=Shard(k, 3), resume=True)) for k in range(3)]
    assert [s.skipped for s in again] == totals

"""run_batch: folder runs on real SavedModels (the stand-in's toy models), in-process and served."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segviewer.core.batch import BatchOptions, BatchProgress, run_batch
from segviewer.core.images import is_valid_png, load_image, load_label_png
from segviewer.core.labels import colorize, palette_from_classes
from segviewer.core.overlay import blend
from segviewer.core.serving import open_backend
from segviewer.core.serving.base import ClassInfo, ModelRef
from segviewer.core.serving.local_backend import LocalBackend
from segviewer.devserver.toy_models import CLASSES, tiny_labels

TINY_V2 = ModelRef("tiny", version=2)


def write_mixed_folder(folder: Path) -> list[Path]:
    """A corrupt PNG, a 16-bit PNG, an RGBA PNG, a grayscale JPEG and a portrait EXIF JPEG (in a
    subfolder). Returns the four good files."""
    rng = np.random.default_rng(7)
    (folder / "phone").mkdir(parents=True)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    deep = rng.integers(0, 65536, size=(24, 32), dtype=np.uint16)
    Image.frombytes("I;16", (32, 24), deep.astype("<u2").tobytes()).save(folder / "deep16.png")
    rgba = rng.integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    gray = rng.integers(0, 256, size=(18, 26), dtype=np.uint8)
    Image.fromarray(gray, "L").save(folder / "gray.jpg", quality=90)
    landscape = Image.fromarray(rng.integers(0, 256, size=(16, 28, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display -> 28 x 16 portrait
    landscape.save(folder / "phone" / "portrait.jpg", exif=exif, quality=90)
    return [folder / "deep16.png", folder / "rgba.png", folder / "gray.jpg",
            folder / "phone" / "portrait.jpg"]


@pytest.fixture
def local(serving_models) -> LocalBackend:
    return LocalBackend(serving_models)


def test_mixed_folder_four_outputs_and_one_named_failure(local, tmp_path):
    good = write_mixed_folder(tmp_path / "in")
    inputs = sorted((tmp_path / "in").rglob("*.*"))
    events: list[BatchProgress] = []
    summary = run_batch(local, TINY_V2, inputs, tmp_path / "out", BatchOptions(workers=2),
                        events.append)
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
    assert summary.cancelled and summary.not_run > 0
    # Inputs stream in: only those listed before the cancel count, and the listing says so.
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
        backend = open_backend(spec, models=[model])
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

    backend = GrpcBackend(server.grpc_address, models=["tiny"], retries=0)
    try:
        summary = run_batch(backend, ModelRef("tiny"), inputs, tmp_path / "out",
                            BatchOptions(workers=2), progress)
    finally:
        backend.close()
    assert summary.ok >= 3 and summary.failed >= 8
    assert "cannot reach" in summary.lost_connection
    assert summary.cancelled and summary.ok + summary.failed < 40
    assert summary.to_json()["lost_connection"] == summary.lost_connection

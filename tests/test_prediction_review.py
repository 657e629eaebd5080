"""Reviews from precomputed predictions (label PNGs with their provenance, as segviewer-predict
writes them) and spot-check samples: the numbers equal running the models, a stray PNG from
another model is refused, and a seeded sample is reproducible and meets its per-class minimum."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from review_data import (
    CLASSES,
    A,
    B,
    review_images,
    rule_a,
    rule_b,
    save_prediction,
    write_predictions,
    write_review_set,
)

from segviewer.core import provenance
from segviewer.core.cli import main as predict_main
from segviewer.core.fingerprint import Fingerprint
from segviewer.core.labels import palette_from_classes
from segviewer.core.prediction_source import PredictionFolder, PredictionFolderError
from segviewer.core.review import ReviewOptions, SessionVerdicts, Source, Verdict, run_review
from segviewer.core.review_cli import main as review_main
from segviewer.core.review_store import ReviewStore
from segviewer.core.sampling import SampleError, SampleSpec, draw_sample
from segviewer.core.serving.base import ClassInfo
from segviewer.core.serving.local_backend import LocalBackend


@pytest.fixture
def predicted(review_models, tmp_path):
    """(images, gt, A's predictions, B's predictions, the in-process session to compare with)."""
    images_dir, gt = write_review_set(tmp_path / "set")
    images = sorted(images_dir.glob("*.png"))
    local = LocalBackend(review_models)
    ran = run_review(Source(local, A), Source(local, B), images, ReviewOptions(gt_dir=gt))
    arrays = review_images()
    pred_a = write_predictions(tmp_path / "pred_a", arrays, rule_a, 1, str(ran.a.fingerprint))
    pred_b = write_predictions(tmp_path / "pred_b", arrays, rule_b, 2, str(ran.b.fingerprint))
    return images, gt, pred_a, pred_b, ran


def test_prediction_folders_score_as_running_the_models(predicted, tmp_path):
    images, gt, pred_a, pred_b, ran = predicted
    folder_a = PredictionFolder(pred_a)
    assert provenance.read(pred_a / "left.png") == folder_a.provenance
    palette = palette_from_classes([ClassInfo(c["id"], c["name"], tuple(c["color"]))
                                    for c in CLASSES], "seg")
    read = run_review(folder_a, PredictionFolder(pred_b), images,
                      ReviewOptions(gt_dir=gt, palette=palette))
    assert read.num_classes is None  # the folders do not say: scored over the ids found
    assert (read.a.fingerprint, read.b.fingerprint) == (ran.a.fingerprint, ran.b.fingerprint)
    assert (read.a.name, read.b.name) == ("seg v1", "seg v2")
    assert read.a.backend == f"predictions {pred_a.resolve()}"
    for mine, theirs in zip(read.results, ran.results, strict=True):
        assert (mine.key, mine.sha256, mine.agreement) == (theirs.key, theirs.sha256,
                                                           theirs.agreement)
        assert mine.miou_delta == theirs.miou_delta
    for side in ("scores_a", "scores_b"):
        mine, theirs = getattr(read.totals(), side), getattr(ran.totals(), side)
        assert (mine.mean_iou, mine.pixel_accuracy) == (theirs.mean_iou, theirs.pixel_accuracy)
    assert [(r.id, r.iou_a, r.iou_b) for r in read.class_rows()] == [
        (r.id, r.iou_a, r.iou_b) for r in ran.class_rows()]
    # A verdict made while running the models is the verdict on the predictions.
    store = ReviewStore(tmp_path / "s.sqlite3")
    SessionVerdicts(store, ran, "ann").set("right.png", Verdict.FAIL)
    assert SessionVerdicts(store, read, "bob").all("right.png")[0].verdict is Verdict.FAIL


def test_segviewer_predict_outputs_are_a_review_source(predicted, review_models,
                                                      tmp_path):
    """The folders segviewer-predict writes record each version's fingerprint (computed as the
    review computes it), so reading them scores and matches verdicts like running the models."""
    images, gt, _, _, ran = predicted
    folders = []
    for side, ref in (("a", A), ("b", B)):
        out = tmp_path / f"predict_{side}"
        assert predict_main([str(images[0].parent), "--saved-model", str(review_models),
                             "--model", ref.name, "--version", str(ref.version), "--out",
                             str(out), "--quiet"]) == 0
        folders.append(PredictionFolder(out))
    assert [f.fingerprint for f in folders] == [ran.a.fingerprint, ran.b.fingerprint]
    assert folders[0].provenance.source == ran.a.backend
    read = run_review(*folders, images, ReviewOptions(gt_dir=gt))
    assert [(r.key, r.agreement, r.miou_delta) for r in read.results] == [
        (r.key, r.agreement, r.miou_delta) for r in ran.results]


def test_a_png_from_another_model_is_never_scored(predicted):
    images, _, pred_a, pred_b, _ = predicted
    other = str(Fingerprint("content", "e" * 64))
    folder_b = PredictionFolder(pred_b)
    (pred_a / "same.png").unlink()
    # Written after the folder was opened: that image fails, the others are compared.
    save_prediction(pred_b / "left.png", np.zeros((4, 10)), "seg", 3, other)
    session = run_review(PredictionFolder(pred_a), folder_b, images)
    errors = {r.key: r.error for r in session.results}
    assert "made by seg v3, not seg v2" in errors["left.png"]
    assert "no prediction for 'same.png'" in errors["same.png"]
    assert errors["right.png"] == ""
    # Found when the folder is opened: the folder is refused, naming the odd PNG.
    with pytest.raises(PredictionFolderError, match=r"mixes models: 1 PNGs \(left.png\) are "
                       "not from seg v2"):
        PredictionFolder(pred_b)


def test_prediction_folder_errors(tmp_path):
    with pytest.raises(PredictionFolderError, match="does not exist"):
        PredictionFolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictionFolderError, match="no label PNGs"):
        PredictionFolder(tmp_path / "empty")
    old = tmp_path / "old"
    old.mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(old / "a.png")
    with pytest.raises(PredictionFolderError, match="does not say which model made it"):
        PredictionFolder(old)
    info = PngInfo()
    info.add_text(provenance.KEY, "{not json")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(old / "a.png", pnginfo=info)
    with pytest.raises(PredictionFolderError, match="does not say which model made it"):
        PredictionFolder(old)
    save_prediction(old / "a.png", np.zeros((2, 2)), "seg", 1, None)  # before fingerprints
    with pytest.raises(PredictionFolderError, match="do not record their model's fingerprint"):
        PredictionFolder(old)


def test_cli_prediction_folders_with_a_stratified_sample(predicted, tmp_path, capsys):
    images, gt, pred_a, pred_b, ran = predicted
    out = tmp_path / "out"
    args = [str(images[0].parent), "--a-predictions", str(pred_a), "--b-predictions",
            str(pred_b), "--gt", str(gt), "--num-classes", "4", "--sample", "2", "--seed", "5",
            "--min-per-class", "1", "--out", str(out)]
    assert review_main(args) == 0
    printed = capsys.readouterr().out
    assert "sample: 2 of 3 images, seed 5, at least 1 per class present (stratified by ground " \
        "truth)" in printed
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "seed 5" in html and ran.a.fingerprint.digest[:16] in html
    assert review_main([*args[:-2], "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "metrics.csv").read_text() == (out / "metrics.csv").read_text()

    assert review_main([str(images[0].parent), "--a-predictions", str(tmp_path / "nope")]) == 2
    assert "--a-predictions: prediction folder" in capsys.readouterr().err
    assert review_main([str(images[0].parent), "--a-predictions", str(pred_a), "--b-predictions",
                        str(pred_b), "--min-per-class", "2"]) == 2
    assert "give --sample N too" in capsys.readouterr().err


def test_samples_are_reproducible_and_meet_the_minimum():
    images = [Path(f"img{i:03d}.png") for i in range(200)]
    # Class 7 is rare (4 images); class 0 everywhere.
    classes = {p: {0, i % 5 + 1} | ({7} if i in (3, 50, 120, 199) else set())
               for i, p in enumerate(images)}
    spec = SampleSpec(20, seed=11, min_per_class=3, classes_from="ground truth")
    first = draw_sample(images, spec, classes.__getitem__)
    assert first.chosen == draw_sample(images, spec, classes.__getitem__).chosen
    assert len(first.chosen) == 20 and first.chosen == sorted(first.chosen)
    assert all(first.per_class[c] >= 3 for c in range(8) if c != 6)
    assert first.describe() == ("20 of 200 images, seed 11, at least 3 per class present "
                                "(stratified by ground truth)")
    other = draw_sample(images, SampleSpec(20, seed=12, min_per_class=3), classes.__getitem__)
    assert other.chosen != first.chosen
    plain = draw_sample(images, SampleSpec(20, seed=11))
    assert len(plain.chosen) == 20 and plain.describe() == "20 of 200 images, seed 11, random"
    assert len(draw_sample(images[:5], SampleSpec(50, seed=1)).chosen) == 5
    with pytest.raises(SampleError, match="more than the sample of 3"):
        draw_sample(images, SampleSpec(3, seed=1, min_per_class=3), classes.__getitem__)
    with pytest.raises(SampleError, match="give ground truth"):
        draw_sample(images, SampleSpec(3, seed=1, min_per_class=1))


def test_cli_store_reviewer_import_and_export(predicted, tmp_path, capsys):
    images, _, pred_a, pred_b, ran = predicted
    store_path = tmp_path / "team.sqlite3"
    legacy = tmp_path / "old.json"
    legacy.write_text(json.dumps({"format": 1, "reviews": {"p": {
        "a": "seg v1 (in-process /old/place)", "b": "seg v2 (in-process /old/place)",
        "verdicts": {"left.png": {"verdict": "needs-look", "note": "check edge"}}}}}))
    base = [str(images[0].parent), "--a-predictions", str(pred_a), "--b-predictions",
            str(pred_b), "--store", str(store_path), "--quiet"]
    assert review_main([*base, "--reviewer", "carol", "--import-verdicts", str(legacy),
                        "--export-verdicts", str(tmp_path / "v.csv")]) == 0
    with (tmp_path / "v.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image"], r["reviewer"], r["verdict"], r["note"]) for r in rows] == [
        ("left.png", "carol", "needs-look", "check edge")]
    assert rows[0]["model_a"] == str(ran.a.fingerprint)
    assert review_main([*base, "--export-verdicts", str(tmp_path / "v.json")]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["verdicts"][0]["reviewer"] == "carol"
    assert review_main([*base, "--export-verdicts", str(tmp_path / "v.txt")]) == 2
    assert ".csv or .json" in capsys.readouterr().err

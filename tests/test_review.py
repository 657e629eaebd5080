"""run_review, ground truth and verdicts on two real SavedModel versions whose differences are known
pixel by pixel, so every metric has an exact expected value.

Model "seg" v1 (A): class = R // 64. v2 (B): class 3 where G >= 128, else R // 64.
Images: left 4x10 (A and B differ on 2 pixels), right 5x8 (differ on 10), same 2x5 (agree).
Ground truth: A's output with known edits for left, all class 1 for right, none for same.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO
from PIL import Image
from review_data import DEMO_MODELS, PALETTE, A, B, review_images, rule_a, rule_b, write_review_set

from segviewer.core.compare import confusion_matrix, gt_from_color, scores
from segviewer.core.overlay import class_counts
from segviewer.core.review import (
    ReviewError,
    ReviewOptions,
    SessionVerdicts,
    SortKey,
    Source,
    Verdict,
    class_rows,
    load_ground_truth,
    match_ground_truth,
    run_review,
)
from segviewer.core.review_store import ReviewStore
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.local_backend import LocalBackend


@pytest.fixture
def local(review_models) -> LocalBackend:
    return LocalBackend(review_models)


@pytest.fixture
def review_set(tmp_path) -> tuple[list[Path], Path]:
    images, gt = write_review_set(tmp_path)
    return sorted(images.glob("*.png")), gt


def test_metrics_are_exact(local, review_set):
    images, gt = review_set
    session = run_review(Source(local, A), Source(local, B), images,
                         ReviewOptions(gt_dir=gt, workers=2))
    by_name = {r.key: r for r in session.results}
    assert [r.key for r in session.results] == ["left.png", "right.png", "same.png"]
    assert session.num_classes == 4 and session.palette.class_name(3) == "sky"
    assert (session.a.version, session.b.version) == (1, 2)
    left, right, same = by_name["left.png"], by_name["right.png"], by_name["same.png"]
    assert (left.agreement, right.agreement, same.agreement) == (95.0, 75.0, 100.0)

    # left: 39 scored pixels; A wrong on 1, B on 3.
    assert left.pixel_accuracy_a == pytest.approx(38 / 39)
    assert left.pixel_accuracy_b == pytest.approx(36 / 39)
    assert left.miou_a == pytest.approx((1 + 0 + 19 / 20) / 3)
    assert left.miou_b == pytest.approx((17 / 19 + 0 + 19 / 22) / 3)
    assert left.scores_b.confusion[0, 3] == 2 and left.scores_b.confusion[2, 3] == 1
    # right: A perfect, B gives class 3 to 10 of 40 road pixels.
    assert (right.pixel_accuracy_a, right.pixel_accuracy_b) == (1.0, 0.75)
    assert (right.miou_a, right.miou_b) == (1.0, 0.375)
    assert right.miou_delta == -0.625
    assert same.gt_path is None and same.scores_a is None and same.miou_delta is None

    totals = session.totals()
    assert (totals.images, totals.failed, totals.with_gt) == (3, 0, 2)
    assert totals.agreement == pytest.approx(100 * 78 / 90)
    assert totals.counts_a == {0: 20, 1: 40, 2: 10, 3: 20}
    assert totals.counts_b == {0: 18, 1: 30, 2: 10, 3: 32}
    assert totals.scores_a.pixel_accuracy == pytest.approx(78 / 79)
    assert totals.scores_b.pixel_accuracy == pytest.approx(66 / 79)


def test_class_rows_and_deltas_match_direct_computation(local, review_set):
    images, gt = review_set
    session = run_review(Source(local, A), Source(local, B), images, ReviewOptions(gt_dir=gt))
    arrays = review_images()
    pred_a = {n: rule_a(x) for n, x in arrays.items()}
    pred_b = {n: rule_b(x) for n, x in arrays.items()}
    gts = {n: load_ground_truth(gt / f"{n}.png") for n in ("left", "right")}
    direct_a = scores(sum(confusion_matrix(gts[n], pred_a[n], 4) for n in gts))
    direct_b = scores(sum(confusion_matrix(gts[n], pred_b[n], 4) for n in gts))
    counts_a = sum((np.bincount(p.ravel(), minlength=4) for p in pred_a.values()),
                   np.zeros(4, np.int64))
    counts_b = sum((np.bincount(p.ravel(), minlength=4) for p in pred_b.values()),
                   np.zeros(4, np.int64))

    rows = session.class_rows()
    assert [r.id for r in rows] == [0, 1, 2, 3]
    assert [r.name for r in rows] == ["background", "road", "tree", "sky"]
    assert rows[3].color == (70, 130, 180)
    for row in rows:
        assert row.share_a == pytest.approx(100 * counts_a[row.id] / 90)
        assert row.share_b == pytest.approx(100 * counts_b[row.id] / 90)
        assert row.share_delta == pytest.approx(100 * (counts_b[row.id] - counts_a[row.id]) / 90)
        assert row.iou_a == pytest.approx(direct_a.per_class_iou[row.id])
        assert row.iou_b == pytest.approx(direct_b.per_class_iou[row.id])
    assert np.allclose(session.iou_deltas(), direct_b.per_class_iou - direct_a.per_class_iou,
                       equal_nan=True)
    right = session.result("right.png")  # one image's legend, as the compare mode shows it
    legend = class_rows(session.palette, right.counts_a, right.counts_b, right.scores_a,
                        right.scores_b)
    assert [(r.id, r.name, r.share_a, r.share_b, r.iou_a, r.iou_b) for r in legend] == [
        (1, "road", 100.0, 75.0, 1.0, 0.75), (3, "sky", 0.0, 25.0, None, 0.0)]
    for result in session.results:
        name = result.path.stem
        assert np.array_equal(result.labels_a, pred_a[name])
        assert np.array_equal(result.labels_b, pred_b[name])
        assert result.counts_b == class_counts(pred_b[name])


def test_review_queue_orders_worst_first(local, review_set):
    images, gt = review_set
    session = run_review(Source(local, A), Source(local, B), images, ReviewOptions(gt_dir=gt))

    def keys(key: str) -> list[str]:
        return [r.key for r in session.sorted(key)]

    assert keys(SortKey.AGREEMENT) == ["right.png", "left.png", "same.png"]
    assert keys(SortKey.MIOU_A) == ["left.png", "right.png", "same.png"]
    assert keys(SortKey.MIOU_B) == ["right.png", "left.png", "same.png"]
    assert keys("miou-drop") == ["right.png", "left.png", "same.png"]  # no GT: last
    with pytest.raises(ValueError):
        session.sorted("best")


def test_colour_and_palette_ground_truth(local, review_set, tmp_path):
    images, gray_gt = review_set
    colour_gt = tmp_path / "colour_gt"
    colour_gt.mkdir()
    for name in ("left", "right"):
        ids = load_ground_truth(gray_gt / f"{name}.png")
        rgb = PALETTE.lut(256)[ids]  # 255 (ignored) gets a colour outside the palette
        Image.fromarray(rgb).save(colour_gt / f"{name}.png")
    assert np.array_equal(load_ground_truth(colour_gt / "left.png", PALETTE),
                          gt_from_color(PALETTE.lut(256)[load_ground_truth(gray_gt / "left.png")],
                                        PALETTE))

    gray = run_review(Source(local, A), Source(local, B), images, ReviewOptions(gt_dir=gray_gt))
    colour = run_review(Source(local, A), Source(local, B), images,
                        ReviewOptions(gt_dir=colour_gt, gt_palette=PALETTE))
    for g, c in zip(gray.results, colour.results, strict=True):
        assert (g.miou_a, g.miou_b, g.pixel_accuracy_b) == (c.miou_a, c.miou_b, c.pixel_accuracy_b)

    # Without the palette each colour file is a named per-image failure; the rest still runs.
    unread = run_review(Source(local, A), Source(local, B), images,
                        ReviewOptions(gt_dir=colour_gt))
    assert [r.key for r in unread.failures] == ["left.png", "right.png"]
    assert "colour image" in unread.failures[0].error and "--gt-palette" in unread.failures[0].error
    assert unread.result("same.png").ok

    # A palette ("P") PNG, as PASCAL VOC ships ground truth, gives its indices.
    voc = tmp_path / "voc"
    voc.mkdir()
    img = Image.fromarray(np.ones((5, 8), np.uint8), mode="P")
    img.putpalette(PALETTE.lut(256).ravel().tolist())
    img.save(voc / "right.png")
    assert np.array_equal(load_ground_truth(voc / "right.png"), np.ones((5, 8), np.uint8))


def test_bad_inputs_fail_per_image_with_one_line(local, review_set, tmp_path):
    images, gt = review_set
    (images[0].parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    Image.fromarray(np.ones((3, 3), np.uint8)).save(gt / "same.png")  # wrong size
    session = run_review(Source(local, A), Source(local, B),
                         sorted(images[0].parent.glob("*.png")), ReviewOptions(gt_dir=gt))
    errors = {r.key: r.error for r in session.failures}
    assert set(errors) == {"broken.png", "same.png"}
    assert "broken.png" in errors["broken.png"] and "\n" not in errors["broken.png"]
    assert "3x3" in errors["same.png"] and "5x2" in errors["same.png"]
    assert session.totals().failed == 2 and session.totals().images == 2

    # A model failing on every image: each image names the side (both are "seg").
    wrong = run_review(Source(local, A), Source(local, B, signature="nope"), images)
    assert len(wrong.failures) == 3
    assert all(r.error.startswith("model B (seg v2): ") and "nope" in r.error
               for r in wrong.failures)

    with pytest.raises(ReviewError, match="does not exist"):
        run_review(Source(local, A), Source(local, B), images,
                   ReviewOptions(gt_dir=tmp_path / "missing"))
    (gt / "nested").mkdir()
    Image.fromarray(np.ones((5, 8), np.uint8)).save(gt / "nested" / "right.png")
    with pytest.raises(ReviewError, match="ambiguous"):
        match_ground_truth(images, gt)


def test_progress_on_result_and_cancel(local, review_set):
    images, _ = review_set
    events: list[tuple[int, int]] = []
    seen: list[str] = []
    run_review(Source(local, A), Source(local, B), images,
               progress=lambda d, t: events.append((d, t)), on_result=lambda r: seen.append(r.key))
    assert events == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert sorted(seen) == ["left.png", "right.png", "same.png"]

    cancel = threading.Event()

    def stop_after_first(done: int, total: int) -> None:
        if done == 1:
            cancel.set()

    session = run_review(Source(local, A), Source(local, B), images, progress=stop_after_first,
                         cancel=cancel)
    assert session.cancelled and 1 <= len(session.results) < 3


def test_grpc_server_against_local_savedmodel(review_models, start_tf_serving, local,
                                              review_set):
    from segviewer.core.serving.connection import ConnectionSpec

    images, gt = review_set
    server = start_tf_serving(review_models, versions={"seg": [1, 2]})
    remote = ConnectionSpec.parse(server.grpc_address, models=("seg",)).open()
    try:
        mixed = run_review(Source(remote, A), Source(local, B), images,
                           ReviewOptions(gt_dir=gt, workers=3))
    finally:
        remote.close()
    assert mixed.a.backend.startswith("gRPC") and mixed.b.backend.startswith("in-process")
    assert [r.agreement for r in mixed.results] == [95.0, 75.0, 100.0]
    assert [r.miou_delta for r in mixed.results][1] == -0.625


def test_verdicts_kept_by_content_in_the_store_not_the_image_folder(local, review_set, tmp_path):
    images, _ = review_set
    session = run_review(Source(local, A), Source(local, B), images)
    before = sorted(p.name for p in images[0].parent.iterdir())
    store = ReviewStore(tmp_path / "team.sqlite3")
    mine = SessionVerdicts(store, session, "ann")
    mine.set("right.png", Verdict.FAIL, "sky on the road")
    mine.set("left.png", "pass")
    mine.set("same.png", Verdict.NEEDS_LOOK)
    mine.set("same.png", None)  # cleared
    assert sorted(p.name for p in images[0].parent.iterdir()) == before  # nothing written there

    again = SessionVerdicts(ReviewStore(tmp_path / "team.sqlite3"), session, "ann")
    assert again.get("right.png").verdict is Verdict.FAIL
    assert again.get("right.png").note == "sky on the road"
    assert again.get("left.png").verdict is Verdict.PASS and again.get("same.png") is None
    assert again.counts() == {Verdict.PASS: 1, Verdict.FAIL: 1, Verdict.NEEDS_LOOK: 0,
                              Verdict.FIXED: 0}
    rows = store.rows()
    assert {r.model_a for r in rows} == {str(session.a.fingerprint)}
    assert session.a.fingerprint.kind == "content" and session.a.fingerprint != \
        session.b.fingerprint
    assert {r.image_sha256 for r in rows} == {r.sha256 for r in session.results
                                              if r.key in ("left.png", "right.png")}

    # A second reviewer's verdict on the same image is kept beside the first's.
    bob = SessionVerdicts(store, session, "bob")
    bob.set("left.png", Verdict.FAIL, "left edge")
    again.refresh()
    assert [(e.reviewer, e.verdict) for e in again.all("left.png")] == [
        ("ann", Verdict.PASS), ("bob", Verdict.FAIL)]
    assert again.get("left.png").verdict is Verdict.PASS  # ann's own
    assert again.counts()[Verdict.FAIL] == 2  # consensus: fail stands over pass
    assert again.reviewers == ["ann", "bob"]

    # The same images copied elsewhere are the same images; the swapped pair is another review.
    copies = tmp_path / "copies"
    copies.mkdir()
    for path in images:
        (copies / path.name).write_bytes(path.read_bytes())
    moved = run_review(Source(local, A), Source(local, B), sorted(copies.glob("*.png")))
    assert SessionVerdicts(store, moved, "ann").get("right.png").verdict is Verdict.FAIL
    swapped = run_review(Source(local, B), Source(local, A), images)
    assert SessionVerdicts(store, swapped, "ann").verdicts == {}

    with pytest.raises(ValueError):
        again.set("left.png", "maybe")
    with pytest.raises(ReviewError, match="not compared"):
        again.set("elsewhere.png", Verdict.PASS)


@pytest.mark.slow
@pytest.mark.skipif(not all((DEMO_MODELS / v / "saved_model.pb").is_file() for v in "12"),
                    reason="the demo models (resources/demo/models/pascal/1, 2) are not exported")
def test_demo_pascal_single_scale_vs_multi_scale(tmp_path):
    """The demo PASCAL model v1 (single scale) against v2 (multi-scale + flip) on two photos; the
    ground truth is v1's own answer, so A scores 100 % and B's accuracy is the agreement."""
    photos = [DEMO / "images" / "astronaut.png", DEMO / "images" / "chelsea.png"]
    local = LocalBackend(DEMO_MODELS)
    v1, v2 = ModelRef("pascal", version=1), ModelRef("pascal", version=2)
    gt = tmp_path / "gt"
    gt.mkdir()
    direct = {}
    for photo in photos:
        image = np.asarray(Image.open(photo).convert("RGB"))
        a, b = local.predict(image, v1).labels, local.predict(image, v2).labels
        direct[photo.name] = (a, b)
        Image.fromarray(a.astype(np.uint8)).save(gt / photo.name)
    # Two images in flight: the multi-scale v2 must be safe to run from two threads at once.
    session = run_review(Source(local, v1), Source(local, v2), photos,
                         ReviewOptions(gt_dir=gt, workers=2))
    assert [r.error for r in session.failures] == [] and session.num_classes == 21
    for result in session.results:
        a, b = direct[result.key]
        assert np.array_equal(result.labels_a, a) and np.array_equal(result.labels_b, b)
        assert result.agreement == pytest.approx(100 * np.mean(a == b))
        assert (result.miou_a, result.pixel_accuracy_a) == (1.0, 1.0)
        assert result.pixel_accuracy_b == pytest.approx(result.agreement / 100)
    rows = {r.name: r for r in session.class_rows()}
    assert rows["person"].share_a > 5 and rows["cat"].share_b > 5  # astronaut, chelsea
    assert 50 < session.totals().agreement < 100

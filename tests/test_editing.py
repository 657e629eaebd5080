"""The edit operations against plain numpy: brush capsules without gaps, flood fill, polygons,
compact undo records, and saving ground truth with its provenance."""

from __future__ import annotations

import json
import os
from collections import deque

import numpy as np
import pytest
from PIL import Image

from segviewer.core.editing import (
    DEFAULT_IGNORE_LABEL,
    EditSession,
    Rect,
    flood_fill,
    polygon_fill,
    segment_mask,
    stroke,
)
from segviewer.core.ground_truth import (
    PROVENANCE_KEY,
    GroundTruthError,
    Provenance,
    fixed_note,
    fixed_verdict,
    ground_truth_path,
    read_provenance,
    rescore,
    save_ground_truth,
)
from segviewer.core.images import load_label_png
from segviewer.core.review import ImageResult, match_ground_truth


def capsule_reference(shape, p0, p1, radius):
    """Every pixel centre within `radius` of the segment, by brute force over the image."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    a, b = np.array(p0, float), np.array(p1, float)
    d = b - a
    t = np.zeros_like(xs) if not d.any() else np.clip(
        ((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / (d @ d), 0, 1)
    return (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2 <= radius**2 + 1e-6


def flood_reference(labels, x, y):
    """4-connected region by breadth-first search, pixel by pixel."""
    target, seen = labels[y, x], np.zeros(labels.shape, bool)
    queue = deque([(y, x)])
    seen[y, x] = True
    while queue:
        cy, cx = queue.popleft()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < labels.shape[0] and 0 <= nx < labels.shape[1] and not seen[ny, nx] \
                    and labels[ny, nx] == target:
                seen[ny, nx] = True
                queue.append((ny, nx))
    return seen


@pytest.mark.parametrize("p0, p1, radius", [((3.2, 4.7), (40.9, 27.1), 3.0),
                                            ((10.5, 10.5), (10.5, 10.5), 4.5),
                                            ((0.0, 30.0), (50.0, 2.0), 0.5),
                                            ((-5.0, -5.0), (12.0, 8.0), 6.0)])
def test_segment_mask_is_the_capsule(p0, p1, radius):
    shape = (40, 60)
    rect, mask = segment_mask(p0, p1, radius, shape)
    full = np.zeros(shape, bool)
    full[rect.slices] = mask
    np.testing.assert_array_equal(full, capsule_reference(shape, p0, p1, radius))


def test_a_fast_stroke_leaves_no_gap_and_undo_restores_every_pixel():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, (80, 120)).astype(np.uint8)
    before = labels.copy()
    points = [(5.0, 5.0), (100.0, 70.0), (110.0, 10.0)]  # far apart, as a quick flick gives
    change = stroke(labels, points, 1.0, 9)
    expected = capsule_reference(labels.shape, points[0], points[1], 1.0) | capsule_reference(
        labels.shape, points[1], points[2], 1.0)
    assert np.array_equal(labels == 9, expected)  # 9 was nowhere before
    from scipy import ndimage
    assert ndimage.label(labels == 9)[1] == 1  # one connected line
    # The record holds the changed pixels only, in the stroke's box.
    assert change.pixels == int(expected.sum())
    assert change.nbytes == change.pixels * (4 + 1)
    ys, xs = np.nonzero(expected)  # the box: the brush's reach around the points
    r = change.rect
    assert (r.x0, r.y0) <= (xs.min(), ys.min()) and (r.x1, r.y1) >= (xs.max() + 1, ys.max() + 1)
    assert (r.x0, r.y0, r.x1, r.y1) >= (3, 3, 112, 72) and (r.x1, r.y1) <= (113, 73)
    change.revert(labels)
    np.testing.assert_array_equal(labels, before)
    change.apply(labels)
    assert np.array_equal(labels == 9, expected)


def test_painting_a_pixel_twice_keeps_its_first_value_for_undo():
    labels = np.arange(100, dtype=np.uint8).reshape(10, 10)
    before = labels.copy()
    change = stroke(labels, [(2.5, 2.5), (7.5, 2.5), (2.5, 2.5)], 1.5, 200)
    change.revert(labels)
    np.testing.assert_array_equal(labels, before)


def test_flood_fill_is_the_4_connected_region():
    rng = np.random.default_rng(1)
    labels = (rng.random((60, 70)) < 0.45).astype(np.uint8)
    for x, y in ((0, 0), (35, 30), (69, 59)):
        work = labels.copy()
        region = flood_reference(labels, x, y)
        change = flood_fill(work, x, y, 7)
        assert np.array_equal(work == 7, region)
        assert np.array_equal(work[~region], labels[~region])
        assert change.pixels == int(region.sum())
        ys, xs = np.nonzero(region)
        assert change.rect == Rect(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    # Diagonal neighbours are not connected: a checkerboard fills one pixel.
    board = (np.indices((5, 5)).sum(0) % 2).astype(np.uint8)
    assert flood_fill(board, 2, 2, 3).pixels == 1
    assert flood_fill(board, 2, 2, 3) is None  # already that class


def test_polygon_fill_covers_pixel_centres_inside():
    labels = np.zeros((30, 30), np.uint8)
    # An L shape on pixel edges: centres are never on an edge, so inside is unambiguous.
    change = polygon_fill(labels, [(2, 3), (20, 3), (20, 10), (9, 10), (9, 25), (2, 25)], 4)
    expected = np.zeros_like(labels, bool)
    expected[3:10, 2:20] = True
    expected[10:25, 2:9] = True
    np.testing.assert_array_equal(labels == 4, expected)
    assert change.pixels == int(expected.sum())
    assert polygon_fill(labels, [(1, 1), (5, 5)], 4) is None  # two points enclose nothing
    # Partly outside the image: clipped, not an error.
    labels[:] = 0
    polygon_fill(labels, [(-10, -10), (5, -10), (5, 5), (-10, 5)], 2)
    assert np.array_equal(np.argwhere(labels == 2).max(0), [4, 4])


def test_session_undo_redo_whole_edits_and_never_touches_the_original():
    original = np.zeros((50, 50), np.int64)
    original[20:30, 20:30] = 3
    session = EditSession(original)
    assert session.labels.dtype == np.uint8
    drawing = session.begin_stroke((5.5, 5.5), 2.0, 1)
    drawing.extend((40.5, 5.5))
    session.record(drawing.finish())
    session.fill(25, 25, 2)
    session.polygon([(0, 40), (10, 40), (10, 50), (0, 50)], DEFAULT_IGNORE_LABEL)
    after = session.labels.copy()
    assert session.pick(25, 25) == 2 and session.pick(5, 45) == 255
    assert session.changed_pixels() == int(np.count_nonzero(after != original))
    while session.can_undo:
        session.undo()
    np.testing.assert_array_equal(session.labels, original)
    while session.can_redo:
        session.redo()
    np.testing.assert_array_equal(session.labels, after)
    session.undo()
    session.fill(0, 0, 4)  # a new edit after an undo drops what could be redone
    assert not session.can_redo
    assert original.max() == 3 and original[0, 0] == 0
    # Undo memory is the changed pixels (5 bytes each here), not the image.
    big = EditSession(np.zeros((2000, 2000), np.uint8))
    big.record(big.begin_stroke((100.5, 100.5), 10, 1).finish())
    assert big.history_bytes == 5 * int(np.count_nonzero(big.labels))


def test_session_widens_to_16_bit_for_large_ids():
    session = EditSession(np.zeros((4, 4), np.uint8))
    session.fill(0, 0, 300)
    assert session.labels.dtype == np.uint16 and session.pick(3, 3) == 300
    session.undo()
    assert session.pick(3, 3) == 0
    with pytest.raises(ValueError, match="0-65535"):
        session.fill(0, 0, 70000)


def provenance(image="x.jpg") -> Provenance:
    return Provenance.now(image, "pascal", 1, "/models/pascal", 12, 3)


@pytest.mark.parametrize("high, bits", [(255, 8), (300, 16)])
def test_saved_ground_truth_is_lossless_atomic_and_matched_by_name(tmp_path, high, bits):
    labels = np.zeros((20, 30), np.uint16)
    labels[5:10, 5:10] = high
    labels[0, 0] = 7
    gt_dir = tmp_path / "gt"
    path = save_ground_truth(labels, tmp_path / "photos" / "astronaut.jpg", gt_dir, provenance())
    assert path == gt_dir / "astronaut.png"
    saved = load_label_png(path)
    assert saved.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(saved, labels)
    with Image.open(path) as img:
        assert json.loads(img.text[PROVENANCE_KEY])["model"] == "pascal"
    record = read_provenance(path)
    assert record["version"] == 1 and record["editor"] and record["time"].endswith("+00:00")
    assert [p.name for p in gt_dir.iterdir()] == ["astronaut.png"]  # no temporary left
    assert match_ground_truth([tmp_path / "photos" / "astronaut.jpg"], gt_dir) == {
        tmp_path / "photos" / "astronaut.jpg": path}
    assert fixed_verdict(provenance(), path)["verdict"] == "fixed"
    assert str(path) in fixed_note(provenance(), path)


def test_rescore_without_a_class_count_uses_the_ids_present(tmp_path):
    """Prediction-folder reviews know no class count: a correction is still scored at once."""
    from segviewer.core.compare import confusion_matrix, scores

    labels_a = np.array([[0, 1], [2, 2]], np.uint8)
    labels_b = np.array([[0, 1], [1, 3]], np.uint8)
    gt = np.array([[0, 1], [2, 255]], np.uint8)  # the eraser's ignore id is left out
    result = ImageResult(tmp_path / "x.png", "x.png", labels_a=labels_a, labels_b=labels_b)
    rescore(result, tmp_path / "gt" / "x.png", gt, None, 255)
    assert result.gt_path == tmp_path / "gt" / "x.png"
    for got, labels in ((result.scores_a, labels_a), (result.scores_b, labels_b)):
        want = scores(confusion_matrix(gt, labels, 4, 255))  # ids 0-3
        np.testing.assert_array_equal(got.confusion, want.confusion)
    assert result.miou_a == 1.0 and result.miou_b < 1.0


def test_existing_ground_truth_in_a_subfolder_is_replaced_not_duplicated(tmp_path):
    (tmp_path / "gt" / "val").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "gt" / "val" / "cat.png")
    path = save_ground_truth(np.ones((4, 4), np.uint8), "cat.jpg", tmp_path / "gt", provenance())
    assert path == tmp_path / "gt" / "val" / "cat.png"
    assert load_label_png(path).min() == 1
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "gt" / "dog.jpg")
    with pytest.raises(GroundTruthError, match=r"dog\.jpg' is already the ground truth"):
        ground_truth_path("dog.png", tmp_path / "gt")


def test_a_failed_save_says_why_in_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "gt" / "astronaut.png").mkdir(parents=True)  # fails for root too
    with pytest.raises(GroundTruthError) as info:
        save_ground_truth(np.zeros((4, 4), np.uint8), "astronaut.jpg", tmp_path / "gt",
                          provenance())
    message = str(info.value)
    assert "\n" not in message and "astronaut.png" in message and "pick a folder" in message
    assert os.listdir(tmp_path / "gt") == ["astronaut.png"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(GroundTruthError, match="it is a file, not a folder"):
        save_ground_truth(np.zeros((4, 4), np.uint8), "a.jpg", tmp_path / "file", provenance())

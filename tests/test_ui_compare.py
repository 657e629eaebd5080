"""Compare mode on a real event loop with two real SavedModel versions whose differences are
known pixel by pixel (test_review's "seg" models: v2 says class 3 wherever green >= 128).

Every number the window shows is checked against one computed here with numpy; verdicts are set
with the keyboard, survive a restart of the window, and reach the report's CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel
from review_data import (
    PALETTE,
    review_images,
    rule_a,
    rule_b,
    write_review_set,
)

from segviewer.core.review import LEGACY_VERDICTS_FILE, SortKey, Verdict
from segviewer.core.review_store import ReviewStore, default_store_path
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.canvas import array_from_qimage
from segviewer.ui.compare_window import CompareMode, CompareWindow
from segviewer.ui.dialogs.compare_sources import CompareChoice, CompareSourcesDialog, SourceChoice

WAIT_MS = 120_000  # the first SavedModel load imports TensorFlow
MAGENTA = (255, 0, 255)
DEMO_MODELS = DEMO / "models" / "pascal"


@pytest.fixture
def seg_models(review_models) -> Path:
    return review_models / "seg"


@pytest.fixture
def review_set(tmp_path) -> tuple[list[Path], Path]:
    images, gt = write_review_set(tmp_path)
    return sorted(images.glob("*.png")), gt


def open_compare(qtbot, choice: CompareChoice, paths: list[Path]) -> CompareWindow:
    window = CompareWindow(choice, paths)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.session is not None and window.idle, timeout=WAIT_MS)
    assert not window.errors
    return window


def shown_pixels(window: CompareWindow) -> np.ndarray:
    """The photo layer of the left canvas (in disagreement mode: the diff map), as RGB."""
    return array_from_qimage(window.canvas_a._image_item.pixmap().toImage())


def test_toy_versions_numbers_verdicts_restart_and_report(qtbot, seg_models, review_set,
                                                          tmp_path):
    paths, gt = review_set
    spec = ConnectionSpec("local", str(seg_models))
    choice = CompareChoice(SourceChoice(spec, version=1), SourceChoice(spec, version=2), str(gt))
    window = open_compare(qtbot, choice, paths)
    session = window.session
    assert (session.a.version, session.b.version) == (1, 2)

    # Worst first by mIoU drop (right: -62.5 points, left: smaller, same: no ground truth).
    assert window.review.sort_key is SortKey.MIOU_DROP
    assert window.review.keys() == ["right.png", "left.png", "same.png"]
    assert window.review.current_key == "right.png"  # nobody chose one: the worst is shown
    window.review.set_sort_key(SortKey.AGREEMENT)
    assert window.review.keys() == ["right.png", "left.png", "same.png"]

    arrays = review_images()
    for key in ("right.png", "left.png"):
        window.review.select(key)
        qtbot.waitUntil(lambda k=key: window.views is not None and window.views.key == k)
        a, b = rule_a(arrays[key[:-4]]), rule_b(arrays[key[:-4]])
        qtbot.keyClick(window, Qt.Key.Key_D)
        assert window.mode is CompareMode.DIFF and not window.canvas_b.isVisible()
        diff = np.all(shown_pixels(window) == MAGENTA, axis=2)
        np.testing.assert_array_equal(diff, a != b)
        changed = int(np.count_nonzero(a != b))
        assert f"{changed} of {a.size} pixels differ" in window.caption_a.text()
        assert f"agreement {100 * np.mean(a == b):.2f} %" in window.caption_a.text()
        # The class table: shares of A and B and their delta, per class, as computed here, for
        # the classes either model predicts or the ground truth holds.
        table = window.class_table()
        truth = np.asarray(Image.open(gt / key))
        ids = sorted({*np.unique(a), *np.unique(b), *np.unique(truth[truth != 255])})
        assert sorted(table) == ids
        for class_id in ids:
            share_a, share_b = 100 * np.mean(a == class_id), 100 * np.mean(b == class_id)
            assert table[class_id][:3] == [f"{share_a:.2f}", f"{share_b:.2f}",
                                           f"{share_b - share_a:+.2f}"]
    # right.png's ground truth is all class 1: A is perfect, B gives 10 of 40 pixels to class 3.
    window.review.select("right.png")
    qtbot.waitUntil(lambda: window.views is not None and window.views.key == "right.png")
    table = window.class_table()
    assert table[1][3:] == ["100.00", "75.00", "-25.00"]
    assert table[3][3:] == ["–", "0.00", "–"]
    assert "mIoU A 100.00 % · B 37.50 % (<b>-62.50</b>)" in window.summary.text()
    assert window.confusion.ids == [1, 3]
    window.scope.setCurrentIndex(window.scope.findData("all"))  # numbers over the whole set
    assert f"<b>all 3 images</b> &nbsp; agreement <b>{100 * 78 / 90:.2f} %</b>" in \
        window.summary.text()
    assert window.class_table()[3][:3] == [f"{100 * 20 / 90:.2f}", f"{100 * 32 / 90:.2f}",
                                           f"{100 * 12 / 90:+.2f}"]
    window.scope.setCurrentIndex(0)

    # Swipe: A left of the divider, B right of it (a white line between), moved with [ and ].
    window.review.select("left.png")
    qtbot.waitUntil(lambda: window.views is not None and window.views.key == "left.png")
    a, b = rule_a(arrays["left"]), rule_b(arrays["left"])
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert window.mode is CompareMode.SWIPE and window.swipe.value() == 50
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)  # divider at 45 %: x = 4 of 10
    labels = array_from_qimage(window.canvas_a._label_item.pixmap().toImage())
    colours = PALETTE.lut(4)
    np.testing.assert_array_equal(labels[:, :3], colours[a[:, :3]])
    assert np.all(labels[:, 3:5] == 255)
    np.testing.assert_array_equal(labels[:, 5:], colours[b[:, 5:]])

    # Flip: Space switches the one canvas between A and B; S goes back to side by side.
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.mode is CompareMode.FLIP and window.caption_a.text().startswith("A")
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.showing_b and window.caption_a.text().startswith("B")
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert window.canvas_b.isVisible()

    # Verdicts with keys 1-3 (and a note), saved at once in the store, not the image folder.
    before = sorted(p.name for p in paths[0].parent.iterdir())
    window.review.select("right.png")
    window.review.note.setText("sky leaks into the road")
    qtbot.keyClick(window, Qt.Key.Key_2)
    window.review.select("left.png")
    qtbot.keyClick(window, Qt.Key.Key_1)
    window.review.select("same.png")
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert sorted(p.name for p in paths[0].parent.iterdir()) == before
    assert not (paths[0].parent / LEGACY_VERDICTS_FILE).exists()
    me = window.review.store.reviewer
    assert len(ReviewStore(default_store_path()).rows()) == 3
    window.close()

    again = open_compare(qtbot, choice, paths)
    assert again.review.sort_key is SortKey.AGREEMENT  # remembered
    assert [again.review.verdict(k) for k in ("right.png", "left.png", "same.png")] == [
        Verdict.FAIL, Verdict.PASS, Verdict.NEEDS_LOOK]
    again.review.select("right.png")
    assert again.review.note.text() == "sky leaks into the road"
    assert "you: Fail — sky leaks into the road" in again.review.queue.currentItem().text()

    job = again.write_report(tmp_path / "report")
    qtbot.waitUntil(lambda: again.report_paths is not None, timeout=WAIT_MS)
    assert job is not None and again.report_paths[0].read_text().startswith("<!DOCTYPE html>")
    with open(again.report_paths[1], newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert rows["right.png"]["verdict"] == "fail"
    assert rows["right.png"]["notes"] == f"{me}: sky leaks into the road"
    assert float(rows["right.png"]["agreement_pct"]) == 75.0
    assert float(rows["right.png"]["miou_delta_pct"]) == -62.5
    assert (rows["left.png"]["verdict"], rows["same.png"]["verdict"]) == ("pass", "needs-look")
    again.close()


def test_a_source_that_cannot_open_is_one_line_in_the_window(qtbot, tmp_path, review_set):
    paths, _ = review_set
    missing = ConnectionSpec("local", str(tmp_path / "nothing"))
    window = CompareWindow(CompareChoice(SourceChoice(missing), SourceChoice(missing, version=2)),
                           paths)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.errors) and window.idle, timeout=WAIT_MS)
    assert window.session is None
    assert window.errors[0].startswith("Compare failed: ") and "\n" not in window.errors[0]
    assert window.errors[0] in window.summary.text()


def test_sources_dialog_defaults_validation_and_settings(qtbot, tmp_path, seg_models):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dialog = CompareSourcesDialog(None, settings, "in-process models", "seg", [2, 1])
    qtbot.addWidget(dialog)
    choice = dialog.choice()  # the current connection, oldest version against the newest
    assert choice.a == SourceChoice(None, "seg", 1) and choice.b == SourceChoice(None, "seg")
    dialog.box_b.version.setCurrentText("1")
    with pytest.raises(ValueError, match="A and B are the same"):
        dialog.choice()
    dialog.box_b.version.setCurrentText("two")
    with pytest.raises(ValueError, match=r"Model B.*version 'two'"):
        dialog.choice()
    dialog.box_b.version.setCurrentText("2")
    dialog.box_b.kind.setCurrentIndex(2)  # a local SavedModel folder
    with pytest.raises(ValueError, match=r"Model B.*SavedModel folder"):
        dialog.choice()
    dialog.box_b.folder.setText(str(seg_models))
    dialog.gt_dir.setText(str(tmp_path / "no_gt"))
    with pytest.raises(ValueError, match=r"ground-truth folder .* does not exist"):
        dialog.choice()
    dialog.gt_dir.setText(str(tmp_path))
    dialog.gt_colored.setChecked(True)
    dialog.ignore.setValue(0)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    choice = dialog.choice()
    assert choice.b == SourceChoice(ConnectionSpec("local", str(seg_models)), "seg", 2)
    assert (choice.gt_dir, choice.gt_colored, choice.ignore_label) == (str(tmp_path), True, 0)
    again = CompareSourcesDialog(None, settings)  # no connection: A starts at a folder
    qtbot.addWidget(again)
    assert again.box_a.kind.currentIndex() == 2
    assert not again.box_a.kind.model().item(0).isEnabled()
    again.box_a.kind.setCurrentIndex(1)  # another server, chosen with ConnectDialog
    with pytest.raises(ValueError, match=r"Model A .*choose a server"):
        again.choice()
    server = ConnectionSpec("grpc", "localhost:8500", models=("deeplab",))
    again.box_a.set_server(server)
    assert again.box_a.other_label.text() == "gRPC localhost:8500 (deeplab)"
    assert again.box_a.choice() == SourceChoice(server)
    assert (again.gt_dir.text(), again.gt_colored.isChecked(), again.ignore.value()) == (
        str(tmp_path), True, 0)


def iou(gt: np.ndarray, pred: np.ndarray, class_id: int, ignore: int = 255) -> float | None:
    """IoU of one class over the pixels whose ground truth is not `ignore` (None: absent)."""
    valid = gt != ignore
    g, p = (gt == class_id) & valid, (pred == class_id) & valid
    union = np.count_nonzero(g | p)
    return np.count_nonzero(g & p) / union if union else None


def text(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


@pytest.mark.slow
@pytest.mark.skipif(not all((DEMO_MODELS / v / "saved_model.pb").is_file() for v in "12"),
                    reason="the demo models (resources/demo/models/pascal/1, 2) are not exported")
def test_demo_pascal_v1_against_v2_from_the_main_window(qtbot, tmp_path):
    """The demo model's v1 (single scale) against v2 (multi-scale + flip), opened from the main
    window on two half-size demo photos. Ground truth is v1's answer with known edits: a band of
    ignored pixels, and a square relabelled as background."""
    from segviewer.core.serving.local_backend import LocalBackend
    from segviewer.ui.main_window import MainWindow

    photos, gt_dir = tmp_path / "photos", tmp_path / "gt"
    photos.mkdir()
    gt_dir.mkdir()
    local = LocalBackend(DEMO_MODELS)
    direct = {}
    for name in ("astronaut", "chelsea"):
        image = Image.open(DEMO / "images" / f"{name}.png").convert("RGB")
        image = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
        image.save(photos / f"{name}.png")
        rgb = np.asarray(image)
        a = local.predict(rgb, ModelRef("pascal", 1)).labels.astype(np.uint8)
        b = local.predict(rgb, ModelRef("pascal", 2)).labels.astype(np.uint8)
        gt = a.copy()
        h, w = gt.shape
        gt[: h // 10] = 255
        gt[h // 2: h // 2 + 20, w // 2: w // 2 + 20] = 0
        Image.fromarray(gt).save(gt_dir / f"{name}.png")
        direct[f"{name}.png"] = (a, b, gt)
    local.close()

    main = MainWindow()
    qtbot.addWidget(main)
    main.show()
    main.connect_to(ConnectionSpec("local", str(DEMO_MODELS)), version=1)
    main.open_paths([photos])
    qtbot.waitUntil(lambda: main.idle and main.ref is not None and len(main.file_list.paths())
                    == 2, timeout=WAIT_MS)
    assert main.act_compare in main.menuBar().actions()[2].menu().actions()
    choice = CompareChoice(SourceChoice(None, "pascal", 1), SourceChoice(None, "pascal", 2),
                           str(gt_dir))

    def compare() -> CompareWindow:
        window = main.open_compare(choice)
        qtbot.waitUntil(lambda: window.session is not None and window.idle, timeout=300_000)
        assert not window.errors and not window.session.failures
        return window

    window = compare()
    window.resize(1400, 800)
    assert window.session.a.version == 1 and window.session.b.version == 2
    for key, (a, b, gt) in direct.items():
        window.review.select(key)
        qtbot.waitUntil(lambda k=key: window.views is not None and window.views.key == k)
        qtbot.keyClick(window, Qt.Key.Key_D)
        np.testing.assert_array_equal(np.all(shown_pixels(window) == MAGENTA, axis=2), a != b)
        assert f"{np.count_nonzero(a != b)} of {a.size} pixels differ" in window.caption_a.text()
        assert f"agreement {100 * np.mean(a == b):.2f} %" in window.caption_a.text()
        table = window.class_table()
        ids = sorted({*np.unique(a), *np.unique(b), *np.unique(gt[gt != 255])})
        assert sorted(table) == ids and 0 in ids
        for c in ids:
            share_a, share_b = np.mean(a == c), np.mean(b == c)
            iou_a, iou_b = iou(gt, a, c), iou(gt, b, c)
            delta = None if iou_a is None or iou_b is None else iou_b - iou_a
            assert table[c] == [text(share_a), text(share_b), text(share_b - share_a, True),
                                text(iou_a), text(iou_b), text(delta, True)], c
        present = [i for i in ids if iou(gt, a, i) is not None]
        miou_a = np.mean([iou(gt, a, i) for i in present])
        miou_b = np.mean([iou(gt, b, i) for i in present if iou(gt, b, i) is not None])
        assert f"mIoU A {text(miou_a)} % · B {text(miou_b)} %" in window.summary.text()

    # Side by side: zoom and pan one canvas, the other shows the same image point.
    qtbot.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: window.canvas_b.isVisible())
    window.canvas_a.zoom_by(4.0)
    bar = window.canvas_a.horizontalScrollBar()
    bar.setValue(bar.maximum() // 3)
    assert window.canvas_b.transform() == window.canvas_a.transform()

    def centre(canvas):
        return canvas.mapToScene(canvas.viewport().rect().center())

    assert abs(centre(window.canvas_b).x() - centre(window.canvas_a).x()) < 2
    assert abs(centre(window.canvas_b).y() - centre(window.canvas_a).y()) < 2

    # Verdicts by keyboard (a changed mind included), restored in a new window.
    window.review.select("astronaut.png")
    qtbot.keyClick(window, Qt.Key.Key_2)
    qtbot.keyClick(window, Qt.Key.Key_1)
    window.review.select("chelsea.png")
    window.review.note.setText("cat edge")
    qtbot.keyClick(window, Qt.Key.Key_3)
    window.close()
    window = compare()
    assert window.review.verdict("astronaut.png") is Verdict.PASS
    assert window.review.verdict("chelsea.png") is Verdict.NEEDS_LOOK
    window.write_report(tmp_path / "report")
    qtbot.waitUntil(lambda: window.report_paths is not None, timeout=WAIT_MS)
    with open(window.report_paths[1], newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(direct)
    for key, (a, b, _) in direct.items():
        assert float(rows[key]["agreement_pct"]) == pytest.approx(100 * np.mean(a == b),
                                                                  abs=1e-4)
    me = window.review.store.reviewer
    assert (rows["chelsea.png"]["verdict"], rows["chelsea.png"]["notes"]) == ("needs-look",
                                                                             f"{me}: cat edge")
    assert rows["astronaut.png"]["verdict"] == "pass"
    main.close()  # closes the compare window first: it uses the main window's backend
    assert not window.isVisible()


def test_command_line_compare_needs_a_model(capsys):
    from segviewer.ui.app import main

    assert main(["--compare-versions", "1", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "segviewer: error: --compare-versions needs a model: add --server, --rest, "
        "--saved-model or --demo")


def test_colour_coded_ground_truth_and_the_ignore_label(qtbot, seg_models, review_set, tmp_path):
    """Colour-coded ground truth is read through model A's palette; the ignore label chosen in
    the dialog is left out of the scores; unreadable ground truth is a named per-image failure."""
    paths, gray_gt = review_set
    colour_gt = tmp_path / "colour_gt"
    colour_gt.mkdir()
    lut = PALETTE.lut(256)
    for name in ("left", "right"):
        Image.fromarray(lut[np.asarray(Image.open(gray_gt / f"{name}.png"))]).save(
            colour_gt / f"{name}.png")
    spec = ConnectionSpec("local", str(seg_models))
    a, b = SourceChoice(spec, version=1), SourceChoice(spec, version=2)
    window = open_compare(qtbot, CompareChoice(a, b, str(colour_gt), gt_colored=True), paths)
    right = window.session.result("right.png")
    assert (right.miou_a, right.miou_b) == (1.0, 0.375)  # as from the gray ground truth
    window.close()

    # right.png's ground truth is all class 1: ignoring class 1 leaves nothing to score.
    window = open_compare(qtbot, CompareChoice(a, b, str(gray_gt), ignore_label=1), paths)
    assert window.session.result("right.png").scores_a.confusion.sum() == 0
    window.close()

    window = CompareWindow(CompareChoice(a, b, str(colour_gt)), paths)  # colours read as ids
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.session is not None and window.idle, timeout=WAIT_MS)
    assert [r.key for r in window.session.failures] == ["left.png", "right.png"]
    assert "2 failed: left.png: " in window.statusBar().currentMessage()
    assert window.review.keys() == ["same.png"]


@pytest.mark.skipif(not (DEMO_MODELS / "2").is_dir(),
                    reason="the demo SavedModels are exported by the exporter")
def test_the_image_chosen_while_comparing_stays_chosen_and_panes_never_show_stale_labels(
        qtbot):
    """Issue: the queue jumped to another image when the comparison finished."""
    paths = sorted((DEMO / "images").glob("*.png"))
    choice = CompareChoice(SourceChoice(ConnectionSpec("local", str(DEMO_MODELS)), "pascal", 1),
                           SourceChoice(ConnectionSpec("local", str(DEMO_MODELS)), "pascal", 2))
    window = CompareWindow(choice, paths)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    qtbot.waitUntil(lambda: len(window.review.keys()) >= 2 or window.session is not None,
                    timeout=WAIT_MS)
    assert window.session is None, "the comparison ended before an image could be chosen"
    # Of two images in, the one A and B agree on more cannot be the worst of the four.
    arrived = [r for r in window._arrived if r.ok][:2]
    chosen = max(arrived, key=lambda r: r.agreement).key
    other = min(arrived, key=lambda r: r.agreement).key
    window.review.select(other)
    qtbot.waitUntil(lambda: window.views is not None and window.views.key == other,
                    timeout=WAIT_MS)
    assert window.caption_a.text().startswith("A  ·  pascal v1  ·  ")  # named before the end
    assert window.caption_b.text().startswith("B  ·  pascal v2  ·  ")

    window.review.select(chosen)
    # At once: the other image's pictures are gone, the captions say what is coming.
    assert window.views is None
    assert not window.canvas_a.has_labels and not window.canvas_b.has_labels
    assert window.canvas_a.image_shape is None
    assert window.caption_a.text() == f"{chosen}  ·  drawing…"
    qtbot.waitUntil(lambda: window.session is not None and window.idle, timeout=300_000)
    assert window.review.current_key == chosen
    assert window.review.keys()[0] != chosen  # the queue is sorted worst first
    qtbot.waitUntil(lambda: window.views is not None and window.views.key == chosen)
    assert window.canvas_a.has_labels and window.canvas_b.has_labels
    window.close()


def test_window_polish_menus_sliders_captions_and_confusion_pane(qtbot, seg_models, review_set):
    paths, gt = review_set
    spec = ConnectionSpec("local", str(seg_models))
    window = open_compare(qtbot, CompareChoice(SourceChoice(spec, version=1),
                                               SourceChoice(spec, version=2)), paths)
    menus = {m.text(): [a.text() for a in m.menu().actions() if a.text()]
             for m in window.menuBar().actions()}
    assert menus["&File"] == ["Write &Report…", "&Close"]
    assert menus["&Help"] == ["&Keyboard Shortcuts"]
    # No ground truth: no confusion pane, and the View menu cannot bring an empty one.
    assert not window.confusion_dock.isVisible()
    assert not window.confusion_dock.toggleViewAction().isEnabled()
    # Sliders say what they move and where they are.
    labels = [w.text() for w in window.findChildren(QLabel)]
    assert " Opacity " in labels and " Swipe " in labels
    window.swipe.setValue(30)
    assert "30 %" in [w.text() for w in window.findChildren(QLabel)]
    window.opacity.setValue(80)
    assert window.canvas_a.opacity == window.canvas_b.opacity == pytest.approx(0.8)
    # A caption too long for its pane is cut in the middle; the tooltip keeps all of it.
    window.resize(800, 600)
    caption = window.caption_a
    qtbot.waitUntil(lambda: caption.fontMetrics().horizontalAdvance(caption.text())
                    > caption.contentsRect().width())
    assert caption.toolTip() == caption.text() and caption.text().startswith("A  ·  seg v1")
    shown = caption.fontMetrics().elidedText(caption.text(), Qt.TextElideMode.ElideMiddle,
                                             caption.contentsRect().width())
    assert shown.startswith("A ") and "…" in shown and shown.endswith(caption.text()[-2:])
    window.close()

    with_truth = open_compare(qtbot, CompareChoice(SourceChoice(spec, version=1),
                                                   SourceChoice(spec, version=2), str(gt)),
                              paths)
    qtbot.waitUntil(lambda: with_truth.confusion_dock.isVisible())
    assert with_truth.confusion_dock.toggleViewAction().isEnabled()

"""Edit mode driven as a user would: the demo model (v1, in-process) segments the astronaut, real
mouse events paint on the canvas, QUndoStack undoes and redoes whole edits, and the saved
ground-truth PNG is read back pixel by pixel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from segviewer.core.editing import flood_fill, polygon_fill, stroke
from segviewer.core.ground_truth import read_provenance
from segviewer.core.images import load_label_png
from segviewer.core.review_store import ReviewStore, Verdict, file_sha256
from segviewer.paths import demo_dir, demo_models_dir
from segviewer.ui.edit_mode import Tool
from segviewer.ui.main_window import MainWindow
from segviewer.ui.review_store_menu import REVIEWER_SETTING

pytestmark = pytest.mark.skipif(not (demo_models_dir() / "pascal" / "1").is_dir(),
                                reason="the demo SavedModels are exported by the exporter")

WAIT_MS = 120_000  # first use of a SavedModel imports TensorFlow
PERSON, CAT, DOG, BOAT = 15, 8, 12, 4


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(demo_dir() / "images" / "astronaut.png", folder)
    return folder


def open_window(qtbot, photos: Path, settings: QSettings | None = None) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.resize(1100, 760)
    window.show()
    qtbot.waitExposed(window)
    window.open_demo(images=False)
    window.open_paths([photos / "astronaut.png"])
    qtbot.waitUntil(lambda: window.prediction is not None and window.idle, timeout=WAIT_MS)
    return window


def model_labels(window: MainWindow) -> np.ndarray:
    return window.predictor.cached(window.current_path).labels


def viewport_point(window: MainWindow, x: float, y: float) -> QPoint:
    return window.canvas.image_pos_to_viewport(int(x), int(y)).toPoint()


def image_point(window: MainWindow, point: QPoint) -> tuple[float, float]:
    """Where the canvas puts a viewport position in the image (what the editor gets)."""
    scene = window.canvas.mapToScene(point)
    return float(scene.x()), float(scene.y())


def drag(qtbot, window: MainWindow, points: list[QPoint]) -> None:
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=points[0])
    for point in points[1:]:
        qtbot.mouseMove(viewport, point)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=points[-1])


def close_answering(qtbot, window, button: QMessageBox.StandardButton) -> list[str]:
    """Close `window`, answering the unsaved-edits question (if one comes) with `button`;
    the questions asked."""
    asked: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            box.button(button).click()
        elif window.isVisible():
            QTimer.singleShot(10, answer)

    QTimer.singleShot(0, answer)
    window.close()
    return asked


def edit_astronaut(qtbot, window: MainWindow) -> np.ndarray:
    """A stroke, a fill and a polygon through the mouse; returns what core says they paint."""
    editing = window.editing
    expected = model_labels(window).astype(np.uint8)
    assert expected[250, 250] == PERSON and expected[10, 10] == 0

    editing.act_edit.trigger()
    assert editing.editor.active and editing.dock.isVisible()
    editing.act_tool[Tool.BRUSH].trigger()
    editing.panel.brush_size.setValue(9)
    editing.set_class(CAT)
    line = [viewport_point(window, x, y) for x, y in ((60, 400), (140, 330), (260, 300),
                                                        (420, 420))]
    drag(qtbot, window, line)
    stroke(expected, [image_point(window, p) for p in line], 4.5, CAT)

    editing.act_tool[Tool.FILL].trigger()
    editing.set_class(DOG)
    seed = viewport_point(window, 250, 250)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=seed)
    x, y = (int(np.floor(v)) for v in image_point(window, seed))
    flood_fill(expected, x, y, DOG)

    editing.act_tool[Tool.POLYGON].trigger()
    editing.set_class(BOAT)
    corners = [viewport_point(window, x, y) for x, y in ((30, 30), (200, 50), (120, 180))]
    for corner in corners:
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=corner)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    polygon_fill(expected, [image_point(window, p) for p in corners], BOAT)
    return expected


def test_stroke_fill_polygon_undo_redo_and_save_give_exactly_the_painted_pixels(
        qtbot, photos, tmp_path):
    QSettings().setValue(REVIEWER_SETTING, "ann")
    window = open_window(qtbot, photos)
    editing = window.editing
    before = model_labels(window).copy()
    expected = edit_astronaut(qtbot, window)

    session = editing.current.session
    np.testing.assert_array_equal(session.labels, expected)
    assert editing.current.stack.count() == 3
    np.testing.assert_array_equal(model_labels(window), before)  # the model's result untouched
    # What the window shows and reports is the edited map, as an edit of the model's result.
    assert window.prediction.labels is session.labels
    assert window.state.shown.edited and "edit of pascal v1" in window.windowTitle()
    assert "edit of pascal v1" in window.legend.source_label.text()
    assert window.legend.rows()[0].id in (0, DOG)
    pixmap = window.canvas._label_item.pixmap().toImage()
    boat = window.palette.color(BOAT)
    assert pixmap.pixelColor(100, 60).getRgb()[:3] == boat

    # Undo and redo whole edits, with the keys.
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editing.current.stack.index() == 2
    assert session.pick(100, 60) == before[60, 100]
    assert window.canvas._label_item.pixmap().toImage().pixelColor(100, 60).getRgb()[:3] \
        == window.palette.color(int(before[60, 100]))
    editing.act_undo.trigger()
    editing.act_undo.trigger()
    np.testing.assert_array_equal(session.labels, before)
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                       | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(session.labels, expected)

    gt_dir = tmp_path / "gt"
    editing.set_gt_dir(gt_dir)
    job = editing.save_ground_truth()
    with qtbot.waitSignal(job.done, timeout=WAIT_MS):
        pass
    saved = load_label_png(gt_dir / "astronaut.png")
    assert saved.dtype == np.uint8
    np.testing.assert_array_equal(saved, expected)
    changed = saved != before
    assert changed.sum() == (expected != before).sum() > 1000
    record = read_provenance(gt_dir / "astronaut.png")
    assert (record["model"], record["version"]) == ("pascal", 1)
    assert record["changed_pixels"] == int(changed.sum()) and record["edits"] == 3
    assert record["editor"] == "ann"
    assert editing.current.stack.isClean()
    # A "fixed" verdict in the review store, by the image's content and the model's fingerprint.
    [row] = ReviewStore().rows()
    assert (row.verdict, row.reviewer, row.image_sha256) == (
        Verdict.FIXED, "ann", file_sha256(photos / "astronaut.png"))
    assert row.model_a == str(editing.fingerprints[window.state.identity]) and row.model_b == ""
    assert row.model_a.startswith("content:") and row.label_a == "pascal v1"
    fixed = json.loads(row.provenance)
    assert (fixed["model"], fixed["version"], fixed["editor"], fixed["ground_truth"]) == (
        "pascal", 1, "ann", str(gt_dir / "astronaut.png"))
    assert row.note.startswith("fixed from pascal v1:")

    # Reopening in a new window (same settings: the same ground-truth folder) shows the saved
    # ground truth, not the model's result.
    window.close()
    again = open_window(qtbot, photos, QSettings())
    again.editing.act_edit.trigger()
    np.testing.assert_array_equal(again.prediction.labels, expected)
    assert "ground truth" in again.editing.current.origin
    again.editing.act_edit.trigger()  # leaving edit mode shows the model's result again
    np.testing.assert_array_equal(again.prediction.labels, before)
    assert not again.state.shown.edited and "edit of" not in again.windowTitle()


def test_a_failed_save_keeps_the_edits_and_says_why(qtbot, photos, tmp_path):
    window = open_window(qtbot, photos)
    editing = window.editing
    editing.act_edit.trigger()
    editing.set_class(CAT)
    drag(qtbot, window, [viewport_point(window, 40, 40), viewport_point(window, 300, 60)])
    painted = editing.current.session.labels.copy()
    gt_dir = tmp_path / "gt"
    (gt_dir / "astronaut.png").mkdir(parents=True)  # in the way, for root too
    editing.set_gt_dir(gt_dir)
    job = editing.save_ground_truth()
    with qtbot.waitSignal(job.done, timeout=WAIT_MS):
        pass
    message = window.errors[-1]
    assert message.startswith("Ground truth not saved (edits kept): cannot save ground truth")
    assert "astronaut.png" in message and "\n" not in message
    assert message in window.statusBar().currentMessage()
    np.testing.assert_array_equal(editing.current.session.labels, painted)
    assert not editing.current.stack.isClean() and "not saved" in editing.panel.status.text()
    assert (gt_dir / "astronaut.png").is_dir() and list((gt_dir).iterdir()) == [
        gt_dir / "astronaut.png"]

    # Closing asks; Cancel keeps the window and the edits, Discard closes without saving.
    [question] = close_answering(qtbot, window, QMessageBox.StandardButton.Cancel)
    assert "not saved as ground truth: astronaut.png" in question
    assert window.isVisible()
    np.testing.assert_array_equal(editing.current.session.labels, painted)
    # Save that cannot save: the reason, and the window stays open.
    assert close_answering(qtbot, window, QMessageBox.StandardButton.Save)
    assert window.isVisible() and window.errors[-1].startswith("Ground truth not saved")
    assert close_answering(qtbot, window, QMessageBox.StandardButton.Discard)
    assert not window.isVisible() and list(gt_dir.iterdir()) == [gt_dir / "astronaut.png"]


def test_class_picking_legend_keys_and_right_click(qtbot, photos):
    window = open_window(qtbot, photos)
    editing = window.editing
    editing.act_tool[Tool.BRUSH].trigger()
    assert not editing.act_tool[Tool.BRUSH].isEnabled()  # tools only in edit mode
    editing.act_edit.trigger()
    assert editing.quick_ids[:2] == [0, PERSON]  # most frequent first
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)
    assert editing.editor.value == PERSON
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    assert editing.editor.value == 0
    table = window.legend.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 1).text() == str(PERSON))
    table.cellClicked.emit(row, 2)
    assert editing.editor.value == PERSON and editing.panel.class_box.currentData() == PERSON
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.RightButton,
                     pos=viewport_point(window, 5, 5))
    assert editing.editor.value == 0
    box = editing.panel.class_box  # search by name
    box.setEditText("cat")
    box.activated.emit(box.findText("8 cat"))
    assert editing.editor.value == CAT


def test_compare_window_corrects_a_and_scores_both_models_against_it(qtbot, photos, tmp_path):
    from segviewer.core.compare import confusion_matrix, scores
    from segviewer.core.serving.connection import ConnectionSpec
    from segviewer.ui.compare_window import CompareMode, CompareWindow
    from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice

    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    spec = ConnectionSpec("local", str(demo_models_dir() / "pascal"))
    choice = CompareChoice(SourceChoice(spec, version=1), SourceChoice(spec, version=2),
                           str(gt_dir))
    window = CompareWindow(choice, [photos / "astronaut.png"])
    qtbot.addWidget(window)
    window.resize(1300, 760)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.views is not None and window.idle, timeout=WAIT_MS)
    assert "mIoU" not in window.summary.text()  # no ground truth yet
    editing = window.editing
    assert editing.gt_dir == str(gt_dir)
    window.set_mode(CompareMode.FLIP)
    editing.act_edit.trigger()
    assert window.mode is CompareMode.SIDE and editing.editor.canvas is window.canvas_a
    result = window.session.results[0]
    expected = result.labels_a.copy()
    table = window.classes  # the class table picks the class, as the legend does
    table.cellClicked.emit(next(r for r in range(table.rowCount())
                                if table.item(r, 0).data(Qt.ItemDataRole.UserRole) == PERSON), 0)
    assert editing.editor.value == PERSON
    editing.set_class(CAT)
    canvas = window.canvas_a
    line = [canvas.image_pos_to_viewport(x, y).toPoint() for x, y in ((100, 100), (300, 380))]
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=line[0])
    qtbot.mouseMove(viewport, line[1])
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=line[1])
    points = [(float(p.x()), float(p.y())) for p in map(canvas.mapToScene, line)]
    stroke(expected, points, editing.editor.brush_size / 2, CAT)
    np.testing.assert_array_equal(editing.current.session.labels, expected)
    assert (window.views.rgba_a[250, 200, :3] == window.session.palette.color(CAT)).all() \
        or expected[250, 200] != CAT
    np.testing.assert_array_equal(result.labels_a, window.session.results[0].labels_a)

    job = editing.save_ground_truth()
    with qtbot.waitSignal(job.done, timeout=WAIT_MS):
        pass
    saved = load_label_png(gt_dir / "astronaut.png")
    np.testing.assert_array_equal(saved, expected)
    # Both models scored against the correction at once, as the review computes it.
    want_a = scores(confusion_matrix(saved, result.labels_a, 21, 255)).mean_iou
    want_b = scores(confusion_matrix(saved, result.labels_b, 21, 255)).mean_iou
    assert result.gt_path == gt_dir / "astronaut.png"
    assert f"mIoU A {want_a * 100:.2f} % · B {want_b * 100:.2f} %" in window.summary.text()
    assert want_a < 1.0
    # The "fixed" verdict: in the store for this pair, in the queue, in the report.
    fixed = window.review.store.get("astronaut.png")
    assert fixed.verdict is Verdict.FIXED and fixed.note.startswith("fixed from pascal v1:")
    assert json.loads(fixed.provenance)["ground_truth"] == str(gt_dir / "astronaut.png")
    assert "you: Fixed — fixed from pascal v1" in window.review.verdict_text("astronaut.png")
    from segviewer.core.report import write_report
    html, metrics = write_report(window.session, tmp_path / "report",
                                 window.review.store.verdicts)
    assert "fixed from pascal v1" in html.read_text()
    assert ",fixed," in metrics.read_text()
    # B's pane next: it starts from the ground truth just saved.
    editing.set_side("b")
    assert editing.editor.active and editing.editor.canvas is window.canvas_b
    assert not editing.editors["a"].active and "ground truth" in editing.current.origin
    np.testing.assert_array_equal(editing.current.session.labels, saved)
    qtbot.keyClick(window, Qt.Key.Key_D)  # disagreement view: leaves edit mode, keeps the edits
    assert window.mode is CompareMode.DIFF and not editing.editor.active
    np.testing.assert_array_equal(editing.edits[("astronaut.png", "a")].session.labels, saved)
    window.close()


def test_lasso_and_eraser_and_no_shortcut_taken_twice(qtbot, photos, tmp_path):
    window = open_window(qtbot, photos)
    keys = [k for _, ks in window.shortcuts() for k in ks.split(", ")]
    assert len(keys) == len(set(keys)), sorted(keys)
    editing = window.editing
    editing.act_edit.trigger()
    expected = model_labels(window).astype(np.uint8)
    # Lasso: a press, a freehand drag and the release fill the outline.
    qtbot.keyClick(window.canvas, Qt.Key.Key_V)
    editing.set_class(BOAT)
    outline = [viewport_point(window, x, y) for x, y in
               ((300, 60), (360, 40), (420, 90), (400, 160), (330, 150))]
    drag(qtbot, window, outline)
    polygon_fill(expected, [image_point(window, p) for p in outline], BOAT)
    # Eraser: the "unlabelled" id, 255 unless changed.
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert editing.editor.tool is Tool.ERASER
    line = [viewport_point(window, 20, 480), viewport_point(window, 200, 470)]
    drag(qtbot, window, line)
    stroke(expected, [image_point(window, p) for p in line], 6.0, 255)
    np.testing.assert_array_equal(editing.current.session.labels, expected)
    assert editing.current.stack.count() == 2
    # Ctrl+Z in the middle of a stroke does nothing: the stroke ends as one edit.
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=viewport_point(window, 250, 20))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.mouseMove(viewport, viewport_point(window, 300, 20))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=viewport_point(window, 300, 20))
    assert editing.current.stack.count() == 3
    editing.act_undo.trigger()
    np.testing.assert_array_equal(editing.current.session.labels, expected)
    # The middle button drags the view and paints nothing.
    window.canvas.zoom_by(4)
    bar = window.canvas.horizontalScrollBar()
    start = bar.value()
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    qtbot.mouseMove(viewport, QPoint(200, 300))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(200, 300))
    assert bar.value() == start + 100
    np.testing.assert_array_equal(editing.current.session.labels, expected)
    editing.set_gt_dir(tmp_path / "gt")
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: editing.current.stack.isClean(), timeout=WAIT_MS)
    np.testing.assert_array_equal(load_label_png(tmp_path / "gt" / "astronaut.png"), expected)
    assert close_answering(qtbot, window, QMessageBox.StandardButton.Cancel) == []  # all saved
    assert not window.isVisible()


def test_edits_belong_to_the_model_version_they_started_from(qtbot, photos, tmp_path):
    window = open_window(qtbot, photos)
    editing = window.editing
    editing.act_edit.trigger()
    editing.set_class(CAT)
    drag(qtbot, window, [viewport_point(window, 40, 40), viewport_point(window, 300, 60)])
    edited_v1 = editing.current.session.labels.copy()
    window.select_model("pascal", 2)
    qtbot.waitUntil(lambda: window.state.shown is not None
                    and window.state.shown.identity.version == 2, timeout=WAIT_MS)
    # v2's own result, as an edit of v2 with nothing painted: v1's edits are not carried over.
    assert window.state.shown.label == "edit of pascal v2"
    np.testing.assert_array_equal(window.prediction.labels, model_labels(window))
    assert editing.current.stack.count() == 0 and "pascal v2" in editing.current.origin
    window.select_model("pascal", 1)
    qtbot.waitUntil(lambda: window.state.shown is not None
                    and window.state.shown.identity.version == 1, timeout=WAIT_MS)
    assert window.state.shown.label == "edit of pascal v1"
    np.testing.assert_array_equal(window.prediction.labels, edited_v1)

    # Closing with v1's edits unsaved, answering Save: they are written, the window closes.
    editing.set_gt_dir(tmp_path / "gt")
    assert close_answering(qtbot, window, QMessageBox.StandardButton.Save)
    assert not window.isVisible()
    np.testing.assert_array_equal(load_label_png(tmp_path / "gt" / "astronaut.png"), edited_v1)
    assert [r.verdict for r in ReviewStore().rows()] == [Verdict.FIXED]

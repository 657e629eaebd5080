"""The main window driven as a user would: real QDropEvent, real QThreadPool workers, real
SavedModels run in-process by LocalBackend, pixels read back from the rendered viewport."""

from __future__ import annotations

import csv
import socket
import time
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication
from toy_savedmodels import CLASSES, toy_labels
from ui_helpers import WAIT_MS, connect_toy, make_window, wait_idle

from segviewer.core.images import load_label_png
from segviewer.core.overlay import class_shares
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.canvas import ViewMode, array_from_qimage
from segviewer.ui.file_list import Status
from segviewer.ui.main_window import MainWindow

STRIPE_REDS = (10, 70, 130, 200)  # toy model v1: class = red // 64 -> 0, 1, 2, 3
STRIPE_W, HEIGHT = 30, 40


@pytest.fixture
def images(tmp_path) -> Path:
    """A folder with four colour stripes (one class each), a photo and a file that is no image."""
    folder = tmp_path / "images"
    folder.mkdir()
    stripes = np.zeros((HEIGHT, STRIPE_W * 4, 3), np.uint8)
    for i, red in enumerate(STRIPE_REDS):
        stripes[:, i * STRIPE_W:(i + 1) * STRIPE_W] = (red, 90, 160)
    iio.imwrite(folder / "a_stripes.png", stripes)
    iio.imwrite(folder / "b_photo.png", iio.imread(Path(__file__).parent / "data" / "deeplab"
                                                   / "images" / "chelsea.png")[::4, ::4])
    (folder / "c_broken.png").write_bytes(b"this is not a PNG")
    return folder


@pytest.fixture
def window(qtbot) -> MainWindow:
    return make_window(qtbot)


def drop(window: MainWindow, paths: list[Path]) -> None:
    """What a file manager does: drag enter, then drop, with file URLs in the mime data."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.rect().center())
    buttons, mods = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():  # PySide6 marks the only QPoint constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(pos, Qt.DropAction.CopyAction, mime, buttons, mods))


def viewport_rgb(window: MainWindow, x: int, y: int) -> np.ndarray:
    """The colour the viewport shows at the centre of image pixel (x, y)."""
    canvas = window.canvas
    pixels = array_from_qimage(canvas.viewport().grab().toImage())
    point = canvas.image_pos_to_viewport(x, y)
    ratio = canvas.viewport().devicePixelRatioF()
    return pixels[int(point.y() * ratio), int(point.x() * ratio)].astype(int)


def stripe_x(class_id: int) -> int:
    return class_id * STRIPE_W + STRIPE_W // 2


@pytest.fixture
def loaded(window, qtbot, toy_base, images) -> MainWindow:
    """The window after dropping the folder and connecting to toy v1, showing the stripes."""
    connect_toy(window, qtbot, toy_base)
    drop(window, [images])
    wait_idle(window, qtbot)
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    assert Path(window.current_path).name == "a_stripes.png"
    return window


def test_drop_folder_runs_every_image_and_marks_the_broken_one(loaded, images):
    files = loaded.file_list
    assert [Path(p).name for p in files.paths()] == ["a_stripes.png", "b_photo.png",
                                                    "c_broken.png"]
    assert files.status(str(images / "a_stripes.png")) is Status.DONE
    assert files.status(str(images / "b_photo.png")) is Status.DONE
    broken = str(images / "c_broken.png")
    assert files.status(broken) is Status.FAILED
    assert "c_broken.png" in files.tooltip(broken) and "not an image" in files.tooltip(broken)
    assert loaded.windowTitle() == "a_stripes.png — toy v1 — SegViewer"
    expected = toy_labels(iio.imread(images / "a_stripes.png"), 0)
    np.testing.assert_array_equal(loaded.prediction.labels, expected)


def test_failed_image_shows_its_error_and_the_window_keeps_working(loaded, qtbot, images):
    loaded.file_list.step(2)  # the broken file
    qtbot.waitUntil(lambda: "c_broken.png" in loaded.statusBar().currentMessage())
    assert loaded.image is None and not loaded.canvas.has_labels
    broken = images / "c_broken.png"
    iio.imwrite(broken, np.full((20, 30, 3), 200, np.uint8))  # the user fixes the file...
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_F5)  # ...and reloads it
    qtbot.waitUntil(lambda: loaded.file_list.status(str(broken)) is Status.DONE, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: loaded.prediction is not None)
    loaded.file_list.step(-2)
    qtbot.waitUntil(lambda: loaded.prediction is not None
                    and Path(loaded.current_path).name == "a_stripes.png")
    assert loaded.canvas.has_labels


def test_legend_names_from_model_and_shares_sum_to_100(loaded):
    rows = loaded.legend.rows()
    assert {r.name for r in rows} == {c["name"] for c in CLASSES}
    assert sum(r.share for r in rows) == pytest.approx(100.0)
    assert all(r.share == pytest.approx(25.0) for r in rows)
    assert rows[0].color == tuple(CLASSES[rows[0].id]["color"])


def test_model_tab_names_a_local_model_by_its_files(loaded, toy_base):
    from segviewer.core.fingerprint import files_digest

    # Not made by our exporter, run in-process: hashed file by file (in the worker).
    digest = files_digest(toy_base / "toy" / "1")
    assert f"Fingerprint: files:{digest[:16]}" in loaded.model_info.toPlainText()


def test_opacity_slider_blends_labels_over_the_image(loaded, qtbot):
    x, y = stripe_x(2), HEIGHT // 2
    photo = np.array((STRIPE_REDS[2], 90, 160))
    label = np.array(CLASSES[2]["color"])
    loaded.opacity_slider.setValue(0)
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y) - photo).max() <= 2)
    loaded.opacity_slider.setValue(100)
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y) - label).max() <= 2)
    loaded.opacity_slider.setValue(50)
    half = (photo + label) / 2
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y) - half).max() <= 3)
    assert loaded.opacity_label.text() == "50 %"


def test_keyboard_steps_opacity_and_switches_view(loaded, qtbot):
    loaded.activateWindow()
    loaded.opacity_slider.setValue(50)
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_BracketRight)
    assert loaded.opacity_slider.value() == 60
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_BracketLeft)
    assert loaded.opacity_slider.value() == 40
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_L)
    assert loaded.canvas.mode is ViewMode.LABELS
    x, y = stripe_x(1), 5
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y)
                                   - np.array(CLASSES[1]["color"])).max() <= 2)
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_I)
    assert loaded.canvas.mode is ViewMode.IMAGE
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y)
                                   - np.array((STRIPE_REDS[1], 90, 160))).max() <= 2)
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_M)  # cycles: image -> overlay
    assert loaded.canvas.mode is ViewMode.OVERLAY
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_L)
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_O)
    assert loaded.canvas.mode is ViewMode.OVERLAY
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: Path(loaded.current_path).name == "b_photo.png")
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: Path(loaded.current_path).name == "a_stripes.png")


def test_hiding_a_class_in_the_legend_removes_its_colour(loaded, qtbot):
    loaded.opacity_slider.setValue(100)
    x, y = stripe_x(3), HEIGHT // 2
    label = np.array(CLASSES[3]["color"])
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y) - label).max() <= 2)
    table = loaded.legend.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 1).text() == "3")
    table.item(row, 0).setCheckState(Qt.CheckState.Unchecked)  # what a click on the box does
    assert loaded.legend.hidden == {3}
    photo = np.array((STRIPE_REDS[3], 90, 160))
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, x, y) - photo).max() <= 2)
    other = np.array(CLASSES[0]["color"])  # other classes keep their colour
    assert np.abs(viewport_rgb(loaded, stripe_x(0), y) - other).max() <= 2


def test_edited_colour_repaints_the_labels(loaded, qtbot):
    loaded.opacity_slider.setValue(100)
    loaded.legend.set_class_color(1, (255, 0, 255))
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, stripe_x(1), 5)
                                   - np.array((255, 0, 255))).max() <= 2)


def test_hover_reads_out_position_and_class(loaded, qtbot):
    viewport = loaded.canvas.viewport()
    pos = loaded.canvas.image_pos_to_viewport(stripe_x(2), 7).toPoint()
    qtbot.mouseMove(viewport, pos)
    qtbot.waitUntil(lambda: "class2" in loaded.hover_label.text())
    assert loaded.hover_label.text().startswith(f"x {stripe_x(2)}, y 7")
    qtbot.mouseMove(viewport, QPoint(2, 2))  # outside the (centred) image: no readout
    qtbot.waitUntil(lambda: loaded.hover_label.text() == "")


def test_probabilities_show_on_hover_when_asked_for(loaded, qtbot):
    loaded.act_probabilities.trigger()
    qtbot.waitUntil(lambda: loaded.prediction is not None
                    and loaded.prediction.probabilities is not None, timeout=WAIT_MS)
    pos = loaded.canvas.image_pos_to_viewport(stripe_x(1), 7).toPoint()
    qtbot.mouseMove(loaded.canvas.viewport(), pos)
    qtbot.waitUntil(lambda: "class1  (100.0 %)" in loaded.hover_label.text())


def test_exports_are_readable_files(loaded, qtbot, tmp_path, images):
    labels_png, overlay_png = tmp_path / "labels.png", tmp_path / "overlay.png"
    legend_csv, legend_png = tmp_path / "legend.csv", tmp_path / "legend.png"
    exports = ((loaded.export_labels, labels_png), (loaded.export_overlay, overlay_png),
               (loaded.export_legend, legend_csv), (loaded.export_legend, legend_png))
    for export, path in exports:
        with qtbot.waitSignal(export(str(path)).finished, timeout=WAIT_MS):
            pass  # the job starts once the event loop runs, so nothing is missed
    stripes = iio.imread(images / "a_stripes.png")
    np.testing.assert_array_equal(load_label_png(labels_png), toy_labels(stripes, 0))
    overlay = iio.imread(overlay_png)
    assert overlay.shape == stripes.shape
    np.testing.assert_allclose(overlay[5, stripe_x(2)],
                               (stripes[5, stripe_x(2)] + np.array(CLASSES[2]["color"])) / 2,
                               atol=1)
    with legend_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["name"] for r in rows} == {c["name"] for c in CLASSES}
    assert sum(float(r["share_percent"]) for r in rows) == pytest.approx(100.0)
    assert iio.imread(legend_png).shape[0] > 4 * 20
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_version_dropdown_changes_the_labels_and_flipping_back_is_cached(loaded, qtbot, images):
    combo = loaded.selector.version_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [2, 1]
    stripes = iio.imread(images / "a_stripes.png")
    cached = len(loaded.cache)
    combo.setCurrentIndex(0)
    combo.activated.emit(0)  # what choosing an entry with the mouse emits
    qtbot.waitUntil(lambda: loaded.ref.version == 2 and loaded.prediction is not None,
                    timeout=WAIT_MS)
    np.testing.assert_array_equal(loaded.prediction.labels, toy_labels(stripes, 1))
    assert loaded.windowTitle() == "a_stripes.png — toy v2 — SegViewer"
    wait_idle(loaded, qtbot)
    after_v2 = len(loaded.cache)
    assert after_v2 == cached + 2  # both good images ran on v2

    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    qtbot.waitUntil(lambda: loaded.ref.version == 1 and loaded.prediction is not None,
                    timeout=WAIT_MS)
    wait_idle(loaded, qtbot)
    assert len(loaded.cache) == after_v2  # v1 came from the cache, no new predictions
    np.testing.assert_array_equal(loaded.prediction.labels, toy_labels(stripes, 0))


def test_dead_server_shows_an_error_and_the_window_keeps_working(loaded, qtbot):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = ConnectionSpec("grpc", f"127.0.0.1:{port}", models=("toy",), timeout=3.0,
                          retry_for=0.5)
    job = loaded.connect_to(spec)
    with qtbot.waitSignal(job.failed, timeout=WAIT_MS) as failed:
        pass
    assert f"127.0.0.1:{port}" in failed.args[0]
    assert "Could not connect" in loaded.statusBar().currentMessage()
    wait_idle(loaded, qtbot)
    assert loaded.ref.name == "toy"  # still on the previous model
    loaded.file_list.step(1)
    qtbot.waitUntil(lambda: Path(loaded.current_path).name == "b_photo.png"
                    and loaded.prediction is not None, timeout=WAIT_MS)


def test_opening_nothing_useful_reports_it(window, qtbot, tmp_path):
    drop(window, [tmp_path])  # an empty folder
    qtbot.waitUntil(lambda: bool(window.errors), timeout=WAIT_MS)
    assert "No images found" in window.errors[-1]
    assert window.file_list.count() == 0


def test_settings_and_recent_files_persist(window, qtbot, images):
    window.opacity_slider.setValue(70)
    window.act_boundaries.setChecked(True)
    window.open_paths([images / "a_stripes.png"])
    wait_idle(window, qtbot)
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.opacity_slider.value() == 70
    assert again.act_boundaries.isChecked()
    assert [a.text() for a in again.recent_menu.actions()] == [str(images / "a_stripes.png")]


def test_shortcuts_and_about_list_what_they_should(window):
    names = dict(window.shortcuts())
    assert names["Open Folder"] == "Ctrl+Shift+O"
    assert "PgDown" in names["Next Image"] and "N" in names["Next Image"]
    assert names["Fit to Window"] == "Ctrl+0" and names["Actual Size"] == "Ctrl+1"
    assert names["More Opaque"] == "]" and names["More Transparent"] == "["
    about = window.about_text()
    assert "Qt " in about and "Python " in about
    assert not window.windowIcon().isNull()


def test_grpc_stand_in_server_versions_and_labels(window, qtbot, tf_serving, images):
    from segviewer.devserver.toy_models import tiny_labels

    window.connect_to(ConnectionSpec("grpc", tf_serving.grpc_address, models=("tiny",)))
    window.open_paths([images / "a_stripes.png"])
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    stripes = iio.imread(images / "a_stripes.png")
    assert window.ref.version == 2  # the newest available
    np.testing.assert_array_equal(window.prediction.labels, tiny_labels(stripes, shift=1))
    combo = window.selector.version_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [2, 1]
    assert combo.itemText(0).startswith("v2")
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    qtbot.waitUntil(lambda: window.ref.version == 1 and window.prediction is not None,
                    timeout=WAIT_MS)
    np.testing.assert_array_equal(window.prediction.labels, tiny_labels(stripes, shift=0))
    assert "gRPC" in window.model_info.toPlainText() or "grpc" in window.model_info.toPlainText()
    assert "signature only" in window.model_info.toPlainText()  # no content over the network


def test_palette_chooser_switches_colours_and_keeps_the_model_names(loaded, qtbot):
    combo = loaded.legend.palette_combo
    index = combo.findData("cityscapes")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    rows = {r.id: r for r in loaded.legend.rows()}
    # A palette chosen for its colours keeps the model's class names.
    assert {i: r.name for i, r in rows.items()} == {c["id"]: c["name"] for c in CLASSES}
    assert rows[0].color == (128, 64, 128)  # cityscapes' road colour
    index = combo.findData("model")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert {r.name for r in loaded.legend.rows()} == {c["name"] for c in CLASSES}


def test_zoom_keys_and_wheel(loaded, qtbot):
    canvas = loaded.canvas
    fitted = canvas.scale_factor
    qtbot.keyClick(canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale_factor == pytest.approx(1.0)
    centre = QPointF(canvas.viewport().rect().center())
    wheel = QWheelEvent(centre, canvas.viewport().mapToGlobal(centre), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.scale_factor == pytest.approx(1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale_factor == pytest.approx(1.0)
    qtbot.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale_factor == pytest.approx(fitted)
    assert loaded.zoom_label.text() == f"{fitted * 100:.0f} %"


MODAL_WAIT_S = 60


def modal_then(action) -> list[str]:
    """Run `action` on the next modal dialog once it is up (polled every 20 ms on the event loop
    the dialog's exec() runs, so a slow machine waits as long as it needs, up to a minute);
    returns the dialog's class name in a list filled then."""
    seen: list[str] = []
    deadline = time.monotonic() + MODAL_WAIT_S

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            if time.monotonic() < deadline:
                QTimer.singleShot(20, poll)
            return
        seen.append(type(dialog).__name__)
        action(dialog)

    QTimer.singleShot(0, poll)
    return seen


def test_batch_export_menu_opens_the_dialogs_engineers_dialog(loaded, qtbot):
    seen = modal_then(lambda dialog: dialog.reject())
    loaded.act_batch.trigger()  # modal: returns once the dialog is rejected
    assert seen == ["BatchExportDialog"]


def test_connect_menu_uses_the_connect_dialogs_choice(window, qtbot, toy_base, images):
    seen = modal_then(lambda d: (d.set_connection(ConnectionSpec("local", str(toy_base / "toy"))),
                                 d.accept()))
    window.act_connect.trigger()
    assert seen == ["ConnectDialog"]
    window.open_paths([images / "a_stripes.png"])
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    assert window.ref.version == 2  # the newest
    assert "toy v2" in window.windowTitle()


def test_exported_model_opens_in_the_viewer(window, qtbot, toy_base):
    def open_and_close(dialog) -> None:
        dialog.open_in_viewer.emit(str(toy_base / "toy" / "1"))
        dialog.reject()

    seen = modal_then(open_and_close)
    window.act_export_ckpt.trigger()
    assert seen == ["ExportCheckpointDialog"]
    qtbot.waitUntil(lambda: window.ref is not None, timeout=WAIT_MS)
    assert window.ref.name == "toy" and window.ref.version == 1


def test_cancel_leaves_the_rest_pending_and_the_window_usable(window, qtbot, toy_base,
                                                               tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        iio.imwrite(folder / f"img{i:02d}.png", rng.integers(0, 256, (300, 400, 3), np.uint8))
    connect_toy(window, qtbot, toy_base)
    qtbot.waitUntil(lambda: window.ref is not None, timeout=WAIT_MS)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.file_list.count() == 40, timeout=WAIT_MS)
    window.act_run_all.trigger()  # more than the look-ahead

    def done() -> list[str]:
        return [p for p in window.file_list.paths() if window.file_list.status(p) is Status.DONE]

    # Mid-run: images have been segmented and the next one is in the worker.
    qtbot.waitUntil(lambda: len(done()) >= 2 and window.predictor.process.running,
                    timeout=WAIT_MS)
    assert window.progress.isVisible() and window.cancel_button.isVisible()
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    finished = done()
    statuses = [window.file_list.status(p) for p in window.file_list.paths()]
    assert 2 <= len(finished) < 40 and Status.PENDING in statuses
    assert Status.FAILED not in statuses and Status.RUNNING not in statuses
    assert window.progress.isHidden() and window.cancel_button.isHidden()
    qtbot.wait(500)
    assert done() == finished  # the run stopped: nothing more came in after the cancel
    pending = next(p for p in window.file_list.paths() if p != window.current_path
                   and window.file_list.status(p) is Status.PENDING)
    window.file_list.select_path(pending)  # choosing an image runs it again
    qtbot.waitUntil(lambda: window.file_list.status(pending) is Status.DONE, timeout=WAIT_MS)


def test_a_big_folder_runs_the_current_image_and_the_look_ahead_then_run_all_the_rest(
        window, qtbot, toy_base, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(200):
        iio.imwrite(folder / f"img{i:03d}.png", np.full((24, 32, 3), i, np.uint8))
    connect_toy(window, qtbot, toy_base)
    qtbot.waitUntil(lambda: window.ref is not None, timeout=WAIT_MS)
    started: list[str] = []
    window.state.status_changed.connect(
        lambda path, status, _message: status is Status.RUNNING and started.append(path))
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.file_list.count() == 200 and window.idle, timeout=WAIT_MS)
    paths = window.file_list.paths()
    look_ahead = window.state.queue.look_ahead
    assert window.current_path == paths[0] and started[0] == paths[0]  # the one on screen first
    assert started == paths[:1 + look_ahead] and len(window.cache) == 1 + look_ahead
    assert window.prediction is not None  # and it is shown

    window.file_list.select_path(paths[100])  # a jump: that image, then the ones after it
    qtbot.waitUntil(lambda: window.idle and window.prediction is not None, timeout=WAIT_MS)
    assert started[1 + look_ahead:] == paths[100:101 + look_ahead]

    window.act_run_all.trigger()  # the rest, with progress
    assert window.progress.isVisible()
    qtbot.waitUntil(lambda: window.idle, timeout=60_000)
    assert sorted(started) == sorted(paths)  # each ran once
    assert all(window.file_list.status(p) is Status.DONE for p in paths)
    assert window.progress.isHidden()


def test_dropping_several_files_lists_each_once_without_a_model(window, qtbot, images):
    files = [images / "b_photo.png", images / "a_stripes.png", images / "b_photo.png"]
    drop(window, files)
    qtbot.waitUntil(lambda: window.file_list.count() == 2 and window.idle, timeout=WAIT_MS)
    assert [Path(p).name for p in window.file_list.paths()] == ["b_photo.png", "a_stripes.png"]
    assert Path(window.current_path).name == "b_photo.png"
    assert window.image is not None and window.prediction is None  # no model: image only
    assert all(window.file_list.status(p) is Status.PENDING for p in window.file_list.paths())
    web = QMimeData()
    web.setUrls([QUrl("https://example.com/a.png")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, web,
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()  # only local files and folders are accepted


# -- the screen never lies: what is shown carries the identity of what made it ------------------
DEMO_MODELS = Path(__file__).resolve().parent.parent / "resources" / "demo" / "models"
DEMO_PHOTO = DEMO_MODELS.parent / "images" / "astronaut.png"
needs_demo = pytest.mark.skipif(not (DEMO_MODELS / "pascal" / "2").is_dir(),
                                reason="the demo SavedModels are exported by the exporter")


def choose_version(window: MainWindow, version: int) -> None:
    combo = window.selector.version_combo
    index = combo.findData(version)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)  # what choosing an entry with the mouse emits


def labelled_pixel(window: MainWindow, class_id: int) -> tuple[int, int]:
    ys, xs = np.nonzero(window.prediction.labels == class_id)
    middle = len(xs) // 2
    return int(xs[middle]), int(ys[middle])


@needs_demo
def test_switching_version_mid_inference_and_cancelling_never_shows_the_old_labels(window,
                                                                                     qtbot):
    """Issue: connect, let v1 finish, pick v2, press Esc — v1's mask stayed under v2's name."""
    from segviewer.core.serving.connection import ConnectionSpec as Spec

    window.opacity_slider.setValue(100)
    window.connect_to(Spec("local", str(DEMO_MODELS / "pascal")), version=1)
    window.open_paths([DEMO_PHOTO])
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    wait_idle(window, qtbot)
    x, y = labelled_pixel(window, 15)  # the astronaut: PASCAL's person
    person = np.array(window.palette.color(15))
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(window, x, y) - person).max() <= 2)
    assert "pascal v1" in window.legend.source_label.text()

    choose_version(window, 2)
    # At once, before v2 has answered: no labels on screen, and every label says so.
    assert not window.canvas.has_labels and window.prediction is None
    assert "switching to pascal v2" in window.windowTitle()
    assert "switching to pascal v2" in window.legend.source_label.text()
    assert all(r.share is None for r in window.legend.rows())  # no shares of v1's mask
    photo = window.image[y, x].astype(int)  # (the canvas scales it smoothly: a few levels off)
    assert np.abs(viewport_rgb(window, x, y) - photo).max() <= 8
    assert np.abs(photo - person).max() > 40

    # v2 (three scales, flipped) is segmenting the photo: cancel in the middle of it.
    qtbot.waitUntil(lambda: window.ref.version == 2 and window.predictor.process.running,
                    timeout=WAIT_MS)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    wait_idle(window, qtbot)
    assert window.windowTitle() == "astronaut.png — pascal v2 — SegViewer"
    assert window.selector.version_combo.currentData() == 2
    assert window.prediction is None and not window.canvas.has_labels
    assert "No labels shown yet for pascal v2" in window.legend.source_label.text()
    assert np.abs(viewport_rgb(window, x, y) - photo).max() <= 8
    assert window.file_list.status(str(DEMO_PHOTO)) is Status.PENDING

    qtbot.keyClick(window.canvas, Qt.Key.Key_F5)  # v2 again, to the end this time
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    assert window.prediction.version == 2
    assert window.legend.source_label.text().startswith("Labels from <b>pascal v2 ·")
    x, y = labelled_pixel(window, 15)
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(window, x, y) - person).max() <= 2)


@needs_demo
def test_cancelling_a_version_switch_before_it_lands_goes_back_to_the_old_version(window,
                                                                                    qtbot):
    from segviewer.core.serving.connection import ConnectionSpec as Spec

    window.connect_to(Spec("local", str(DEMO_MODELS / "pascal")), version=1)
    window.open_paths([DEMO_PHOTO])
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    wait_idle(window, qtbot)
    choose_version(window, 2)
    window.cancel_work()  # the metadata of v2 has not arrived: v1 stays the model
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    assert window.prediction.version == 1
    assert window.windowTitle() == "astronaut.png — pascal v1 — SegViewer"
    assert window.selector.version_combo.currentData() == 1
    assert "pascal v1" in window.legend.source_label.text()


@needs_demo
def test_demo_opens_the_version_asked_for(window, qtbot):
    window.open_demo(images=False, version=2)
    window.open_paths([DEMO_PHOTO])
    qtbot.waitUntil(lambda: window.prediction is not None, timeout=WAIT_MS)
    assert window.ref.version == 2 and window.prediction.version == 2
    assert "pascal v2" in window.windowTitle()


def test_progress_counts_each_listed_image_once(window, qtbot, toy_base, tmp_path):
    folder = tmp_path / "four"
    folder.mkdir()
    for i in range(4):
        iio.imwrite(folder / f"img{i}.png", np.full((40, 60, 3), 60 * i, np.uint8))
    connect_toy(window, qtbot, toy_base)
    qtbot.waitUntil(lambda: window.ref is not None, timeout=WAIT_MS)
    seen: list[tuple[int, int]] = []

    def record() -> None:  # after the window's own update (connected after it)
        if window.progress.isVisible() and window.progress.format().startswith("Segmenting"):
            seen.append((window.progress.value(), window.progress.maximum()))

    window.predictor.changed.connect(record)
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.idle and all(
        window.file_list.status(p) is Status.DONE for p in window.file_list.paths()),
        timeout=WAIT_MS)
    assert seen and {total for _, total in seen} == {4}
    assert max(done for done, _ in seen) == 3  # the last one running: 3 of 4 done


def test_a_picked_colour_survives_a_reconnect(loaded, qtbot, toy_base):
    loaded.opacity_slider.setValue(100)
    loaded.legend.set_class_color(1, (255, 0, 255))
    magenta = np.array((255, 0, 255))
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, stripe_x(1), 5) - magenta).max() <= 2)
    connect_toy(loaded, qtbot, toy_base)  # the same model again
    qtbot.waitUntil(lambda: loaded.prediction is not None and loaded.idle, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: np.abs(viewport_rgb(loaded, stripe_x(1), 5) - magenta).max() <= 2)
    assert next(r for r in loaded.legend.rows() if r.id == 1).color == (255, 0, 255)


def test_ids_no_palette_can_colour_are_an_error_not_a_crash(loaded, qtbot):
    from segviewer.core.serving.base import Prediction

    identity = loaded.state.identity
    shape = loaded.image.shape[:2]
    wild = Prediction(np.full(shape, 70000, np.uint32), None, identity.model, identity.version)
    assert loaded.state.offer_result(loaded.current_path, identity, wild)
    assert "class id 70000" in loaded.errors[-1] and "a_stripes.png" in loaded.errors[-1]
    assert not loaded.canvas.has_labels  # nothing drawn rather than wrong colours
    loaded.state.offer_result(loaded.current_path, identity, loaded.cache.get(
        loaded.predictor.key(loaded.current_path)))
    assert loaded.canvas.has_labels


def test_the_list_filters_by_the_classes_of_each_result_and_home_end_jump(loaded, qtbot, images):
    files = loaded.file_list
    stripes = str(images / "a_stripes.png")
    expected = class_shares(toy_labels(iio.imread(stripes), 0))
    assert files.model.classes(stripes) == pytest.approx(expected)
    combo = [files.class_combo.itemText(i) for i in range(1, files.class_combo.count())]
    assert combo and all(text.split()[1] == f"class{text.split()[0]}" for text in combo)
    combo = loaded.selector.version_combo
    combo.setCurrentIndex(0)  # v2: the classes shift, the list's follow the new model
    combo.activated.emit(0)
    qtbot.waitUntil(lambda: loaded.ref.version == 2 and loaded.prediction is not None,
                    timeout=WAIT_MS)
    assert files.model.classes(stripes) == pytest.approx(
        class_shares(toy_labels(iio.imread(stripes), 1)))
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_End)
    assert Path(loaded.current_path).name == "c_broken.png"
    qtbot.keyClick(loaded.canvas, Qt.Key.Key_Home)
    assert loaded.current_path == stripes

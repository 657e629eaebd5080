"""BatchExportDialog on a real event loop: a real in-process SavedModel segments real images into
PNGs (with overlays), a broken input is listed with its reason, and Cancel stops the run."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PySide6.QtCore import Qt

from segviewer.core.labels import get_palette
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.local_backend import LocalBackend
from segviewer.ui.dialogs.batch_export import BatchExportDialog

DEMO_IMAGES = Path(__file__).resolve().parent.parent / "resources" / "demo" / "images"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """<tmp>/toy/1/: a tiny SavedModel whose label is the red channel // 128."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            return {"segmentation_map": tf.cast(images[..., 0] // 128, tf.int64)}

    folder = tmp_path_factory.mktemp("models") / "toy" / "1"
    toy = Toy()
    tf.saved_model.save(toy, str(folder), signatures={"serving_default": toy.serve})
    return folder.parent


def make_dialog(qtbot, model_dir: Path, paths: list[Path], out_dir: Path) -> BatchExportDialog:
    backend = LocalBackend(model_dir)
    dialog = BatchExportDialog(
        None, backend, ModelRef("toy"), paths, get_palette("pascal"), out_dir=out_dir
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_run_writes_label_maps_and_overlays_and_lists_failures(qtbot, model_dir, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    paths = [DEMO_IMAGES / "chelsea.png", DEMO_IMAGES / "coffee.png", broken]
    out = tmp_path / "out"
    dialog = make_dialog(qtbot, model_dir, paths, out)
    dialog.overlay.setChecked(True)
    dialog.opacity.setValue(0.4)
    with qtbot.waitSignal(dialog.run_done, timeout=60_000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)

    summary = dialog.summary
    assert (summary.ok, summary.failed, summary.skipped) == (2, 1, 0)
    assert dialog.status.text() == "Done: 2 written, 1 failed, 0 skipped"
    assert dialog.failures.isVisible()
    assert dialog.failures.toPlainText().startswith(f"{broken}: ")
    assert dialog.progress.value() == 3
    for name in ("chelsea", "coffee"):
        image = iio.imread(DEMO_IMAGES / f"{name}.png")
        labels = iio.imread(out / f"{name}.png")
        np.testing.assert_array_equal(labels, image[..., 0] // 128)
        assert iio.imread(out / f"{name}_overlay.png").shape == image.shape
    assert not (out / "broken.png").exists()
    assert dialog.run_button.isEnabled()


def test_resume_skips_finished_images(qtbot, model_dir, tmp_path):
    paths = [DEMO_IMAGES / "chelsea.png", DEMO_IMAGES / "coffee.png"]
    out = tmp_path / "out"
    first = make_dialog(qtbot, model_dir, paths[:1], out)
    with qtbot.waitSignal(first.run_done, timeout=60_000):
        qtbot.mouseClick(first.run_button, Qt.MouseButton.LeftButton)
    second = make_dialog(qtbot, model_dir, paths, out)
    second.resume.setChecked(True)
    with qtbot.waitSignal(second.run_done, timeout=60_000):
        qtbot.mouseClick(second.run_button, Qt.MouseButton.LeftButton)
    assert (second.summary.ok, second.summary.skipped) == (1, 1)
    assert second.status.text() == "Done: 1 written, 0 failed, 1 skipped"
    assert second.status.kind == "ok"


def test_cancel_stops_the_run(qtbot, model_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(40):
        paths.append(inputs / f"img{i:02d}.png")
        iio.imwrite(paths[-1], rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "out"
    dialog = make_dialog(qtbot, model_dir, paths, out)
    with qtbot.waitSignal(dialog.run_done, timeout=60_000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
        # Mid-run: some images written, the run still going.
        qtbot.waitUntil(lambda: dialog.progress.value() >= 2, timeout=60_000)
        assert dialog.cancel_button.isVisible()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        done_at_cancel = dialog.progress.value()

    summary = dialog.summary
    assert summary.cancelled
    assert 2 <= summary.ok + summary.failed < len(paths)
    # After Cancel only the images in flight (and progress still queued to the GUI) finish.
    assert summary.ok + summary.failed <= done_at_cancel + 2 * dialog.workers.value()
    written = sorted(out.glob("*.png")) if out.exists() else []
    assert len(written) == summary.ok < len(paths)
    assert dialog.status.text().startswith("Cancelled: ")
    assert dialog.isVisible()  # the summary stays on screen


def test_an_output_folder_holding_the_images_never_replaces_them(qtbot, model_dir, tmp_path):
    """Output folder = image folder: photo.png's label map would be photo.png itself."""
    photo = tmp_path / "photo.png"
    iio.imwrite(photo, np.full((8, 8, 3), 200, np.uint8))
    before = photo.read_bytes()
    dialog = make_dialog(qtbot, model_dir, [photo], tmp_path)
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert dialog.status.kind == "error"
    assert str(photo) in dialog.status.text() and "replace" in dialog.status.text()
    assert dialog.summary is None and dialog.run_button.isEnabled()
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]

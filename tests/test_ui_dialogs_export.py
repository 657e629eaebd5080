"""ExportCheckpointDialog on a real event loop: the shipped PASCAL checkpoint is inspected and
exported to a real SavedModel; broken checkpoints and bad options show the exporter's message and
write nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication

from segviewer.ui.dialogs.export_checkpoint import ExportCheckpointDialog

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "resources" / "demo" / "checkpoint" / "pascal_mobilenet_v2"


@pytest.fixture
def dialog(qtbot) -> ExportCheckpointDialog:
    dlg = ExportCheckpointDialog(None)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def pick(qtbot, dialog: ExportCheckpointDialog, path: Path) -> None:
    with qtbot.waitSignal(dialog.inspect_done, timeout=120_000):
        dialog.checkpoint.setText(str(path))


def test_inspecting_the_demo_checkpoint_shows_what_it_holds(qtbot, dialog, tmp_path):
    assert not dialog.export_button.isEnabled()
    pick(qtbot, dialog, CHECKPOINT / "checkpoint")  # the state file is accepted too
    assert dialog.status.kind == ""
    assert dialog.detected.text() == (
        "mobilenet_v2, 21 classes, decoder: no, depth multiplier 1\n"
        "272 variables; atrous rates: none; suggested output stride 8"
    )
    assert dialog.output_stride.currentText() == "auto"
    assert not dialog.export_button.isEnabled()  # no export folder yet
    dialog.export_dir.setText(str(tmp_path))
    assert dialog.export_button.isEnabled()


def test_options_leave_the_exporters_defaults_to_the_exporter(qtbot, dialog, tmp_path):
    from exporter.export import ExportOptions

    pick(qtbot, dialog, CHECKPOINT)
    dialog.export_dir.setText(str(tmp_path))
    options = dialog.options()
    defaults = ExportOptions(options.checkpoint, options.export_dir, options.model_name)
    for name in ("crop_size", "atrous_rates", "output_stride", "inference_scales",
                 "compat_older_servers"):
        assert getattr(options, name) == getattr(defaults, name), name
    dialog.output_stride.setCurrentText("16")
    dialog.atrous_rates.setText("none")
    dialog.inference_scales.setText("0.75, 1.0")
    dialog.compat.setChecked(True)
    options = dialog.options()
    assert (options.output_stride, options.atrous_rates) == (16, ())
    assert options.inference_scales == (0.75, 1.0)
    assert options.compat_older_servers


def test_version_follows_the_folder_and_name(dialog, tmp_path):
    (tmp_path / "pascal" / "3").mkdir(parents=True)
    dialog.model_name.setText("pascal")
    dialog.export_dir.setText(str(tmp_path))
    assert dialog.version.value() == 4
    dialog.model_name.setText("other")
    assert dialog.version.value() == 1


@pytest.mark.parametrize("broken", ["random", "truncated"])
def test_broken_checkpoint_shows_the_exporters_error(qtbot, dialog, tmp_path, broken):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    index = folder / "model.ckpt.index"
    if broken == "random":
        index.write_bytes(bytes(range(256)) * 8)
    else:
        index.write_bytes((CHECKPOINT / "model.ckpt.index").read_bytes()[:3000])
        shutil.copy(CHECKPOINT / "model.ckpt.data-00000-of-00001", folder)
    export_dir = tmp_path / "models"
    dialog.export_dir.setText(str(export_dir))
    pick(qtbot, dialog, index)
    assert dialog.status.kind == "error"
    prefix = folder / "model.ckpt"
    assert dialog.status.text().startswith(f"'{prefix}' is not a readable TF checkpoint")
    assert "\n" not in dialog.status.text()
    assert dialog.info is None
    assert not dialog.export_button.isEnabled()
    assert not export_dir.exists()


def test_bad_option_fails_in_the_exporter_and_writes_nothing(qtbot, dialog, tmp_path):
    pick(qtbot, dialog, CHECKPOINT)
    export_dir = tmp_path / "models"
    dialog.export_dir.setText(str(export_dir))
    dialog.crop_h.setValue(500)  # (500 - 1) is no multiple of the output stride
    with qtbot.waitSignal(dialog.export_done, timeout=120_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.status.kind == "error"
    assert dialog.status.text().startswith("crop size 500x513 does not fit output stride 8")
    assert not dialog.success.isVisible()
    assert dialog.result is None
    assert not export_dir.exists()
    assert dialog.export_button.isEnabled()


def test_unparsable_field_is_named_before_any_work(qtbot, dialog, tmp_path):
    pick(qtbot, dialog, CHECKPOINT)
    dialog.export_dir.setText(str(tmp_path))
    dialog.inference_scales.setText("1.0, big")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.status.kind == "error"
    assert dialog.status.text().startswith("Inference scales '1.0, big' must be comma-separated")
    assert not dialog.progress.isVisible()


def test_cancel_stops_the_export_and_writes_nothing(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dialog = ExportCheckpointDialog(None, settings)
    qtbot.addWidget(dialog)
    pick(qtbot, dialog, CHECKPOINT)
    export_dir = tmp_path / "models"
    dialog.export_dir.setText(str(export_dir))
    dialog.model_name.setText("pascal")
    with qtbot.waitSignal(dialog.export_done, timeout=120_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        # The job starts on the next event-loop turn, so the exporter sees the flag at its first
        # step boundary.
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == "Export cancelled; nothing was written."
    assert dialog.result is None
    assert not export_dir.exists()
    assert dialog.export_button.isEnabled()

    # The next dialog starts from the folder and name used last.
    again = ExportCheckpointDialog(None, settings)
    qtbot.addWidget(again)
    assert (again.export_dir.text(), again.model_name.text()) == (str(export_dir), "pascal")


@pytest.mark.slow
def test_export_demo_checkpoint_end_to_end(qtbot, dialog, tmp_path):
    pick(qtbot, dialog, CHECKPOINT)
    export_dir = tmp_path / "served models"
    dialog.export_dir.setText(str(export_dir))
    dialog.model_name.setText("pascal")
    assert dialog.version.value() == 1
    steps = []
    dialog._progressed_in_worker.connect(lambda step, done, total: steps.append(step))
    with qtbot.waitSignal(dialog.export_done, timeout=600_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.progress.isVisible() and dialog.cancel_button.isVisible()
    assert dialog.status.kind == "", dialog.status.text()
    assert steps[0] == "read checkpoint"
    version_dir = export_dir / "pascal" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    assert dialog.success.isVisible()
    assert str(version_dir) in dialog.summary.text()
    assert dialog.docker.text() == (
        "docker run -p 8500:8500 -p 8501:8501 "
        f"--mount 'type=bind,source={export_dir.resolve()}/pascal,target=/models/pascal' "
        "-e MODEL_NAME=pascal -t tensorflow/serving"
    )
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dialog.docker.text()
    with qtbot.waitSignal(dialog.open_in_viewer) as opened:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == [str(version_dir)]
    assert dialog.version.value() == 2  # the next export will not overwrite this one


def test_opening_the_dialogs_imports_no_tensorflow(tmp_path):
    """TensorFlow loads only in the workers: a fresh process shows every dialog without it."""
    code = f"""
import sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from segviewer.core.serving.base import ModelRef
from segviewer.ui.dialogs.batch_export import BatchExportDialog
from segviewer.ui.dialogs.connect import ConnectDialog
from segviewer.ui.dialogs.export_checkpoint import ExportCheckpointDialog
settings = QSettings({str(tmp_path / "s.ini")!r}, QSettings.Format.IniFormat)
dialogs = [ConnectDialog(None, settings), ExportCheckpointDialog(None, settings),
           BatchExportDialog(None, None, ModelRef("m"), [], None)]
dialogs[1].export_dir.setText({str(tmp_path)!r})  # works out the next free version
for dialog in dialogs:
    dialog.show()
app.processEvents()
print(dialogs[1].version.value(), "tensorflow" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]

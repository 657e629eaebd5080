"""Every user error of the exporter is one clear line (ExportError; exit code 2 from the CLI).

Broken checkpoints are made from the reference checkpoint with tests/checkpoint_factory.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from checkpoint_factory import read_research_checkpoint, write_research_checkpoint
from conftest import DATA

from exporter import ExportError
from exporter.checkpoint import inspect_checkpoint
from exporter.export import ExportOptions, export_model

pytest.importorskip("tensorflow")

REFERENCE = DATA / "deeplab" / "mobilenet_v2"


@pytest.fixture(scope="module")
def reference_weights():
    return read_research_checkpoint(REFERENCE / "model.ckpt")


def _export_error(tmp_path, checkpoint, **options) -> str:
    export_dir = tmp_path / "models"
    with pytest.raises(ExportError) as info:
        export_model(ExportOptions(checkpoint, export_dir, "m", **options))
    message = str(info.value)
    assert "\n" not in message
    assert not (export_dir / "m" / "1").exists()
    return message


def _variant(tmp_path, weights, drop=(), add=None) -> str:
    changed = {k: v for k, v in weights.items() if k not in drop}
    changed.update(add or {})
    return write_research_checkpoint(tmp_path / "ckpt" / "model.ckpt", changed)


@pytest.mark.parametrize("form", ["prefix", "folder", "state file", "index file", "data file"])
def test_checkpoint_path_forms(form):
    path = {
        "prefix": REFERENCE / "model.ckpt",
        "folder": REFERENCE,
        "state file": REFERENCE / "checkpoint",
        "index file": REFERENCE / "model.ckpt.index",
        "data file": REFERENCE / "model.ckpt.data-00000-of-00001",
    }[form]
    info = inspect_checkpoint(path)
    assert info.prefix == str(REFERENCE / "model.ckpt")
    assert info.variant == "mobilenet_v2"
    assert info.num_classes == 21
    assert not info.has_decoder and info.image_pooling
    assert info.aspp_branches == 0 and info.atrous_rates == ()
    assert info.variable_count == 272  # global_step is bookkeeping, not a model variable
    assert info.depth_multiplier == 1.0


def test_missing_checkpoint(tmp_path):
    message = _export_error(tmp_path, tmp_path / "nope" / "model.ckpt")
    assert message.startswith(f"checkpoint '{tmp_path / 'nope' / 'model.ckpt'}' not found")
    assert "not found" in _export_error(tmp_path, tmp_path / "model.ckpt")


def test_folder_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no checkpoint in" in _export_error(tmp_path, tmp_path / "empty")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.ckpt.index").write_bytes(b"this is not a checkpoint index" * 10)
    message = _export_error(tmp_path, tmp_path / "bad")
    prefix = tmp_path / "bad" / "model.ckpt"
    assert message.startswith(f"'{prefix}' is not a readable TF checkpoint")


def test_unknown_variant(tmp_path):
    message = _export_error(tmp_path, REFERENCE, model_variant="mobilenet_v9")
    assert message.startswith("unknown model variant 'mobilenet_v9'; use auto or one of:")
    assert "mobilenet_v2" in message


def test_variant_not_detectable(tmp_path):
    prefix = write_research_checkpoint(tmp_path / "ckpt" / "model.ckpt",
                                       {"net/conv1/weights": [[1.0]], "logits/bias": [0.0]})
    message = _export_error(tmp_path, prefix)
    assert "cannot tell the model variant" in message and "--model-variant" in message


def test_missing_head_variable_listed_with_shape(tmp_path, reference_weights):
    prefix = _variant(tmp_path, reference_weights, drop={"aspp0/weights", "aspp0/BatchNorm/beta"})
    message = _export_error(tmp_path, prefix)
    assert "lacks 2 variable(s) the mobilenet_v2 model needs" in message
    assert "aspp0/weights [1, 1, 320, 256]" in message
    assert "aspp0/BatchNorm/beta [256]" in message


def test_missing_backbone_variable_listed_with_shape(tmp_path, reference_weights):
    prefix = _variant(tmp_path, reference_weights,
                      drop={"MobilenetV2/expanded_conv_3/project/weights"})
    message = _export_error(tmp_path, prefix)
    assert "MobilenetV2/expanded_conv_3/project/weights [1, 1, 144, 32]" in message


def test_unexpected_variables(tmp_path, reference_weights):
    import numpy as np

    prefix = _variant(tmp_path, reference_weights,
                      add={"extra_head/weights": np.zeros((1, 1, 320, 8), np.float32)})
    message = _export_error(tmp_path, prefix)
    assert "checkpoint has 1 variable(s) the mobilenet_v2 model does not use" in message
    assert "extra_head/weights [1, 1, 320, 8]" in message


def test_atrous_branches_need_rates(tmp_path, reference_weights):
    import numpy as np

    extra = {"aspp1_depthwise/depthwise_weights": np.zeros((3, 3, 320, 1), np.float32)}
    prefix = _variant(tmp_path, reference_weights, add=extra)
    message = _export_error(tmp_path, prefix)
    assert "checkpoint has 1 atrous ASPP branches; pass --atrous-rates with 1 rates" in message


def test_rates_without_their_variables(tmp_path):
    message = _export_error(tmp_path, REFERENCE, atrous_rates=(12, 24, 36))
    assert "aspp1_depthwise/depthwise_weights [3, 3, 320, 1]" in message


def test_wrong_shape(tmp_path, reference_weights):
    biases = reference_weights["logits/semantic/biases"][:20]
    prefix = _variant(tmp_path, reference_weights, add={"logits/semantic/biases": biases})
    message = _export_error(tmp_path, prefix)
    assert "logits/semantic/biases [20]" in message
    assert "expected logits/semantic/biases [21]" in message


def test_num_classes_mismatch(tmp_path):
    message = _export_error(tmp_path, REFERENCE, num_classes=19)
    assert message == ("--num-classes 19 does not match the checkpoint's logits (21 classes); "
                       "drop --num-classes or fix it")


@pytest.mark.parametrize(("crop", "stride", "hint"), [((512, 512), 8, "513,513"),
                                                      ((513, 500), 16, "513,513")])
def test_crop_size_must_fit_output_stride(tmp_path, crop, stride, hint):
    message = _export_error(tmp_path, REFERENCE, crop_size=crop, output_stride=stride)
    assert f"does not fit output stride {stride}" in message
    assert message.endswith(f"try --crop-size {hint}")


def test_scaled_crop_must_fit_output_stride(tmp_path):
    message = _export_error(tmp_path, REFERENCE, inference_scales=(1.0, 0.6))
    assert "at inference scale 0.6" in message


def test_labels_file_errors(tmp_path):
    assert "--labels:" in _export_error(tmp_path, REFERENCE, labels=tmp_path / "missing.json")
    too_many = tmp_path / "labels.json"
    too_many.write_text(json.dumps({"classes": [{"id": 30, "name": "x", "color": [1, 2, 3]}]}))
    message = _export_error(tmp_path, REFERENCE, labels=too_many)
    assert "has class id 30 but the model has 21 classes" in message


def test_bad_model_name(tmp_path):
    with pytest.raises(ExportError, match=r"model name '\.\./up' is not valid"):
        export_model(ExportOptions(REFERENCE, tmp_path, "../up"))
    assert not (tmp_path.parent / "up").exists()


# TensorFlow's own log level is left to the tool, as in a user's terminal.
ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
DATA_FILE = "model.ckpt.data-00000-of-00001"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter.cli", *args],
                          capture_output=True, text=True, timeout=300, env=ENV)


def _damaged(tmp_path, damage: str):
    """A copy of the reference checkpoint with one kind of damage, as downloads and disks do it."""
    folder = tmp_path / damage
    shutil.copytree(REFERENCE, folder)
    data = folder / DATA_FILE
    if damage == "truncated data":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "missing data":
        data.unlink()
    elif damage == "flipped bytes":
        flipped = bytearray(data.read_bytes())
        for at in range(1000, len(flipped), 4096):
            flipped[at] ^= 0xFF
        data.write_bytes(bytes(flipped))
    elif damage == "state file not UTF-8":
        (folder / "checkpoint").write_bytes(b'model_checkpoint_path: "model\xff\xfe.ckpt"\n')
    return folder


@pytest.mark.parametrize(("damage", "named", "problem"), [
    ("truncated data", DATA_FILE, "is truncated (shorter than its index says)"),
    ("missing data", DATA_FILE, "is missing"),
    ("flipped bytes", DATA_FILE, "is damaged (checksum does not match)"),
    ("state file not UTF-8", "checkpoint", "is not UTF-8 text"),
])
def test_damaged_checkpoint_is_one_line_and_exit_code_2(tmp_path, damage, named, problem):
    folder = _damaged(tmp_path, damage)
    export_dir = tmp_path / "models"
    run = _cli("--checkpoint", str(folder), "--export-dir", str(export_dir), "--model-name", "m")
    assert run.returncode == 2, run.stderr
    # One line: no traceback, and none of TensorFlow's own ERROR/WARNING or C++ log lines.
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("segviewer-export: error: "), run.stderr
    assert f"'{folder / named}' {problem}" in run.stderr
    assert not (export_dir / "m" / "1").exists()


def test_cli_error_is_one_line_and_exit_code_2(tmp_path):
    run = _cli("--checkpoint", str(tmp_path / "missing"), "--export-dir", str(tmp_path),
               "--model-name", "m")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"segviewer-export: error: checkpoint '{tmp_path / 'missing'}'")


def test_cli_usage_error_is_one_line(tmp_path):
    run = _cli("--checkpoint", str(REFERENCE), "--export-dir", str(tmp_path), "--model-name", "m",
               "--crop-size", "big")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "argument --crop-size: 'big' must be comma-separated numbers, e.g. 513,513" in run.stderr
    assert not (tmp_path / "m").exists()


def test_decoder_stride_the_backbone_lacks(tmp_path):
    message = _export_error(tmp_path, REFERENCE, decoder_output_stride=2)
    assert message == ("--decoder-output-stride 2 is not available: mobilenet_v2 has decoder "
                       "features at strides 4, 8, 16")


def _start_export(export_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "--checkpoint", str(REFERENCE), "--export-dir",
         str(export_dir), "--model-name", "m", "--crop-size", "65,65"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
    )


def _wait_for_temp_folder(process: subprocess.Popen, model_dir) -> list:
    """The export's temporary folder once it exists (the SavedModel is being written into it)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        found = list(model_dir.glob(".1.tmp-*")) if model_dir.is_dir() else []
        if found:
            return found
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"the export ended or stalled before writing: {process.communicate()[1]}")


@pytest.mark.slow
def test_a_killed_exports_leftovers_are_removed_by_the_next_export(tmp_path):
    export_dir = tmp_path / "models"
    process = _start_export(export_dir)
    leftovers = _wait_for_temp_folder(process, export_dir / "m")
    process.kill()
    process.communicate()
    assert all(p.is_dir() for p in leftovers)  # SIGKILL: no clean-up ran

    result = export_model(ExportOptions(REFERENCE, export_dir, "m", crop_size=(65, 65)))
    assert result.version == 1  # the killed export had not written version 1
    assert [p.name for p in (export_dir / "m").iterdir()] == ["1"]


@pytest.mark.slow
def test_ctrl_c_exits_130_and_leaves_nothing(tmp_path):
    export_dir = tmp_path / "models"
    process = _start_export(export_dir)
    _wait_for_temp_folder(process, export_dir / "m")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "segviewer-export: interrupted; nothing was written"
    assert list((export_dir / "m").iterdir()) == []

"""The `segviewer` command run as a user runs it: a subprocess, offscreen, with real models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import DEMO
from toy_savedmodels import CLASSES

import segviewer
from segviewer.paths import demo_models_dir

TIMEOUT_S = 300


def segviewer_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})}
    return subprocess.run([sys.executable, "-m", "segviewer.ui.app", *args], env=full_env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def test_version_alone_prints_the_app_version():
    result = segviewer_cmd("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"segviewer {segviewer.__version__}"


@pytest.mark.parametrize(("args", "message"), [
    (["--saved-model", ".", "--version", "x.png"], "--version takes a model version number"),
    (["no/such/photo.png"], "'no/such/photo.png' does not exist"),
    (["--screenshot", "out.jpg"], "must end in .png"),
    (["--model", "deeplab"], "need a model"),
    (["--demo", "--version", "3"], "--version 3: the demo model has versions 1, 2"),
    (["--demo", "--compare-versions", "1", "7"], "--compare-versions 7: the demo model has"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    result = segviewer_cmd(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_window_paints_without_importing_tensorflow():
    result = segviewer_cmd(env={"SEGVIEWER_EXIT_ON_FIRST_PAINT": "1"})
    assert result.returncode == 0, result.stderr
    assert "first-paint" in result.stdout
    assert "tensorflow-imported=False" in result.stdout


def pixels_near(shot: np.ndarray, rgb, tolerance: int = 3) -> int:
    return int(np.count_nonzero(np.all(np.abs(shot.astype(int) - rgb) <= tolerance, axis=2)))


def test_screenshot_after_inference(toy_base, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    photo = np.zeros((60, 90, 3), np.uint8)
    photo[:, 45:, 0] = 200  # right half: class 3 for the toy model
    iio.imwrite(images / "half.png", photo)
    out = tmp_path / "shot.png"
    result = segviewer_cmd(str(images), "--saved-model", str(toy_base / "toy"), "--version",
                           "1", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    shot = iio.imread(out)
    height, width = shot.shape[:2]
    assert f"saved {out} ({width}x{height})" in result.stdout
    assert width >= 640 and height >= 480  # the window (1400x900, or what the screen allows)
    assert not list(tmp_path.glob(".*tmp*"))
    # The labels are drawn where their classes are: class 0 over the black left half, class 3
    # over the red right half, each at the default 50 % opacity over the photo (the canvas
    # shows the 90x60 image a few hundred pixels wide, so each half covers thousands of pixels).
    left = np.array(CLASSES[0]["color"]) / 2
    right = (np.array(CLASSES[3]["color"]) + np.array((200, 0, 0))) / 2
    assert pixels_near(shot, left) > 5000
    assert pixels_near(shot, right) > 5000
    # Not the bare photo: only the list's thumbnail (at most 56x56) shows its red half.
    assert pixels_near(shot, (200, 0, 0)) < 56 * 56


@pytest.mark.parametrize("model", [["--model", "deeplab"], []])
def test_screenshot_reports_a_dead_server_and_exits_1(tmp_path, model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "shot.png"
    result = segviewer_cmd(str(DEMO / "images" / "chelsea.png"), "--server",
                           f"127.0.0.1:{port}", *model, "--retry-for", "0.5",
                           "--screenshot", str(out))
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]  # earlier lines: Qt's offscreen-platform notes
    assert last.startswith("segviewer: error: Could not connect")
    assert f"cannot reach 127.0.0.1:{port}" in last  # without --model too: not "no models"
    assert not out.exists()


@pytest.mark.skipif(not (demo_models_dir() / "pascal" / "1").is_dir(),
                    reason="the demo SavedModels are exported by the exporter")
def test_demo_screenshot(tmp_path):
    out = tmp_path / "demo.png"
    result = segviewer_cmd("--demo", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    height, width = iio.imread(out).shape[:2]
    assert f"saved {out} ({width}x{height})" in result.stdout


@pytest.mark.skipif(not (demo_models_dir() / "pascal" / "2").is_dir(),
                    reason="the demo SavedModels are exported by the exporter")
def test_demo_shows_the_version_asked_for(tmp_path):
    out = tmp_path / "demo_v2.png"
    photo = DEMO / "images" / "chelsea.png"
    result = segviewer_cmd(str(photo), "--demo", "--version", "2", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    assert '"chelsea.png — pascal v2 — SegViewer"' in result.stdout


def test_a_command_line_start_never_restores_the_last_session(tmp_path):
    from PySide6.QtCore import QSettings

    from segviewer.ui import settings as keys
    from segviewer.ui.settings import Settings

    # The session a bare start would reopen: the demo folder, astronaut.png shown.
    config = os.environ["XDG_CONFIG_HOME"]  # conftest's, inherited by the subprocess
    stored = QSettings(os.path.join(config, "SegViewer", "SegViewer.conf"),
                       QSettings.Format.IniFormat)
    prefs = Settings(stored)
    prefs.set(keys.RESTORE_SESSION, True)
    prefs.set(keys.SESSION_INPUTS, [str(DEMO / "images")])
    prefs.set(keys.SESSION_CURRENT, str(DEMO / "images" / "astronaut.png"))
    stored.sync()
    out = tmp_path / "shot.png"
    result = segviewer_cmd(str(DEMO / "images" / "chelsea.png"), "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    assert 'of "chelsea.png — SegViewer"' in result.stdout  # the session would show astronaut

"""Packaging: one version everywhere, valid desktop files, a wheel and a frozen app that work alone.

The slow tests build the real artefacts (a wheel, a PyInstaller folder) and start their commands.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

LINUX = REPO / "packaging" / "linux"
APP_ID = "io.github.segviewer.SegViewer"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]
COMMANDS = sorted({**PROJECT["scripts"], **PROJECT["gui-scripts"]})
ICONS = REPO / "resources" / "icons"
VENV_BIN = Path(sys.executable).parent


# Limits for one command. The PyInstaller build took 8.8 min on 2 cores: its limit leaves about
# twice that, and the test's own timeout covers the build plus two runs of the frozen app.
RUN_TIMEOUT = 240
BUILD_TIMEOUT = 1200
FROZEN_TEST_TIMEOUT = BUILD_TIMEOUT + 2 * RUN_TIMEOUT + 120


def _run(
    args: list[str | Path], timeout: float = RUN_TIMEOUT, **kwargs
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _shows_version(output: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(VERSION)}(?![\w.])", output) is not None


def _check_screenshot(path: Path) -> None:
    """A real capture of the window: big enough, and more than a blank or single-colour frame."""
    assert path.is_file(), f"no screenshot at {path}"
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] >= 200 and image.shape[1] >= 300, image.shape
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "the screenshot is (nearly) blank"


def _desktop_entry(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


# One version string ------------------------------------------------------------------------------


def test_installed_metadata_has_the_pyproject_version():
    import segviewer

    assert importlib.metadata.version("segviewer") == VERSION, "reinstall: pip install -e ."
    assert segviewer.__version__ == VERSION


@pytest.mark.parametrize(
    "command", ["segviewer", "segviewer-export", "segviewer-predict", "segviewer-review"]
)
def test_command_prints_the_package_version(command):
    result = _run(
        [VENV_BIN / command, "--version"], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    )
    assert result.returncode == 0, result.stderr
    assert _shows_version(result.stdout + result.stderr), (result.stdout, result.stderr)


def test_about_dialog_shows_the_package_version(qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from segviewer.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    texts = []

    def read_and_close() -> None:  # the dialog is modal: poll for it from inside its event loop
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, read_and_close)
            return
        texts.append(box.text())
        box.close()

    QTimer.singleShot(0, read_and_close)
    window.act_about.trigger()
    assert len(texts) == 1 and _shows_version(texts[0]), texts


# Desktop integration -----------------------------------------------------------------------------


def _validator(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing (Debian: apt-get install desktop-file-utils appstream)")
    return path


def _validate_desktop_entry(path: Path) -> None:
    result = _run([_validator("desktop-file-validate"), path])
    assert result.returncode == 0 and "error:" not in result.stdout, result.stdout + result.stderr


def test_the_checkout_install_shows_the_checkouts_resources(tmp_path):
    """./install.sh links the package's files elsewhere (a strict editable install); the demo,
    palettes and icons are still found, and named, in the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run([sys.executable, "-c", "import segviewer.paths as p; print(p.resource_dir())"],
                 cwd=tmp_path, env=env)  # not the checkout: the installed package is imported
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == REPO / "resources"


def test_desktop_entry_validates():
    _validate_desktop_entry(LINUX / f"{APP_ID}.desktop")


def test_metainfo_validates():
    result = _run(
        [_validator("appstreamcli"), "validate", "--no-net", LINUX / f"{APP_ID}.metainfo.xml"]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_desktop_entry_and_metainfo_describe_this_package():
    entry = _desktop_entry(LINUX / f"{APP_ID}.desktop")
    component = ET.parse(LINUX / f"{APP_ID}.metainfo.xml").getroot()
    assert component.findtext("id") == APP_ID
    assert component.findtext("launchable") == f"{APP_ID}.desktop"
    assert entry["Icon"] == component.findtext("icon") == APP_ID
    assert entry["Exec"] == "segviewer %F"
    assert component.find("releases/release").get("version") == VERSION, "add a <release> for it"
    assert sorted(b.text for b in component.iterfind("provides/binary")) == COMMANDS
    media_types = [m.text for m in component.iterfind("provides/mediatype")]
    assert entry["MimeType"].rstrip(";").split(";") == media_types


def test_install_desktop_installs_and_uninstalls(tmp_path):
    script = LINUX / "install-desktop.sh"
    result = _run(["bash", script, "--prefix", tmp_path])
    assert result.returncode == 0, result.stderr

    share = tmp_path / "share"
    installed = [
        share / "applications" / f"{APP_ID}.desktop",
        share / "metainfo" / f"{APP_ID}.metainfo.xml",
        share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg",
    ]
    sizes = sorted(int(png.stem.rsplit("-", 1)[1]) for png in ICONS.glob("segviewer-*.png"))
    assert {16, 32, 48, 64, 128, 256, 512} <= set(sizes), sizes
    for size in sizes:
        png = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        installed.append(png)
        alpha = np.asarray(Image.open(png).convert("RGBA"))[..., 3]
        assert alpha.shape == (size, size), f"{png} is not {size} px: re-render the icons"
        assert alpha.max() == 255, f"{png} is empty"
    assert all(path.is_file() for path in installed), [p for p in installed if not p.is_file()]

    _validate_desktop_entry(installed[0])
    command = shutil.which("segviewer") or str(REPO / ".venv" / "bin" / "segviewer")
    assert command in _desktop_entry(installed[0])["Exec"]

    result = _run(["bash", script, "--prefix", tmp_path, "--uninstall"])
    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in installed)


def test_install_desktop_rejects_an_unknown_option(tmp_path):
    result = _run(["bash", LINUX / "install-desktop.sh", "--prefx", tmp_path])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--prefix" in result.stderr


# The wheel ---------------------------------------------------------------------------------------

# Hidden entries (.git, .venv, caches, half-written temporary folders) are not needed to build.
_NOT_NEEDED_TO_BUILD = shutil.ignore_patterns(
    ".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks"
)


def _build_wheel(source: Path, out: Path) -> Path:
    """Build from a copy of the checkout, so the build leaves nothing behind in the work tree."""
    shutil.copytree(REPO, source, ignore=_NOT_NEEDED_TO_BUILD)
    result = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source])
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("segviewer-*.whl")
    return wheel


def _shipped(root: Path, pattern: str) -> list[Path]:
    """Files under root, less caches and hidden (e.g. half-written temporary) files."""
    return [
        path.relative_to(root)
        for path in root.rglob(pattern)
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]


def _fresh_venv(path: Path) -> Path:
    """A new venv that sees the project venv's dependencies but not its editable SegViewer.

    A path line in a .pth file adds that folder to sys.path without running the .pth files inside
    it, so the editable install's import hook in the project venv stays off.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    python = path / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    deps = sysconfig.get_path("purelib")
    (Path(purelib.stdout.strip()) / "project-dependencies.pth").write_text(deps + "\n")
    return python


@pytest.mark.slow
def test_wheel_alone_carries_the_code_and_resources(tmp_path):
    source = tmp_path / "source"
    wheel = _build_wheel(source, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())

    sources = [
        f"{package}/{path.as_posix()}"
        for package in ("segviewer", "exporter")
        for path in _shipped(source / package, "*.py")
    ]
    resources = [
        f"segviewer/resources/{path.as_posix()}" for path in _shipped(source / "resources", "*")
    ]
    missing = sorted(set(sources + resources) - names)
    assert not missing, f"not in the wheel (add packages to pyproject.toml): {missing}"
    for folder in ("palettes", "icons", "demo/images", "demo/models"):
        assert any(n.startswith(f"segviewer/resources/{folder}/") for n in names), folder
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{command} =" in declared for command in COMMANDS), declared

    python = _fresh_venv(tmp_path / "venv")
    install = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel]
    assert _run(install).returncode == 0
    bin_dir = python.parent
    site = tmp_path / "venv" / "lib"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)

    where = _run(
        [python, "-c", "import segviewer.paths as p; print(p.__file__, p.resource_dir())"],
        cwd=tmp_path,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(site) for p in where.stdout.split()), where.stdout

    for command in ("segviewer-export", "segviewer-predict"):
        result = _run([bin_dir / command, "--help"], cwd=tmp_path, env=env)
        assert result.returncode == 0 and "usage" in result.stdout.lower(), result.stderr
    result = _run([bin_dir / "segviewer", "--version"], cwd=tmp_path, env=env)
    assert _shows_version(result.stdout + result.stderr), result.stderr
    shot = tmp_path / "demo.png"
    result = _run([bin_dir / "segviewer", "--demo", "--screenshot", shot], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    _check_screenshot(shot)


# The PyInstaller folder --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(FROZEN_TEST_TIMEOUT)
def test_pyinstaller_folder_runs_the_demo(tmp_path):
    """The folder (about 1.7 GB) is deleted afterwards."""
    app = tmp_path / "dist" / "segviewer"
    try:
        _build_and_run_frozen_app(app, tmp_path)
    finally:
        shutil.rmtree(tmp_path / "dist", ignore_errors=True)
        shutil.rmtree(tmp_path / "work", ignore_errors=True)


def _build_and_run_frozen_app(app: Path, tmp_path: Path) -> None:
    build_sh = REPO / "packaging" / "build.sh"
    build = _run(
        ["bash", build_sh, "--dist", app.parent, "--work", tmp_path / "work"],
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    for plugin in ("libqoffscreen.so", "libqxcb.so"):
        assert list(app.rglob(f"platforms/{plugin}")), f"Qt platform plugin {plugin} not bundled"
    assert list(app.rglob("segviewer/resources/demo/models/*/*/saved_model.pb"))

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    version = _run([app / "segviewer", "--version"], cwd=tmp_path, env=env)
    assert _shows_version(version.stdout + version.stderr), version.stderr
    shot = tmp_path / "demo.png"
    result = _run([app / "segviewer", "--demo", "--screenshot", shot], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_screenshot(shot)

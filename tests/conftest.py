"""Shared test set-up: headless Qt, quiet TensorFlow, and no test touches the user's settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
DEMO = REPO / "resources" / "demo"

pytest_plugins = ["conftest_serving"]  # the stand-in TF Serving fixtures


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Redirect QSettings and platformdirs config to a temporary folder (as labelme's tests do)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    try:
        from PySide6.QtCore import QSettings
    except ImportError:
        return
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(home / "qsettings"))


@pytest.fixture(scope="session")
def toy_base(tmp_path_factory) -> Path:
    """<base>/toy/1 and /2: real SavedModels with the exporter's signatures and the same classes;
    v2 shifts every label by one (see toy_savedmodels.toy_labels)."""
    from toy_savedmodels import save_toy_model

    base = tmp_path_factory.mktemp("toy_models")
    save_toy_model(base / "toy" / "1", shift=0)
    save_toy_model(base / "toy" / "2", shift=1)
    return base


@pytest.fixture(scope="session")
def review_models(tmp_path_factory) -> Path:
    """<base>/seg/1 and /2: the review test models (see review_data)."""
    from review_data import build_review_models

    return build_review_models(tmp_path_factory.mktemp("review_models"))

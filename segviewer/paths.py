"""Where the bundled resources (palettes, icons, the demo) live, installed or in a source tree."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def resource_dir() -> Path:
    """The resources folder: the checkout's `resources/` when this runs from one (also through
    the file links of `./install.sh`'s editable install, so the paths shown are the checkout's),
    else the installed package `segviewer.resources`."""
    source = Path(__file__).resolve().parent.parent / "resources"
    if source.is_dir() and (source.parent / "pyproject.toml").is_file():
        return source
    spec = importlib.util.find_spec("segviewer.resources")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return source


def demo_dir() -> Path:
    return resource_dir() / "demo"


def demo_models_dir() -> Path:
    """Base folder of the demo SavedModels: `<demo>/models/<model_name>/<version>/`."""
    return demo_dir() / "models"

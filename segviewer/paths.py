"""Where the bundled resources (palettes, icons, the demo) live, installed or in a source tree."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def resource_dir() -> Path:
    """The resources folder: `segviewer.resources` when installed, else `<repo>/resources`."""
    spec = importlib.util.find_spec("segviewer.resources")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "resources"


def demo_dir() -> Path:
    return resource_dir() / "demo"


def demo_models_dir() -> Path:
    """Base folder of the demo SavedModels: `<demo>/models/<model_name>/<version>/`."""
    return demo_dir() / "models"

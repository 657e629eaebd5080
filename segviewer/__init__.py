"""SegViewer: export DeepLab checkpoints, serve them, and review their segmentations."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read lazily: importlib.metadata scans the installed distributions, which the GUI's start-up
    # should not pay for before its window is painted.
    if name != "__version__":
        raise AttributeError(f"module 'segviewer' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("segviewer")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"

"""SegViewer: export DeepLab checkpoints, serve them, and review their segmentations."""

from __future__ import annotations

import os

# SegViewer does no linear algebra with numpy, so OpenBLAS's thread pool (one spinning thread per
# core, started when numpy loads) would only burn start-up CPU: 70 ms of a segviewer-predict run
# on 2 cores, more on bigger machines. Set before anything imports numpy; a user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


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

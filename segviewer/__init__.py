"""SegViewer: export DeepLab checkpoints, serve them, and review their segmentations."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segviewer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

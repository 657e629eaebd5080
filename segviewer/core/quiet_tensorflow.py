"""The one way SegViewer imports TensorFlow: on first need, with TensorFlow's own logging off.

Its native start-up lines (CUDA probing, absl) are written to fd 2 before any log level applies,
and its C++ and Python loggers report problems (a checkpoint's checksum, a missing shard) that the
callers turn into their own one-line errors, so users never see them. Python exceptions still
surface as usual. Used by the exporter, the in-process backend and the development server.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow() -> Any:
    """The `tensorflow` module, imported quietly the first time (thread-safe)."""
    with _lock:
        if "tensorflow" not in sys.modules:
            # 3: C++ FATAL only. A user's own setting wins, for debugging TensorFlow itself.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            with _stderr_silenced():
                import tensorflow  # noqa: F401
        import tensorflow as tf

        # Above ERROR, also when something else imported it first: TensorFlow's "ERROR:tensorflow"
        # lines repeat what its exceptions say, and the callers say it in one line.
        tf.get_logger().setLevel(logging.CRITICAL)
        return tf

"""What the checkpoint export dialog runs and shows, without widgets: the worker functions that
inspect and export a checkpoint, and the text made from what was detected.

The exporter (and TensorFlow with it) is imported inside the worker functions only, when the user
picks or exports a checkpoint: opening the dialog costs no TensorFlow import.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.defaults import default_output_stride
from segviewer.ui.workers import TaskState


def docker_command(export_dir: str | Path, model_name: str) -> str:
    """The command that serves every version of `model_name` with the official TF Serving image."""
    source = Path(export_dir).resolve() / model_name
    mount = f"type=bind,source={source},target=/models/{model_name}"
    return (
        f"docker run -p 8500:8500 -p 8501:8501 --mount {shlex.quote(mount)} "
        f"-e MODEL_NAME={shlex.quote(model_name)} -t tensorflow/serving"
    )


def inspect(state: TaskState, path: str) -> Any:
    from exporter import ExportError
    from exporter.checkpoint import inspect_checkpoint

    try:
        return inspect_checkpoint(path)
    except ExportError as exc:
        raise ValueError(str(exc)) from None  # workers show a ValueError's message as it is


def export(
    state: TaskState,
    options: Any,
    progress: Callable[[str, int, int], None],
    cancel: threading.Event,
) -> Any:
    from exporter import ExportError
    from exporter.export import export_model

    # Our own cancel flag, not the job's: the exporter decides whether it stopped in time, and a
    # result that was already written must still be reported.
    try:
        return export_model(options, progress=progress, cancelled=cancel.is_set)
    except ExportError as exc:
        raise ValueError(str(exc)) from None  # workers show a ValueError's message as it is


def suggested_output_stride(info: Any) -> int:
    """The output stride the exporter chooses for this checkpoint when none is given."""
    return default_output_stride(info.atrous_rates)


def rates_placeholder(info: Any) -> str:
    """What an empty atrous-rates field means for this checkpoint."""
    if info.aspp_branches == 0:
        return "none: the checkpoint has no atrous ASPP branches"
    if info.atrous_rates:
        rates = ",".join(str(r) for r in info.atrous_rates)
        return f"from the checkpoint: {rates} at output stride 16, doubled at 8"
    return f"required: {info.aspp_branches} rates, comma-separated"


def describe_checkpoint(info: Any) -> str:
    """A short two-line summary of a CheckpointInfo for the "Detected" row."""
    classes = info.num_classes if info.num_classes is not None else "unknown number of"
    if info.atrous_rates:
        rates = ",".join(str(r) for r in info.atrous_rates) + " (research default)"
    else:
        rates = f"{info.aspp_branches} ASPP branches" if info.aspp_branches else "none"
    depth = f", depth multiplier {info.depth_multiplier:g}" if info.depth_multiplier else ""
    return (
        f"{info.variant or 'unknown backbone'}, {classes} classes, "
        f"decoder: {'yes' if info.has_decoder else 'no'}{depth}\n"
        f"{info.variable_count} variables; atrous rates: {rates}; "
        f"suggested output stride {suggested_output_stride(info)}"
    )

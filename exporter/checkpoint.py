"""Reading research checkpoints: find the prefix, list variables, detect what was trained.

`inspect_checkpoint` tells the GUI and the CLI what a checkpoint holds (variant, classes, ASPP,
decoder) without building a network.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exporter import ExportError
from exporter.backbones import detect_variant
from exporter.defaults import DEFAULT_ATROUS_RATES
from segviewer.core.quiet_tensorflow import import_tensorflow

LOGITS = "logits/semantic/weights"
# Training bookkeeping a research checkpoint may carry next to the model's weights.
_BOOKKEEPING = re.compile(r"^global_step$|/(Momentum|Adam|Adam_1|ExponentialMovingAverage)$")


@dataclass(frozen=True)
class CheckpointInfo:
    prefix: str  # what tf.train.load_checkpoint reads, e.g. ".../model.ckpt"
    variant: str | None  # None: no known backbone's variables found
    num_classes: int | None  # from the logits shape; None without logits
    has_decoder: bool
    image_pooling: bool
    aspp_branches: int  # atrous (3x3) ASPP branches; their rates are not stored in a checkpoint
    atrous_rates: tuple[int, ...] | None  # research default for the branch count, if there is one
    variable_count: int
    depth_multiplier: float | None  # mobilenet_v2 only
    shapes: dict[str, tuple[int, ...]]  # model variables (bookkeeping left out)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _latest(folder: Path) -> str | None:
    """The prefix the folder's `checkpoint` state file names (None without one, as TF does)."""
    tf = import_tensorflow()
    try:
        return tf.train.latest_checkpoint(str(folder))
    except UnicodeDecodeError:
        problem = "is not UTF-8 text"
    except (tf.errors.OpError, ValueError) as exc:
        problem = f"cannot be read ({_one_line(exc)})"
    raise ExportError(
        f"checkpoint state file '{folder / 'checkpoint'}' {problem}; fix or remove it, or pass "
        "the checkpoint prefix (e.g. model.ckpt) instead of its folder"
    )


def resolve_prefix(path: str | Path) -> str:
    """The checkpoint prefix for a prefix, a folder holding a checkpoint, or a `checkpoint` file."""
    p = Path(path).expanduser()
    if p.is_file() and p.name == "checkpoint":
        p = p.parent
    if p.is_dir():
        latest = _latest(p)
        if latest and Path(f"{latest}.index").is_file():
            return latest
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0].with_suffix(""))
        if indexes:
            raise ExportError(
                f"checkpoint folder '{p}' holds {len(indexes)} checkpoints; pass one prefix, "
                f"e.g. '{indexes[-1].with_suffix('')}'"
            )
        raise ExportError(f"no checkpoint in '{p}': expected a '<prefix>.index' file there")
    if ".data-" in p.name:
        p = Path(str(p).split(".data-")[0])
    elif p.suffix in (".index", ".meta"):
        p = p.with_suffix("")
    if Path(f"{p}.index").is_file():
        return str(p)
    if not p.parent.exists():
        raise ExportError(f"checkpoint '{path}' not found: folder '{p.parent}' does not exist")
    raise ExportError(
        f"checkpoint '{path}' not found: no '{p.name}.index' file; pass the prefix "
        "(e.g. model.ckpt), its folder, or its 'checkpoint' file"
    )


def _reader(prefix: str):
    tf = import_tensorflow()
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise ExportError(
            f"'{prefix}' is not a readable TF checkpoint ({_one_line(exc)})"
        ) from None


def read_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """Model variables and their shapes (bookkeeping such as global_step left out)."""
    shapes = _reader(prefix).get_variable_to_shape_map()
    return {n: tuple(s) for n, s in shapes.items() if not _BOOKKEEPING.search(n)}


def read_weights(prefix: str, names: list[str]) -> dict[str, np.ndarray]:
    """The named weights; a damaged or missing `.data` file is an ExportError naming it."""
    tf = import_tensorflow()
    data = sorted(glob.glob(f"{glob.escape(prefix)}.data-*"))
    if not data:
        raise ExportError(
            f"checkpoint data file '{prefix}.data-00000-of-00001' is missing (only its index "
            f"'{prefix}.index' is there); copy the .data file(s) next to the index"
        )
    where = f"'{data[0]}'" if len(data) == 1 else f"'{prefix}.data-*'"
    reader = _reader(prefix)
    weights = {}
    for name in names:
        try:
            weights[name] = reader.get_tensor(name)
        except IndexError:  # TF's reader runs past the end of a cut-short file
            problem = "is truncated (shorter than its index says)"
        except (tf.errors.OpError, RuntimeError, ValueError) as exc:
            reason = _one_line(exc)
            if "checksum does not match" in reason.lower():
                problem = "is damaged (checksum does not match)"
            elif "no such file" in reason.lower():
                problem = f"is missing a shard ({reason})"
            else:
                problem = f"cannot be read ({reason})"
        else:
            continue
        raise ExportError(
            f"checkpoint data {where} {problem} at variable '{name}'; copy or download the "
            "checkpoint again"
        )
    return weights


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    prefix = resolve_prefix(path)
    shapes = read_shapes(prefix)
    variant = detect_variant(shapes)
    branches = 0
    while f"aspp{branches + 1}_depthwise/depthwise_weights" in shapes or (
        f"aspp{branches + 1}/weights" in shapes
    ):
        branches += 1
    multiplier = None
    if variant == "mobilenet_v2":
        from exporter.backbones.mobilenet_v2 import depth_multiplier

        multiplier = depth_multiplier(shapes_as_arrays(shapes))
    return CheckpointInfo(
        prefix=prefix,
        variant=variant,
        num_classes=shapes[LOGITS][-1] if LOGITS in shapes else None,
        has_decoder=any(n.startswith("decoder/") for n in shapes),
        image_pooling="image_pooling/weights" in shapes,
        aspp_branches=branches,
        atrous_rates=DEFAULT_ATROUS_RATES if branches == 3 else (() if branches == 0 else None),
        variable_count=len(shapes),
        depth_multiplier=multiplier,
        shapes=shapes,
    )


class _Shaped:
    """Stands in for a weight when only its shape is known (backbones read `.shape` at build)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


def shapes_as_arrays(shapes: dict[str, tuple[int, ...]]) -> dict[str, _Shaped]:
    return {name: _Shaped(shape) for name, shape in shapes.items()}

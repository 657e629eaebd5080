"""Export a research checkpoint to `<export_dir>/<model_name>/<version>/`, atomically.

The SavedModel is written to a hidden temporary folder beside the target (TF Serving ignores
names that are not numbers), loaded back and run once, and only then renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import segviewer
from exporter import ExportError, defaults
from exporter import checkpoint as ckpt
from exporter.backbones import UnknownVariantError, known_variants, make_backbone
from exporter.preprocess import scale_dimension
from segviewer.core.liveness import process_alive
from segviewer.core.quiet_tensorflow import import_tensorflow

Progress = Callable[[str, int, int], None]
_STEPS = ("read checkpoint", "check variables", "build network", "write SavedModel", "verify")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LISTED = 6  # variables named in an error message before "and N more"
# `.<version>.tmp-<host>-<pid>-<random>`: the export writing it names itself, so the next export
# removes only folders whose process has gone (killed); older releases left `.<v>.tmp-<random>`.
_TEMP = re.compile(r"^\.\d+\.tmp-(?:(?P<host>.+)-(?P<pid>\d+)-)?[a-z0-9_]+$")
# `.<version>.old-<host>-<pid>-<ns>`: a version `--overwrite` moved aside for a moment (older
# releases: `.<version>.old-<ns>`).
_OLD = re.compile(r"^\.(?P<version>\d+)\.old-(?:(?P<host>.+)-(?P<pid>\d+)-)?\d+$")


@dataclass
class ExportOptions:
    checkpoint: str | Path
    export_dir: str | Path
    model_name: str
    model_version: int | None = None  # None: the next free version
    model_variant: str = "auto"
    num_classes: int | None = None  # None: from the logits' shape
    crop_size: tuple[int, int] = defaults.CROP_SIZE
    atrous_rates: tuple[int, ...] | None = None  # None: from the checkpoint's ASPP branches
    output_stride: int | None = None  # None: defaults.default_output_stride(atrous rates)
    decoder_output_stride: int | None = None  # None: 4 if the checkpoint has a decoder; 0: none
    inference_scales: tuple[float, ...] = defaults.INFERENCE_SCALES
    add_flipped_images: bool = False
    labels: str | Path | None = None  # palette JSON with the class names and colours
    overwrite: bool = False
    # Weights as graph constants, for servers older than MIN_TF_SERVING (see DeepLab `frozen`).
    compat_older_servers: bool = False


@dataclass
class ExportResult:
    path: Path
    version: int
    variant: str
    num_classes: int
    classes: list[dict[str, Any]]
    settings: dict[str, Any]
    signatures: str  # saved_model_cli-style listing
    size_bytes: int
    seconds: float
    steps: list[tuple[str, float]] = field(default_factory=list)  # (step, started at seconds)


def next_free_version(export_dir: str | Path, model_name: str) -> int:
    """One more than the highest numeric version folder of the model (1 for a new model)."""
    base = Path(export_dir) / model_name
    versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def _listing(names: dict[str, tuple[int, ...]]) -> str:
    items = [f"{n} {list(s)}" for n, s in sorted(names.items())]
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more


def _resolve_config(options: ExportOptions, info: ckpt.CheckpointInfo):
    from exporter.deeplab import NetworkConfig

    variant = options.model_variant
    if variant == "auto":
        if info.variant is None:
            raise ExportError(
                f"cannot tell the model variant of '{info.prefix}' from its variable names; "
                f"pass --model-variant (one of: {', '.join(known_variants())})"
            )
        variant = info.variant
    elif variant not in known_variants():
        raise ExportError(
            f"unknown model variant '{variant}'; use auto or one of: {', '.join(known_variants())}"
        )
    num_classes = options.num_classes or info.num_classes
    if num_classes is None:
        raise ExportError(f"checkpoint '{info.prefix}' has no {ckpt.LOGITS}; pass --num-classes")
    if info.num_classes is not None and num_classes != info.num_classes:
        raise ExportError(
            f"--num-classes {num_classes} does not match the checkpoint's logits "
            f"({info.num_classes} classes); drop --num-classes or fix it"
        )
    rates = options.atrous_rates
    if rates is None:
        if info.atrous_rates is None:
            raise ExportError(
                f"checkpoint has {info.aspp_branches} atrous ASPP branches; pass --atrous-rates "
                f"with {info.aspp_branches} rates"
            )
        stride = options.output_stride or defaults.default_output_stride(info.atrous_rates)
        rates = defaults.rates_at(info.atrous_rates, stride)
    output_stride = options.output_stride or defaults.default_output_stride(rates)
    if output_stride not in defaults.OUTPUT_STRIDES:
        raise ExportError(f"--output-stride {output_stride} is not supported; use 8, 16 or 32")
    decoder = options.decoder_output_stride
    if decoder is None:
        decoder = defaults.DEFAULT_DECODER_OUTPUT_STRIDE if info.has_decoder else 0
    crop = tuple(options.crop_size)
    if len(crop) != 2 or min(crop) < 1:
        raise ExportError(f"--crop-size {crop} is not valid; give two positive sizes, e.g. 513,513")
    for scale in options.inference_scales:
        if scale <= 0:
            raise ExportError(f"--inference-scales: scale {scale} must be positive")
        scaled = [scale_dimension(d, scale) for d in crop]
        if any((d - 1) % output_stride for d in scaled):
            hint = ",".join(str(-(-(d - 1) // output_stride) * output_stride + 1) for d in crop)
            what = "" if scale == 1.0 else f" at inference scale {scale} ({scaled[0]}x{scaled[1]})"
            raise ExportError(
                f"crop size {crop[0]}x{crop[1]}{what} does not fit output stride {output_stride}: "
                f"(crop - 1) must be a multiple of {output_stride}; try --crop-size {hint}"
            )
    return NetworkConfig(
        variant=variant,
        num_classes=num_classes,
        crop_size=crop,  # type: ignore[arg-type]
        output_stride=output_stride,
        atrous_rates=tuple(rates),
        decoder_output_stride=decoder or None,
        image_pooling=info.image_pooling,
        inference_scales=tuple(options.inference_scales),
        add_flipped_images=options.add_flipped_images,
    )


def _check_variables(config, info: ckpt.CheckpointInfo) -> dict[str, np.ndarray]:
    """The weights the network reads; ExportError naming missing/unexpected variables."""
    from exporter.deeplab import feature_depths, head_variables

    def compare(expected: dict[str, tuple[int, ...]], whole: bool) -> None:
        missing = {n: s for n, s in expected.items() if n not in info.shapes}
        if missing:
            raise ExportError(
                f"checkpoint '{info.prefix}' lacks {len(missing)} variable(s) the "
                f"{config.variant} model needs: {_listing(missing)} (check --model-variant, "
                "--atrous-rates and --decoder-output-stride)"
            )
        wrong = {n: s for n, s in expected.items() if info.shapes[n] != s}
        if wrong:
            got = ", ".join(f"{n} {list(info.shapes[n])}" for n in sorted(wrong)[:_LISTED])
            raise ExportError(
                f"{len(wrong)} checkpoint variable(s) have unexpected shapes: {got}; expected "
                f"{_listing(wrong)}"
            )
        unexpected = {n: s for n, s in info.shapes.items() if n not in expected}
        if whole and unexpected:
            raise ExportError(
                f"checkpoint has {len(unexpected)} variable(s) the {config.variant} model does "
                f"not use: {_listing(unexpected)} (check --model-variant, --atrous-rates and "
                "--decoder-output-stride)"
            )

    try:
        backbone = make_backbone(
            config.variant, ckpt.shapes_as_arrays(info.shapes), config.output_stride
        )
    except UnknownVariantError as exc:
        raise ExportError(str(exc)) from None
    compare(backbone.expected_variables(), whole=False)
    weights = ckpt.read_weights(info.prefix, list(backbone.expected_variables()))
    expected, depth, low_depth = feature_depths(config, weights)
    expected.update(head_variables(config, depth, low_depth))
    compare(expected, whole=True)
    return ckpt.read_weights(info.prefix, list(expected))


def _settings(config, info: ckpt.CheckpointInfo, compat: bool) -> dict[str, Any]:
    settings = asdict(config)
    settings.update(
        compat_older_servers=compat,
        min_tensorflow_serving=(
            defaults.MIN_TF_SERVING_COMPAT if compat else defaults.MIN_TF_SERVING
        ),
        crop_size=list(config.crop_size),
        atrous_rates=list(config.atrous_rates),
        inference_scales=list(config.inference_scales),
        depth_multiplier=info.depth_multiplier,
        exporter_version=segviewer.__version__,
        checkpoint=info.prefix,  # as given (relative stays relative: no build paths in models)
    )
    settings.pop("image_pooling")
    return settings


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _verify(path: Path, num_classes: int) -> str:
    """Load the written model and segment one small image through every image signature."""
    from exporter.signatures import OUTPUT, describe

    tf = import_tensorflow()

    loaded = tf.saved_model.load(str(path))
    image = np.linspace(0, 255, 37 * 53 * 3).astype(np.uint8).reshape(1, 37, 53, 3)
    labels = loaded.signatures["serving_default"](images=tf.constant(image))[OUTPUT].numpy()
    if labels.shape != (1, 37, 53) or labels.dtype != np.int64 or labels.max() >= num_classes:
        raise ExportError(f"the written model at '{path}' gives bad labels; please report this")
    return describe(loaded.signatures)


def export_model(
    options: ExportOptions,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ExportResult:
    """Export the checkpoint; ExportError (one line) on user errors or when cancelled."""
    started = time.monotonic()
    steps: list[tuple[str, float]] = []

    def step(index: int) -> None:
        if cancelled is not None and cancelled():
            raise ExportError("export cancelled")
        name = _STEPS[index] if index < len(_STEPS) else "done"
        steps.append((name, time.monotonic() - started))
        if progress is not None:
            progress(name, index, len(_STEPS))

    if not _NAME.match(options.model_name):
        raise ExportError(
            f"model name '{options.model_name}' is not valid; use letters, digits, '.', '_', '-'"
        )
    base = Path(options.export_dir).expanduser() / options.model_name
    if base.is_dir():  # before choosing a version: a killed --overwrite may have moved one aside
        remove_leftovers(base)
    version = options.model_version or next_free_version(base.parent, options.model_name)
    if version < 1:
        raise ExportError(f"--model-version {version} is not valid; use a positive integer")
    target = base / str(version)
    if target.exists() and not options.overwrite:
        raise ExportError(f"'{target}' already exists; pass --overwrite or choose another version")

    step(0)
    info = ckpt.inspect_checkpoint(options.checkpoint)
    config = _resolve_config(options, info)
    step(1)
    weights = _check_variables(config, info)
    from exporter.deeplab import DeepLab
    from exporter.signatures import build_module, class_list, metadata_json
    from segviewer.core.fingerprint import weights_digest

    classes = class_list(config.num_classes, options.labels)
    settings = _settings(config, info, options.compat_older_servers)
    step(2)
    model = DeepLab(config, weights, frozen=options.compat_older_servers)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create '{base}': {exc.strerror or exc}") from None
    owner = f"{socket.gethostname()}-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-{owner}-", dir=base))
    try:
        tf = import_tensorflow()
        step(3)
        # The weights' digest travels in the metadata, so a client over gRPC or REST can name
        # the model version by content, as one that reads the files does (core.fingerprint).
        settings["weights_sha256"] = weights_digest(
            (v.dtype.name, tuple(v.shape), v.numpy()) for v in model.variables.values())
        module, signatures = build_module(model, metadata_json(classes, settings), tmp)
        saved = tmp / "model"
        tf.saved_model.save(module, str(saved), signatures=signatures)
        step(4)
        listing = _verify(saved, config.num_classes)
        step(5)
        _replace(saved, target, owner)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(
        path=target,
        version=version,
        variant=config.variant,
        num_classes=config.num_classes,
        classes=classes,
        settings=settings,
        signatures=listing,
        size_bytes=_dir_size(target),
        seconds=time.monotonic() - started,
        steps=steps,
    )


def _ended(found: re.Match[str]) -> bool:
    """Whether the export that named a leftover folder has ended: its process is gone from this
    machine, or the name is an older release's (it recorded no owner)."""
    return not found["pid"] or (found["host"] == socket.gethostname()
                                and not process_alive(int(found["pid"])))


def remove_leftovers(model_dir: Path) -> list[Path]:
    """Clean up after killed exports in `model_dir`; returns the folders removed.

    Their temporary folders are removed. A version `--overwrite` had moved aside is put back
    when the export was killed before the new version took its place, and removed once the new
    one is there: the previous version is never lost. A folder whose export is still running on
    this machine, or that another machine is writing, is kept."""
    removed = []
    for child in sorted(model_dir.iterdir()):
        found = _TEMP.match(child.name) or _OLD.match(child.name)
        if found is None or not child.is_dir() or not _ended(found):
            continue
        if "version" in found.groupdict() and not (model_dir / found["version"]).exists():
            child.rename(model_dir / found["version"])  # killed between the swap's renames
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def _replace(source: Path, target: Path, owner: str) -> None:
    """Rename `source` to `target`; an existing target is moved aside first (named by `owner`,
    for `remove_leftovers` if this process is killed in between) and then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{owner}-{time.time_ns()}")
        target.rename(old)
    source.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

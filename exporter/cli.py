"""segviewer-export: a DeepLab research checkpoint -> a versioned TF Serving SavedModel.

Thin wrapper over `exporter.export.export_model`. Exit codes: 0 done, 2 usage or export error
(one line on stderr, never a traceback), 130 interrupted (Ctrl-C; nothing is written).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from exporter import ExportError
from exporter.defaults import (
    CROP_SIZE,
    INFERENCE_SCALES,
    MIN_TF_SERVING,
    MIN_TF_SERVING_COMPAT,
    OUTPUT_STRIDES,
    parse_numbers,
)
from segviewer.core.cli_support import EXIT_OK, EXIT_USAGE, Parser, run_main
from segviewer.core.quiet_tensorflow import import_tensorflow

PROG = "segviewer-export"
_EPILOG = """\
defaults: crop 513,513 (as research export_model.py); output stride 8 when the checkpoint has no
atrous ASPP branches (the mobilenet_v2 zoo models, exported at 8), else 16 with the research rates
6,12,18 (doubled at output stride 8); decoder output stride 4 when the checkpoint has a decoder.
Versions go to EXPORT_DIR/MODEL_NAME/N, N = the next free number unless --model-version is given.
"""


def _numbers(kind: Callable[[str], float], example: str | None = None) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:  # argparse names the flag: "argument --crop-size: 'big' must be ..."
            return parse_numbers(text, kind, "", example)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _crop(text: str) -> tuple[int, int]:
    sizes = _numbers(int, "513,513")(text)
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2:
        raise argparse.ArgumentTypeError(f"--crop-size takes H,W, e.g. 513,513 (got '{text}')")
    return sizes  # type: ignore[return-value]


def _app_version() -> str:
    from segviewer import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description="Export a DeepLab research checkpoint as a TF Serving SavedModel.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint prefix (model.ckpt), its folder, or its 'checkpoint' file")
    p.add_argument("--export-dir", required=True, help="base folder of the served models")
    p.add_argument("--model-name", required=True, help="model folder name inside --export-dir")
    p.add_argument("--model-version", type=int, help="version number (default: next free)")
    p.add_argument("--model-variant", default="auto",
                   help="backbone, e.g. mobilenet_v2, xception_65 (default: auto, from names)")
    p.add_argument("--num-classes", type=int, help="default: from the logits' shape")
    p.add_argument("--crop-size", type=_crop, default=CROP_SIZE, metavar="H,W",
                   help="network input size; (size - 1) must divide by the output stride")
    p.add_argument("--atrous-rates", type=_numbers(int), metavar="R,R,R",
                   help="ASPP rates, or 'none' (default: from the checkpoint, see below)")
    p.add_argument("--output-stride", type=int, choices=OUTPUT_STRIDES,
                   help="default: 8 without atrous rates, else 16")
    p.add_argument("--decoder-output-stride", type=int, metavar="N",
                   help="decoder stride; 0 for none (default: 4 if the checkpoint has a decoder)")
    p.add_argument("--inference-scales", type=_numbers(float),
                   default=INFERENCE_SCALES, metavar="S,S",
                   help="average the softmax over these scales, e.g. 0.75,1.0,1.25")
    p.add_argument("--add-flipped-images", action="store_true",
                   help="also average over left-right flipped inputs")
    p.add_argument("--labels", metavar="FILE.json",
                   help='class names/colours {"classes":[{"id","name","color"}]} '
                        "(default: PASCAL/Cityscapes/ADE20K by class count)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--compat-older-servers", action="store_true",
                   help=f"weights as constants, so that TF Serving older than {MIN_TF_SERVING} "
                        f"(down to {MIN_TF_SERVING_COMPAT}) loads the model")
    p.add_argument("--version", action="version", version=f"%(prog)s {_app_version()}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # On Ctrl-C the export's temporary folder is removed on the way out.
    return run_main(PROG, lambda: _export(args), "interrupted; nothing was written")


def _export(args: argparse.Namespace) -> int:
    import_tensorflow()
    from exporter.export import ExportOptions, export_model

    options = ExportOptions(
        checkpoint=args.checkpoint,
        export_dir=args.export_dir,
        model_name=args.model_name,
        model_version=args.model_version,
        model_variant=args.model_variant,
        num_classes=args.num_classes,
        crop_size=args.crop_size,
        atrous_rates=args.atrous_rates,
        output_stride=args.output_stride,
        decoder_output_stride=args.decoder_output_stride,
        inference_scales=args.inference_scales or INFERENCE_SCALES,
        add_flipped_images=args.add_flipped_images,
        labels=args.labels,
        overwrite=args.overwrite,
        compat_older_servers=args.compat_older_servers,
    )
    started = time.monotonic()

    def progress(step: str, done: int, total: int) -> None:
        if done < total:
            print(f"[{done + 1}/{total}] {step} ({time.monotonic() - started:.1f} s)", flush=True)

    try:
        result = export_model(options, progress)
    except ExportError as exc:
        print(f"segviewer-export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    s = result.settings
    print(
        f"\nExported {result.variant} ({result.num_classes} classes, output stride "
        f"{s['output_stride']}, crop {s['crop_size'][0]}x{s['crop_size'][1]}, scales "
        f"{','.join(map(str, s['inference_scales']))}"
        f"{', flipped' if s['add_flipped_images'] else ''}) in {result.seconds:.1f} s\n"
        f"  path: {result.path}\n  size: {result.size_bytes / 1e6:.1f} MB\n"
        f"  serves on: TF Serving {s['min_tensorflow_serving']} or newer\n"
        f"  classes: {', '.join(c['name'] for c in result.classes[:8])}"
        f"{', ...' if len(result.classes) > 8 else ''}\n\n{result.signatures}"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

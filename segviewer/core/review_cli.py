"""segviewer-review: compare two models (or two versions of one) on a set of images, optionally
against ground truth, and write an HTML report and a CSV of per-image metrics.

A thin wrapper over `segviewer.core.review.run_review` and `segviewer.core.report.write_report`.
A side is a model (--a/--b) or a folder of label PNGs segviewer-predict wrote (--a-predictions/
--b-predictions). Verdicts recorded in the viewer on the same images and model versions (by
content, on any path to the models) come from the review store and appear in the report.
Exit codes: 0 all images compared, 1 some images failed (each named on stderr), 2 usage or
connection error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from segviewer import __version__
from segviewer.core.cli_support import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    make_out_dir,
    only_model,
    positive_int,
    run_main,
)
from segviewer.core.images import find_images
from segviewer.core.labels import PaletteError, get_palette
from segviewer.core.prediction_source import PredictionFolder, PredictionFolderError
from segviewer.core.report import default_sort, write_report
from segviewer.core.review import (
    DEFAULT_IGNORE_LABEL,
    ImageResult,
    ReviewError,
    ReviewOptions,
    ReviewSession,
    SessionVerdicts,
    Side,
    SortKey,
    Source,
    draw_review_sample,
    run_review,
)
from segviewer.core.review_store import ReviewStore, default_store_path
from segviewer.core.sampling import Sample, SampleError, SampleSpec
from segviewer.core.serving.base import Backend, BackendError, ModelRef
from segviewer.core.serving.connection import (
    ConnectionSpec,
    add_connection_flags,
    spec_options,
)

PROG = "segviewer-review"


def _label_id(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a class id 0-65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Compare two segmentation models on the same images "
                "(and against ground truth); write report.html and metrics.csv.")
    p.add_argument("images", nargs="+", metavar="IMAGES",
                   help="image files, folders (searched recursively) or glob patterns")
    p.add_argument("--a", metavar="SOURCE",
                   help="model A: HOST:PORT (gRPC), http(s)://HOST:PORT (REST) or a SavedModel, "
                   "model or base folder (in-process)")
    p.add_argument("--b", metavar="SOURCE", help="model B, as --a (default: the same as --a)")
    for side in ("a", "b"):
        p.add_argument(f"--{side}-predictions", type=Path, metavar="DIR",
                       help=f"instead of running model {side.upper()}: the label PNGs "
                       "segviewer-predict wrote for these images")
    for side in ("a", "b"):
        p.add_argument(f"--{side}-model", metavar="NAME",
                       help=f"model {side.upper()}'s name (default: "
                       + ("the only model)" if side == "a" else "--a-model, or the only model)"))
        p.add_argument(f"--{side}-version", type=int, metavar="N",
                       help=f"model {side.upper()}'s version (default: the newest)")
    p.add_argument("--gt", type=Path, metavar="DIR",
                   help="ground-truth label PNGs, matched to images by file name")
    p.add_argument("--gt-palette", metavar="NAME|FILE",
                   help="palette of colour-coded ground truth: pascal, cityscapes, ade20k, "
                   "mapillary or a JSON file")
    p.add_argument("--ignore-label", type=_label_id, default=DEFAULT_IGNORE_LABEL, metavar="ID",
                   help=f"ground-truth id left out of the scores (default {DEFAULT_IGNORE_LABEL})")
    p.add_argument("--num-classes", type=positive_int, metavar="N",
                   help="number of classes (default: from the models; for prediction "
                   "folders, the ids found)")
    p.add_argument("--palette", metavar="NAME|FILE",
                   help="classes of prediction folders (default: model A's, else pascal)")
    p.add_argument("--sample", type=positive_int, metavar="N",
                   help="review a random sample of N images instead of all")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seed of the sample (default: a new one, printed and in the report)")
    p.add_argument("--min-per-class", type=positive_int, metavar="K",
                   help="stratify the sample: at least K images containing each class present "
                   "(read from --gt, else from the prediction folders)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help=f"the review store (SQLite) to read verdicts from (default: "
                   f"{default_store_path()})")
    p.add_argument("--reviewer", metavar="NAME",
                   help="whose verdicts --import-verdicts records (default: your user name)")
    p.add_argument("--import-verdicts", type=Path, metavar="FILE",
                   help="import an old .segviewer-review.json into the store first")
    p.add_argument("--export-verdicts", type=Path, metavar="FILE",
                   help="write this review's verdicts to FILE.csv or FILE.json")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write report.html and metrics.csv here")
    p.add_argument("--sort", choices=[k.value for k in SortKey],
                   help="worst-first order of the report (default: miou-drop with ground truth, "
                   "else agreement)")
    p.add_argument("--worst", type=positive_int, default=8, metavar="N",
                   help="worst images shown in the report (default 8)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="images in flight (default: 4 with a server, 1 in-process)")
    add_connection_flags(p, where=False)
    p.add_argument("--quiet", action="store_true", help="errors only")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _open(flag: str, text: str, model: str | None, args: argparse.Namespace) -> Backend:
    try:
        spec = ConnectionSpec.parse(text, **spec_options(args, (model,) if model else ()))
        if spec.kind == "local" and not Path(text).exists():
            raise UsageError(f"{flag} '{text}' does not exist — pass HOST:PORT, an http(s):// "
                             "URL or a SavedModel folder")
        return spec.open()
    except BackendError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _side(args: argparse.Namespace, side: str,
          opened: dict[str, Backend]) -> Side:
    """Source or prediction folder for `side` ("a" or "b"); backends opened go into `opened`
    (one per distinct --a/--b: one connection, one TF)."""
    folder = getattr(args, f"{side}_predictions")
    spec = getattr(args, side) or (args.a if side == "b" and not args.b_predictions else None)
    if folder is not None:
        if getattr(args, side):
            raise UsageError(f"give --{side} or --{side}-predictions, not both")
        try:
            return PredictionFolder(folder)
        except PredictionFolderError as exc:
            raise UsageError(f"--{side}-predictions: {exc}") from None
    if spec is None:
        raise UsageError(f"model {side.upper()} is missing — give --{side} SOURCE or "
                         f"--{side}-predictions DIR")
    name = args.a_model if side == "a" else (args.b_model or args.a_model)
    if spec not in opened:
        opened[spec] = _open(f"--{side}", spec, name, args)
    backend = opened[spec]
    return Source(backend, _ref(f"--{side}", backend, name, getattr(args, f"{side}_version")))


def _draw(args: argparse.Namespace, a: Side, b: Side, images: list[Path],
          options: ReviewOptions) -> Sample | None:
    if args.sample is None:
        if args.seed is not None or args.min_per_class:
            raise UsageError("--seed and --min-per-class choose a sample: give --sample N too")
        return None
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    try:
        return draw_review_sample(images, SampleSpec(args.sample, seed, args.min_per_class or 0),
                                  a, b, options)
    except SampleError as exc:
        raise UsageError(f"--sample: {exc}") from None


def _ref(flag: str, backend: Backend, name: str | None, version: int | None) -> ModelRef:
    return ModelRef(name if name is not None else only_model(backend, f"{flag}-model"), version)


def _report_failure(result: ImageResult) -> None:
    if not result.ok:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # over the progress count, not after it
        print(f"{PROG}: failed: {result.key}: {result.error}", file=sys.stderr, flush=True)


def _progress(done: int, total: int) -> None:
    sys.stderr.write(f"\r{done}/{total}" + ("\n" if done == total else ""))
    sys.stderr.flush()


def _summary(session: ReviewSession, sort: SortKey) -> list[str]:
    totals = session.totals()
    lines = [f"{side}: {info.description}, fingerprint {info.fingerprint}"
             for side, info in (("A", session.a), ("B", session.b))]
    agreement = f"{totals.agreement:.2f}%" if totals.agreement is not None else "–"
    lines.append(f"{totals.images} images compared, {totals.failed} failed; agreement "
                 f"{agreement}")
    if totals.scores_a is not None and totals.scores_b is not None:
        a, b = totals.scores_a, totals.scores_b
        lines.append(f"{totals.with_gt} with ground truth: pixel accuracy A "
                     f"{100 * a.pixel_accuracy:.2f}% B {100 * b.pixel_accuracy:.2f}%; mIoU A "
                     f"{100 * a.mean_iou:.2f}% B {100 * b.mean_iou:.2f}% (B − A "
                     f"{100 * (b.mean_iou - a.mean_iou):+.2f} points)")
    worst = [r.key for r in session.sorted(sort)[:5]]
    if worst:
        lines.append(f"worst by {sort.value}: {', '.join(worst)}")
    return lines


def _run(args: argparse.Namespace) -> int:
    palette = None
    if args.gt_palette:
        try:
            palette = get_palette(args.gt_palette)
        except PaletteError as exc:
            raise UsageError(f"--gt-palette: {exc}") from None
    classes = None
    if args.palette:
        try:
            classes = get_palette(args.palette)
        except PaletteError as exc:
            raise UsageError(f"--palette: {exc}") from None
    if args.gt is not None and not args.gt.is_dir():
        raise UsageError(f"--gt '{args.gt}' is not a folder — pass the folder of ground-truth "
                         "label PNGs named like the images")
    images = find_images(args.images)
    if not images:
        raise UsageError(f"no images found in {' '.join(args.images)}")
    if args.out is not None:
        make_out_dir(args.out)
    store = ReviewStore(args.store)

    opened: dict[str, Backend] = {}
    try:
        a = _side(args, "a", opened)
        b = _side(args, "b", opened)
        if isinstance(a, Source) and isinstance(b, Source) and a.backend is b.backend \
                and a.ref == b.ref:
            raise UsageError(f"--a and --b are the same model ({a.ref} on "
                             f"{a.backend.description}) — pick versions with --a-version and "
                             "--b-version, or another --b")
        in_process = all(Path(spec).exists() for spec in opened)
        options = ReviewOptions(args.gt, palette, args.ignore_label, args.num_classes,
                                args.workers or (1 if in_process and opened else 4), classes)
        sample = _draw(args, a, b, images, options)
        if sample is not None and not args.quiet:
            print(f"sample: {sample.describe()}")
        show = None if args.quiet or not sys.stderr.isatty() else _progress
        session = run_review(a, b, sample.chosen if sample else images, options, show,
                             on_result=_report_failure, sample=sample)
    finally:
        for backend in opened.values():
            backend.close()

    if session.interrupted:
        print(f"{PROG}: interrupted — {len(session.results)} of {session.total} images compared, "
              "no report written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if session.lost_connection:
        print(f"{PROG}: error: stopped, a server is not answering: {session.lost_connection} "
              f"({len(session.results)} of {session.total} images compared, no report "
              "written)", file=sys.stderr)
        return EXIT_USAGE
    sort = SortKey(args.sort) if args.sort else None
    if not args.quiet:
        print("\n".join(_summary(session, sort or default_sort(session))))
    verdicts = SessionVerdicts(store, session, args.reviewer)
    if args.import_verdicts is not None:
        count = verdicts.import_legacy(args.import_verdicts)
        if not args.quiet:
            print(f"imported {count} verdicts from {args.import_verdicts} as "
                  f"{verdicts.reviewer}")
    if args.export_verdicts is not None:
        count = verdicts.export(args.export_verdicts)
        if not args.quiet:
            print(f"verdicts: {count} written to {args.export_verdicts}")
    if args.out is not None:
        try:
            html_path, csv_path = write_report(session, args.out, verdicts.verdicts, sort,
                                               args.worst)
        except OSError as exc:
            raise UsageError(f"cannot write the report to '{args.out}': "
                             f"{exc.strerror or exc}") from None
        if not args.quiet:
            print(f"report: {html_path}\nmetrics: {csv_path}")
    return EXIT_FAILED if session.failures else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(PROG, lambda: _run(args), "interrupted; no report written",
                    (ReviewError, BackendError))

if __name__ == "__main__":
    sys.exit(main())

"""segviewer-review: compare two models (or two versions of one) on a set of images, optionally
against ground truth, and write an HTML report and a CSV of per-image metrics.

A thin wrapper over `segviewer.core.review.run_review` and `segviewer.core.report.write_report`.
Verdicts recorded in the viewer for the same folder and pair of sources appear in the report.
Exit codes: 0 all images compared, 1 some images failed (each named on stderr), 2 usage or
connection error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
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
)
from segviewer.core.images import find_images
from segviewer.core.labels import PaletteError, get_palette
from segviewer.core.report import default_sort, write_report
from segviewer.core.review import (
    DEFAULT_IGNORE_LABEL,
    ImageResult,
    ReviewError,
    ReviewOptions,
    ReviewSession,
    SortKey,
    Source,
    VerdictStore,
    run_review,
)
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
    p.add_argument("--a", required=True, metavar="SOURCE",
                   help="model A: HOST:PORT (gRPC), http(s)://HOST:PORT (REST) or a SavedModel, "
                   "model or base folder (in-process)")
    p.add_argument("--b", metavar="SOURCE", help="model B, as --a (default: the same as --a)")
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
                   help="number of classes (default: from the models)")
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
    lines = [f"A: {session.a.description}", f"B: {session.b.description}"]
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
    if args.gt is not None and not args.gt.is_dir():
        raise UsageError(f"--gt '{args.gt}' is not a folder — pass the folder of ground-truth "
                         "label PNGs named like the images")
    images = find_images(args.images)
    if not images:
        raise UsageError(f"no images found in {' '.join(args.images)}")
    if args.out is not None:
        make_out_dir(args.out)

    b_spec = args.b or args.a
    b_name = args.b_model or args.a_model
    backend_a = _open("--a", args.a, args.a_model, args)
    # One backend when both sides are on the same server or folder: one connection, one TF.
    backend_b = backend_a if b_spec == args.a else _open("--b", b_spec, b_name, args)
    try:
        ref_a = _ref("--a", backend_a, args.a_model, args.a_version)
        ref_b = _ref("--b", backend_b, b_name, args.b_version)
        if backend_b is backend_a and ref_a == ref_b:
            raise UsageError(f"--a and --b are the same model ({ref_a} on "
                             f"{backend_a.description}) — pick versions with --a-version and "
                             "--b-version, or another --b")
        in_process = all(Path(spec).exists() for spec in (args.a, b_spec))
        options = ReviewOptions(args.gt, palette, args.ignore_label, args.num_classes,
                                args.workers or (1 if in_process else 4))
        show = None if args.quiet or not sys.stderr.isatty() else _progress
        session = run_review(Source(backend_a, ref_a), Source(backend_b, ref_b), images,
                             options, show, on_result=_report_failure)
    finally:
        backend_a.close()
        if backend_b is not backend_a:
            backend_b.close()

    if session.interrupted:
        print(f"{PROG}: interrupted — {len(session.results)} of {session.total} images compared, "
              "no report written", file=sys.stderr)
        return EXIT_INTERRUPTED
    sort = SortKey(args.sort) if args.sort else None
    if not args.quiet:
        print("\n".join(_summary(session, sort or default_sort(session))))
    if args.out is not None:
        try:
            verdicts = VerdictStore.for_session(session).verdicts
        except ReviewError as exc:
            print(f"{PROG}: warning: {exc} — the report has no verdicts", file=sys.stderr)
            verdicts = {}
        try:
            html_path, csv_path = write_report(session, args.out, verdicts, sort, args.worst)
        except OSError as exc:
            raise UsageError(f"cannot write the report to '{args.out}': "
                             f"{exc.strerror or exc}") from None
        if not args.quiet:
            print(f"report: {html_path}\nmetrics: {csv_path}")
    return EXIT_FAILED if session.failures else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (UsageError, ReviewError, BackendError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; no report written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

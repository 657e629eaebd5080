"""segviewer-predict: segment files, folders and glob patterns with a served or local model.

A thin wrapper over `segviewer.core.batch.run_batch`. Exit codes: 0 all done, 1 some inputs failed
(each named on stderr), 2 usage or connection error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from segviewer.core.batch import (
    DEFAULT_MAX_PIXELS,
    BatchOptions,
    BatchProgress,
    BatchSummary,
    palette_for,
    run_batch,
)
from segviewer.core.batch_process import prepare_for_batch
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
from segviewer.core.fingerprint import from_metadata, local_folder
from segviewer.core.images import atomic_write_bytes
from segviewer.core.inputs import Input, unreadable_message, walk_inputs
from segviewer.core.labels import Palette, PaletteError, get_palette
from segviewer.core.output_plan import OutputPlan, PlanError, check_plan
from segviewer.core.provenance import Provenance
from segviewer.core.serving.base import Backend, BackendError, ModelRef
from segviewer.core.serving.connection import ConnectionSpec, add_connection_flags
from segviewer.core.serving.discovery import plan_prediction, prefers_encoded
from segviewer.core.shards import Shard, ShardError
from segviewer.core.summary import SummaryError, merge_summaries

if TYPE_CHECKING:
    from tqdm import tqdm

PROG = "segviewer-predict"


def _opacity(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _ModelVersionOrAppVersion(argparse.Action):
    """`--version N` picks the model version; a bare `--version` prints the program's.

    An action, not a post-parse check, so that the bare form works without the required INPUT and
    --out, as argparse's own version action does."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        if values is None:
            from segviewer import __version__

            print(f"{parser.prog} {__version__}")
            parser.exit()
        try:
            setattr(namespace, self.dest, int(values))  # type: ignore[arg-type]
        except ValueError:
            parser.error(f"--version takes a whole number, got {values!r}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Segment images with a TF Serving model (gRPC or REST) or "
                "a SavedModel run in-process; write label maps (and overlays) as PNG.",
                epilog="exit codes: 0 all done, 1 some inputs failed (named on stderr), 2 usage "
                "or connection error, 130 interrupted (files written so far are complete). "
                f"Shards' summaries: {PROG} --merge-summaries A.json B.json ... --summary ALL.json")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or glob patterns; outputs "
                   "mirror each input's path relative to its argument")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    add_connection_flags(p, required=True)
    p.add_argument("--model", metavar="NAME", help="model name (default: the only model)")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--version", nargs="?", action=_ModelVersionOrAppVersion, metavar="N",
                      help="model version (default: newest); alone: print segviewer's version")
    pick.add_argument("--label", metavar="LABEL", help="model version label, e.g. stable")
    p.add_argument("--signature", metavar="NAME", help="signature (default: discovered)")
    p.add_argument("--input-name", metavar="NAME", help="image input of the signature")
    p.add_argument("--output-name", metavar="NAME", help="label-map output of the signature")
    p.add_argument("--palette", metavar="NAME|FILE",
                   help="overlay colours: pascal, cityscapes, ade20k, mapillary or a JSON file "
                   "(default: the model's classes)")
    p.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    p.add_argument("--opacity", type=_opacity, default=0.5, help="overlay opacity (default 0.5)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="concurrent requests (default: 4 remote, 1 in-process)")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs whose outputs this model, version and signature already "
                   "made (complete PNGs); recompute the others")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="run only shard K of N (0 <= K < N): a stable 1/N of the inputs by "
                   "their relative path, so N runs cover every input once")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (from their header, before decoding); also the "
                   f"decoded pixels in flight at once (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--summary", type=Path, metavar="FILE", help="write a JSON run summary")
    p.add_argument("--quiet", action="store_true", help="no progress; errors only")
    return p


class ProgressPrinter:
    """tqdm's line on a terminal (rate, ETA; a count while the total is still unknown); the same
    text as plain lines otherwise, every ~10 % (every 100 inputs while the total is unknown).
    Failures always get their own line."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.bar: tqdm | None = None
        if not quiet and stream.isatty():
            from tqdm import tqdm  # here: a fifth of the start-up imports, unused with --quiet

            self.bar = tqdm(file=stream, unit="img", dynamic_ncols=True, mininterval=0.1,
                            leave=True)
        self._started = time.monotonic()

    def __call__(self, p: BatchProgress) -> None:
        if p.failure is not None:
            self.note(f"failed: {p.failure.input}: {p.failure.reason}")
        if self.quiet:
            return
        if self.bar is not None:
            if p.total is not None and self.bar.total != p.total:
                self.bar.total = p.total
                self.bar.refresh()
            postfix = f"{p.failed} failed" if p.failed else ""
            if postfix != getattr(self.bar, "postfix", ""):
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(p.done - self.bar.n)
            return
        step = max(1, min(100, p.total // 10)) if p.total else 100
        if p.path is not None and (p.done % step == 0 or p.done == p.total):
            from tqdm import tqdm

            line = tqdm.format_meter(p.done, p.total, p.elapsed, unit="img", ncols=0).strip()
            extra = f"  {p.failed} failed" if p.failed else ""
            print(f"{line}{extra}", file=self.stream, flush=True)

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"{PROG}: {message}", file=self.stream)
        else:
            print(f"{PROG}: {message}", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _open(args: argparse.Namespace) -> Backend:
    if args.saved_model and not Path(args.saved_model).exists():
        raise UsageError(f"--saved-model '{args.saved_model}' does not exist — pass the folder "
                         "that holds saved_model.pb, or its model or base folder")
    spec = ConnectionSpec.from_args(args, (args.model,) if args.model else ())
    return spec.open()


def _model_ref(backend: Backend, args: argparse.Namespace) -> ModelRef:
    name = args.model if args.model is not None else only_model(backend, "--model")
    return ModelRef(name, args.version, args.label)


@contextmanager
def _ctrl_c_cancels(cancel: threading.Event, printer: ProgressPrinter,
                    backend: Backend) -> Iterator[None]:
    """While the run lasts (metadata included), Ctrl-C sets `cancel` and interrupts the backend
    instead of raising: no new requests start, the calls in flight are cancelled (files written
    so far are complete), and the summary still gets written."""

    def stop(signum: int, frame: object) -> None:
        if cancel.is_set():  # a second Ctrl-C: e.g. an in-process model that cannot be cancelled
            raise KeyboardInterrupt
        printer.note("stopping: cancelling the requests in flight")
        cancel.set()
        backend.interrupt()

    if threading.current_thread() is not threading.main_thread():  # signals go to main only
        yield
        return
    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_summary(path: Path, summary: BatchSummary, palette: Palette | None, run: dict) -> None:
    _write_json(path, run | summary.to_json(palette))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _start_walk(args: argparse.Namespace,
                unreadable_lines: list[str]) -> Iterator[Input]:
    """The run's inputs, walked once: the first image is found before connecting (no images is
    a usage error without loading a model), and the walk goes on from there in the run. Each
    folder it cannot read is printed and added to `unreadable_lines`."""
    skipped: list[Path] = []

    def skip(path: Path) -> None:
        skipped.append(path)
        print(f"{PROG}: not reading '{path}': it is under --out '{args.out}'", file=sys.stderr)

    def unreadable(path: Path, reason: str) -> None:
        unreadable_lines.append(unreadable_message(path, reason))
        print(f"{PROG}: {unreadable_lines[-1]}", file=sys.stderr)

    walk = walk_inputs(args.inputs, args.out, on_skipped=skip, on_unreadable=unreadable)
    first = next(walk, None)
    if first is None:
        if skipped:
            raise UsageError(f"all inputs are inside --out '{args.out}' — pick an output folder "
                             "outside the inputs")
        raise UsageError(f"no images found in {' '.join(args.inputs)}")
    return chain([first], walk)


def _run(args: argparse.Namespace) -> int:
    palette = None
    if args.palette:
        try:
            palette = get_palette(args.palette)
        except PaletteError as exc:
            raise UsageError(str(exc)) from None
    if args.summary and args.summary.is_dir():
        raise UsageError(f"--summary '{args.summary}' is a folder — give a file name")
    make_out_dir(args.out)
    try:  # refused before connecting: an input folder inside --out; clashes of the files named
        OutputPlan(args.out, args.inputs, args.overlay)
        check_plan([a for a in args.inputs if os.path.isfile(a)], args.out, args.overlay)
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    unreadable: list[str] = []  # the walk runs inside run_batch, reporting here
    walk = _start_walk(args, unreadable)

    backend = _open(args)
    printer = ProgressPrinter(sys.stderr, args.quiet)
    cancel = threading.Event()
    try:
        with _ctrl_c_cancels(cancel, printer, backend):
            ref = _model_ref(backend, args)
            # Check model, version and signature before touching any input: a wrong address or
            # name is one clear error, not one failure per file.
            meta = backend.metadata(ref)
            plan = plan_prediction(meta, args.signature, args.input_name, args.output_name,
                                   prefer_encoded=prefers_encoded(backend))
            if ref.version is None and ref.label is None and meta.version is not None:
                # One run, one version: a newer one appearing mid-run must not mix the outputs.
                ref = ModelRef(ref.name, meta.version)
            if palette is None and args.overlay:
                palette = palette_for(meta)
            local = args.saved_model is not None
            options = BatchOptions(args.signature, args.input_name, args.output_name,
                                   args.overlay, args.opacity, palette,
                                   args.workers or (1 if local else 4), args.resume,
                                   args.max_pixels, args.shard,
                                   count_classes=args.summary is not None)
            # Once per run, from the metadata already read (no TensorFlow for a server).
            provenance = Provenance(ref.name, meta.version, plan.signature, backend.description,
                                    str(from_metadata(meta, local_folder(backend, ref))))
            prepare_for_batch()
            summary = run_batch(backend, ref, args.inputs, args.out, options, printer, cancel,
                                provenance, printer.note, walk)
            # Several endpoints: what each did (counts, failures, latency) for the summary.
            summary.endpoints = getattr(backend, "endpoint_stats", dict)()
            summary.unreadable = unreadable
        printer.finish()
    except BackendError:
        if not cancel.is_set():
            raise
        printer.finish()
        print(f"{PROG}: interrupted before any input ran", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        backend.close()

    if args.summary:
        _write_summary(args.summary, summary, palette or palette_for(meta), {
            "model": ref.name, "version": meta.version, "signature": plan.signature,
            "backend": backend.description, "out": str(args.out),
            "shard": str(args.shard) if args.shard else None})
    counts = f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped"
    if args.resume:
        counts += (f" (made by this model already), {summary.recomputed} recomputed (made by "
                   "another model or version, or incomplete)")
    if summary.removed_temps and not args.quiet:
        print(f"{PROG}: removed {summary.removed_temps} temporary files left by killed runs",
              file=sys.stderr)
    not_run = (f"{summary.not_run} not run" if summary.listing_complete
               else "the remaining inputs not run")
    if summary.plan_error:
        print(f"{PROG}: error: {summary.plan_error} ({counts})", file=sys.stderr)
        return EXIT_USAGE
    for reason, what in ((summary.output_error, "the output folder cannot be written"),
                         (summary.lost_connection, "the model is unreachable")):
        if reason:
            print(f"{PROG}: error: stopped, {what} ({reason}); {counts}, {not_run} — run again "
                  "with --resume", file=sys.stderr)
            return EXIT_USAGE
    if summary.interrupted or cancel.is_set():
        print(f"{PROG}: interrupted — {counts}, {not_run}; every file written is complete "
              "(run again with --resume to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"{PROG}: {counts} in {summary.seconds:.1f} s → {args.out}", file=sys.stderr)
        for name, stats in summary.endpoints.items():
            p50 = stats.latency.percentile(50)
            print(f"{PROG}:   {name}: {stats.ok} ok, {stats.failed} failed, taken out "
                  f"{stats.taken_out}x" + (f", p50 {p50 * 1000:.0f} ms" if p50 else ""),
                  file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _merge(argv: list[str]) -> int:
    """`--merge-summaries A.json B.json ... --summary ALL.json`: the shards' summaries as one."""
    p = Parser(prog=f"{PROG} --merge-summaries", description=_merge.__doc__)
    p.add_argument("--merge-summaries", nargs="+", type=Path, required=True, metavar="FILE")
    p.add_argument("--summary", type=Path, required=True, metavar="FILE")
    args = p.parse_args(argv)
    summaries = []
    for path in args.merge_summaries:
        try:
            summaries.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read summary '{path}': {exc}") from None
    try:
        merged = merge_summaries(summaries)
    except SummaryError as exc:
        raise UsageError(f"cannot merge {len(summaries)} summaries: {exc}") from None
    _write_json(args.summary, merged)
    print(f"{PROG}: {len(summaries)} summaries: {merged['ok']} ok, {merged['failed']} failed, "
          f"{merged['skipped']} skipped → {args.summary}", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--merge-summaries" in argv:
        return run_main(PROG, lambda: _merge(argv), "interrupted", (BackendError,))
    return run_main(PROG, lambda: _run(build_parser().parse_args(argv)),
                    "interrupted; every file written is complete", (BackendError,))

if __name__ == "__main__":
    sys.exit(main())

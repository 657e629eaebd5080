"""segviewer-predict: segment files, folders and glob patterns with a served or local model.

A thin wrapper over `segviewer.core.batch.run_batch`. Exit codes: 0 all done, 1 some inputs failed
(each named on stderr), 2 usage or connection error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from segviewer.core.batch import (
    BatchOptions,
    BatchProgress,
    BatchSummary,
    palette_for,
    run_batch,
)
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
from segviewer.core.images import atomic_write_bytes, find_images
from segviewer.core.labels import Palette, PaletteError, get_palette
from segviewer.core.serving.base import Backend, BackendError, ModelRef
from segviewer.core.serving.connection import ConnectionSpec, add_connection_flags
from segviewer.core.serving.discovery import plan_prediction

PROG = "segviewer-predict"


def _opacity(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


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
                "or connection error, 130 interrupted (files written so far are complete)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or glob patterns")
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
                   help="skip inputs whose outputs already exist and are complete PNGs")
    p.add_argument("--summary", type=Path, metavar="FILE", help="write a JSON run summary")
    p.add_argument("--quiet", action="store_true", help="no progress; errors only")
    return p


class ProgressPrinter:
    """A redrawn bar with rate and ETA on a terminal; a plain line every ~10 % otherwise.
    Failures always get their own line."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._bar_shown = False

    def __call__(self, p: BatchProgress) -> None:
        if p.failure is not None:
            self.note(f"failed: {p.failure.input}: {p.failure.reason}")
        if self.quiet or p.total == 0:
            return
        if self.tty:
            now = time.monotonic()
            if p.done == p.total or now - self._last_draw >= 0.1 or p.failure is not None:
                self._last_draw = now
                self.stream.write("\r" + self._line(p, bar=True) + "\x1b[K")
                self.stream.flush()
                self._bar_shown = True
        elif p.path is not None and (p.done % max(1, min(100, p.total // 10)) == 0
                                     or p.done == p.total):
            print(self._line(p, bar=False), file=self.stream, flush=True)

    def _line(self, p: BatchProgress, bar: bool) -> str:
        width = 24
        filled = width * p.done // p.total
        parts = [f"[{'#' * filled}{'.' * (width - filled)}]"] if bar else []
        parts.append(f"{p.done}/{p.total}")
        if p.failed:
            parts.append(f"{p.failed} failed")
        if p.rate:
            parts.append(f"{p.rate:.1f} img/s")
        if p.eta is not None and p.done < p.total:
            parts.append(f"ETA {_clock(p.eta)}")
        return "  ".join(parts)

    def note(self, message: str) -> None:
        self._clear()
        print(f"{PROG}: {message}", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self._bar_shown = False

    def finish(self) -> None:
        if self._bar_shown:
            self.stream.write("\n")
            self._bar_shown = False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
    data = run | summary.to_json(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _run(args: argparse.Namespace) -> int:
    palette = None
    if args.palette:
        try:
            palette = get_palette(args.palette)
        except PaletteError as exc:
            raise UsageError(str(exc)) from None
    found = find_images(args.inputs)
    if not found:
        raise UsageError(f"no images found in {' '.join(args.inputs)}")
    # Never read our own outputs (a folder run with --out inside it) nor overwrite an input.
    out = args.out.resolve()
    inputs = [p for p in found if not p.resolve().is_relative_to(out)]
    if not inputs:
        raise UsageError(f"all inputs are inside --out '{args.out}' — pick an output folder "
                         "outside the inputs")
    make_out_dir(args.out)
    if args.summary and args.summary.is_dir():
        raise UsageError(f"--summary '{args.summary}' is a folder — give a file name")

    backend = _open(args)
    printer = ProgressPrinter(sys.stderr, args.quiet)
    cancel = threading.Event()
    try:
        with _ctrl_c_cancels(cancel, printer, backend):
            ref = _model_ref(backend, args)
            # Check model, version and signature before touching any input: a wrong address or
            # name is one clear error, not one failure per file.
            meta = backend.metadata(ref)
            plan = plan_prediction(meta, args.signature, args.input_name, args.output_name)
            if ref.version is None and ref.label is None and meta.version is not None:
                # One run, one version: a newer one appearing mid-run must not mix the outputs.
                ref = ModelRef(ref.name, meta.version)
            if palette is None and args.overlay:
                palette = palette_for(meta)
            local = args.saved_model is not None
            options = BatchOptions(args.signature, args.input_name, args.output_name,
                                   args.overlay, args.opacity, palette,
                                   args.workers or (1 if local else 4), args.resume)
            summary = run_batch(backend, ref, inputs, args.out, options, printer, cancel)
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
            "backend": backend.description, "out": str(args.out)})
    counts = f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped"
    if summary.lost_connection:
        print(f"{PROG}: error: stopped, the model is unreachable ({summary.lost_connection}); "
              f"{counts}, {summary.not_run} not run — run again with --resume", file=sys.stderr)
        return EXIT_USAGE
    if summary.interrupted or cancel.is_set():
        print(f"{PROG}: interrupted — {counts}, {summary.not_run} not run; every file written "
              "is complete (run again with --resume to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"{PROG}: {counts} in {summary.seconds:.1f} s → {args.out}", file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (UsageError, BackendError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; every file written is complete", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""Folder runs: segment many images with one model and write their label maps (and overlays).

Used by `segviewer-predict` and the GUI's batch export. Inputs stream in as the folders are walked
(`inputs.walk_inputs`), each is placed by the output plan (`output_plan`, which refuses outputs
that would replace an input or each other) and, with a shard, kept only if it is in it. Requests
run on a bounded pool (`pool.bounded_map`); results come back in the caller's thread (progress
callbacks included), so a GUI worker can forward them as signals.

- A failing input is recorded with its one-line reason and the run goes on.
- Each label map carries its provenance (`provenance`); `resume` skips only outputs made by the
  same model, version and signature, and recomputes the others.
- A label map and its overlay are written as a pair, atomically: if one fails, neither stays.
- The run stops (starting no new requests; the ones in flight finish, or end as "not run" when the
  backend was interrupted) on `cancel` or Ctrl-C in the thread that called `run_batch`, at the
  first "unavailable" (the backend has already retried for its --retry-for window), after a few
  missed deadlines in a row (a wedged server; the rule: `serving.calls.Reachability`), at the
  first error that means the output folder cannot be written (disk full, read-only), and at
  an output clash.
- Memory: at most `max_pixels` decoded pixels are in flight at once, whatever `workers` is; an
  image above `max_pixels` is refused from its header, before it is decoded.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from segviewer.core.fingerprint import from_metadata, local_folder
from segviewer.core.images import (
    ImageLoadError,
    atomic_write_group,
    encode_png,
    is_valid_png,
    label_array_for_png,
    load_image,
    remove_stale_temps,
)
from segviewer.core.inputs import Input, unreadable_message, walk_inputs
from segviewer.core.labels import Palette, colorize
from segviewer.core.output_plan import OutputPlan, Outputs, PlanError
from segviewer.core.overlay import blend, class_counts
from segviewer.core.palettes import palette_for
from segviewer.core.pool import bounded_map
from segviewer.core.provenance import Provenance
from segviewer.core.provenance import read as read_provenance
from segviewer.core.provenance import write as with_provenance
from segviewer.core.serving.base import Backend, BackendError, ModelRef
from segviewer.core.serving.calls import Reachability
from segviewer.core.serving.discovery import plan_prediction, prefers_encoded
from segviewer.core.shards import Shard
from segviewer.core.summary import BatchSummary, Failure

__all__ = ["BatchOptions", "BatchProgress", "BatchSummary", "Failure", "palette_for", "run_batch"]

# Decoded pixels allowed for one input, and in flight at once (--max-pixels): 8K (33 MP) fits.
DEFAULT_MAX_PIXELS = 64_000_000
# Write errors that no other input would escape: they stop the run, naming the folder.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass
class BatchOptions:
    signature: str | None = None
    input_name: str | None = None
    output_name: str | None = None
    overlay: bool = False  # also write <name>_overlay.png
    opacity: float = 0.5
    palette: Palette | None = None  # overlay colours; None: the model's own (see palette_for)
    workers: int = 1  # concurrent requests
    resume: bool = False  # skip inputs whose outputs this model and version already made
    max_pixels: int = DEFAULT_MAX_PIXELS
    shard: Shard | None = None
    # Pixels per class over the run (the summary's class_pixels): a pass over every label map,
    # paid only by callers that report it.
    count_classes: bool = False


@dataclass(frozen=True)
class BatchProgress:
    """The run's state after one more input finished (or, with `path` None, at the start)."""

    done: int  # ok + failed + skipped
    total: int | None  # None while the inputs are still being listed
    ok: int
    failed: int
    skipped: int
    elapsed: float  # seconds since the run started
    path: Path | None = None  # the input that just finished
    failure: Failure | None = None  # its failure, if it failed

    @property
    def rate(self) -> float:
        """Images segmented (or failed) per second; skipped ones cost nothing and do not count."""
        ran = self.ok + self.failed
        return ran / self.elapsed if self.elapsed > 0 and ran else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, None until there is a rate and a total."""
        return (self.total - self.done) / self.rate if self.rate and self.total else None


class PixelBudget:
    """Decoded pixels in flight, shared by the workers: an image waits until it fits (one image
    alone always fits, so the run never deadlocks)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._free = threading.Condition()

    def acquire(self, pixels: int) -> None:
        with self._free:
            self._free.wait_for(lambda: self.used == 0 or self.used + pixels <= self.limit)
            self.used += pixels

    def release(self, pixels: int) -> None:
        with self._free:
            self.used -= pixels
            self._free.notify_all()


@dataclass
class _Job:
    input: Input
    outputs: Outputs


@dataclass
class _Result:
    job: _Job
    status: str  # "ok" | "failed" | "skipped" | "not_run"
    seconds: float = 0.0
    counts: dict[int, int] = field(default_factory=dict)
    reason: str = ""
    code: str = ""  # BackendError code of a failure; "OUTPUT" when the folder cannot be written
    recomputed: bool = False  # --resume found outputs of another model, or incomplete ones


class _OutputError(Exception):
    """The output folder cannot be written: the run stops."""


def run_batch(
    backend: Backend,
    ref: ModelRef,
    inputs: Iterable[str | Path],
    out_dir: Path,
    options: BatchOptions,
    progress: Callable[[BatchProgress], None] | None = None,
    cancel: threading.Event | None = None,
    provenance: Provenance | None = None,
    note: Callable[[str], None] | None = None,
    walk: Iterable[Input] | None = None,
) -> BatchSummary:
    """Segment `inputs` (files, folders, glob patterns) with `ref` on `backend`, writing label maps
    (and overlays) under `out_dir`, each recording `provenance` (by default read from the model's
    metadata). `note` hears one-line remarks (what was skipped under `out_dir`, folders that
    could not be read). `walk` is the
    caller's own `walk_inputs(inputs, out_dir)` when it has already started it.

    Raises PlanError when the outputs would replace an input folder, and BackendError when the
    model's metadata is needed and fails; per-input failures and an output clash found while the
    inputs stream in are recorded in the summary."""
    cancel = cancel or threading.Event()
    stop = threading.Event()  # set by the run itself; the caller's `cancel` is left alone
    out_dir = Path(out_dir)
    arguments = [str(a) for a in inputs]
    plan = OutputPlan(out_dir, arguments, options.overlay)
    palette = options.palette
    if provenance is None or (options.overlay and palette is None):
        meta = backend.metadata(ref)
        palette = palette or palette_for(meta)
        signature = plan_prediction(meta, options.signature, options.input_name,
                                    options.output_name,
                                    prefer_encoded=prefers_encoded(backend)).signature
        provenance = provenance or Provenance(
            ref.name, meta.version, signature, backend.description,
            str(from_metadata(meta, local_folder(backend, ref))))
    budget = PixelBudget(options.max_pixels)
    summary = BatchSummary()
    summary.listing_complete = False
    start = time.perf_counter()

    def stopped() -> bool:
        return cancel.is_set() or stop.is_set()

    def report(path: Path | None = None, failure: Failure | None = None) -> None:
        if progress is not None:
            progress(BatchProgress(summary.ok + summary.failed + summary.skipped,
                                   summary.total if summary.listing_complete else None,
                                   summary.ok, summary.failed, summary.skipped,
                                   time.perf_counter() - start, path, failure))

    def skipped_under_out(path: Path) -> None:
        summary.skipped_under_out += 1
        if note is not None:
            note(f"not reading '{path}': it is under --out '{out_dir}'")

    def unreadable(path: Path, reason: str) -> None:
        summary.unreadable.append(unreadable_message(path, reason))
        if note is not None:
            note(summary.unreadable[-1])

    def jobs() -> Iterator[_Job]:
        folder = None
        items = walk if walk is not None else walk_inputs(arguments, out_dir,
                                                          on_skipped=skipped_under_out,
                                                          on_unreadable=unreadable)
        for item in items:
            outputs = plan.place(item)  # before the shard: every shard refuses the same clashes
            if options.shard is not None and not options.shard.holds(item.rel):
                continue
            if outputs.folder != folder:  # outputs arrive folder by folder
                folder = outputs.folder
                summary.removed_temps += remove_stale_temps(Path(folder))
            summary.total += 1
            yield _Job(item, outputs)
        summary.listing_complete = True

    def process(job: _Job) -> _Result:
        if stopped():
            return _Result(job, "not_run")
        recomputed = False
        if options.resume:
            made_by = read_provenance(job.outputs.label)
            if provenance.same_model(made_by) and all(is_valid_png(p)
                                                      for p in job.outputs.paths):
                return _Result(job, "skipped")
            recomputed = made_by is not None or job.outputs.label.exists()
        began = time.perf_counter()
        reserved: list[int] = []

        def reserve(pixels: int) -> None:
            budget.acquire(pixels)
            reserved.append(pixels)

        try:
            image = load_image(job.input.path, options.max_pixels, reserve)
            labels = backend.predict(image, ref, options.signature, options.input_name,
                                     options.output_name).labels
            stored = label_array_for_png(labels)  # uint8 for < 256 classes: counted faster too
            files = [(job.outputs.label, with_provenance(encode_png(stored), provenance))]
            if job.outputs.overlay is not None:
                colors, _ = colorize(labels, palette)
                files.append((job.outputs.overlay, with_provenance(
                    encode_png(blend(image, colors, options.opacity)), provenance)))
            _write(files)
        except BackendError as exc:
            if exc.code == "CANCELLED" and (cancel.is_set() or stop.is_set()):
                return _Result(job, "not_run")  # cut short by Ctrl-C or cancel
            return _Result(job, "failed", reason=str(exc), code=exc.code)
        except ImageLoadError as exc:
            return _Result(job, "failed", reason=str(exc))
        except _OutputError as exc:
            stop.set()  # now, not when recorded: the inputs queued behind this one stay unrun
            return _Result(job, "failed", reason=str(exc), code="OUTPUT")
        except (OSError, ValueError) as exc:  # a write that failed, or labels a PNG cannot hold
            return _Result(job, "failed", reason=f"{job.input.path}: {type(exc).__name__}: {exc}")
        finally:
            for pixels in reserved:
                budget.release(pixels)
        counts = class_counts(stored) if options.count_classes else {}
        return _Result(job, "ok", time.perf_counter() - began, counts, recomputed=recomputed)

    reachability = Reachability(options.workers)

    def record(result: _Result) -> None:
        path = result.job.input.path
        failure = None
        if reachability.lost(result.code) and not stop.is_set():
            summary.lost_connection = result.reason
            stop.set()
        if result.code == "OUTPUT" and not summary.output_error:
            summary.output_error = result.reason
            stop.set()
        summary.recomputed += result.recomputed
        if result.status == "ok":
            summary.ok += 1
            summary.latency.add(result.seconds)
            for class_id, count in result.counts.items():
                summary.class_pixels[class_id] = summary.class_pixels.get(class_id, 0) + count
        elif result.status == "failed":
            failure = Failure(path, result.reason.splitlines()[0] if result.reason else "failed")
            summary.add_failure(failure)
        elif result.status == "skipped":
            summary.skipped += 1
        else:
            return
        report(path, failure)

    def interrupted() -> None:  # Ctrl-C: no new requests; those in flight finish their writes
        summary.interrupted = True
        stop.set()

    report()
    try:
        for result in bounded_map(process, jobs(), options.workers, stopped, interrupted,
                                  "segviewer-batch"):
            record(result)
    except PlanError as exc:
        summary.plan_error = str(exc)
    summary.cancelled = stopped() or bool(summary.plan_error)
    summary.seconds = time.perf_counter() - start
    return summary


def _write(files: list[tuple[Path, bytes]]) -> None:
    folder = files[0][0].parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_group(files)
    except OSError as exc:
        if exc.errno in _OUTPUT_ERRNOS:
            raise _OutputError(f"cannot write to '{folder}': {exc.strerror or exc} — free space "
                               "or pick a writable --out, then run again with --resume") from None
        raise

"""Folder runs: segment many images with one model and write their label maps (and overlays).

Used by `segviewer-predict` and the GUI's batch export. Requests run concurrently on a thread
pool; results come back in the caller's thread (progress callbacks included), so a GUI worker can
forward them as signals. A failing input is recorded with its reason and the run goes on. Every
file is written atomically, and a cancelled run (the `cancel` event, or Ctrl-C in the thread that
called `run_batch`) lets the requests in flight finish and starts no new ones. A run whose server
goes away stops the same way after a few "unavailable" answers in a row.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segviewer.core.images import (
    ImageLoadError,
    is_valid_png,
    load_image,
    save_label_png,
    save_rgb_png,
)
from segviewer.core.labels import Palette, colorize
from segviewer.core.overlay import blend, class_counts
from segviewer.core.palettes import palette_for
from segviewer.core.serving.base import Backend, BackendError, ModelRef

OVERLAY_SUFFIX = "_overlay"
# Consecutive "server unavailable" failures (at least this many, and two rounds of workers) after
# which a run stops instead of failing every remaining input the same way.
UNAVAILABLE_LIMIT = 8


@dataclass
class BatchOptions:
    signature: str | None = None
    input_name: str | None = None
    output_name: str | None = None
    overlay: bool = False  # also write <name>_overlay.png
    opacity: float = 0.5
    palette: Palette | None = None  # overlay colours; None: the model's own (see palette_for)
    workers: int = 1  # concurrent requests
    resume: bool = False  # skip inputs whose outputs exist and are complete PNGs


@dataclass(frozen=True)
class Failure:
    input: Path
    reason: str  # one line


@dataclass(frozen=True)
class BatchProgress:
    """The run's state after one more input finished (or, with `path` None, at the start)."""

    done: int  # ok + failed + skipped
    total: int
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
        """Seconds left at the current rate, None until there is a rate."""
        return (self.total - self.done) / self.rate if self.rate else None


@dataclass
class BatchSummary:
    total: int
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: bool = False  # stopped before every input ran
    interrupted: bool = False  # ... by Ctrl-C
    lost_connection: str = ""  # ... because the server went away: its last error, else ""
    failures: list[Failure] = field(default_factory=list)
    class_pixels: dict[int, int] = field(default_factory=dict)  # over the images segmented now
    durations: list[float] = field(default_factory=list)  # seconds per segmented image
    seconds: float = 0.0  # wall time of the run

    @property
    def not_run(self) -> int:
        return self.total - self.ok - self.failed - self.skipped

    def class_shares(self) -> dict[int, float]:
        """{class id: percent of all pixels segmented in this run}."""
        pixels = sum(self.class_pixels.values())
        return {i: 100.0 * n / pixels for i, n in sorted(self.class_pixels.items())}

    def to_json(self, palette: Palette | None = None) -> dict[str, Any]:
        """The --summary file: counts, failures, per-class pixel shares and timings."""
        times = np.array(self.durations, dtype=np.float64)
        timings = {"total_s": round(self.seconds, 4)}
        if times.size:
            timings |= {
                "per_image_mean_s": round(float(times.mean()), 4),
                "per_image_p50_s": round(float(np.percentile(times, 50)), 4),
                "per_image_p95_s": round(float(np.percentile(times, 95)), 4),
                "images_per_s": round((self.ok + self.failed) / self.seconds, 3)
                if self.seconds else None,
            }
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "not_run": self.not_run,
            "cancelled": self.cancelled,
            "lost_connection": self.lost_connection or None,
            "failures": [{"input": str(f.input), "reason": f.reason} for f in self.failures],
            "class_shares": [
                {"id": i, "name": palette.class_name(i) if palette else f"class {i}",
                 "percent": round(share, 4)}
                for i, share in self.class_shares().items()
            ],
            "timings": timings,
        }


def output_names(inputs: list[Path]) -> list[Path]:
    """Label-map paths relative to the output folder, one per input, all distinct.

    `<stem>.png` when stems are unique; otherwise every output mirrors its input's folder relative
    to the inputs' common folder, and same-stem files in one folder keep their extension
    (`a.jpg.png`)."""
    stems = [p.stem for p in inputs]
    if len(set(stems)) == len(stems):
        return [Path(f"{s}.png") for s in stems]
    absolute = [p.resolve() for p in inputs]
    common = Path(os.path.commonpath([p.parent for p in absolute]))
    keys = [(p.parent, p.stem) for p in absolute]
    clashes = {k for k in keys if keys.count(k) > 1}
    return [
        p.parent.relative_to(common) / (f"{p.name}.png" if k in clashes else f"{p.stem}.png")
        for p, k in zip(absolute, keys, strict=True)
    ]


def overlay_name(label_path: Path) -> Path:
    return label_path.with_name(f"{label_path.stem}{OVERLAY_SUFFIX}.png")


@dataclass
class _Result:
    index: int
    status: str  # "ok" | "failed" | "skipped" | "not_run"
    seconds: float = 0.0
    counts: dict[int, int] = field(default_factory=dict)
    reason: str = ""
    code: str = ""  # BackendError code of a failure


def run_batch(
    backend: Backend,
    ref: ModelRef,
    inputs: list[Path],
    out_dir: Path,
    options: BatchOptions,
    progress: Callable[[BatchProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> BatchSummary:
    """Segment `inputs` with `ref` on `backend`, writing label maps (and overlays) under `out_dir`.

    Raises BackendError only when the overlay palette needs the model's metadata and that fails;
    per-input failures are recorded in the summary."""
    cancel = cancel or threading.Event()
    stop = threading.Event()  # set by the run itself; the caller's `cancel` is left alone
    out_dir = Path(out_dir)
    palette = options.palette
    if options.overlay and palette is None:
        palette = palette_for(backend.metadata(ref))
    names = output_names(inputs)
    summary = BatchSummary(total=len(inputs))
    start = time.perf_counter()

    def report(path: Path | None = None, failure: Failure | None = None) -> None:
        if progress is not None:
            progress(BatchProgress(summary.ok + summary.failed + summary.skipped, summary.total,
                                   summary.ok, summary.failed, summary.skipped,
                                   time.perf_counter() - start, path, failure))

    def process(index: int) -> _Result:
        if cancel.is_set() or stop.is_set():
            return _Result(index, "not_run")
        label_path = out_dir / names[index]
        targets = [label_path, overlay_name(label_path)] if options.overlay else [label_path]
        if options.resume and all(is_valid_png(t) for t in targets):
            return _Result(index, "skipped")
        began = time.perf_counter()
        try:
            image = load_image(inputs[index])
            labels = backend.predict(image, ref, options.signature, options.input_name,
                                     options.output_name).labels
            label_path.parent.mkdir(parents=True, exist_ok=True)
            save_label_png(label_path, labels)
            if options.overlay:
                colors, _ = colorize(labels, palette)
                save_rgb_png(targets[1], blend(image, colors, options.opacity))
        except BackendError as exc:
            return _Result(index, "failed", reason=str(exc), code=exc.code)
        except ImageLoadError as exc:
            return _Result(index, "failed", reason=str(exc))
        except (OSError, ValueError) as exc:  # a write that failed, or labels a PNG cannot hold
            return _Result(index, "failed", reason=f"{type(exc).__name__}: {exc}")
        return _Result(index, "ok", time.perf_counter() - began, class_counts(labels))

    unavailable = 0  # consecutive UNAVAILABLE failures
    unavailable_limit = max(UNAVAILABLE_LIMIT, 2 * options.workers)

    def record(result: _Result) -> None:
        nonlocal unavailable
        path = inputs[result.index]
        failure = None
        unavailable = unavailable + 1 if result.code == "UNAVAILABLE" else 0
        if unavailable >= unavailable_limit and not stop.is_set():
            summary.lost_connection = result.reason
            stop.set()
        if result.status == "ok":
            summary.ok += 1
            summary.durations.append(result.seconds)
            for class_id, count in result.counts.items():
                summary.class_pixels[class_id] = summary.class_pixels.get(class_id, 0) + count
        elif result.status == "failed":
            failure = Failure(path, result.reason.splitlines()[0] if result.reason else "failed")
            summary.failed += 1
            summary.failures.append(failure)
        elif result.status == "skipped":
            summary.skipped += 1
        else:
            return
        report(path, failure)

    report()
    # A short queue: cancelling never waits for more than about two requests per worker.
    limit = max(1, options.workers) * 2
    queue: Iterator[int] = iter(range(len(inputs)))
    pending: set[Future[_Result]] = set()
    with ThreadPoolExecutor(max_workers=max(1, options.workers),
                            thread_name_prefix="segviewer-batch") as pool:
        while True:
            try:
                while not (cancel.is_set() or stop.is_set()) and len(pending) < limit:
                    index = next(queue, None)
                    if index is None:
                        break
                    pending.add(pool.submit(process, index))
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    record(future.result())
            except KeyboardInterrupt:
                # Ctrl-C: stop submitting, let in-flight requests finish their (atomic) writes.
                summary.interrupted = True
                stop.set()
    summary.cancelled = (cancel.is_set() or stop.is_set()) and summary.not_run > 0
    order = {path: i for i, path in enumerate(inputs)}
    summary.failures.sort(key=lambda f: order[f.input])
    summary.seconds = time.perf_counter() - start
    return summary

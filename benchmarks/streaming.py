"""Streaming inputs: time to the first output on a 1,000,000-file folder, and peak memory of whole
runs at 20,000 and 200,000 files, measured in the same run (issue 15).

Each measurement is a fresh `run_batch` process talking gRPC to the stand-in TF Serving (its own
process) serving the cheapest toy model (`toy_models.save_identity`). The inputs are hard links
to a few 8x8 PNGs in one flat folder on /dev/shm (a million distinct small files, without a
million inodes' worth of disk); outputs go to /dev/shm too, so the figures are the client's own.

- first output: from the start of `run_batch` (connection made, model checked) to the first
  label map written; the child process's start-up (imports) is printed too. Target <= 1 s.
- memory: peak RSS (VmHWM) of the run over all inputs; target RSS(200k) <= 1.3 x RSS(20k).
  The seed listed the whole folder first: ~0.9 KB more per file.

    .venv/bin/python benchmarks/streaming.py [--first 1000000] [--small 20000] [--large 200000]
        [--workers 4] [--first-output-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _standin import start_standin  # benchmarks/ is on sys.path when a benchmark runs
from PIL import Image

LINKS_PER_SOURCE = 50_000  # well under any file system's hard-link limit
HERE = Path(__file__).resolve()


def make_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    sources = folder.parent / f"{folder.name}-sources"
    sources.mkdir()
    rng = np.random.default_rng(count)
    source = None
    for i in range(count):
        if i % LINKS_PER_SOURCE == 0:
            source = sources / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(source)
        os.link(source, folder / f"img{i:07d}.png")


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")


def child(folder: str, out: str, address: str, workers: int, first_only: bool) -> None:
    """One run in this process; prints FIRST when the first output is written, then JSON."""
    from segviewer.core.batch import BatchOptions, run_batch
    from segviewer.core.batch_process import prepare_for_batch
    from segviewer.core.provenance import Provenance
    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.discovery import plan_prediction
    from segviewer.core.serving.grpc_backend import GrpcBackend

    backend = GrpcBackend(address, models=["identity"], timeout=60)
    ref = ModelRef("identity")
    meta = backend.metadata(ref)  # as segviewer-predict does before the run
    provenance = Provenance(ref.name, meta.version, plan_prediction(meta).signature,
                            backend.description)
    prepare_for_batch()  # as segviewer-predict does
    cancel = threading.Event()
    first: list[float] = []
    start = time.perf_counter()

    def progress(p) -> None:
        if p.ok and not first:
            first.append(time.perf_counter() - start)
            print("FIRST", flush=True)
            if first_only:
                cancel.set()

    summary = run_batch(backend, ref, [folder], Path(out), BatchOptions(workers=workers),
                        progress, cancel, provenance)
    backend.close()
    print(json.dumps({"first_s": first[0] if first else None, "ok": summary.ok,
                      "failed": summary.failed, "seconds": summary.seconds,
                      "maxrss_mb": peak_rss_mb()}),
          flush=True)


def measure(folder: Path, out: Path, address: str, workers: int, first_only: bool) -> dict:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(HERE), "--child", str(folder), str(out), address, str(workers)]
        + (["--first-only"] if first_only else []), stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        if line.startswith("FIRST"):
            lines.append(time.perf_counter() - began)
        elif line.startswith("{"):
            result = json.loads(line)
    if process.wait() != 0:
        raise SystemExit(f"the run on {folder} failed")
    result["first_from_process_start_s"] = lines[0] if lines else None
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--first-output-only", action="store_true",
                        help="measure only the time to the first output")
    parser.add_argument("--child", nargs=4, metavar=("FOLDER", "OUT", "ADDRESS", "WORKERS"))
    parser.add_argument("--first-only", action="store_true")
    args = parser.parse_args()
    if args.child:
        folder, out, address, workers = args.child
        child(folder, out, address, int(workers), args.first_only)
        return

    from segviewer.devserver.toy_models import save_identity

    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="segviewer-stream-", dir=shm))
    server = None
    try:
        save_identity(work / "models" / "identity" / "1")
        server, address, _ = start_standin(work / "models")
        results = {}
        runs = [("first", args.first, True)]
        if not args.first_output_only:
            runs += [("small", args.small, False), ("large", args.large, False)]
        for name, count, first_only in runs:
            folder = work / f"in-{name}"
            began = time.perf_counter()
            make_folder(folder, count)
            print(f"{count:,} files made in {time.perf_counter() - began:.1f} s", flush=True)
            results[name] = measure(folder, work / "out", address, args.workers, first_only)
            shutil.rmtree(folder)
            shutil.rmtree(work / f"in-{name}-sources")
            print(f"  {results[name]}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)

    first = results["first"]
    print(f"first output on {args.first:,} files: {first['first_s']:.3f} s after run_batch "
          f"started ({first['first_from_process_start_s']:.2f} s from process start) "
          f"{'OK' if first['first_s'] <= 1.0 else 'ABOVE TARGET'} (target <= 1 s)")
    if args.first_output_only:
        return
    small, large = results["small"], results["large"]
    ratio = large["maxrss_mb"] / small["maxrss_mb"]
    print(f"peak RSS {args.small:,} files: {small['maxrss_mb']:.1f} MB ({small['ok']:,} ok in "
          f"{small['seconds']:.0f} s); {args.large:,} files: {large['maxrss_mb']:.1f} MB "
          f"({large['ok']:,} ok in {large['seconds']:.0f} s)")
    print(f"ratio: {ratio:.3f} (target <= 1.3) {'OK' if ratio <= 1.3 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()

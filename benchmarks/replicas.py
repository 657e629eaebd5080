"""Throughput with three TF Serving replicas against one, as a ratio measured in the same run.

Each replica is a stand-in server in its own process (segviewer.devserver) whose capacity is
latency-bound, not CPU-bound: every predict takes --latency-ms more and at most --max-concurrent
run at once, so one replica serves at most max_concurrent / latency images per second whatever
the CPU count. The client is `segviewer-predict` on a folder of small images with --workers
enough for all replicas (its own CPU cost per image stays far below a replica's latency).
Target: three replicas >= 2.5x one replica. The run with three also kills nothing; see
tests/test_multi_endpoint.py for a replica killed mid-run.

    .venv/bin/python benchmarks/replicas.py [--images 120] [--latency-ms 100]
        [--max-concurrent 2] [--rounds 2] [--rest]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _standin import start_standin  # benchmarks/ is on sys.path when a benchmark runs
from PIL import Image


def start_replica(base: Path, latency_ms: float, cap: int) -> tuple[subprocess.Popen, str, str]:
    return start_standin(base, "--latency-ms", str(latency_ms), "--max-concurrent", str(cap))


def run(folder: Path, out: Path, endpoints: list[str], flag: str, workers: int) -> float:
    """Wall seconds of one segviewer-predict run on `folder`, process start included."""
    command = [sys.executable, "-m", "segviewer.core.cli", str(folder), "--out", str(out),
               "--model", "tiny", "--workers", str(workers), "--quiet",
               *(x for e in endpoints for x in (flag, e))]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"segviewer-predict failed: {result.stderr.strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rest", action="store_true", help="REST instead of gRPC")
    args = parser.parse_args()

    from segviewer.devserver.toy_models import save_tiny

    work = Path(tempfile.mkdtemp(prefix="replicas_"))
    save_tiny(work / "base" / "tiny" / "1", encoded=True)  # as exported: REST sends PNG bytes
    folder, one_image = work / "in", work / "one"
    folder.mkdir()
    one_image.mkdir()
    rng = np.random.default_rng(0)
    for i in range(args.images):
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(
            folder / f"img{i:04d}.png")
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(one_image / "warm.png")

    replicas = [start_replica(work / "base", args.latency_ms, args.max_concurrent)
                for _ in range(3)]
    flag = "--rest" if args.rest else "--server"
    endpoints = [r[2] if args.rest else r[1] for r in replicas]
    workers = 3 * args.max_concurrent + 2  # enough to keep three replicas full
    try:
        timings: dict[int, list[float]] = {1: [], 3: []}
        for round_ in range(args.rounds):
            for count in (1, 3):
                used = endpoints[:count]
                # Process start and the metadata check, measured on one image and subtracted.
                fixed = run(one_image, work / f"warm{round_}_{count}", used, flag, workers)
                total = run(folder, work / f"out{round_}_{count}", used, flag, workers)
                timings[count].append(total - fixed)
        one, three = (statistics.median(timings[c]) for c in (1, 3))
        capacity = args.max_concurrent / (args.latency_ms / 1000)
        print(f"{args.images} images over {'REST' if args.rest else 'gRPC'}, replicas of "
              f"{args.latency_ms:g} ms latency x {args.max_concurrent} concurrent "
              f"(capacity {capacity:.0f} img/s each), --workers {workers}, median of "
              f"{args.rounds}:")
        print(f"  1 replica : {one:6.2f} s  {args.images / one:6.1f} img/s")
        print(f"  3 replicas: {three:6.2f} s  {args.images / three:6.1f} img/s")
        ratio = one / three
        verdict = "met" if ratio >= 2.5 else "NOT met"
        print(f"  ratio 3/1 : {ratio:.2f}x  (target >= 2.5x: {verdict})")
    finally:
        for process, _, _ in replicas:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()

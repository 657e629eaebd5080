"""Output plan at scale: placing 100,000 inputs whose stems all clash, against the least work any
plan must do (one dict insertion per output), measured in the same run.

The seed's naming was quadratic once two stems clashed (issue 13: 85 s for 20,000 files against
0.05 s). Inputs here are `FFF/imgNNN.png` in 1,000 folders of 100, so every stem appears in
every folder; the plan mirrors folders, checks label-against-label and label-against-overlay per
folder and, with --arguments 2, keeps the cross-argument hash table too. A second measurement
walks real files (the same layout, created in a temporary folder on /dev/shm) and places them.

Target: under 1 s for 100,000 inputs (both the in-memory plan and walk + plan).

    .venv/bin/python benchmarks/output_plan.py [--inputs 100000] [--arguments 1|2] [--no-files]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from segviewer.core.inputs import Input, walk_inputs
from segviewer.core.output_plan import OutputPlan, label_relpath, overlay_relpath

FOLDER_SIZE = 100


def layout(count: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{i // FOLDER_SIZE:03d}/img{i % FOLDER_SIZE:03d}.png" for i in range(count)]


def synthetic(count: int, arguments: int) -> list[Input]:
    return [Input(f"in{a}/{rel}", rel, a)
            for a in range(arguments) for rel in layout(count // arguments, f"{a}-")]


def baseline(items: list[Input], out: Path) -> float:
    """One dict insertion per label and overlay: what any clash check must at least do."""
    start = time.perf_counter()
    seen: dict[str, Path] = {}
    for item in items:
        seen[label_relpath(item.rel)] = item.name
        seen[overlay_relpath(item.rel)] = item.name
    return time.perf_counter() - start


def plan_time(items: list[Input], out: Path, arguments: int) -> float:
    start = time.perf_counter()
    plan = OutputPlan(out, [f"in{a}" for a in range(arguments)], overlay=True)
    for item in items:
        plan.place(item)
    return time.perf_counter() - start


def walk_and_plan(count: int) -> tuple[float, int]:
    """`count` empty image files in the same layout, walked lazily and placed."""
    work = Path(tempfile.mkdtemp(prefix="segviewer-plan-", dir="/dev/shm"
                                 if Path("/dev/shm").is_dir() else None))
    try:
        root = work / "in"
        for rel in layout(count):
            path = root / rel
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True)
            path.touch()
        start = time.perf_counter()
        plan = OutputPlan(work / "out", [root], overlay=True)
        placed = sum(1 for item in walk_inputs([root], work / "out") if plan.place(item))
        return time.perf_counter() - start, placed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--arguments", type=int, default=1, choices=(1, 2))
    parser.add_argument("--no-files", action="store_true", help="skip the walk over real files")
    args = parser.parse_args()

    items = synthetic(args.inputs, args.arguments)
    out = Path("/tmp/out")
    base = min(baseline(items, out) for _ in range(3))
    plan = min(plan_time(items, out, args.arguments) for _ in range(3))
    print(f"{len(items):,} inputs, each stem in every folder, {args.arguments} argument(s), "
          "overlays on")
    print(f"baseline (a dict insertion per output): {base:6.3f} s")
    print(f"OutputPlan.place over all inputs:       {plan:6.3f} s   ratio {plan / base:.2f}")
    verdict = "OK" if plan < 1.0 else "ABOVE TARGET"
    print(f"target < 1 s: {verdict}")
    if not args.no_files:
        seconds, placed = walk_and_plan(args.inputs)
        print(f"walk_inputs + place over {placed:,} real files: {seconds:6.3f} s "
              f"({'OK' if seconds < 1.0 else 'ABOVE TARGET'})")


if __name__ == "__main__":
    main()

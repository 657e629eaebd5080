"""Starting the stand-in TF Serving (segviewer-serve) for a benchmark, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_standin(base: Path, *options: str) -> tuple[subprocess.Popen, str, str]:
    """(process, gRPC address, REST URL) of a stand-in serving `base` on free ports; `options`
    are more segviewer-serve flags (e.g. "--latency-ms", "20"). Stop it with process.kill()."""
    process = subprocess.Popen(
        [sys.executable, "-m", "segviewer.devserver.cli", "--model-base", str(base),
         "--port", "0", "--rest-port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "gRPC " not in line:
        process.kill()
        raise SystemExit(f"the stand-in server did not start: {line.strip()!r}")
    grpc_address = line.split("gRPC ", 1)[1].split(",", 1)[0]
    rest_url = line.split("REST ", 1)[1].split(";", 1)[0]
    return process, grpc_address, rest_url

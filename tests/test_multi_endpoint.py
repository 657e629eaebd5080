"""Several endpoints as one backend: flags, least-outstanding spread, a replica killed mid-run,
version agreement, and every endpoint down."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segviewer.core.images import load_image, load_label_png
from segviewer.core.serving.base import BackendError, ModelRef
from segviewer.core.serving.connection import ConnectionSpec, add_connection_flags
from segviewer.devserver.toy_models import tiny_labels

CLI = [sys.executable, "-m", "segviewer.core.cli"]


def _predict(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i:03d}.png")
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def _spec(*argv: str) -> ConnectionSpec:
    parser = argparse.ArgumentParser()
    add_connection_flags(parser)
    return ConnectionSpec.from_args(parser.parse_args(list(argv)), ("m",))


def test_endpoints_repeat_or_are_comma_separated() -> None:
    spec = _spec("--server", "a:1,b:2", "--server", "c:3")
    assert (spec.kind, spec.targets) == ("grpc", ("a:1", "b:2", "c:3"))
    assert _spec("--server", "dns:///serving.example:8500").targets == (
        "dns:///serving.example:8500",)
    rest = _spec("--rest", "http://a:1/", "--rest", "http://b:2")
    assert (rest.kind, rest.targets) == ("rest", ("http://a:1", "http://b:2"))
    assert _spec("--server", "a:1", "--allow-mixed-versions").allow_mixed_versions
    with pytest.raises(BackendError, match="--rest takes an http"):
        _spec("--rest", "http://a:1,b:2")
    with pytest.raises(BackendError, match="mixes kinds"):
        ConnectionSpec.parse("a:1,http://b:2")
    assert ConnectionSpec.parse("a:1, grpc://b:2").targets == ("a:1", "b:2")


def _replica(base: Path, latency_ms: float, cap: int) -> tuple[subprocess.Popen, str, str]:
    """A stand-in replica in its own process (so it can be killed): (process, gRPC, REST)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "segviewer.devserver.cli", "--model-base", str(base), "--port",
         "0", "--rest-port", "0", "--latency-ms", str(latency_ms), "--max-concurrent",
         str(cap)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert "gRPC " in line, line
    grpc_address = line.split("gRPC ", 1)[1].split(",", 1)[0]
    rest_url = line.split("REST ", 1)[1].split(";", 1)[0]
    return process, grpc_address, rest_url


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_a_replica_killed_mid_run_loses_nothing(kind, tiny_base, tmp_path) -> None:
    inputs = _images(tmp_path / "in", 90)
    replicas = [_replica(tiny_base, 40, 2) for _ in range(3)]
    flag = "--server" if kind == "grpc" else "--rest"
    endpoints = [r[1] if kind == "grpc" else r[2] for r in replicas]
    out, report = tmp_path / "out", tmp_path / "summary.json"
    try:
        run = subprocess.Popen([*CLI, str(tmp_path / "in"), "--out", str(out), "--model", "tiny",
                                "--workers", "6", "--summary", str(report), "--quiet",
                                *(x for e in endpoints for x in (flag, e))],
                               stderr=subprocess.PIPE, text=True)
        while run.poll() is None and len(list(out.glob("*.png"))) < 15:
            time.sleep(0.02)
        replicas[1][0].send_signal(signal.SIGKILL)  # mid-run: others still queued
        _, stderr = run.communicate(timeout=120)
    finally:
        for process, _, _ in replicas:
            process.kill()
            process.wait()
    assert run.returncode == 0, stderr
    for path in inputs:
        expected = tiny_labels(load_image(path), shift=1)
        assert np.array_equal(load_label_png(out / path.name), expected), path
    data = json.loads(report.read_text())
    assert data["ok"] == len(inputs)
    stats = data["endpoints"]
    assert list(stats) == endpoints
    assert stats[endpoints[1]]["taken_out"] >= 1
    assert sum(s["ok"] for s in stats.values()) == len(inputs)
    assert stats[endpoints[0]]["ok"] and stats[endpoints[2]]["ok"]


def test_load_goes_to_the_endpoint_with_fewest_outstanding(tiny_base, start_tf_serving,
                                                           tmp_path) -> None:
    slow = start_tf_serving(tiny_base, latency=0.3)
    fast = start_tf_serving(tiny_base)
    backend = ConnectionSpec("grpc", f"{slow.grpc_address},{fast.grpc_address}",
                             ("tiny",)).open()
    try:
        from segviewer.core.pool import bounded_map

        image = np.zeros((8, 8, 3), np.uint8)
        results = list(bounded_map(lambda _: backend.predict(image, ModelRef("tiny")),
                                   range(40), 4, lambda: False, lambda: None))
        stats = backend.endpoint_stats()
    finally:
        backend.close()
    assert len(results) == 40
    assert stats[fast.grpc_address].ok > 3 * stats[slow.grpc_address].ok > 0


def test_endpoints_serving_different_versions_are_refused(serving_models, start_tf_serving,
                                                          tmp_path) -> None:
    one = start_tf_serving(serving_models, versions={"tiny": [1]})
    two = start_tf_serving(serving_models, versions={"tiny": [2]})
    _images(tmp_path / "in", 2)
    servers = ["--server", f"{one.grpc_address},{two.grpc_address}"]
    result = _predict(tmp_path / "in", "--out", tmp_path / "out", "--model", "tiny", *servers)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "different versions" in lines[0], result.stderr
    assert f"{one.grpc_address} v1" in lines[0] and "--allow-mixed-versions" in lines[0]
    mixed = _predict(tmp_path / "in", "--out", tmp_path / "out", "--model", "tiny", *servers,
                     "--allow-mixed-versions", "--quiet")
    assert mixed.returncode == 0, mixed.stderr


def test_every_endpoint_down_is_one_line(tmp_path) -> None:
    _images(tmp_path / "in", 1)
    result = _predict(tmp_path / "in", "--out", tmp_path / "out", "--model", "tiny",
                      "--server", "127.0.0.1:1,127.0.0.1:2", "--retry-for", "0.5")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "none of the 2 endpoints is reachable" in lines[0], lines
    assert "Traceback" not in result.stderr


def _wait_for(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_endpoint_back_after_a_restart_is_probed_and_used_again() -> None:
    from hostile_servers import HostileGrpc, tiny_labels

    first, second = HostileGrpc(), HostileGrpc()
    backend = ConnectionSpec("grpc", f"{first.address},{second.address}", ("tiny",)).open()
    image = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    ref = ModelRef("tiny")
    try:
        backend.predict(image, ref)
        first.stop()
        for _ in range(6):  # all answered, by the second while the first is down
            assert np.array_equal(backend.predict(image, ref).labels, tiny_labels(image))
        assert backend.endpoint_stats()[first.address].taken_out == 1
        first.version = 2  # back, but with another version: stays out
        first.start()
        time.sleep(1.5)
        before = first.predicts
        for _ in range(4):
            backend.predict(image, ref)
        assert first.predicts == before
        first.stop()
        first.version = 1  # back with the run's version: used again
        first.start()
        assert _wait_for(lambda: (backend.predict(image, ref), first.predicts > before)[1])
    finally:
        backend.close()
        first.stop()
        second.stop()


def test_shard_summaries_add_up_per_endpoint() -> None:
    from segviewer.core.summary import BatchSummary, EndpointStats, merge_summaries

    def summary(ok: int, failed: int) -> dict:
        run = BatchSummary(total=ok, ok=ok)
        stats = EndpointStats(ok, failed, 1 if failed else 0)
        for _ in range(ok):
            stats.latency.add(0.05)
        run.endpoints = {"a:1": stats}
        return {"model": "m", "version": 1, "signature": "s", "out": "o"} | run.to_json()

    merged = merge_summaries([summary(3, 0), summary(4, 2)])
    endpoint = merged["endpoints"]["a:1"]
    assert (endpoint["ok"], endpoint["failed"], endpoint["taken_out"]) == (7, 2, 1)
    assert endpoint["latency_histogram"]["count"] == 7
    assert 0.045 < endpoint["timings"]["per_call_p50_s"] < 0.055

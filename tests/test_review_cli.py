"""segviewer-review run as a real subprocess: in-process, over gRPC and REST, and its errors."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_servers import HostileGrpc, good_answer
from review_data import write_review_set

from segviewer.core.review import SessionVerdicts, Source, Verdict, run_review
from segviewer.core.review_store import ReviewStore
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.local_backend import LocalBackend

CLI = [sys.executable, "-m", "segviewer.core.review_cli"]


def review(*args: str | Path) -> subprocess.CompletedProcess:
    # As a user runs it: conftest's TF log level (which lets TF's C++ errors through) is not
    # inherited; the test's own data folder (and so review store) is.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("segviewer-review: error: ")
    for word in words:
        assert word in lines[0], lines[0]


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["image"]: row for row in csv.DictReader(f)}


@pytest.fixture
def models(review_models) -> Path:
    return review_models


@pytest.fixture
def review_set(tmp_path) -> tuple[Path, Path]:
    return write_review_set(tmp_path)


def test_in_process_report_with_verdicts_from_the_viewer(models, review_set, tmp_path):
    images, gt = review_set
    # A verdict recorded earlier (as the viewer does) on these images and model versions.
    local = LocalBackend(models)
    earlier = run_review(Source(local, ModelRef("seg", 1)), Source(local, ModelRef("seg", 2)),
                         sorted(images.glob("*.png")))
    SessionVerdicts(ReviewStore(), earlier, "ann").set("right.png", Verdict.FAIL,
                                                      "sky on the road")

    result = review(images, "--a", models, "--a-version", "1", "--b-version", "2", "--gt", gt,
                    "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "agreement 86.67%" in result.stdout
    assert "worst by miou-drop: right.png, left.png, same.png" in result.stdout
    rows = read_csv(tmp_path / "out" / "metrics.csv")
    assert list(rows) == ["left.png", "right.png", "same.png"]
    assert [rows[k]["agreement_pct"] for k in rows] == ["95.0000", "75.0000", "100.0000"]
    assert (rows["right.png"]["miou_b_pct"], rows["right.png"]["verdict"],
            rows["right.png"]["notes"]) == ("37.5000", "fail", "ann: sky on the road")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "ann: fail — sky on the road" in html
    assert f"fingerprint {earlier.a.fingerprint}" in result.stdout


def test_served_a_rest_b_and_a_failing_image(models, start_tf_serving, review_set, tmp_path):
    images, _ = review_set
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    server = start_tf_serving(models, versions={"seg": [1, 2]})
    result = review(images, "--a", server.grpc_address, "--a-model", "seg", "--a-version", "1",
                    "--b", server.rest_url, "--b-version", "2", "--out", tmp_path / "out",
                    "--workers", "3")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "broken.png" in failed[0]
    assert "Traceback" not in result.stderr
    assert "3 images compared, 1 failed" in result.stdout
    rows = read_csv(tmp_path / "out" / "metrics.csv")
    assert rows["right.png"]["agreement_pct"] == "75.0000" and rows["broken.png"]["error"]
    assert rows["right.png"]["miou_a_pct"] == ""  # no --gt


def test_colour_ground_truth_with_palette(models, review_set, tmp_path):
    from PIL import Image

    from segviewer.core.images import load_label_png
    from segviewer.core.labels import pascal_colormap

    images, gray = review_set
    colour = tmp_path / "colour"
    colour.mkdir()
    for path in gray.glob("*.png"):
        Image.fromarray(pascal_colormap(256)[load_label_png(path)]).save(colour / path.name)
    args = [images, "--a", models, "--a-version", "1", "--b-version", "2", "--quiet"]
    unread = review(*args, "--gt", colour, "--out", tmp_path / "unread")
    assert unread.returncode == 1 and "--gt-palette" in unread.stderr
    result = review(*args, "--gt", colour, "--gt-palette", "pascal", "--out", tmp_path / "col")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --quiet
    expected = review(*args, "--gt", gray, "--out", tmp_path / "gray")
    assert read_csv(tmp_path / "col" / "metrics.csv") == \
        read_csv(tmp_path / "gray" / "metrics.csv")
    assert np.isclose(float(read_csv(tmp_path / "gray" / "metrics.csv")["left.png"]["miou_a_pct"]),
                      100 * 1.95 / 3, atol=1e-4)
    assert expected.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_line_errors(models, review_set, tmp_path):
    images, _ = review_set
    assert_one_line_error(review(images, "--a", models, "--gt", tmp_path / "nowhere"),
                          "--gt", "nowhere", "not a folder")
    dead = f"127.0.0.1:{free_port()}"
    assert_one_line_error(review(images, "--a", dead, "--a-model", "seg", "--b-version", "2",
                                 "--retry-for", "0.5"), "cannot reach", dead, "model A")
    # No model named: a dead server is said to be dead, not to serve no models.
    assert_one_line_error(review(images, "--a", dead, "--retry-for", "0.5"), "cannot reach", dead)
    assert_one_line_error(review(images, "--a", tmp_path / "no_models"), "--a", "does not exist")
    assert_one_line_error(review(images, "--a", models, "--a-version", "2", "--b-version", "2"),
                          "same model")
    assert_one_line_error(review(images, "--a", models, "--a-version", "1", "--b-version", "7"),
                          "no version 7")
    assert_one_line_error(review(images, "--a", models, "--gt-palette", "nope"), "nope")
    assert_one_line_error(review(tmp_path / "empty*.png", "--a", models), "no images")
    assert_one_line_error(review(images, "--a", models, "--ignore-label", "-1"), "--ignore-label")


def test_console_script_and_version():
    script = shutil.which("segviewer-review", path=str(Path(sys.executable).parent))
    assert script is not None, "run: pip install -e . (the console script is missing)"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("segviewer-review ")


def test_a_server_that_stops_answering_stops_the_review_with_one_line(tmp_path):
    """A wedged server (every Predict misses its deadline) and one that goes away (UNAVAILABLE
    after --retry-for) end the review with exit 2 instead of failing image after image."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (8, 10, 3), np.uint8)).save(folder / f"{i:02}.png")
    a, b = HostileGrpc(), HostileGrpc()
    b.version = 2
    common = ["--a", a.address, "--b", b.address, "--a-model", "tiny", "--workers", "1", "--store",
              tmp_path / "s.sqlite3", "--out", tmp_path / "report"]
    try:
        b.hang_predict.set()
        wedged = review(folder, *common, "--timeout", "0.3")
        b.hang_predict.clear()
        b.release.set()
        calls = b.predicts

        def die(image: np.ndarray) -> dict[str, np.ndarray]:
            if b.predicts >= calls + 3:  # the third image's call: the server goes away
                threading.Thread(target=b.stop).start()
                time.sleep(1)
            return good_answer(image)

        b.answer = die
        gone = review(folder, *common, "--retry-for", "1")
    finally:
        a.stop()
        b.stop()
    # One image beyond the rule's count may already be under way when the review stops.
    for result, count, words in ((wedged, 9, "no answer from"), (gone, 4, "cannot reach")):
        assert result.returncode == 2, result.stderr
        *failed, last = result.stderr.strip().splitlines()
        assert last.startswith("segviewer-review: error: stopped, a server is not answering: "
                               "model B"), result.stderr
        assert words in last and "of 20 images compared, no report written" in last
        assert 1 <= len(failed) <= count, result.stderr  # not all 20 failing in turn
        assert all(line.startswith("segviewer-review: failed: ") for line in failed), failed
    assert calls == 8
    assert not (tmp_path / "report").exists() or not any((tmp_path / "report").iterdir())

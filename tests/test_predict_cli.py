"""segviewer-predict, run as a real subprocess, in-process and against the stand-in TF Serving."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_images import deeper_than_path_max, write_mixed_folder

from segviewer.core.batch import BatchProgress, Failure
from segviewer.core.cli import ProgressPrinter
from segviewer.core.images import is_valid_png, load_image, load_label_png
from segviewer.devserver.toy_models import tiny_labels

CLI = [sys.executable, "-m", "segviewer.core.cli"]


def predict(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("segviewer-predict: error: ")
    for word in words:
        assert word in lines[0]


def test_mixed_folder_then_resume(serving_models, tmp_path):
    good = write_mixed_folder(tmp_path / "in")
    (tmp_path / "in" / "deep").mkdir()
    too_long = deeper_than_path_max(tmp_path / "in" / "deep")  # a folder no one can read
    # --out inside the input folder: the second run must not take the outputs for inputs.
    out, report = tmp_path / "in" / "seg", tmp_path / "summary.json"
    result = predict(tmp_path / "in", "--out", out, "--saved-model", serving_models,
                     "--model", "tiny", "--overlay", "--summary", report)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "corrupt.png" in failed[0]
    for path in good:  # outputs mirror the inputs' folders
        rel = path.relative_to(tmp_path / "in")
        labels = load_label_png(out / rel.with_suffix(".png"))
        assert np.array_equal(labels, tiny_labels(load_image(path), shift=1))
        assert is_valid_png(out / rel.with_name(f"{rel.stem}_overlay.png"))
    data = json.loads(report.read_text())
    assert (data["ok"], data["failed"], data["skipped"]) == (4, 1, 0)
    assert data["failures"][0]["input"].endswith("corrupt.png")
    assert (data["model"], data["version"]) == ("tiny", 2)
    [unreadable] = [line for line in result.stderr.splitlines() if "left out of" in line]
    assert unreadable == f"segviewer-predict: cannot read '{too_long}': File name too long — " \
        "what it holds is left out of this run"
    assert data["unreadable"] == [unreadable.removeprefix("segviewer-predict: ")]

    again = predict(tmp_path / "in", "--out", out, "--saved-model", serving_models,
                    "--model", "tiny", "--overlay", "--resume", "--summary", report)
    assert again.returncode == 1
    data = json.loads(report.read_text())
    assert (data["total"], data["skipped"], data["failed"]) == (5, 4, 1)
    assert "not reading" in again.stderr and str(out) in again.stderr  # --out inside the input


def test_served_grpc_and_rest_match_in_process_with_workers(serving_models, tf_serving,
                                                            tmp_path):
    rng = np.random.default_rng(5)
    for i in range(12):  # same names in two folders: outputs mirror the folders
        folder = tmp_path / "in" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"img{i // 2}.png")
    inputs = sorted((tmp_path / "in").rglob("*.png"))
    runs = {
        "local": ["--saved-model", serving_models],
        "grpc": ["--server", tf_serving.grpc_address, "--workers", "4"],
        "rest": ["--rest", tf_serving.rest_url, "--workers", "4"],
    }
    for name, backend in runs.items():
        result = predict(tmp_path / "in", "--out", tmp_path / name, "--model", "tiny",
                         "--version", "2", *backend)
        assert result.returncode == 0, result.stderr
    for path in inputs:
        rel = path.relative_to(tmp_path / "in")
        expected = tiny_labels(load_image(path), shift=1)
        for name in runs:
            assert np.array_equal(load_label_png(tmp_path / name / rel), expected), (name, rel)


def test_connection_and_usage_errors_exit_2_with_one_line(serving_models, tmp_path):
    image = write_mixed_folder(tmp_path / "in")[0]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--server", dead,
                                  "--model", "tiny", "--retry-for", "0.5"), dead, "--retry-for")
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--saved-model",
                                  serving_models, "--model", "nope"), "nope", "tiny")
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--saved-model",
                                  serving_models, "--model", "tiny", "--version", "9"),
                          "no version 9")
    assert_one_line_error(predict(image, "--out", tmp_path / "o"),
                          "--server", "--rest", "--saved-model")
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--saved-model", tmp_path),
                          "not a SavedModel folder")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_ctrl_c_finishes_in_flight_and_exits_130(serving_models, tmp_path):
    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, size=(192, 192, 3), dtype=np.uint8)
    for i in range(300):
        (tmp_path / "in").mkdir(exist_ok=True)
        Image.fromarray(np.roll(base, i, axis=1)).save(tmp_path / "in" / f"f{i:03d}.png",
                                                       compress_level=1)
    out, report = tmp_path / "out", tmp_path / "summary.json"
    process = subprocess.Popen(
        [*CLI, str(tmp_path / "in"), "--out", str(out), "--saved-model", str(serving_models),
         "--model", "tiny", "--workers", "2", "--summary", str(report)],
        stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()
    while first and "img/s" not in first:  # TF may log first; wait for the progress
        first = process.stderr.readline()
    assert first, "the run ended before printing progress"
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 130, first + rest
    assert "Traceback" not in rest
    assert "interrupted" in rest.strip().splitlines()[-1]
    data = json.loads(report.read_text())
    assert data["cancelled"] and data["ok"] < 300  # no new request after Ctrl-C
    written = sorted(out.iterdir())
    assert len(written) == data["ok"]  # no temporary or partial files
    assert all(is_valid_png(p) for p in written)


def test_version_labels_over_grpc(tf_serving, tmp_path):
    image = write_mixed_folder(tmp_path / "in")[1]
    for label, shift in (("stable", 0), ("canary", 1)):
        result = predict(image, "--out", tmp_path / label, "--server", tf_serving.grpc_address,
                         "--model", "tiny", "--label", label, "--quiet")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        labels = load_label_png(tmp_path / label / "rgba.png")
        assert np.array_equal(labels, tiny_labels(load_image(image), shift))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_plain_lines_otherwise():
    failure = Failure(Path("bad.png"), "cannot read 'bad.png': file is truncated")
    events = [BatchProgress(0, 20, 0, 0, 0, 0.0)] + [
        BatchProgress(i, 20, i - (i > 4), int(i > 4), 0, i / 10, Path(f"{i}.png"),
                      failure if i == 5 else None)
        for i in range(1, 21)
    ]
    terminal = Terminal()
    printer = ProgressPrinter(terminal, quiet=False)
    for event in events:
        printer(event)
    printer.finish()
    text = terminal.getvalue()
    assert "\r" in text and text.endswith("\n")
    assert "20/20" in text and "1 failed" in text
    assert text.count("segviewer-predict: failed: bad.png: cannot read 'bad.png'") == 1

    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, quiet=False)
    for event in events:
        printer(event)
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "10% 2/20 [00:00<00:01, 10.00img/s]"
    assert len(lines) == 11 and "20/20" in lines[-1] and lines[-1].endswith("1 failed")
    assert sum("failed: bad.png" in line for line in lines) == 1

    quiet = io.StringIO()
    printer = ProgressPrinter(quiet, quiet=True)
    for event in events:
        printer(event)
    assert quiet.getvalue().splitlines() == [
        "segviewer-predict: failed: bad.png: cannot read 'bad.png': file is truncated"]


def test_progress_counts_while_the_total_is_unknown():
    pipe = io.StringIO()
    printer = ProgressPrinter(pipe, quiet=False)
    for i in range(1, 251):
        printer(BatchProgress(i, None, i, 0, 0, i / 100, Path(f"{i}.png")))
    assert pipe.getvalue().splitlines() == ["100img [00:01, 100.00img/s]",
                                            "200img [00:02, 100.00img/s]"]
    terminal = Terminal()
    printer = ProgressPrinter(terminal, quiet=False)
    printer(BatchProgress(7, None, 7, 0, 0, 0.5, Path("7.png")))
    printer.finish()  # the line as it stands: a count, no total yet
    assert "7img [" in terminal.getvalue()
    terminal = Terminal()
    printer = ProgressPrinter(terminal, quiet=False)
    printer(BatchProgress(7, None, 7, 0, 0, 0.5, Path("7.png")))
    printer(BatchProgress(8, 9, 8, 0, 0, 0.6, Path("8.png")))  # the listing ended: 9 in all
    printer.finish()
    assert "8/9" in terminal.getvalue()


def test_outputs_that_would_replace_inputs_or_each_other_exit_2(serving_models, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(tmp_path / folder / "photo.png")
    before = (tmp_path / "a" / "photo.png").read_bytes()
    run = ["--saved-model", serving_models, "--model", "tiny"]
    # Issue 13: `a b --out a` replaced a/photo.png with b's label map (exit 0).
    assert_one_line_error(predict(tmp_path / "a", tmp_path / "b", "--out", tmp_path / "a", *run),
                          str(tmp_path / "a"), "--out")
    assert (tmp_path / "a" / "photo.png").read_bytes() == before
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(tmp_path / "a" / "photo_overlay.png")
    result = predict(tmp_path / "a", "--out", tmp_path / "out", "--overlay", *run)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert str(tmp_path / "a" / "photo.png") in error
    assert str(tmp_path / "a" / "photo_overlay.png") in error
    # The same two named as files: refused before anything is sent, nothing written.
    photo, overlay_named = tmp_path / "a" / "photo.png", tmp_path / "a" / "photo_overlay.png"
    assert_one_line_error(predict(photo, overlay_named, "--out", tmp_path / "files", "--overlay",
                                  *run),
                          "photo_overlay.png", "would both write")
    assert list((tmp_path / "files").iterdir()) == []
    assert_one_line_error(predict(tmp_path / "a", "--out", tmp_path / "o", "--shard", "3/3",
                                  *run), "--shard", "0 <= K < N")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(predict(tmp_path / "empty", "--out", tmp_path / "o", *run),
                          "no images found")


def test_shard_summaries_merge(serving_models, tmp_path):
    write_mixed_folder(tmp_path / "in")
    run = ["--saved-model", serving_models, "--model", "tiny", "--quiet"]
    parts = []
    for k in range(2):
        parts.append(tmp_path / f"s{k}.json")
        predict(tmp_path / "in", "--out", tmp_path / "out", "--shard", f"{k}/2", "--summary",
                parts[-1], *run)
    merged = tmp_path / "all.json"
    result = predict("--merge-summaries", *parts, "--summary", merged)
    assert result.returncode == 0, result.stderr
    data = json.loads(merged.read_text())
    assert (data["total"], data["ok"], data["failed"], data["shards"]) == (5, 4, 1, 2)
    assert data["model"] == "tiny" and data["version"] == 2
    assert sum(c["percent"] for c in data["class_shares"]) == pytest.approx(100, abs=0.01)
    assert_one_line_error(predict("--merge-summaries", tmp_path / "nope.json", "--summary",
                                  merged), "nope.json")


def test_a_read_only_out_stops_at_the_first_write_naming_the_folder(serving_models, tmp_path):
    write_mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (an immutable folder stands for a "
                    "read-only mount)")
    try:
        result = predict(tmp_path / "in", "--out", out, "--saved-model", serving_models,
                         "--model", "tiny", "--workers", "1")
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"cannot write to '{out}'" in last and "not run" in last
    assert sum("failed:" in line for line in result.stderr.splitlines()) <= 2


def test_model_omitted_picks_the_only_one_or_says_why_not(tf_serving, tiny_base, tmp_path):
    image = write_mixed_folder(tmp_path / "in")[0]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    # A dead server is said to be unreachable, not to serve no models.
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--server", dead,
                                  "--retry-for", "0.5"), "cannot reach", dead)
    # A live TF Serving cannot list its models: name one.
    assert_one_line_error(predict(image, "--out", tmp_path / "o", "--server",
                                  tf_serving.grpc_address, "--retry-for", "0.5"),
                          "does not list its models", "--model")
    # A folder with one model: that one.
    result = predict(image, "--out", tmp_path / "o", "--saved-model", tiny_base, "--quiet")
    assert result.returncode == 0, result.stderr
    assert any((tmp_path / "o").rglob("*.png"))

"""Fault injection: hostile gRPC and REST servers (tests/hostile_servers.py) against the client.

Every answer is validated before it is used or allocated; deadlines are whole calls and never
retried; an unavailable server is waited for within --retry-for; Ctrl-C cancels any phase; TLS
errors name the file or the verification failure first. Each failure is one line, never a
traceback, and a bad answer fails only its input.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hostile_servers import NUM_CLASSES, HostileGrpc, HostileRest, good_answer, tiny_labels
from PIL import Image

from segviewer.core import cli
from segviewer.core.batch import BatchOptions, run_batch
from segviewer.core.serving import protos
from segviewer.core.serving.base import BackendError, ModelRef
from segviewer.core.serving.grpc_backend import GrpcBackend
from segviewer.core.serving.rest_backend import RestBackend

REF = ModelRef("tiny")
IMAGE = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)  # H 48, W 64


@pytest.fixture
def grpc_server():
    server = HostileGrpc()
    yield server
    server.stop()


@pytest.fixture
def rest_server():
    server = HostileRest()
    yield server
    server.stop()


def _one_line_error(call, code: str | None = None) -> BackendError:
    with pytest.raises(BackendError) as caught:
        call()
    assert "\n" not in str(caught.value)
    if code is not None:
        assert caught.value.code == code, caught.value
    return caught.value


def _declared(shape: tuple[int, ...], values: list[int]) -> bytes:
    """A PredictResponse `outputs` map whose tensor declares `shape` but carries `values`."""
    response = protos.PredictResponse()
    tensor = response.outputs["segmentation_map"]
    tensor.dtype = 9  # DT_INT64
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.int64_val.extend(values)
    return response.SerializeToString()


def _labels(image: np.ndarray) -> np.ndarray:
    return tiny_labels(image)


BAD_GRPC_ANSWERS = {
    "shape [1,1,1]": (lambda im: {"segmentation_map": np.zeros((1, 1, 1), np.int64)},
                      "is 1x1 (HxW) for a 48x64 image"),
    "transposed": (lambda im: {"segmentation_map": _labels(im).transpose(0, 2, 1).copy()},
                   "is 64x48 (HxW) for a 48x64 image"),
    "float where int64": (lambda im: {"segmentation_map": np.full(im.shape[:3], 2.7, np.float32)},
                          "holds float32, the signature declares int64"),
    "2**32 + 3": (lambda im: {"segmentation_map": np.full(im.shape[:3], 2**32 + 3, np.int64)},
                  "label id 4294967299, outside the model's 4 classes"),
    "id past the classes": (lambda im: {"segmentation_map": _labels(im) + NUM_CLASSES},
                            "outside the model's 4 classes"),
    "negative id": (lambda im: {"segmentation_map": _labels(im) - 1}, "label id -1"),
    "missing output": (lambda im: {"other": _labels(im)}, "lacks output 'segmentation_map'"),
    "one value for [1,100000,100000]": (lambda im: _declared((1, 100000, 100000), [1]),
                                        "declares 10000000000 values, 1 present"),
    "one value for [1,20000,20000]": (lambda im: _declared((1, 20000, 20000), [1]),
                                      "declares 400000000 values, 1 present"),
    "negative dimension": (lambda im: _declared((1, -48, 64), [1]), "negative dimension"),
}


@pytest.mark.parametrize("name", list(BAD_GRPC_ANSWERS))
def test_grpc_bad_answers_fail_in_one_line_before_allocating(grpc_server, name) -> None:
    answer, text = BAD_GRPC_ANSWERS[name]
    grpc_server.answer = answer
    backend = GrpcBackend(grpc_server.address, ["tiny"], retry_for=0)
    backend.metadata(REF)
    tracemalloc.start()
    try:
        error = _one_line_error(lambda: backend.predict(IMAGE, REF), "INTERNAL")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        backend.close()
    assert f"bad answer from {grpc_server.address}" in str(error)
    assert text in str(error)
    assert peak < 20 * 2**20  # nothing of the declared size was ever allocated


def test_a_good_answer_still_works_and_is_the_model_s(grpc_server, rest_server) -> None:
    for backend in (GrpcBackend(grpc_server.address, ["tiny"]),
                    RestBackend(rest_server.url, ["tiny"])):
        prediction = backend.predict(IMAGE, REF)
        np.testing.assert_array_equal(prediction.labels, tiny_labels(IMAGE))
        assert prediction.version == 1
        backend.close()


def _json_nested(depth: int) -> bytes:
    return b'{"predictions": ' + b"[" * depth + b"]" * depth + b"}"


BAD_REST_ANSWERS = {
    "predictions is a number": (b'{"predictions": 5}', "'predictions' is not a list"),
    "nested 200,000 deep": (_json_nested(200_000), "JSON nested too deeply"),
    "10**23": (lambda im: json.dumps({"predictions": [[[10**23] * 64] * 48]}).encode(),
               "the signature declares int64"),
    "floats where int64": (lambda im: json.dumps({"predictions": np.full(
        im.shape[:3], 2.7).tolist()}).encode(), "holds float64, the signature declares int64"),
    "shape [1,1,1]": (b'{"predictions": [[[0]]]}', "is 1x1 (HxW) for a 48x64 image"),
    "ragged": (b'{"predictions": [[[0, 1], [2]]]}', "bad answer from"),
    "not JSON": (b"<html>busy</html>", "not JSON"),
    "no outputs": (b'{"result": 1}', "neither 'predictions' nor 'outputs'"),
    "strings": (b'{"predictions": [[["a"]]]}', "holds strings, the signature declares int64"),
}


@pytest.mark.parametrize("name", list(BAD_REST_ANSWERS))
def test_rest_bad_answers_fail_in_one_line(rest_server, name) -> None:
    body, text = BAD_REST_ANSWERS[name]
    rest_server.answer = body if callable(body) else (lambda im: body)
    backend = RestBackend(rest_server.url, ["tiny"], retry_for=0)
    error = _one_line_error(lambda: backend.predict(IMAGE, REF))
    backend.close()
    assert text in str(error)
    assert error.code == "INTERNAL"


@pytest.mark.parametrize("body, text", [
    (b'{"model_spec": [], "metadata": {"signature_def": {}}}', "'model_spec' is not an object"),
    (b'{"model_spec": {"version": "abc"}, "metadata": {"signature_def": {}}}',
     "model_spec.version 'abc' is not a version number"),
    (b'{"model_spec": {}, "metadata": 5}', "bad answer from"),
    (b'[1, 2]', "bad answer from"),
])
def test_rest_malformed_metadata_is_one_line(rest_server, body, text) -> None:
    rest_server.metadata_body = body
    backend = RestBackend(rest_server.url, ["tiny"], retry_for=0)
    error = _one_line_error(lambda: backend.metadata(REF), "INTERNAL")
    assert text in str(error) and "metadata" in str(error)


def test_rest_answers_and_requests_are_bounded(rest_server) -> None:
    big = np.zeros((1, 600, 800), np.int64)
    rest_server.answer = lambda im: {"segmentation_map": big}  # ~1 MB of JSON
    backend = RestBackend(rest_server.url, ["tiny"], max_message_mb=0.5, retry_for=0)
    error = _one_line_error(lambda: backend.predict(IMAGE, REF), "RESOURCE_EXHAUSTED")
    assert "over 0.5 MB" in str(error) and "--max-message-mb" in str(error)
    before = rest_server.predicts
    large = np.zeros((400, 400, 3), np.uint8)  # ~1.9 MB of JSON to send
    error = _one_line_error(lambda: backend.predict(large, REF), "INVALID_ARGUMENT")
    assert "--max-message-mb" in str(error)
    assert rest_server.predicts == before  # refused before anything was sent


def test_grpc_answers_are_bounded(grpc_server) -> None:
    grpc_server.answer = lambda im: {"segmentation_map": np.zeros((1, 600, 800), np.int64)}
    backend = GrpcBackend(grpc_server.address, ["tiny"], max_message_mb=0.1, retry_for=0)
    error = _one_line_error(lambda: backend.predict(IMAGE, REF), "RESOURCE_EXHAUSTED")
    assert "--max-message-mb" in str(error)


# --- a run goes on past a bad answer -----------------------------------------------------------


def _images(folder, count: int, size=(48, 64)) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_a_bad_answer_fails_its_input_and_the_run_goes_on(grpc_server, rest_server, tmp_path,
                                                          capsys, kind) -> None:
    paths = _images(tmp_path / "in", 3)
    odd = _images(tmp_path / "odd", 1, size=(20, 30))[0]
    odd.rename(odd.with_name("odd.png"))  # in/img00.png and odd/img00.png would share an output
    server = grpc_server if kind == "grpc" else rest_server

    def answer(image: np.ndarray):  # wrong only for the 20x30 image
        if image.shape[1] == 20:
            return {"segmentation_map": np.zeros((1, 30, 20), np.int64)}
        return good_answer(image)

    server.answer = answer
    where = ["--server", grpc_server.address] if kind == "grpc" else ["--rest", rest_server.url]
    code = cli.main([str(tmp_path / "in"), str(tmp_path / "odd"), "--out", str(tmp_path / "out"),
                     *where, "--model", "tiny", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    failures = [line for line in err.splitlines() if "failed:" in line]
    assert len(failures) == 1 and "odd.png" in failures[0] and "bad answer from" in failures[0]
    assert "Traceback" not in err
    assert len(list((tmp_path / "out").rglob("*.png"))) == len(paths)


# --- deadlines, wedged servers, Ctrl-C ---------------------------------------------------------


def test_deadline_is_one_attempt_on_grpc_and_rest(grpc_server, rest_server) -> None:
    for server, backend in ((grpc_server, GrpcBackend(grpc_server.address, ["tiny"], timeout=0.5)),
                            (rest_server, RestBackend(rest_server.url, ["tiny"], timeout=0.5))):
        backend.metadata(REF)
        server.hang_predict.set()
        error = _one_line_error(lambda b=backend: b.predict(IMAGE, REF), "DEADLINE_EXCEEDED")
        assert "within 0.5 s" in str(error) and "--timeout" in str(error)
        assert server.predicts == 1  # not retried
        backend.close()


def test_a_wedged_server_stops_the_run(grpc_server, tmp_path, capsys) -> None:
    _images(tmp_path / "in", 20)
    grpc_server.hang_predict.set()
    code = cli.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--server",
                     grpc_server.address, "--model", "tiny", "--timeout", "1", "--workers", "2",
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "stopped, the model is unreachable" in err and "within 1 s" in err
    ran = int(re.search(r"(\d+) failed", err).group(1))
    assert 8 <= ran < 20 and "not run" in err


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_ctrl_c_during_metadata_exits_at_once(grpc_server, rest_server, tmp_path, kind) -> None:
    _images(tmp_path / "in", 1)
    server = grpc_server if kind == "grpc" else rest_server
    server.hang_metadata.set()  # answers only when the test ends
    where = ["--server", grpc_server.address] if kind == "grpc" else ["--rest", rest_server.url]
    process = subprocess.Popen(
        [sys.executable, "-m", "segviewer.core.cli", str(tmp_path / "in"), "--out",
         str(tmp_path / "out"), *where, "--model", "tiny"],
        stderr=subprocess.PIPE, text=True)
    try:
        assert server.metadata_called.wait(60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)  # the server would hang for 60 s
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_ctrl_c_mid_run_cancels_the_calls_in_flight(grpc_server, rest_server, tmp_path,
                                                    kind) -> None:
    _images(tmp_path / "in", 10)
    server = grpc_server if kind == "grpc" else rest_server
    server.hang_predict.set()
    where = ["--server", grpc_server.address] if kind == "grpc" else ["--rest", rest_server.url]
    process = subprocess.Popen(
        [sys.executable, "-m", "segviewer.core.cli", str(tmp_path / "in"), "--out",
         str(tmp_path / "out"), *where, "--model", "tiny", "--workers", "2"],
        stderr=subprocess.PIPE, text=True)
    try:
        while server.predicts < 2 and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)  # the server would hang for 60 s
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "0 ok, 0 failed" in err and "not run" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_interrupt_cancels_requests_in_flight(grpc_server, rest_server, tmp_path, kind) -> None:
    paths = _images(tmp_path / "in", 6)
    server = grpc_server if kind == "grpc" else rest_server
    backend = (GrpcBackend(grpc_server.address, ["tiny"]) if kind == "grpc"
               else RestBackend(rest_server.url, ["tiny"]))
    backend.metadata(REF)
    server.hang_predict.set()
    cancel = threading.Event()

    def press_ctrl_c() -> None:
        while server.predicts < 2:
            time.sleep(0.01)
        cancel.set()
        backend.interrupt()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    summary = run_batch(backend, REF, paths, tmp_path / "out", BatchOptions(workers=2),
                        cancel=cancel)
    backend.close()
    # Inputs are taken as the pool frees up: those not yet taken were never listed as "not run".
    assert summary.ok == 0 and summary.failed == 0 and summary.not_run == summary.total > 0
    assert summary.cancelled


# --- restarts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, down_s", [("grpc", 10.0), ("rest", 3.0)])
def test_a_restart_within_retry_for_loses_nothing(grpc_server, rest_server, tmp_path, kind,
                                                  down_s) -> None:
    paths = _images(tmp_path / "in", 12, size=(12, 16))
    server = grpc_server if kind == "grpc" else rest_server
    backend = (GrpcBackend(grpc_server.address, ["tiny"], retry_for=30) if kind == "grpc"
               else RestBackend(rest_server.url, ["tiny"], retry_for=30))
    stopped = threading.Event()

    def progress(p) -> None:
        if p.done == 3 and not stopped.is_set():
            stopped.set()
            server.stop()
            server.release.clear()
            threading.Timer(down_s, server.start).start()

    summary = run_batch(backend, REF, paths, tmp_path / "out", BatchOptions(workers=2), progress)
    backend.close()
    assert stopped.is_set()
    assert summary.ok == 12 and summary.failed == 0, summary.failures


@pytest.mark.parametrize("kind", ["grpc", "rest"])
def test_a_server_dying_with_calls_in_flight_loses_nothing(grpc_server, rest_server, tmp_path,
                                                           kind) -> None:
    paths = _images(tmp_path / "in", 6, size=(12, 16))
    server = grpc_server if kind == "grpc" else rest_server
    backend = (GrpcBackend(grpc_server.address, ["tiny"], retry_for=30) if kind == "grpc"
               else RestBackend(rest_server.url, ["tiny"], retry_for=30))
    backend.metadata(REF)
    server.hang_predict.set()

    def die_and_come_back() -> None:
        while server.predicts < 2:
            time.sleep(0.01)
        server.stop()  # the two calls in flight are cut
        server.hang_predict.clear()
        server.release.clear()
        time.sleep(2)
        server.start()

    restart = threading.Thread(target=die_and_come_back, daemon=True)
    restart.start()
    summary = run_batch(backend, REF, paths, tmp_path / "out", BatchOptions(workers=2))
    backend.close()
    restart.join()
    assert server.predicts > 6  # the two cut calls were sent again
    assert summary.ok == 6 and summary.failed == 0, summary.failures


def test_refused_connections_are_retried_then_named(rest_server) -> None:
    url = rest_server.url
    rest_server.stop()
    started = time.monotonic()
    error = _one_line_error(lambda: RestBackend(url, ["tiny"], retry_for=0.5).versions("tiny"),
                            "UNAVAILABLE")
    assert time.monotonic() - started >= 0.5
    assert "cannot reach" in str(error) and "--retry-for" in str(error)


# --- TLS and flags -----------------------------------------------------------------------------


def _flags_in(message: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]+", message))


def _predict_flags() -> set[str]:
    return {s for a in cli.build_parser()._actions for s in a.option_strings}


def test_tls_with_a_plain_http_url_is_refused(rest_server, tmp_path, capsys, tls_files) -> None:
    _images(tmp_path / "in", 1)
    for extra in (["--tls"], ["--ca-file", str(tls_files[0])]):
        code = cli.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--rest",
                         rest_server.url, "--model", "tiny", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "https://" in err and extra[0] in err, err
        assert _flags_in(err) <= _predict_flags()
    assert rest_server.predicts == 0


def test_every_flag_named_in_a_message_exists(grpc_server, tmp_path, capsys, tls_files) -> None:
    _images(tmp_path / "in", 1)
    for extra in (["--cert-file", str(tls_files[0])], ["--key-file", str(tls_files[1])]):
        code = cli.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--server",
                         grpc_server.address, "--model", "tiny", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "needs both --cert-file and --key-file" in err
        assert _flags_in(err) <= _predict_flags()


def test_garbage_and_missing_tls_files_are_named(tmp_path, tls_files) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for make in (lambda: GrpcBackend("127.0.0.1:1", ca_file=garbage),
                 lambda: RestBackend("https://127.0.0.1:1", ca_file=garbage)):
        error = _one_line_error(make, "INVALID_ARGUMENT")
        assert "--ca-file" in str(error) and "garbage.pem" in str(error)
    for make in (lambda: GrpcBackend("127.0.0.1:1", cert_file=garbage, key_file=tls_files[1]),
                 lambda: RestBackend("https://127.0.0.1:1", cert_file=garbage,
                                     key_file=tls_files[1])):
        error = _one_line_error(make, "INVALID_ARGUMENT")
        assert "--cert-file" in str(error) and "garbage.pem" in str(error)
    error = _one_line_error(lambda: RestBackend("https://127.0.0.1:1",
                                                ca_file=tmp_path / "missing.pem"))
    assert "cannot read --ca-file" in str(error) and "missing.pem" in str(error)


def test_verification_failure_comes_first_and_is_not_retried(tls_files) -> None:
    cert, key = tls_files
    grpc_server = HostileGrpc(tls=(cert.read_bytes(), key.read_bytes()))
    rest_server = HostileRest(cert_files=(str(cert), str(key)))
    try:
        for make in (lambda: GrpcBackend(grpc_server.address, ["tiny"], tls=True, retry_for=30),
                     lambda: RestBackend(rest_server.url, ["tiny"], retry_for=30)):
            started = time.monotonic()
            error = _one_line_error(lambda m=make: m().versions("tiny"), "UNAVAILABLE")
            assert str(error).startswith("TLS with 127.0.0.1:"), error
            assert "CERTIFICATE_VERIFY_FAILED: self" in str(error) and "--ca-file" in str(error)
            assert time.monotonic() - started < 15  # not retried for the 30 s window
    finally:
        grpc_server.stop()
        rest_server.stop()


def test_client_certificates_work_over_rest(tls_files) -> None:
    cert, key = tls_files
    server = HostileRest(cert_files=(str(cert), str(key)), client_ca=str(cert))
    try:
        good = RestBackend(server.url, ["tiny"], ca_file=cert, cert_file=cert, key_file=key)
        np.testing.assert_array_equal(good.predict(IMAGE, REF).labels, tiny_labels(IMAGE))
        good.close()
        _one_line_error(lambda: RestBackend(server.url, ["tiny"], ca_file=cert,
                                            retry_for=0).versions("tiny"))
    finally:
        server.stop()


def test_a_huge_version_number_is_one_line(grpc_server, tmp_path, capsys) -> None:
    _images(tmp_path / "in", 1)
    code = cli.main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--server",
                     grpc_server.address, "--model", "tiny", "--version", "99999999999999999999"])
    err = capsys.readouterr().err
    assert code == 2 and "out of range" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# --- one metadata cache, invalidated the same way everywhere -----------------------------------


def test_grpc_follows_a_version_move(grpc_server) -> None:
    backend = GrpcBackend(grpc_server.address, ["tiny"])
    assert backend.predict(IMAGE, REF).version == 1
    grpc_server.version = 2
    assert backend.predict(IMAGE, REF).version == 2  # the answer says which version made it
    assert backend.metadata(REF).version == 2  # and the metadata was read again
    backend.close()


def test_rest_follows_a_version_move(rest_server) -> None:
    backend = RestBackend(rest_server.url, ["tiny"])
    assert backend.predict(IMAGE, REF).version == 1
    rest_server.version = 2
    assert backend.predict(IMAGE, REF).version == 2
    assert backend.metadata(REF).version == 2
    backend.close()

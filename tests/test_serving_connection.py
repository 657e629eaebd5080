"""ConnectionSpec: one parser of user input, one flag group for the three CLIs, one registry of
backend kinds, and the metadata cache every backend shares."""

from __future__ import annotations

import argparse

import pytest

from segviewer.core import cli, review_cli
from segviewer.core.serving import connection
from segviewer.core.serving.base import BackendError, ModelMetadata, ModelRef
from segviewer.core.serving.connection import ConnectionSpec, add_connection_flags
from segviewer.core.serving.metadata_cache import MetadataCache
from segviewer.ui import app


@pytest.mark.parametrize("text, kind, target, tls", [
    ("localhost:8500", "grpc", "localhost:8500", False),
    ("grpc://host:1", "grpc", "host:1", False),
    ("grpcs://host:1", "grpc", "host:1", True),
    ("[::1]:8500", "grpc", "[::1]:8500", False),
    ("http://host:8501/", "rest", "http://host:8501", False),
    ("https://host/prefix", "rest", "https://host/prefix", False),
    ("some/folder", "local", "some/folder", False),
])
def test_parse(text, kind, target, tls) -> None:
    spec = ConnectionSpec.parse(text, models=("m",))
    assert (spec.kind, spec.target, spec.tls, spec.models) == (kind, target, tls, ("m",))


def test_an_existing_folder_named_like_host_port_stays_a_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "localhost:8500").mkdir()
    assert ConnectionSpec.parse("localhost:8500").kind == "local"


def test_unknown_scheme_is_one_line() -> None:
    with pytest.raises(BackendError, match="unknown server address 'ftp://x'"):
        ConnectionSpec.parse("ftp://x")


def test_json_round_trip_keeps_every_field() -> None:
    spec = ConnectionSpec("grpc", "h:1", ("a", "b"), True, "ca", "c", "k", (("x", "y"),), 5.0,
                          12.0, 64.0)
    assert ConnectionSpec.from_json(spec.to_json()) == spec
    assert ConnectionSpec.from_json({"kind": "rest", "target": "http://h"}).retry_for == 30.0


def test_a_new_kind_is_one_module_and_one_registration(monkeypatch, tmp_path) -> None:
    module = tmp_path / "echo_backend.py"
    module.write_text("def open_spec(spec):\n    return ('opened', spec.target)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(connection.KINDS, "echo", connection.Kind("echo", "Echo",
                                                                  "echo_backend:open_spec"))
    spec = ConnectionSpec("echo", "anywhere")
    assert spec.open() == ("opened", "anywhere")
    assert spec.describe() == "Echo anywhere"


@pytest.mark.parametrize("spec, text", [
    (ConnectionSpec("rest", "http://h:1", tls=True), "--tls with the plain-text URL"),
    (ConnectionSpec("rest", "http://h:1", ca_file="x"), "--ca-file with the plain-text URL"),
    (ConnectionSpec("grpc", "h:1", cert_file="c"), "needs both --cert-file and --key-file"),
    (ConnectionSpec("grpc", "h:1", timeout=0), "--timeout must be more than 0"),
    (ConnectionSpec("nope", "x"), "unknown backend kind 'nope'"),
])
def test_incoherent_specs_are_refused_naming_the_flag(spec, text) -> None:
    with pytest.raises(BackendError, match=text):
        spec.open()


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def test_the_three_clis_share_the_connection_flags() -> None:
    shared = {"--tls", "--ca-file", "--cert-file", "--key-file", "--header", "--timeout",
              "--retry-for", "--max-message-mb"}
    for parser in (cli.build_parser(), review_cli.build_parser(), app.build_parser()):
        assert shared <= _flags(parser)
    assert {"--server", "--rest", "--saved-model"} <= _flags(app.build_parser())


def test_from_args() -> None:
    parser = argparse.ArgumentParser()
    add_connection_flags(parser)
    args = parser.parse_args(["--server", "h:1", "--tls", "--header", "Authorization=Bearer x",
                              "--timeout", "2", "--retry-for", "0"])
    spec = ConnectionSpec.from_args(args, ("m",))
    assert spec == ConnectionSpec("grpc", "h:1", ("m",), True, headers=(("authorization",
                                  "Bearer x"),), timeout=2.0, retry_for=0.0)
    with pytest.raises(BackendError, match="--rest takes an http"):
        ConnectionSpec.from_args(parser.parse_args(["--rest", "h:1"]))
    with pytest.raises(BackendError, match="use --rest for a REST URL"):
        ConnectionSpec.from_args(parser.parse_args(["--server", "http://h:1"]))


def test_the_viewer_refuses_tls_over_plain_http(capsys) -> None:
    assert app.main(["--rest", "http://127.0.0.1:1", "--tls"]) == 2
    err = capsys.readouterr().err
    assert "--tls with the plain-text URL" in err and "https://" in err


def test_the_metadata_cache_refetches_when_an_answer_says_the_version_moved() -> None:
    fetched = []

    def fetch(ref: ModelRef) -> ModelMetadata:
        fetched.append(ref)
        return ModelMetadata(ref.name, len(fetched), {})

    cache = MetadataCache(fetch)
    ref = ModelRef("m")
    assert cache.get(ref).version == 1 and cache.get(ref).version == 1
    cache.answered(ref, 1)
    assert cache.get(ref).version == 1 and len(fetched) == 1
    cache.answered(ref, 2)
    assert cache.get(ref).version == 2 and len(fetched) == 2


def test_segviewer_review_takes_the_same_tls_rules(tmp_path, capsys) -> None:
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    code = review_cli.main([str(tmp_path / "a.png"), "--a", "http://127.0.0.1:1", "--tls"])
    err = capsys.readouterr().err
    assert code == 2 and "--a: --tls with the plain-text URL" in err

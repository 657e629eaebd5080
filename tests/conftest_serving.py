"""pytest plugin: the stand-in TF Serving (segviewer.devserver) as fixtures.

`serving_models`: a model base of small real SavedModels (see segviewer.devserver.toy_models).
`tf_serving`: one server for the session on those models (tiny v1+v2, labels stable=1 canary=2).
`start_tf_serving(base, **options)`: a factory for servers on any base dir (e.g. the demo models),
with the options of `segviewer.devserver.server.start`; servers stop at the end of the test.
`tiny_base`: a base with only the tiny model (v2 served by the default policy), quick to load.
`tls_files`: a self-signed certificate for 127.0.0.1/localhost and its key, made with openssl.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from segviewer.devserver.server import StandIn, start

TINY_LABELS = {"tiny": {"stable": 1, "canary": 2}}
TINY_VERSIONS = {"tiny": [1, 2]}


@pytest.fixture(scope="session")
def serving_models(tmp_path_factory) -> Path:
    from segviewer.devserver.toy_models import build_model_base

    return build_model_base(tmp_path_factory.mktemp("serving_models"))


@pytest.fixture(scope="session")
def tf_serving(serving_models) -> Iterator[StandIn]:
    server = start(serving_models, versions=TINY_VERSIONS, labels=TINY_LABELS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny_base(serving_models, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tiny_only")
    (base / "tiny").symlink_to(serving_models / "tiny", target_is_directory=True)
    return base


@pytest.fixture
def start_tf_serving() -> Iterator[Callable[..., StandIn]]:
    started: list[StandIn] = []

    def factory(base: str | Path, **options) -> StandIn:
        server = start(base, **options)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """(certificate, key): self-signed, so the certificate is also the client's CA file."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key

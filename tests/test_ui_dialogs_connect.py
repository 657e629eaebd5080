"""ConnectDialog on a real event loop: "Test connection" against a real in-process SavedModel, a
dead gRPC port, and the stand-in TF Serving server; recent servers round-trip through QSettings."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.dialogs.connect import ConnectDialog, parse_headers


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """<tmp>/toy/{1,2}/: two versions of a tiny SavedModel (label = red channel // 128)."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def serve(self, images):
            return {"segmentation_map": tf.cast(images[..., 0] // 128, tf.int64)}

    base = tmp_path_factory.mktemp("models") / "toy"
    for version in (1, 2):
        toy = Toy()
        tf.saved_model.save(
            toy, str(base / str(version)), signatures={"serving_default": toy.serve}
        )
    return base


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def dialog(qtbot, settings) -> ConnectDialog:
    dlg = ConnectDialog(None, settings)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_local_folder_test_connection_lists_versions(qtbot, dialog, model_dir):
    dialog.tabs.setCurrentIndex(0)
    dialog.local_path.setText(str(model_dir))
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind == "ok", timeout=30_000)
    assert dialog.status.text() == "Connected: model toy, versions 1 (AVAILABLE), 2 (AVAILABLE)"
    assert dialog.test_button.isEnabled()


def test_missing_folder_shows_the_backend_error(qtbot, dialog, tmp_path):
    dialog.tabs.setCurrentIndex(0)
    dialog.local_path.setText(str(tmp_path / "nowhere"))
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind == "error", timeout=30_000)
    assert "does not exist" in dialog.status.text()


def test_dead_grpc_port_shows_unavailable_and_stays_responsive(qtbot, dialog):
    dialog.tabs.setCurrentIndex(1)
    dialog.grpc_host.setText("127.0.0.1")
    port = free_port()
    dialog.grpc_port.setValue(port)
    dialog.grpc_models.setText("deeplab")
    dialog.grpc_timeout.setValue(5)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    # The click returned at once: the probe runs in a worker while the dialog shows it is testing.
    assert dialog.status.text().startswith("Testing gRPC 127.0.0.1:")
    assert not dialog.test_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.status.kind == "error", timeout=30_000)
    # GrpcBackend's one-line UNAVAILABLE message, shown as it is.
    assert dialog.status.text().startswith(f"cannot reach 127.0.0.1:{port}")
    assert dialog.test_button.isEnabled()


def test_grpc_stand_in_server_lists_versions(qtbot, dialog, tf_serving):
    host, _, port = tf_serving.grpc_address.rpartition(":")
    dialog.tabs.setCurrentIndex(1)
    dialog.grpc_host.setText(host)
    dialog.grpc_port.setValue(int(port))
    dialog.grpc_models.setText("tiny")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind != "info", timeout=30_000)
    assert dialog.status.text() == "Connected: model tiny, versions 1 (AVAILABLE), 2 (AVAILABLE)"


def test_rest_stand_in_server_lists_versions(qtbot, dialog, tf_serving):
    dialog.tabs.setCurrentIndex(2)
    dialog.rest_url.setText(tf_serving.rest_url + "/")
    dialog.rest_models.setText("tiny")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind != "info", timeout=30_000)
    assert dialog.status.text() == "Connected: model tiny, versions 1 (AVAILABLE), 2 (AVAILABLE)"


def test_auth_header_reaches_the_server(qtbot, dialog, serving_models, start_tf_serving):
    server = start_tf_serving(serving_models, token="s3cret")
    host, _, port = server.grpc_address.rpartition(":")
    dialog.tabs.setCurrentIndex(1)
    dialog.grpc_host.setText(host)
    dialog.grpc_port.setValue(int(port))
    dialog.grpc_models.setText("tiny")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind != "info", timeout=30_000)
    assert dialog.status.kind == "error"
    assert "bearer token" in dialog.status.text()

    dialog.grpc_headers.setPlainText("Authorization: Bearer s3cret")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.kind != "info", timeout=30_000)
    assert dialog.status.text().startswith("Connected: model tiny, versions ")


def test_cancel_while_testing_closes_at_once(qtbot, dialog):
    dialog.tabs.setCurrentIndex(1)
    dialog.grpc_host.setText("127.0.0.1")
    dialog.grpc_port.setValue(free_port())
    dialog.grpc_models.setText("deeplab")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        dialog.buttons.button(dialog.buttons.StandardButton.Cancel).click()
    assert not dialog.isVisible()


def test_a_cancelled_test_cancels_its_call_in_flight():
    from hostile_servers import HostileGrpc

    from segviewer.core.serving.base import BackendError
    from segviewer.ui.dialogs.connect import probe
    from segviewer.ui.workers import TaskState

    server = HostileGrpc()
    server.hang_status.set()  # answers only when the test ends
    state = TaskState(lambda done, total: None, lambda partial: None)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            probe(state, ConnectionSpec("grpc", server.address, ("tiny",)))
        except BackendError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    try:
        worker.start()
        worker.join(0.5)
        state.cancel()
        worker.join(10)  # the call would wait 30 s for its deadline
        assert not worker.is_alive()
        assert outcome and outcome[0].code == "CANCELLED"
    finally:
        server.stop()


def test_incomplete_fields_are_named_without_a_worker(qtbot, dialog):
    dialog.tabs.setCurrentIndex(1)
    dialog.grpc_models.setText("")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert dialog.status.kind == "error"
    assert "model name" in dialog.status.text()
    dialog.grpc_models.setText("deeplab")
    dialog.grpc_headers.setPlainText("authorization Bearer x")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "Auth header line 1" in dialog.status.text()


def test_accept_returns_the_spec_and_remembers_it(qtbot, settings):
    first = ConnectDialog(None, settings)
    qtbot.addWidget(first)
    first.tabs.setCurrentIndex(1)
    first.grpc_host.setText("models.example.org")
    first.grpc_port.setValue(443)
    first.grpc_models.setText("deeplab, cityscapes")
    first.grpc_tls.setChecked(True)
    first.grpc_ca.setText("/etc/ca.pem")
    first.grpc_headers.setPlainText("Authorization: Bearer abc\n\nx-team: seg")
    first.grpc_timeout.setValue(12)
    first.accept()
    spec = first.connection()
    assert spec == ConnectionSpec(
        "grpc",
        "models.example.org:443",
        ("deeplab", "cityscapes"),
        tls=True,
        ca_file="/etc/ca.pem",
        headers=(("authorization", "Bearer abc"), ("x-team", "seg")),
        timeout=12.0,
    )
    assert spec.describe() == "gRPC TLS models.example.org:443 (deeplab, cityscapes)"

    # A new dialog starts from the most recent server, and lists it.
    second = ConnectDialog(None, settings)
    qtbot.addWidget(second)
    assert second.connection() == spec
    assert second.recent.count() == 2
    assert second.recent.itemText(1) == spec.describe()


def test_rest_takes_client_certificates_and_headers_over_https_only(qtbot, settings):
    dialog = ConnectDialog(None, settings)
    qtbot.addWidget(dialog)
    dialog.tabs.setCurrentIndex(2)
    dialog.rest_url.setText("http://models.example.org:8501")
    dialog.rest_models.setText("deeplab")
    dialog.rest_cert.setText("/etc/client.pem")
    dialog.rest_key.setText("/etc/client.key")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert "https://" in dialog.status.text()
    dialog.rest_url.setText("https://models.example.org")
    dialog.rest_headers.setPlainText("Authorization: Bearer abc")
    spec = dialog.connection()
    assert (spec.cert_file, spec.key_file, spec.headers) == (
        "/etc/client.pem", "/etc/client.key", (("authorization", "Bearer abc"),))
    again = ConnectDialog(None, settings)
    qtbot.addWidget(again)
    again.set_connection(spec)
    assert again.connection() == spec


def test_parse_headers_keeps_colons_in_values():
    assert parse_headers("Key: a:b\n") == (("key", "a:b"),)


def test_the_current_connection_is_prefilled_and_recent_servers_read_as_addresses(
        qtbot, settings):
    older = ConnectionSpec("rest", "http://localhost:8501", models=("other",),
                           headers=(("authorization", "Bearer T"),))
    ConnectDialog(None, settings).set_connection(older)
    first = ConnectDialog(None, settings)
    first.set_connection(older)
    first.accept()  # remembered as a recent server
    current = ConnectionSpec("grpc", "localhost:8500", models=("deeplab",))
    dialog = ConnectDialog(None, settings, current)
    qtbot.addWidget(dialog)
    assert dialog.connection() == current  # what the window uses, not the last recent one
    assert dialog.grpc_models.text() == "deeplab" and dialog.grpc_port.value() == 8500
    assert dialog.recent.itemText(1) == "REST http://localhost:8501 (other)"
    assert current.describe() == "gRPC localhost:8500 (deeplab)"
    dialog.recent.activated.emit(1)
    assert dialog.connection() == older  # the REST tab keeps its auth header

"""Connect to a model: a SavedModel run in-process, or TF Serving over gRPC or REST.

The dialog only collects a `ConnectionSpec` (core's: `segviewer.core.serving.connection`), which
owns the mapping to a Backend. "Test connection" opens the backend in a
worker and lists the versions of each model, so a wrong port or model name shows up here, inline,
instead of as a failure on the first image.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.dialogs.fields import PathField, StatusLabel
from segviewer.ui.workers import Job, JobRunner, TaskState

KINDS = ("local", "grpc", "rest")
RECENT_KEY = "connect/recent"
MAX_RECENT = 10


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """'Key: value' lines -> pairs. gRPC metadata keys must be lower case, so keys are lowered."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            raise ValueError(
                f"Auth header line {number} ({line.strip()!r}) must look like 'Key: value', "
                "e.g. 'authorization: Bearer TOKEN'"
            )
        pairs.append((key.strip().lower(), value.strip()))
    return tuple(pairs)


def load_recent(settings: QSettings) -> list[ConnectionSpec]:
    try:
        items = json.loads(str(settings.value(RECENT_KEY, "[]")))
        return [ConnectionSpec.from_json(item) for item in items]
    except (ValueError, KeyError, TypeError):
        return []  # an unreadable list from an older version is not worth an error


def remember(settings: QSettings, spec: ConnectionSpec) -> None:
    """Put `spec` first in the recent list (no duplicates, at most MAX_RECENT)."""
    recent = [spec] + [s for s in load_recent(settings) if s != spec]
    settings.setValue(RECENT_KEY, json.dumps([s.to_json() for s in recent[:MAX_RECENT]]))


def probe(state: TaskState, spec: ConnectionSpec) -> str:
    """Open the backend and list each model's versions: the "Test connection" summary line.
    A test asks whether the server answers now, so an unavailable one is not waited for; a
    cancelled test cancels its call in flight."""
    backend = replace(spec, retry_for=0.0).open()
    finished = threading.Event()

    def cancel_when_asked() -> None:
        while not finished.wait(0.1):
            if state.cancelled():
                backend.interrupt()
                return

    threading.Thread(target=cancel_when_asked, daemon=True, name="probe-cancel").start()
    try:
        parts = []
        for name in backend.models():
            if state.cancelled():
                break
            versions = ", ".join(f"{v.version} ({v.state})" for v in backend.versions(name))
            parts.append(f"model {name}, versions {versions or 'none'}")
        if not parts:
            return "Connected, but no models were found there."
        return "Connected: " + "; ".join(parts)
    finally:
        finished.set()
        backend.close()


class ConnectDialog(QDialog):
    """Choose a backend; `connection()` returns what was chosen once the dialog is accepted.
    The fields start with `current` (the window's connection), else the last one used."""

    def __init__(self, parent: QWidget | None, settings: QSettings,
                 current: ConnectionSpec | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a model")
        self.setMinimumWidth(520)
        self._settings = settings
        # A few threads: a forgotten test blocked on an unreachable host must not delay the next.
        self._runner = JobRunner(max_threads=3, parent=self)
        self._test_job: Job | None = None
        self._recent = load_recent(settings)

        self.recent = QComboBox(self)
        self.recent.setToolTip("Servers you connected to before")
        self.recent.addItem("Recent servers…" if self._recent else "No recent servers")
        for spec in self._recent:
            self.recent.addItem(spec.describe())
        self.recent.setEnabled(bool(self._recent))
        self.recent.activated.connect(self._recent_chosen)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._local_tab(), "In-process SavedModel")
        self.tabs.addTab(self._grpc_tab(), "TF Serving gRPC")
        self.tabs.addTab(self._rest_tab(), "TF Serving REST")
        self.tabs.currentChanged.connect(lambda _: self.status.clear_status())

        self.status = StatusLabel(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect")
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setToolTip("Open the backend and list its models and versions")
        self.buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.test_button.clicked.connect(self.test_connection)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.recent)
        layout.addWidget(self.tabs)
        layout.addWidget(self.status)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        if current is not None or self._recent:  # what is in use, else the last one used
            self.set_connection(current or self._recent[0])

    # -- tabs --------------------------------------------------------------------------------

    def _local_tab(self) -> QWidget:
        tab = QWidget(self)
        form = QFormLayout(tab)
        self.local_path = PathField(
            ("dir",),
            "SavedModel folder",
            placeholder="<models>/<name>/<version>/ or any level above",
        )
        self.local_path.setToolTip(
            "A SavedModel folder (with saved_model.pb), a model folder with numbered versions, "
            "or a base folder holding several models. It runs in this process, no server needed."
        )
        form.addRow("SavedModel folder:", self.local_path)
        return tab

    def _grpc_tab(self) -> QWidget:
        tab = QWidget(self)
        form = QFormLayout(tab)
        self.grpc_host = QLineEdit("localhost", tab)
        self.grpc_host.setToolTip("Host name or IP address of the TF Serving server")
        self.grpc_port = QSpinBox(tab)
        self.grpc_port.setRange(1, 65535)
        self.grpc_port.setValue(8500)
        self.grpc_port.setToolTip("TF Serving's --port (gRPC), 8500 by default")
        self.grpc_models = QLineEdit(tab)
        self.grpc_models.setPlaceholderText("deeplab, other_model")
        self.grpc_models.setToolTip(
            "The model name(s) the server serves (its --model_name or model_config_file), "
            "comma-separated: TF Serving cannot list them"
        )
        self.grpc_tls = QCheckBox("Use TLS", tab)
        self.grpc_tls.setToolTip("Connect with TLS (a secure channel)")
        form.addRow("Host:", self.grpc_host)
        form.addRow("Port:", self.grpc_port)
        form.addRow("Model name(s):", self.grpc_models)
        form.addRow("", self.grpc_tls)
        (self.grpc_ca, self.grpc_cert, self.grpc_key, self.grpc_headers,
         self.grpc_timeout) = self._remote_rows(tab, form)
        self.grpc_tls.toggled.connect(self._tls_toggled)
        self._tls_toggled(False)
        return tab

    def _rest_tab(self) -> QWidget:
        tab = QWidget(self)
        form = QFormLayout(tab)
        self.rest_url = QLineEdit("http://localhost:8501", tab)
        self.rest_url.setToolTip(
            "Base URL of TF Serving's REST API (--rest_api_port, 8501 by default)"
        )
        self.rest_models = QLineEdit(tab)
        self.rest_models.setPlaceholderText("deeplab")
        self.rest_models.setToolTip("The model name(s) the server serves, comma-separated")
        form.addRow("URL:", self.rest_url)
        form.addRow("Model name(s):", self.rest_models)
        (self.rest_ca, self.rest_cert, self.rest_key, self.rest_headers,
         self.rest_timeout) = self._remote_rows(tab, form)
        self.rest_ca.setToolTip("PEM CA file to verify an https:// server (optional)")
        return tab

    def _remote_rows(
        self, tab: QWidget, form: QFormLayout
    ) -> tuple[PathField, PathField, PathField, QPlainTextEdit, QDoubleSpinBox]:
        """CA file, client certificate and key, auth headers and timeout: the rows both remote
        tabs end with."""
        ca = PathField(("file",), "CA certificate", "Certificates (*.pem *.crt);;All (*)")
        ca.setToolTip("PEM file of the CA that signed the server's certificate (optional)")
        cert = PathField(("file",), "Client certificate", "Certificates (*.pem *.crt);;All (*)")
        cert.setToolTip("PEM client certificate for mutual TLS (optional)")
        key = PathField(("file",), "Client key", "Keys (*.pem *.key);;All (*)")
        key.setToolTip("PEM private key of the client certificate (optional)")
        headers = QPlainTextEdit(tab)
        headers.setPlaceholderText("authorization: Bearer TOKEN")
        headers.setToolTip("Sent with every call, one 'Key: value' per line")
        headers.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        timeout = QDoubleSpinBox(tab)
        timeout.setRange(1, 3600)
        timeout.setDecimals(0)
        timeout.setValue(30)
        timeout.setSuffix(" s")
        timeout.setToolTip("How long each call may take as a whole before it fails")
        for label, field in (("CA file:", ca), ("Client certificate:", cert),
                             ("Client key:", key), ("Auth headers:", headers),
                             ("Timeout:", timeout)):
            form.addRow(label, field)
        return ca, cert, key, headers, timeout

    def _tls_toggled(self, on: bool) -> None:
        for field in (self.grpc_ca, self.grpc_cert, self.grpc_key):
            field.setEnabled(on)

    # -- the spec ----------------------------------------------------------------------------

    def connection(self) -> ConnectionSpec:
        """The spec the fields describe. Raises ValueError with a one-line message if incomplete."""
        kind = KINDS[self.tabs.currentIndex()]
        if kind == "local":
            if not self.local_path.text():
                raise ValueError("Choose a SavedModel folder (Browse…) to run a model in-process.")
            return ConnectionSpec("local", self.local_path.text())
        if kind == "grpc":
            host = self.grpc_host.text().strip()
            if not host:
                raise ValueError("Enter the host of the TF Serving server, e.g. localhost.")
            tls = self.grpc_tls.isChecked()
            return ConnectionSpec(
                "grpc",
                f"{host}:{self.grpc_port.value()}",
                models=self._model_names(self.grpc_models),
                tls=tls,
                ca_file=self.grpc_ca.text() if tls else "",
                cert_file=self.grpc_cert.text() if tls else "",
                key_file=self.grpc_key.text() if tls else "",
                headers=parse_headers(self.grpc_headers.toPlainText()),
                timeout=self.grpc_timeout.value(),
            )
        url = self.rest_url.text().strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"REST URL {url!r} must start with http:// or https://.")
        files = (self.rest_ca.text(), self.rest_cert.text(), self.rest_key.text())
        if url.startswith("http://") and any(files):
            raise ValueError("A CA file or client certificate needs an https:// URL "
                             "(http:// is plain text).")
        return ConnectionSpec(
            "rest",
            url.rstrip("/"),
            models=self._model_names(self.rest_models),
            ca_file=files[0],
            cert_file=files[1],
            key_file=files[2],
            headers=parse_headers(self.rest_headers.toPlainText()),
            timeout=self.rest_timeout.value(),
        )

    @staticmethod
    def _model_names(edit: QLineEdit) -> tuple[str, ...]:
        names = tuple(n.strip() for n in edit.text().split(",") if n.strip())
        if not names:
            raise ValueError(
                "Enter the model name the server serves (its --model_name), e.g. deeplab."
            )
        return names

    def set_connection(self, spec: ConnectionSpec) -> None:
        """Fill the fields from `spec` (a recent server, or what the window is connected to)."""
        self.tabs.setCurrentIndex(KINDS.index(spec.kind))
        if spec.kind == "local":
            self.local_path.setText(spec.target)
        elif spec.kind == "grpc":
            host, _, port = spec.target.rpartition(":")
            self.grpc_host.setText(host)
            self.grpc_port.setValue(int(port) if port.isdigit() else 8500)
            self.grpc_models.setText(", ".join(spec.models))
            self.grpc_tls.setChecked(spec.tls)
            self.grpc_ca.setText(spec.ca_file)
            self.grpc_cert.setText(spec.cert_file)
            self.grpc_key.setText(spec.key_file)
            self.grpc_headers.setPlainText("\n".join(f"{k}: {v}" for k, v in spec.headers))
            self.grpc_timeout.setValue(spec.timeout)
        else:
            self.rest_url.setText(spec.target)
            self.rest_models.setText(", ".join(spec.models))
            self.rest_ca.setText(spec.ca_file)
            self.rest_cert.setText(spec.cert_file)
            self.rest_key.setText(spec.key_file)
            self.rest_headers.setPlainText("\n".join(f"{k}: {v}" for k, v in spec.headers))
            self.rest_timeout.setValue(spec.timeout)
        self.status.clear_status()

    def _recent_chosen(self, index: int) -> None:
        if index > 0:
            self.set_connection(self._recent[index - 1])

    # -- testing and closing -----------------------------------------------------------------

    def test_connection(self) -> None:
        try:
            spec = self.connection()
        except ValueError as exc:
            self.status.show_error(str(exc))
            return
        self._cancel_test()
        self.status.show_info(f"Testing {spec.describe()}…")
        self.test_button.setEnabled(False)
        job = self._runner.start("test connection", probe, spec)
        job.finished.connect(self.status.show_ok)
        job.failed.connect(self.status.show_error)
        job.done.connect(lambda: self._test_done(job))
        self._test_job = job

    def _test_done(self, job: Job) -> None:
        if job is self._test_job:
            self._test_job = None
            self.test_button.setEnabled(True)

    def _cancel_test(self) -> None:
        """Forget a running test: its result is dropped and its call in flight cancelled."""
        if self._test_job is not None:
            self._test_job.cancel()
            self._test_job = None
            self.test_button.setEnabled(True)

    def accept(self) -> None:
        try:
            spec = self.connection()
        except ValueError as exc:
            self.status.show_error(str(exc))
            return
        self._cancel_test()
        remember(self._settings, spec)
        super().accept()

    def reject(self) -> None:
        self._cancel_test()
        super().reject()

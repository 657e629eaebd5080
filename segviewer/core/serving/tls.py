"""TLS files for both remote kinds: read and checked up front, so a missing, garbage or
mismatched file is named with its flag before any connection, and verification failures read
the same on gRPC and REST."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from segviewer.core.serving.base import BackendError


def read_file(path: str, flag: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BackendError(f"cannot read {flag} '{path}': {exc.strerror or exc}",
                           "INVALID_ARGUMENT") from exc


def check_flags(url: str | None, tls: bool, ca_file: str, cert_file: str, key_file: str) -> None:
    """Refuse incoherent TLS settings, naming the flags: a certificate without its key, or TLS
    asked of a plain-text http:// URL (`url`: the REST URL, None for gRPC)."""
    if url is not None and url.startswith("http://"):
        given = [flag for flag, on in (("--tls", tls), ("--ca-file", ca_file),
                                       ("--cert-file", cert_file), ("--key-file", key_file)) if on]
        if given:
            raise BackendError(f"{', '.join(given)} with the plain-text URL '{url}' — use an "
                               "https:// URL", "INVALID_ARGUMENT")
    if bool(cert_file) != bool(key_file):
        raise BackendError("a client certificate needs both --cert-file and --key-file",
                           "INVALID_ARGUMENT")


def client_context(ca_file: str = "", cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """A verifying client context: the CA file's certificates (else the system's) and the client
    certificate. Raises BackendError naming the file that does not load."""
    check_flags(None, True, ca_file, cert_file, key_file)
    for path, flag in ((ca_file, "--ca-file"), (cert_file, "--cert-file"),
                       (key_file, "--key-file")):
        read_file(path, flag)  # a missing or unreadable file, named
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (ssl.SSLError, ValueError) as exc:
        raise BackendError(f"--ca-file '{ca_file}' holds no usable PEM certificate "
                           f"({_reason(exc)})", "INVALID_ARGUMENT") from exc
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file or None)
        except (ssl.SSLError, ValueError) as exc:
            raise BackendError(f"--cert-file '{cert_file}' and --key-file '{key_file}' are not a "
                               f"PEM certificate and its key ({_reason(exc)})",
                               "INVALID_ARGUMENT") from exc
    return context


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc).splitlines()[0]


def failure(address: str, reason: str) -> BackendError:
    """A TLS handshake the client refused: the reason first, then what to check. Not retried:
    waiting does not change a certificate."""
    return BackendError(f"TLS with {address} failed: {reason} — check --ca-file (the CA that "
                        "signed the server's certificate) and the host name in the address",
                        "UNAVAILABLE", retry=False)


def handshake_reason(details: str) -> str | None:
    """The TLS failure inside a gRPC UNAVAILABLE detail text, e.g. "CERTIFICATE_VERIFY_FAILED:
    self signed certificate"; None when the text is about something else."""
    if "handshake failed" not in details.lower():
        return None
    # "...OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: self signed certificate: OK"
    found = re.search(r"([A-Z][A-Z0-9_]{5,}(?:: [^:]+)?)(?::\s*OK)?\s*$", details)
    return found.group(1).strip() if found else "handshake failed"

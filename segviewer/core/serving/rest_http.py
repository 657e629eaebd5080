"""The HTTP under the REST backend, with urllib3: pooled keep-alive connections shared by the
worker threads, TLS with the client context of `tls` (CA file, client certificate), proxies from
the environment (http_proxy/https_proxy, no_proxy), and what urllib3 leaves to us:

- one deadline for the whole call (connect, send, every chunk of the answer), not per read;
- answers bounded by max_message_mb, refused from Content-Length or while they stream in;
- interrupt: every socket in use is shut, so a blocked call wakes at once (Ctrl-C);
- every failure as a one-line BackendError in TF Serving's vocabulary. Retries are the call
  policy's (`calls.with_retries`), not urllib3's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import urllib3
from urllib3 import exceptions as http_errors
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from segviewer.core.serving import tls as tls_files
from segviewer.core.serving.base import BackendError
from segviewer.core.serving.calls import CallPolicy, Interrupt, cancelled

_CHUNK = 1 << 20
_POOL_SIZE = 32  # kept-alive connections per server: more than any sensible --workers


class _TooLarge(Exception):
    pass


class HttpClient:
    """Calls to one server: `scheme://host:port`, under `policy`, stopped by `interrupt`."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext | None,
                 headers: Mapping[str, str], policy: CallPolicy, interrupt: Interrupt) -> None:
        self.netloc = f"{host}:{port}"
        self._base = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        self._headers = dict(headers)
        self.policy = policy
        self._interrupt = interrupt
        self._lock = threading.Lock()
        self._sockets: set[HTTPConnection] = set()  # connections open now, for interrupt
        interrupt.on_set(self._shut_connections)
        options: dict[str, Any] = {"maxsize": _POOL_SIZE, "retries": False}
        if context is not None:
            options["ssl_context"] = context
        proxy = _proxy_for(scheme, host)
        self._manager = (urllib3.ProxyManager(proxy, **options) if proxy
                         else urllib3.PoolManager(**options))
        self._manager.pool_classes_by_scheme = {"http": self._pool(HTTPConnectionPool),
                                                "https": self._pool(HTTPSConnectionPool)}
        self.description_proxy = f" via proxy {proxy}" if proxy else ""

    def _pool(self, base: type) -> type:
        """`base` whose connections register while open, so `interrupt` can shut them."""
        client = self
        connection = HTTPSConnection if base is HTTPSConnectionPool else HTTPConnection

        class Tracked(connection):  # type: ignore[valid-type, misc]
            def connect(self) -> None:
                super().connect()
                with client._lock:
                    client._sockets.add(self)

            def close(self) -> None:
                with client._lock:
                    client._sockets.discard(self)
                super().close()

        return type(f"Tracked{base.__name__}", (base,), {"ConnectionCls": Tracked})

    def _shut_connections(self) -> None:
        """Wake every thread blocked on a socket (Ctrl-C): its call then ends as CANCELLED."""
        with self._lock:
            connections = list(self._sockets)
        for conn in connections:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._manager.clear()

    def exchange(self, method: str, path: str, data: bytes | None,
                 what: str) -> tuple[int, str, bytes]:
        """One attempt, within `timeout` as a whole, reading at most max_message_mb:
        (status, reason, body)."""
        timeout = self.policy.timeout
        deadline = time.monotonic() + timeout

        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return remaining

        response = None
        try:
            response = self._manager.urlopen(
                method, self._base + path, body=data, headers=self._headers, redirect=False,
                preload_content=False, timeout=urllib3.Timeout(connect=left(), read=left()))
            size = response.headers.get("Content-Length")
            if size is not None and size.isdigit() and int(size) > self.policy.max_bytes:
                raise _TooLarge
            chunks, total = [], 0
            while True:
                sock = getattr(response.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(left())
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.policy.max_bytes:
                    raise _TooLarge
                chunks.append(chunk)
            response.release_conn()
            if self._interrupt.is_set():
                raise cancelled(what)
            return response.status, response.reason or "", b"".join(chunks)
        except _TooLarge:
            raise BackendError(f"{what}: the answer from {self.netloc} is over "
                               f"{self.policy.max_message_mb:g} MB — raise --max-message-mb if "
                               "the server is trusted", "RESOURCE_EXHAUSTED") from None
        except http_errors.NewConnectionError as exc:  # refused (a ConnectTimeoutError too)
            raise self._unreachable(exc, what) from None
        except (TimeoutError, http_errors.TimeoutError):
            raise BackendError(f"{what}: no answer from {self.netloc} within {timeout:g} s — "
                               "raise --timeout or check the server",
                               "DEADLINE_EXCEEDED") from None
        except (http_errors.SSLError, ssl.SSLError) as exc:
            raise tls_files.failure(self.netloc, _tls_reason(exc)) from None
        except (OSError, http_errors.HTTPError) as exc:
            raise self._unreachable(exc, what) from None
        finally:
            if response is not None and not response.closed and response.connection:
                response.close()  # a half-read answer: the connection is not reused
                response.release_conn()

    def _unreachable(self, exc: BaseException, what: str) -> BackendError:
        if self._interrupt.is_set():
            return cancelled(what)
        if isinstance(exc, http_errors.NameResolutionError):
            return BackendError(f"cannot reach {self.netloc}: unknown host", "UNAVAILABLE",
                                retry=False)
        if isinstance(exc, http_errors.ProxyError):
            return BackendError(f"cannot reach {self.netloc}{self.description_proxy}: "
                                f"{_cause(exc)} — check http_proxy/https_proxy and no_proxy",
                                "UNAVAILABLE")
        return BackendError(f"cannot reach {self.netloc} — is TF Serving running? "
                            f"({_cause(exc)})", "UNAVAILABLE")


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for `scheme` (http_proxy, https_proxy), unless no_proxy
    exempts `host`."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def _inner(exc: BaseException) -> BaseException | None:
    """The error `exc` wraps: urllib3 passes the original as an argument, or chains it."""
    return next((a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)),
                None) or exc.__cause__ or exc.__context__


def _cause(exc: BaseException) -> str:
    """The innermost reason: urllib3 wraps the socket's error (refused, reset) in its own."""
    for _ in range(8):
        inner = _inner(exc)
        if inner is None or inner is exc:
            break
        exc = inner
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text.splitlines()[0] if text else type(exc).__name__


def _tls_reason(exc: BaseException) -> str:
    """The verification failure inside urllib3's SSLError, e.g. "CERTIFICATE_VERIFY_FAILED:
    self-signed certificate"."""
    for _ in range(8):
        if isinstance(exc, ssl.SSLError):
            break
        inner = _inner(exc)
        if inner is None or inner is exc:
            return str(exc).splitlines()[0]
        exc = inner
    if not isinstance(exc, ssl.SSLError):
        return str(exc).splitlines()[0]
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"{exc.reason}: {exc.verify_message}"
    return str(exc.reason or exc)

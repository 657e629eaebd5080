"""How a remote backend makes one call: a deadline per attempt, retries while the server is
unavailable, and cancellation. One policy for gRPC and REST, so both ride out the same restarts
and stop on the same Ctrl-C.

- `timeout` bounds each attempt end to end (connect, send, answer); a deadline is never retried,
  so `--timeout 2` fails after 2 s, not after a series of retries.
- UNAVAILABLE (server down, connection refused or reset) is retried with backoff until
  `retry_for` seconds have passed since the first attempt: a server restarted within that window
  costs nothing.
- `Interrupt.set()` ends the waits at once; the call raises BackendError CANCELLED.
- `Reachability` says from the codes of calls in a row when a server is gone, so the runs that
  make many calls (batch, review) stop instead of failing every input one by one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from segviewer.core.serving.base import BackendError

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_FOR = 30.0
DEFAULT_MAX_MESSAGE_MB = 256.0
_FIRST_BACKOFF, _MAX_BACKOFF = 0.1, 1.0
MISSED_DEADLINE_LIMIT = 8  # deadlines missed in a row (at least): the server is wedged


@dataclass(frozen=True)
class CallPolicy:
    timeout: float = DEFAULT_TIMEOUT  # seconds, each attempt as a whole
    retry_for: float = DEFAULT_RETRY_FOR  # seconds of retrying UNAVAILABLE
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB  # largest request or answer

    @property
    def max_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)


class Reachability:
    """Whether a server still answers, from the error codes of a run's calls as they end: the
    first UNAVAILABLE (the backend has already retried for its `retry_for` window) or
    `MISSED_DEADLINE_LIMIT` deadlines missed in a row (twice `workers`, when more: that many
    calls may be in flight at once) mean it is not."""

    def __init__(self, workers: int = 1) -> None:
        self.limit = max(MISSED_DEADLINE_LIMIT, 2 * workers)
        self.missed = 0

    def lost(self, code: str | None) -> bool:
        """Record one call's outcome (None or "": it succeeded, or failed for another reason
        than the server); whether the server is to be given up on."""
        self.missed = self.missed + 1 if code == "DEADLINE_EXCEEDED" else 0
        return code == "UNAVAILABLE" or self.missed >= self.limit


def cancelled(what: str) -> BackendError:
    return BackendError(f"{what}: cancelled", "CANCELLED", retry=False)


class Interrupt:
    """Cancellation shared by a backend's calls: `set()` from any thread or a signal handler."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._hooks: list[Callable[[], None]] = []

    def on_set(self, hook: Callable[[], None]) -> None:
        """Run `hook` when interrupted (e.g. cancel the gRPC calls, shut the REST sockets)."""
        self._hooks.append(hook)

    def set(self) -> None:
        self._event.set()
        for hook in self._hooks:
            hook()

    def is_set(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; True if interrupted meanwhile."""
        return self._event.wait(seconds)


def with_retries(attempt: Callable[[], T], policy: CallPolicy, interrupt: Interrupt,
                 what: str) -> T:
    """`attempt()` until it succeeds, fails for another reason than UNAVAILABLE, or the server
    has been unavailable for `policy.retry_for` seconds."""
    started = time.monotonic()
    delay = _FIRST_BACKOFF
    while True:
        if interrupt.is_set():
            raise cancelled(what)
        try:
            return attempt()
        except BackendError as exc:
            if interrupt.is_set():
                raise cancelled(what) from None
            left = policy.retry_for - (time.monotonic() - started)
            if exc.code != "UNAVAILABLE" or not exc.retry or left <= 0:
                if exc.code == "UNAVAILABLE" and exc.retry and policy.retry_for > 0:
                    raise BackendError(f"{exc} (retried for {policy.retry_for:g} s; raise "
                                       "--retry-for to wait longer)", exc.code) from None
                raise
            if interrupt.sleep(min(delay, left)):
                raise cancelled(what) from None
            delay = min(delay * 2, _MAX_BACKOFF)

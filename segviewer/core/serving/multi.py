"""Several endpoints serving one model, as one Backend (`--server a:8500,b:8500`, repeated
`--rest` URLs). Not a scheduler: each call goes to one endpoint and comes back.

- Each endpoint is its own gRPC or REST backend, opened without a retry window of its own.
- A call goes to the endpoint with the fewest calls outstanding (ties in turn), so a slow
  replica gets less work rather than an equal share.
- An endpoint that is unavailable (refused, reset, died mid-call) is taken out and the call is
  sent again to another: a replica lost mid-run loses nothing. It is probed in the background
  (its model status, and the version it serves) after a pause that doubles while it stays
  down, and comes back when it answers. Only when every endpoint is out does a call wait, for
  --retry-for as with one server.
- Before a model is first used, every endpoint's metadata must name the same version; else a
  one-line error, unless `allow_mixed_versions` (then the metadata names no version).

A gRPC name resolving to several addresses (dns:///serving:8500) is one endpoint here: grpc
balances over its addresses itself (round_robin, see grpc_backend).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from segviewer.core.serving.base import (
    Backend,
    BackendError,
    ModelMetadata,
    ModelRef,
    ModelVersion,
    Prediction,
)
from segviewer.core.serving.calls import CallPolicy, Interrupt, cancelled
from segviewer.core.serving.connection import KINDS, ConnectionSpec
from segviewer.core.serving.discovery import prefers_encoded
from segviewer.core.summary import EndpointStats

T = TypeVar("T")
_FIRST_PROBE, _MAX_PROBE = 0.5, 5.0  # seconds before probing an endpoint taken out
_FIRST_WAIT, _MAX_WAIT = 0.05, 0.5  # a call's waits while every endpoint is out


def open_spec(spec: ConnectionSpec) -> MultiBackend:
    """One backend per endpoint of `spec` (each with no retry window: failing over is ours)."""
    module, _, function = KINDS[spec.kind].opener.partition(":")
    opener = getattr(importlib.import_module(module), function)
    backends: list[Backend] = []
    try:
        for target in spec.targets:
            backends.append(opener(replace(spec, target=target, retry_for=0.0)))
    except BackendError:
        for backend in backends:
            backend.close()
        raise
    return MultiBackend(backends, list(spec.targets), CallPolicy(spec.timeout, spec.retry_for,
                        spec.max_message_mb), spec.allow_mixed_versions,
                        f"{KINDS[spec.kind].title} {spec.target}")


@dataclass
class _Endpoint:
    name: str
    backend: Backend
    outstanding: int = 0
    up: bool = True
    probing: bool = False
    probe_at: float = 0.0
    pause: float = _FIRST_PROBE
    last_error: str = ""
    stats: EndpointStats = field(default_factory=EndpointStats)


class MultiBackend:
    """`backends[i]` serves the endpoint `names[i]`; see the module's docstring."""

    def __init__(self, backends: list[Backend], names: list[str], policy: CallPolicy,
                 allow_mixed_versions: bool = False, description: str = "") -> None:
        self._endpoints = [_Endpoint(n, b) for n, b in zip(names, backends, strict=True)]
        self.policy = policy
        self.allow_mixed_versions = allow_mixed_versions
        self.description = description or ", ".join(names)
        self.prefers_encoded = all(prefers_encoded(b) for b in backends)
        self._lock = threading.Lock()
        self._turn = 0  # breaks ties between equally loaded endpoints
        self._interrupt = Interrupt()
        self._interrupt.on_set(self._interrupt_all)
        self._checked: dict[ModelRef, ModelMetadata] = {}
        self._checking = threading.Lock()
        self._versions: dict[str, set[int]] = {}  # model -> the version(s) the run uses

    # --- choosing an endpoint ----------------------------------------------------------------

    def _acquire(self) -> _Endpoint | None:
        """The up endpoint with the fewest calls outstanding (None: all are out); starts the
        probes that are due."""
        with self._lock:
            self._start_probes()
            count = len(self._endpoints)
            up = [(e.outstanding, (i - self._turn) % count, e)
                  for i, e in enumerate(self._endpoints) if e.up]
            if not up:
                return None
            endpoint = min(up, key=lambda item: item[:2])[2]
            endpoint.outstanding += 1
            self._turn = (self._turn + 1) % count
            return endpoint

    def _start_probes(self) -> None:
        """Probe, in the background, the endpoints out for long enough (holding the lock)."""
        now = time.monotonic()
        for endpoint in self._endpoints:
            if not endpoint.up and not endpoint.probing and now >= endpoint.probe_at:
                endpoint.probing = True
                threading.Thread(target=self._probe, args=(endpoint,), daemon=True,
                                 name=f"probe {endpoint.name}").start()

    def _release(self, endpoint: _Endpoint, seconds: float | None,
                 error: BackendError | None) -> None:
        with self._lock:
            endpoint.outstanding -= 1
            if error is None:
                if seconds is not None:  # a prediction: counted, with its latency
                    endpoint.stats.ok += 1
                    endpoint.stats.latency.add(seconds)
                return
            endpoint.stats.failed += 1
            endpoint.last_error = str(error)
            if _takes_out(error) and endpoint.up:
                endpoint.up = False
                endpoint.stats.taken_out += 1
                endpoint.pause = _FIRST_PROBE
                endpoint.probe_at = time.monotonic() + endpoint.pause

    def _probe(self, endpoint: _Endpoint) -> None:
        """Back in when it answers its model status with the version the run uses."""
        reason = ""
        with self._lock:
            wanted_versions = {m: set(v) for m, v in self._versions.items()}
        models = wanted_versions or {m: set() for m in endpoint.backend.models()}
        try:
            for model, wanted in models.items():
                served = {v.version for v in endpoint.backend.versions(model)
                          if v.state == "AVAILABLE"}
                if wanted and not self.allow_mixed_versions and not wanted & served:
                    reason = (f"{endpoint.name} serves {model} "
                              f"v{','.join(map(str, sorted(served))) or ' none'}")
                    break
        except BackendError as exc:
            reason = str(exc)
        with self._lock:
            endpoint.probing = False
            if reason:
                endpoint.last_error = reason
                endpoint.pause = min(endpoint.pause * 2, _MAX_PROBE)
                endpoint.probe_at = time.monotonic() + endpoint.pause
            else:
                endpoint.up = True

    def _call(self, what: str, call: Callable[[Backend], T]) -> T:
        """`call` on the best endpoint; on another one while endpoints become unavailable, and
        waiting while none is up — for --retry-for from the first unavailability, once every
        endpoint had its chance (so endpoints that keep flapping cannot hold a call forever)."""
        failing_since: float | None = None
        attempts = 0
        wait = _FIRST_WAIT
        while True:
            if self._interrupt.is_set():
                raise cancelled(what)
            if failing_since is not None and attempts >= len(self._endpoints) and \
                    time.monotonic() - failing_since >= self.policy.retry_for:
                raise self._all_out(what)
            endpoint = self._acquire()
            if endpoint is None:
                failing_since = failing_since or time.monotonic()
                attempts = max(attempts, len(self._endpoints))  # nothing left to try now
                left = self.policy.retry_for - (time.monotonic() - failing_since)
                if left > 0 and self._interrupt.sleep(min(wait, left)):
                    raise cancelled(what)
                wait = min(wait * 2, _MAX_WAIT)
                continue
            began = time.perf_counter()
            attempts += 1
            try:
                result = call(endpoint.backend)
            except BackendError as exc:
                self._release(endpoint, None, exc)
                if self._interrupt.is_set():
                    raise cancelled(what) from None
                if _takes_out(exc):
                    failing_since = failing_since or time.monotonic()
                    continue  # taken out: the call goes to another endpoint
                raise
            self._release(endpoint, time.perf_counter() - began, None)
            return result

    def _all_out(self, what: str) -> BackendError:
        with self._lock:
            errors = "; ".join(e.last_error for e in self._endpoints if e.last_error)
        waited = f" (retried for {self.policy.retry_for:g} s; raise --retry-for to wait " \
                 "longer)" if self.policy.retry_for > 0 else ""
        return BackendError(f"{what}: none of the {len(self._endpoints)} endpoints is "
                            f"reachable: {errors}{waited}", "UNAVAILABLE")

    # --- Backend -----------------------------------------------------------------------------

    def models(self) -> list[str]:
        return self._endpoints[0].backend.models()

    def versions(self, model: str) -> list[ModelVersion]:
        return self._call(f"model '{model}'", lambda backend: backend.versions(model))

    def metadata(self, ref: ModelRef) -> ModelMetadata:
        """The model's metadata, once every endpoint that answers agreed on its version."""
        with self._lock:
            known = self._checked.get(ref)
        if known is not None:
            return known
        with self._checking:  # the workers' first calls wait for one check
            with self._lock:
                known = self._checked.get(ref)
            return known if known is not None else self._check_versions(ref)

    def _check_versions(self, ref: ModelRef) -> ModelMetadata:
        started = time.monotonic()
        while True:
            found = self._metadata_everywhere(ref)
            if found:
                break
            if time.monotonic() - started >= self.policy.retry_for:
                raise self._all_out(str(ref))
            with self._lock:
                self._start_probes()
            if self._interrupt.sleep(_MAX_WAIT):
                raise cancelled(str(ref))
        versions = {name: meta.version for name, meta in found}
        if len(set(versions.values())) > 1 and not self.allow_mixed_versions:
            listed = ", ".join(f"{name} v{version}" for name, version in versions.items())
            raise BackendError(f"{ref}: the endpoints serve different versions ({listed}) — "
                               "serve one version on all of them, or pass "
                               "--allow-mixed-versions", "FAILED_PRECONDITION")
        meta = found[0][1]
        if len(set(versions.values())) > 1:
            # Allowed to differ: no one version to name (nor to pin a run to); each
            # prediction still names the version that made it.
            meta = replace(meta, version=None)
        with self._lock:
            self._checked[ref] = meta
            self._versions.setdefault(ref.name, set()).update(
                v for v in versions.values() if v is not None)
        return meta

    def _metadata_everywhere(self, ref: ModelRef) -> list[tuple[str, ModelMetadata]]:
        """(endpoint, metadata) from every endpoint that is up and answers; an unavailable one
        is taken out, any other error is raised."""
        with self._lock:
            endpoints = [e for e in self._endpoints if e.up]
            for endpoint in endpoints:
                endpoint.outstanding += 1

        def fetch(endpoint: _Endpoint) -> ModelMetadata | BackendError:
            try:
                return endpoint.backend.metadata(ref)
            except BackendError as exc:
                return exc

        with ThreadPoolExecutor(max(1, len(endpoints)), "segviewer-metadata") as pool:
            answers = list(pool.map(fetch, endpoints))
        found, errors = [], []
        for endpoint, answer in zip(endpoints, answers, strict=True):
            if isinstance(answer, BackendError):
                self._release(endpoint, None, answer)
                errors.append(answer)
            else:
                self._release(endpoint, None, None)
                found.append((endpoint.name, answer))
        if self._interrupt.is_set():
            raise cancelled(str(ref))
        for error in errors:
            if not _takes_out(error):
                raise error
        return found

    def predict(
        self,
        image: np.ndarray,
        ref: ModelRef,
        signature: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        want_probabilities: bool = False,
    ) -> Prediction:
        self.metadata(ref)  # the versions agree before the first prediction
        return self._call(str(ref), lambda backend: backend.predict(
            image, ref, signature, input_name, output_name, want_probabilities))

    def endpoint_stats(self) -> dict[str, EndpointStats]:
        """Per endpoint: predictions answered and failed, times taken out, latency."""
        with self._lock:
            return {e.name: EndpointStats(e.stats.ok, e.stats.failed, e.stats.taken_out,
                                          replace(e.stats.latency, bins=dict(e.stats.latency.bins)))
                    for e in self._endpoints}

    def interrupt(self) -> None:
        self._interrupt.set()

    def _interrupt_all(self) -> None:
        for endpoint in self._endpoints:
            endpoint.backend.interrupt()

    def close(self) -> None:
        self._interrupt.set()
        for endpoint in self._endpoints:
            endpoint.backend.close()


def _takes_out(error: BackendError) -> bool:
    """Unavailable and worth trying elsewhere (not a TLS file or name the client refuses)."""
    return error.code == "UNAVAILABLE" and error.retry

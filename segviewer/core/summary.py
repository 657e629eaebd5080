"""A folder run's summary: counts, the first failures, per-class pixels and a latency histogram.

Aggregates only, so a run of a million images keeps a summary of constant size; and mergeable, so
the summaries of the shards of one run (`--shard K/N` on N machines) add up to the summary of the
whole run (`merge_summaries`, `segviewer-predict --merge-summaries`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segviewer.core.labels import Palette

# Failures listed by name in the summary; the count covers all of them (each is also on stderr).
LISTED_FAILURES = 1000
# Latency histogram: bin i holds durations in [BASE * RATIO**i, BASE * RATIO**(i+1)): 5 % steps.
_BASE, _RATIO = 1e-4, 1.05
# Keys of a summary's run description that every shard of one run must share.
RUN_KEYS = ("model", "version", "signature", "out")


class SummaryError(Exception):
    """Summaries that cannot be merged (unreadable, or of different runs): one line."""


@dataclass(frozen=True)
class Failure:
    input: Path
    reason: str  # one line


@dataclass
class Latency:
    """Per-image seconds as a log histogram: constant size, mergeable, percentiles within 5 %."""

    bins: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0

    def add(self, seconds: float) -> None:
        index = max(0, math.floor(math.log(max(seconds, _BASE) / _BASE, _RATIO)))
        self.bins[index] = self.bins.get(index, 0) + 1
        self.count += 1
        self.total += seconds

    def merge(self, other: Latency) -> None:
        for index, n in other.bins.items():
            self.bins[index] = self.bins.get(index, 0) + n
        self.count += other.count
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank, seen = q / 100 * self.count, 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return _BASE * _RATIO ** (index + 0.5)  # the bin's middle
        return None

    def to_json(self) -> dict[str, Any]:
        return {"base_s": _BASE, "ratio": _RATIO, "count": self.count,
                "sum_s": round(self.total, 6), "bins": {str(i): n for i, n in sorted(
                    self.bins.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Latency:
        if data.get("base_s") != _BASE or data.get("ratio") != _RATIO:
            raise SummaryError("latency histogram with other bins")
        return cls({int(i): int(n) for i, n in data["bins"].items()}, int(data["count"]),
                   float(data["sum_s"]))


@dataclass
class EndpointStats:
    """One endpoint of a run over several: its calls that answered, that failed there (an
    unavailable endpoint's calls are re-sent to the others), how often it was taken out, and
    the latency of its answered calls."""

    ok: int = 0
    failed: int = 0
    taken_out: int = 0
    latency: Latency = field(default_factory=Latency)

    def merge(self, other: EndpointStats) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.taken_out += other.taken_out
        self.latency.merge(other.latency)

    def to_json(self) -> dict[str, Any]:
        timings = {}
        if self.latency.count:
            timings = {"per_call_mean_s": round(self.latency.total / self.latency.count, 4),
                       "per_call_p50_s": round(self.latency.percentile(50) or 0.0, 4),
                       "per_call_p95_s": round(self.latency.percentile(95) or 0.0, 4)}
        return {"ok": self.ok, "failed": self.failed, "taken_out": self.taken_out,
                "timings": timings, "latency_histogram": self.latency.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointStats:
        return cls(int(data["ok"]), int(data["failed"]), int(data["taken_out"]),
                   Latency.from_json(data["latency_histogram"]))


@dataclass
class BatchSummary:
    total: int = 0  # inputs listed (in this shard)
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # --resume: outputs already made by this model and version
    recomputed: int = 0  # --resume: outputs found but made by another model, or incomplete
    listing_complete: bool = True  # False when the run stopped before every input was listed
    cancelled: bool = False  # stopped before every input ran
    interrupted: bool = False  # ... by Ctrl-C
    lost_connection: str = ""  # ... because the server went away: its last error, else ""
    output_error: str = ""  # ... because the output folder cannot be written (disk full, ...)
    plan_error: str = ""  # ... because two outputs (or an output and an input) clash
    failures: list[Failure] = field(default_factory=list)  # the first LISTED_FAILURES
    class_pixels: dict[int, int] = field(default_factory=dict)  # over the images segmented now
    latency: Latency = field(default_factory=Latency)  # seconds per segmented image
    seconds: float = 0.0  # wall time of the run
    skipped_under_out: int = 0  # files and folders under --out not read as inputs
    removed_temps: int = 0  # leftovers of killed runs removed from the output folders
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)  # with several endpoints
    unreadable: list[str] = field(default_factory=list)  # a line per folder not read

    @property
    def not_run(self) -> int:
        return self.total - self.ok - self.failed - self.skipped

    def add_failure(self, failure: Failure) -> None:
        self.failed += 1
        if len(self.failures) < LISTED_FAILURES:
            self.failures.append(failure)

    def class_shares(self) -> dict[int, float]:
        """{class id: percent of all pixels segmented in this run}."""
        return _shares(self.class_pixels)

    def to_json(self, palette: Palette | None = None) -> dict[str, Any]:
        """The --summary file: counts, failures, per-class pixels and shares, timings."""
        names = {i: palette.class_name(i) if palette else f"class {i}" for i in self.class_pixels}
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "recomputed": self.recomputed,
            "not_run": self.not_run,
            "cancelled": self.cancelled,
            "lost_connection": self.lost_connection or None,
            "output_error": self.output_error or None,
            "plan_error": self.plan_error or None,
            "failures": [{"input": str(f.input), "reason": f.reason} for f in self.failures],
            "unreadable": list(self.unreadable),
            "class_pixels": [{"id": i, "name": names[i], "pixels": n}
                             for i, n in sorted(self.class_pixels.items())],
            "class_shares": [{"id": i, "name": names[i], "percent": round(share, 4)}
                             for i, share in self.class_shares().items()],
            "timings": _timings(self.latency, self.seconds, self.ok + self.failed),
            "latency_histogram": self.latency.to_json(),
            **({"endpoints": {name: stats.to_json() for name, stats in self.endpoints.items()}}
               if self.endpoints else {}),
        }


def _shares(pixels: dict[int, int]) -> dict[int, float]:
    total = sum(pixels.values())
    return {i: 100.0 * n / total for i, n in sorted(pixels.items())} if total else {}


def _timings(latency: Latency, seconds: float, ran: int) -> dict[str, Any]:
    timings: dict[str, Any] = {"total_s": round(seconds, 4)}
    if latency.count:
        timings |= {
            "per_image_mean_s": round(latency.total / latency.count, 4),
            "per_image_p50_s": round(latency.percentile(50) or 0.0, 4),
            "per_image_p95_s": round(latency.percentile(95) or 0.0, 4),
            "images_per_s": round(ran / seconds, 3) if seconds else None,
        }
    return timings


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary for the shards of one run: counts, pixels and latencies added, failures
    concatenated; the wall time is the longest shard's (shards run side by side)."""
    summaries = list(summaries)
    if not summaries:
        raise SummaryError("no summaries to merge")
    first = summaries[0]
    for other in summaries[1:]:
        for key in RUN_KEYS:
            if other.get(key) != first.get(key):
                raise SummaryError(f"the summaries are of different runs: {key} "
                                   f"{first.get(key)!r} against {other.get(key)!r}")
    try:
        merged: dict[str, Any] = {k: first[k] for k in (*RUN_KEYS, "backend") if k in first}
        for key in ("total", "ok", "failed", "skipped", "recomputed", "not_run"):
            merged[key] = sum(int(s.get(key, 0)) for s in summaries)
        merged["cancelled"] = any(s.get("cancelled") for s in summaries)
        for key in ("lost_connection", "output_error", "plan_error"):
            merged[key] = next((s[key] for s in summaries if s.get(key)), None)
        merged["failures"] = [f for s in summaries for f in s["failures"]][:LISTED_FAILURES]
        merged["unreadable"] = [line for s in summaries for line in s.get("unreadable", [])]
        pixels: dict[int, int] = {}
        names: dict[int, str] = {}
        latency = Latency()
        for s in summaries:
            for row in s["class_pixels"]:
                pixels[int(row["id"])] = pixels.get(int(row["id"]), 0) + int(row["pixels"])
                names.setdefault(int(row["id"]), str(row["name"]))
            latency.merge(Latency.from_json(s["latency_histogram"]))
        seconds = max(float(s["timings"]["total_s"]) for s in summaries)
        endpoints: dict[str, EndpointStats] = {}
        for s in summaries:
            for name, data in s.get("endpoints", {}).items():
                endpoints.setdefault(name, EndpointStats()).merge(EndpointStats.from_json(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SummaryError(f"not a segviewer-predict summary (missing or bad {exc})") from None
    merged["class_pixels"] = [{"id": i, "name": names[i], "pixels": n}
                              for i, n in sorted(pixels.items())]
    merged["class_shares"] = [{"id": i, "name": names[i], "percent": round(share, 4)}
                              for i, share in _shares(pixels).items()]
    merged["timings"] = _timings(latency, seconds, merged["ok"] + merged["failed"])
    merged["latency_histogram"] = latency.to_json()
    if endpoints:
        merged["endpoints"] = {name: stats.to_json() for name, stats in endpoints.items()}
    merged["shards"] = len(summaries)
    return merged

"""Server-side timing of what the mock actually did (not what it was told to do): request arrival
-> first token event written (TTFT), gaps between token event writes (ITL), and how late each write
was against its scheduled deadline. Lets a load test tell its own client bias from the server's."""

from __future__ import annotations

from typing import Any

from ..stats import summarize

MAX_SAMPLES = 1_000_000


class Bucket:
    __slots__ = ("itl", "late", "requests", "streams", "ttft")

    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0
        self.ttft: list[float] = []
        self.itl: list[float] = []
        self.late: list[float] = []

    def add(self, series: list[float], value: float) -> None:
        if len(series) < MAX_SAMPLES:
            series.append(value)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "streams": self.streams,
                "server_ttft_ms": summarize(self.ttft), "server_itl_ms": summarize(self.itl),
                "schedule_late_ms": summarize(self.late)}


class Stats:
    """One bucket per latency preset in use ("default" for the server's own profile)."""

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}

    def bucket(self, preset: str) -> Bucket:
        found = self.buckets.get(preset)
        if found is None:
            found = self.buckets[preset] = Bucket()
        return found

    def reset(self) -> None:
        self.buckets = {}

    def snapshot(self, configured: dict[str, Any], presets: dict[str, dict[str, Any]]) -> dict[str, Any]:
        total = Bucket()
        for b in self.buckets.values():
            total.requests += b.requests
            total.streams += b.streams
            total.ttft += b.ttft
            total.itl += b.itl
            total.late += b.late
        out = total.as_dict()
        out["simulated"] = True
        out["configured"] = configured
        out["by_preset"] = {name: dict(b.as_dict(), configured=presets.get(name, configured))
                            for name, b in sorted(self.buckets.items())}
        return out

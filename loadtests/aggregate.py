"""Per-request samples -> the load `summary.json` (DESIGN.md format), exact across workers.

Workers ship raw samples (one small dict per request, with its pooled ITL gaps) to the master,
so every percentile here is computed from all raw values with numpy-style linear interpolation;
Locust's 2-significant-digit buckets are never used for the report.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from conformance.stats import summarize

from .checking import checker_available
from .metrics import StreamMetrics
from .saturation import generator_warnings
from .verdicts import run_verdicts

DIST_KEYS = ("ttft_ms", "first_event_ms", "first_content_ms", "itl_ms", "tpot_ms", "e2e_ms", "e2e_stream_ms")
EXTRA_DIST_KEYS = ("headers_ms", "usage_lag_ms", "queue_ms", "queue_ttft_ms", "queue_e2e_ms")
VIOLATION_SAMPLES = 20

DEFINITIONS = {
    "ttft_ms": "send -> first event with non-empty content, reasoning_content or a tool_calls fragment",
    "first_event_ms": "send -> first SSE data event of any kind (the role chunk on DashScope)",
    "first_content_ms": "send -> first non-empty content or tool_calls (what a user sees)",
    "itl_ms": "gaps between consecutive token-bearing events after the first (per event, pooled)",
    "tpot_ms": "(last token event - first token event) / (usage.completion_tokens - 1)",
    "e2e_ms": "send -> last token-bearing event",
    "e2e_stream_ms": "send -> [DONE] (or stream end)",
    "queue_ttft_ms": "intended send time -> first token (open loop: shows coordinated omission)",
    "queue_ms": "intended send time -> actual send (open loop send lag)",
    "percentiles": "exact, from raw samples, linear interpolation (numpy default)",
    "latency_population": "successful requests only; failures are counted in errors_by_code",
}


def make_sample(
    m: StreamMetrics,
    *,
    region: str,
    kind: str,
    t_wall: float,
    worker: int,
    violations: list[dict[str, Any]],
    request_id: str | None = None,
) -> dict[str, Any]:
    """One request as a plain dict (travels to the master, becomes one samples.jsonl line)."""
    r3 = _r3
    return {
        "region": region,
        "kind": kind,
        "t": round(t_wall, 6),
        "worker": worker,
        "ok": m.ok,
        "status": m.status,
        "error": m.error,
        "error_code": m.error_code,
        "first_event_ms": r3(m.first_event_ms),
        "ttft_ms": r3(m.ttft_ms),
        "first_content_ms": r3(m.first_content_ms),
        "e2e_ms": r3(m.e2e_ms),
        "e2e_stream_ms": r3(m.e2e_stream_ms),
        "tpot_ms": r3(m.tpot_ms),
        "headers_ms": r3(m.headers_ms),
        "usage_lag_ms": r3(m.usage_lag_ms),
        "queue_ms": r3(m.queue_ms),
        "queue_ttft_ms": r3(m.queue_ttft_ms),
        "queue_e2e_ms": r3(m.queue_e2e_ms),
        "itl_ms": [round(x, 4) for x in m.itl_ms],
        "completion_tokens": m.completion_tokens,
        "prompt_tokens": m.prompt_tokens,
        "reasoning_tokens": m.reasoning_tokens,
        "events": m.events,
        "token_events": m.token_events,
        "violations": sum(v.get("count", 1) for v in violations),
        "violation_samples": violations[:3],
        "request_id": request_id,
    }


def _r3(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


class Collector:
    """Holds every sample of one run (all workers) plus the generator's health readings."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.samples: list[dict[str, Any]] = []
        self.lag_ms: list[float] = []
        self.cpu: dict[int, list[float]] = defaultdict(list)
        self.workers: dict[int, dict[str, Any]] = {}
        self.started = time.time()
        self.stopped: float | None = None

    def add(self, samples: Iterable[dict[str, Any]]) -> None:
        self.samples.extend(samples)

    def add_health(self, worker: int, lag_ms: Iterable[float], cpu: Iterable[float]) -> None:
        self.lag_ms.extend(lag_ms)
        self.cpu[worker].extend(cpu)

    def add_worker(self, worker: int, **counters: Any) -> None:
        """What one load process reported about itself: requests sent, backoffs and the time spent
        in them, and (in its final report) what it had in flight at the stop and its users. Each
        report replaces the counters it carries, so a worker lost mid-run keeps its last numbers."""
        self.workers.setdefault(worker, {}).update(counters)

    @property
    def cancelled(self) -> int:
        return sum(w.get("in_flight_at_stop", 0) for w in self.workers.values())

    def backoff_totals(self) -> dict[str, Any]:
        return {
            "count": sum(w.get("backoffs", 0) for w in self.workers.values()),
            "seconds": round(sum(w.get("backoff_s", 0.0) for w in self.workers.values()), 3),
        }

    @property
    def duration_s(self) -> float:
        end = self.stopped if self.stopped is not None else time.time()
        return max(end - self.started, 1e-9)

    def region_summary(self, samples: list[dict[str, Any]], duration: float) -> dict[str, Any]:
        ok = [s for s in samples if s["ok"]]
        errors: Counter[str] = Counter()
        detail: Counter[str] = Counter()
        for s in samples:
            if not s["ok"]:
                errors[s["error"] or "unknown"] += 1
                if s.get("error_code"):
                    detail[f"{s['error']}:{s['error_code']}"] += 1
        tokens = sum(s["completion_tokens"] or 0 for s in ok)
        violations = sum(s["violations"] for s in samples)
        by_rule: Counter[str] = Counter()
        vsamples: list[dict[str, Any]] = []
        for s in sorted(samples, key=lambda s: s["t"]):
            for v in s.get("violation_samples") or ():
                by_rule[v["rule"]] += 1
                if len(vsamples) < VIOLATION_SAMPLES:
                    vsamples.append({**v, "request_id": s.get("request_id"), "kind": s["kind"], "worker": s["worker"]})
        out: dict[str, Any] = {
            "requests": len(samples),
            "failures": len(samples) - len(ok),
            "errors_by_code": dict(sorted(errors.items())),
            "output_tokens_per_s": round(tokens / duration, 3),
            "requests_per_s": round(len(samples) / duration, 3),
            "conformance_violations": violations,
        }
        for key in DIST_KEYS:
            if key == "itl_ms":
                out[key] = summarize(x for s in ok for x in s["itl_ms"])
            else:
                out[key] = summarize(s[key] for s in ok)
        # additions (allowed by DESIGN.md: extra keys, required ones unchanged)
        out["successful_per_s"] = round(len(ok) / duration, 3)
        out["output_tokens"] = tokens
        out["errors_by_detail"] = dict(sorted(detail.items()))
        out["violations_by_rule"] = dict(sorted(by_rule.items()))
        out["violation_samples"] = vsamples
        for key in EXTRA_DIST_KEYS:
            vals = [s[key] for s in ok if s.get(key) is not None]
            if vals or not key.startswith("queue"):
                out[key] = summarize(vals)
        tpe = [
            ((s["completion_tokens"] - 1) / (s["token_events"] - 1))
            for s in ok
            if s["completion_tokens"] and s["completion_tokens"] >= 2 and s["token_events"] >= 2
        ]
        out["tokens_per_event"] = summarize(tpe)
        out["completion_tokens"] = summarize(s["completion_tokens"] for s in ok if s["completion_tokens"] is not None)
        out["kinds"] = dict(sorted(Counter(s["kind"] for s in samples).items()))
        return out

    def build_summary(self, meta: dict[str, Any]) -> dict[str, Any]:
        """`meta` carries target, users, mode, regions (label order), simulated, version..."""
        duration = self.duration_s
        by_region: dict[str, list[dict[str, Any]]] = {label: [] for label in meta.get("labels", [])}
        for s in self.samples:
            by_region.setdefault(s["region"], []).append(s)
        regions = {}
        for label, samples in by_region.items():
            summary = self.region_summary(samples, duration)
            if meta.get("simulated"):
                summary = {"simulated": True, **summary}
            regions[label] = summary
        cpu = {str(w): summarize(v, digits=1) for w, v in sorted(self.cpu.items())}
        out = {
            "tool": "chatconf",
            "version": meta.get("version"),
            "target": meta.get("target", {}),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(duration, 3),
            "users": meta.get("users"),
            "users_running": meta.get("users_running"),
            "mode": meta.get("mode", "closed"),
            "rate": meta.get("rate"),
            "arrivals": meta.get("arrivals"),
            "workers": meta.get("workers", 0),
            "workers_reporting": meta.get("workers_reporting", meta.get("workers", 0)),
            "simulated": bool(meta.get("simulated")),
            "regions": regions,
            "generator": {
                "loop_lag_ms": summarize(self.lag_ms),
                "cpu_percent_by_worker": cpu,
                "cancelled_at_stop": self.cancelled,
                "backoff": self.backoff_totals(),
                "by_worker": {
                    str(k): {**v, "samples": sum(1 for s in self.samples if s["worker"] == k)}
                    for k, v in sorted(self.workers.items())
                },
                "conformance_checker": "stream rules" if checker_available() else "unavailable",
                # per target: "kernel" (receive timestamps, Linux) or "read" (a platform without them)
                "arrival_clock": meta.get("arrival_clock", {}),
            },
            "definitions": DEFINITIONS,
        }
        out["verdicts"] = run_verdicts(
            self.samples,
            started=self.started,
            duration_s=duration,
            in_flight=self.cancelled,
            workers=meta.get("lost_workers"),
        )
        out["generator"]["warnings"] = generator_warnings(out)
        if meta.get("replay"):
            out["replay"] = meta["replay"]
        if meta.get("max_requests"):
            out["max_requests"] = meta["max_requests"]
        return out

"""Console output: the compact progress line while running and the per-region table at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance.redact import console_text
from conformance.stats import percentile


def _fmt(value: Any, width: int = 7) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
        return text.rjust(width)
    return str(value).rjust(width)


def format_progress(
    elapsed: float,
    users: int,
    samples: Sequence[dict[str, Any]],
    recent: Sequence[dict[str, Any]],
    backlog: int | None = None,
) -> str:
    """`[  6s] 20 users | singapore 31 ok 0 err ttft p50 312 ms | ...` (recent window percentiles)."""
    parts = [f"[{elapsed:4.0f}s] {users} users"]
    regions: dict[str, list[int]] = {}
    for s in samples:
        row = regions.setdefault(s["region"], [0, 0])
        row[0 if s["ok"] else 1] += 1
    for region, (ok, err) in regions.items():
        ttfts = sorted(s["ttft_ms"] for s in recent if s["region"] == region and s["ok"] and s["ttft_ms"] is not None)
        p50 = f" ttft p50 {percentile(ttfts, 50):.0f} ms" if ttfts else ""
        parts.append(f"{region} {ok} ok {err} err{p50}")
    viol = sum(s["violations"] for s in samples)
    if viol:
        parts.append(f"{viol} violations")
    if backlog:
        parts.append(f"backlog {backlog}")
    return " | ".join(parts)


COLUMNS = (
    ("region", 14),
    ("req", 6),
    ("fail", 5),
    ("req/s", 7),
    ("tok/s", 8),
    ("ttft p50", 9),
    ("p90", 7),
    ("p99", 7),
    ("1st-content p50", 16),
    ("itl p50", 8),
    ("p99", 7),
    ("tpot p50", 9),
    ("e2e p50", 8),
    ("p99", 7),
    ("viol", 5),
)


def format_table(summary: dict[str, Any]) -> str:
    """Per-region table (ms) with the run's header; marks simulated targets loudly."""
    lines = []
    target = summary.get("target") or {}
    users, running = summary.get("users"), summary.get("users_running")
    head = f"chatconf load: {summary.get('duration_s', 0):.1f} s, {users} users"
    if running is not None and running != users:
        head += f" ({running} running at the end)"
    head += f", {summary.get('mode', 'closed')} loop"
    if summary.get("rate"):
        head += f" at {summary['rate']:g} req/s ({summary.get('arrivals')})"
    if summary.get("workers"):
        reporting = summary.get("workers_reporting", summary["workers"])
        head += f", {summary['workers']} workers" if reporting == summary["workers"] else (
            f", {reporting} of {summary['workers']} workers reporting"
        )
    head += f", model {target.get('model')}"
    lines.append(head)
    if summary.get("simulated"):
        lines.append("SIMULATED: embedded mock with simulated region latency (not real DashScope numbers)")
    lines.append("  ".join(name.rjust(width) if i else name.ljust(width) for i, (name, width) in enumerate(COLUMNS)))
    if summary.get("interrupted"):
        lines.append("INTERRUPTED: the run was stopped before its end; these figures are partial")
    for label, r in (summary.get("regions") or {}).items():
        name = console_text(label) + (" (sim)" if r.get("simulated") else "")
        cells = [
            name.ljust(14),
            _fmt(r["requests"], 6),
            _fmt(r["failures"], 5),
            _fmt(r["requests_per_s"], 7),
            _fmt(r["output_tokens_per_s"], 8),
            _fmt(r["ttft_ms"]["p50"], 9),
            _fmt(r["ttft_ms"]["p90"], 7),
            _fmt(r["ttft_ms"]["p99"], 7),
            _fmt(r["first_content_ms"]["p50"], 16),
            _fmt(r["itl_ms"]["p50"], 8),
            _fmt(r["itl_ms"]["p99"], 7),
            _fmt(r["tpot_ms"]["p50"], 9),
            _fmt(r["e2e_ms"]["p50"], 8),
            _fmt(r["e2e_ms"]["p99"], 7),
            _fmt(r["conformance_violations"], 5),
        ]
        lines.append("  ".join(cells))
        if r.get("errors_by_code"):
            errs = ", ".join(f"{k}: {v}" for k, v in r["errors_by_code"].items())
            lines.append(f"  errors {errs}")
        if r.get("violations_by_rule"):
            rules = ", ".join(f"{k}: {v}" for k, v in r["violations_by_rule"].items())
            lines.append(f"  violations {rules}")
        if r.get("queue_ttft_ms", {}).get("count"):
            q = r["queue_ttft_ms"]
            lines.append(
                f"  queue-inclusive ttft p50 {q['p50']:.1f} p99 {q['p99']:.1f} ms "
                f"(send lag p99 {r['queue_ms']['p99']:.1f} ms)"
            )
    gen = summary.get("generator") or {}
    lag = gen.get("loop_lag_ms") or {}
    if lag.get("count"):
        lines.append(
            f"generator: event-loop lag p50 {lag['p50']:.2f} ms p99 {lag['p99']:.2f} ms max "
            f"{lag['max']:.1f} ms; stopped with {gen.get('cancelled_at_stop', 0)} requests in flight"
        )
    backoff = gen.get("backoff") or {}
    if backoff.get("count"):
        lines.append(
            f"backoff: {backoff['count']} waits, {backoff['seconds']:.1f} s in total "
            "(after 429/503 or a refused/reset connection; not in the latencies)"
        )
    lines.append(
        "times in ms; percentiles exact from raw samples; ttft counts reasoning and tool calls, 1st-content does not"
    )
    lines.extend(slo_lines(summary.get("slo")))
    lines.extend(f"WARNING generator saturated: {w}" for w in gen.get("warnings") or ())
    lines.extend(verdict_lines(summary))
    return "\n".join(lines)


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """One `VERDICT` line per verdict of the run (lost workers, error storm, zero completed)."""
    return [f"VERDICT {console_text(str(v.get('message', v.get('name'))))}" for v in summary.get("verdicts") or ()]


def slo_lines(slo: dict[str, Any] | None) -> list[str]:
    """The objectives, each with what was measured, and goodput (requests/s meeting every latency objective)."""
    if not slo:
        return []
    from .slo import describe

    out = [f"SLO {'met' if slo.get('passed') else 'NOT MET'}: " + "; ".join(
        console_text(describe(r)) for r in slo.get("objectives", []))]
    if "goodput_per_s" in slo:
        by_target = ", ".join(f"{console_text(k)} {v:g}" for k, v in (slo.get("goodput_by_target") or {}).items())
        out.append(f"goodput {slo['goodput_per_s']:g} req/s meeting {', '.join(slo.get('goodput_objectives', []))}"
                   + (f" ({by_target})" if by_target else ""))
    return out

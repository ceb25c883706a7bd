"""Is the load generator itself the bottleneck? Then the latencies measure chatconf, not the target.

A worker whose CPU stays above ~90%, an event loop whose timer overshoots grow, or (open loop) sends
that leave well after their intended time all mean the generator could not keep up: its numbers are
inflated by its own queueing. These are warnings about the measurement, never verdicts on the server;
one place computes them for summary.json, the console and the HTML report.
"""

from __future__ import annotations

from typing import Any

CPU_PERCENT = 90.0
"""A worker's mean CPU above this: its core is (nearly) saturated."""

LOOP_LAG_P99_MS = 10.0
"""Event-loop lag p99 above this: greenlets wait that long to run. Arrival times are the kernel's
(loadtests/client.py), but requests leave that late, and events read together share a time."""

SEND_LAG_P99_MS = 50.0
"""Open loop: requests leave this late (p99) after their intended send time."""


def generator_warnings(summary: dict[str, Any]) -> list[str]:
    """One sentence per sign of a saturated generator, with the figure that shows it."""
    gen = summary.get("generator") or {}
    warnings = []
    for worker, cpu in sorted((gen.get("cpu_percent_by_worker") or {}).items()):
        mean = (cpu or {}).get("mean")
        if isinstance(mean, int | float) and mean > CPU_PERCENT:
            warnings.append(f"worker {worker} used {mean:.0f}% of a core on average (above {CPU_PERCENT:.0f}%): "
                            "add --workers or lower the load; latencies include the generator's own queueing")
    lag = gen.get("loop_lag_ms") or {}
    if isinstance(lag.get("p99"), int | float) and lag["p99"] > LOOP_LAG_P99_MS:
        warnings.append(f"event-loop lag p99 {lag['p99']:.1f} ms (above {LOOP_LAG_P99_MS:.0f} ms): the generator "
                        "is falling behind: requests leave up to that late")
    for label, region in sorted((summary.get("regions") or {}).items()):
        queue = (region or {}).get("queue_ms") or {}
        if queue.get("count") and isinstance(queue.get("p99"), int | float) and queue["p99"] > SEND_LAG_P99_MS:
            warnings.append(f"{label}: open-loop sends left up to {queue['p99']:.0f} ms late (p99 send lag): "
                            "every one of --users was busy (raise --users) or the generator fell behind")
    return warnings

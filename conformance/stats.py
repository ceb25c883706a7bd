"""Exact distribution summaries from raw samples: one definition of a percentile for everything
that reports latency (load-test metrics, the mock's server-side timings, calibration), so measured
and injected figures are always compared like for like."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """numpy's default 'linear' interpolation on already-sorted values (q in 0..100)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def summarize(values: Iterable[float], *, digits: int = 3) -> dict[str, float | int | None]:
    """{p50, p90, p95, p99, p99_9, mean, std, min, max, count} from raw samples (exact, no buckets).

    With no samples every statistic is None and count is 0 (a 0 would read as a measurement).
    """
    data = sorted(float(v) for v in values if v is not None)
    out: dict[str, float | int | None] = {}
    if not data:
        for q in PERCENTILES:
            out[f"p{q}"] = None
        out.update({"p99_9": None, "mean": None, "std": None, "min": None, "max": None, "count": 0})
        return out
    for q in PERCENTILES:
        out[f"p{q}"] = round(percentile(data, q), digits)
    out["p99_9"] = round(percentile(data, 99.9), digits)
    mean = math.fsum(data) / len(data)
    var = math.fsum((x - mean) ** 2 for x in data) / len(data)
    out.update(
        {
            "mean": round(mean, digits),
            "std": round(math.sqrt(var), digits),
            "min": round(data[0], digits),
            "max": round(data[-1], digits),
            "count": len(data),
        }
    )
    return out

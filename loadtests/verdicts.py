"""Verdicts: the ways a load run can go wrong that its latency table would hide.

Each verdict is a small dict (`name`, a one-line `message`, and its numbers) listed under
`"verdicts"` in summary.json, printed by the console table and the HTML report, and turned into
exit 1 by `chatconf load`:

- `lost_workers`: a worker process stopped reporting (killed, crashed, cut off); its users and its
  unsent samples are missing from the numbers;
- `error_storm`: at least ERROR_STORM_RATE of the requests failed, over the whole run or over any
  ERROR_STORM_WINDOW_S window of it (a target that died mid-run), with at least
  ERROR_STORM_MIN_FAILURES failures;
- `zero_completed`: not one request completed successfully.

The error-storm thresholds live only here, so a later error-rate objective can default to them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

ERROR_STORM_RATE = 0.5
ERROR_STORM_WINDOW_S = 5.0
ERROR_STORM_MIN_FAILURES = 10


def failure_signature(sample: dict[str, Any]) -> str | None:
    """How a sample failed, as one comparable string; None for a success."""
    if sample.get("ok"):
        return None
    if sample.get("status"):
        code = sample.get("error_code")
        return f"HTTP {sample['status']}" + (f" {code}" if code else "")
    return str(sample.get("error") or "failed")


def _top_failures(samples: Sequence[dict[str, Any]], n: int = 3) -> dict[str, int]:
    counts = Counter(sig for s in samples if (sig := failure_signature(s)) is not None)
    return dict(counts.most_common(n))


def _scan(ordered: Sequence[tuple[float, bool]], window_s: float) -> tuple[int, int, float, float] | None:
    """Windows ending at each sample (times in `ordered` ascending): the qualifying one with the
    most failures, as (failures, requests, time of its first sample, time of its last)."""
    best: tuple[int, int, float, float] | None = None
    lo = failures = 0
    for hi, (t, failed) in enumerate(ordered):
        failures += failed
        while t - ordered[lo][0] > window_s:
            failures -= ordered[lo][1]
            lo += 1
        requests = hi - lo + 1
        if failures >= ERROR_STORM_MIN_FAILURES and failures >= ERROR_STORM_RATE * requests and (
            best is None or failures > best[0]
        ):
            best = (failures, requests, ordered[lo][0], t)
    return best


def _worst_window(samples: Sequence[dict[str, Any]], window_s: float) -> tuple[int, int, float] | None:
    """(failures, requests, start time) of the window of `window_s` seconds (by send time) holding
    the most failures at or above the storm rate, among the windows that end at a sample or start
    at one (so a storm at the start or the end of a run is seen whole); None when none qualifies."""
    ordered = sorted((s["t"], not s["ok"]) for s in samples)
    found = []
    if (ending := _scan(ordered, window_s)) is not None:
        found.append(ending[:3])
    if (starting := _scan([(-t, failed) for t, failed in reversed(ordered)], window_s)) is not None:
        found.append((starting[0], starting[1], -starting[3]))  # mirrored: its last is the real first
    return max(found, key=lambda w: w[0]) if found else None


def error_storm(samples: Sequence[dict[str, Any]], started: float, duration_s: float) -> dict[str, Any] | None:
    """The error-storm verdict for a run's samples, or None."""
    failures = sum(1 for s in samples if not s["ok"])
    if failures < ERROR_STORM_MIN_FAILURES:
        return None
    rate = failures / len(samples)
    whole = rate >= ERROR_STORM_RATE
    worst = _worst_window(samples, ERROR_STORM_WINDOW_S)
    if not whole and worst is None:
        return None
    window = None
    where = ""
    if worst is not None:
        w_failures, w_requests, w_start = worst
        window = {"start_s": round(w_start - started, 3), "seconds": ERROR_STORM_WINDOW_S,
                  "failures": w_failures, "requests": w_requests}
        if not whole:
            where = f"; {w_failures} of {w_requests} in the {ERROR_STORM_WINDOW_S:g} s from {w_start - started:.1f} s"
    top = _top_failures(samples)
    mostly = next(iter(top), "failed")
    return {
        "name": "error_storm",
        "message": (
            f"error storm: {failures} of {len(samples)} requests failed ({rate:.0%}, "
            f"{failures / max(duration_s, 1e-9):.1f}/s){where}, mostly {mostly}"
        ),
        "failures": failures,
        "requests": len(samples),
        "failure_rate": round(rate, 4),
        "failures_per_s": round(failures / max(duration_s, 1e-9), 3),
        "worst_window": window,
        "threshold": {
            "failure_rate": ERROR_STORM_RATE,
            "window_s": ERROR_STORM_WINDOW_S,
            "min_failures": ERROR_STORM_MIN_FAILURES,
        },
        "top_failures": top,
    }


def zero_completed(samples: Sequence[dict[str, Any]], in_flight: int, duration_s: float) -> dict[str, Any] | None:
    """The zero-completed verdict (no successful request at all), or None."""
    if any(s["ok"] for s in samples):
        return None
    if samples:
        what = f"all {len(samples)} finished requests failed ({', '.join(_top_failures(samples))})"
    else:
        what = "no request finished"
    return {
        "name": "zero_completed",
        "message": f"zero completed requests in {duration_s:.1f} s: {what}; {in_flight} were in flight at the stop",
        "finished": len(samples),
        "in_flight_at_stop": in_flight,
    }


def lost_workers(
    expected: int, reporting: Sequence[int], lost: Sequence[int], users: int | None, users_running: int | None
) -> dict[str, Any] | None:
    """The lost-workers verdict (workers that started but sent no final report), or None."""
    if not lost and len(reporting) >= expected:
        return None
    ids = ", ".join(str(w) for w in lost) or "never connected"
    return {
        "name": "lost_workers",
        "message": (
            f"lost workers: {len(reporting)} of {expected} workers reported at the end (lost: {ids}); "
            f"{users_running if users_running is not None else '?'} of {users} users were running"
        ),
        "expected": expected,
        "reporting": len(reporting),
        "lost": list(lost),
        "users": users,
        "users_running": users_running,
    }


def run_verdicts(
    samples: Sequence[dict[str, Any]],
    *,
    started: float,
    duration_s: float,
    in_flight: int,
    workers: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every verdict of a run, in the order they explain it (a lost worker first)."""
    found = []
    if workers is not None:
        found.append(lost_workers(**workers))
    found.append(error_storm(samples, started, duration_s))
    found.append(zero_completed(samples, in_flight, duration_s))
    return [v for v in found if v is not None]

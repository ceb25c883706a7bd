"""Service-level objectives: "does this pass our SLO?" answered on the run's exact samples.

`--slo "ttft_p99<=800ms,tpot_p50<=40ms,error_rate<=1%"`: each objective is `[SCOPE:]NAME OP VALUE`, where
SCOPE is a target label or region (default: all targets pooled), NAME a latency statistic
(`ttft_p99`, `itl_p50`, `tpot_mean`, `e2e_max`, ... of the metrics in the summary, in ms or s) or a rate
(`error_rate` in % or as a fraction, `requests_per_s`, `output_tokens_per_s`, `goodput_per_s`), and OP
one of <=, <, >=, >. Percentiles are exact (the same interpolation as the summary), computed from the
raw samples of every worker; a statistic with no samples fails its objective (no data is no pass).

Goodput is the DistServe definition: requests per second that meet every per-request objective (the
latency objectives with an upper bound, each judged on that request's own value; for `itl` every gap
of the request). Without `--slo`, and unless the objectives given name `error_rate` themselves, CI gets
`error_rate<=1%`, so a run where 18% of requests failed is never green; `--slo none` turns all off.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.stats import percentile

DEFAULT = "error_rate<=1%"
LATENCY_METRICS = ("ttft", "first_event", "first_content", "itl", "tpot", "e2e", "e2e_stream", "queue_ttft",
                   "queue")
RATES = ("error_rate", "requests_per_s", "output_tokens_per_s", "goodput_per_s")
STATS = re.compile(r"^(?:p(?P<q>\d{1,3}(?:_\d+)?)|mean|min|max)$")
_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge,
                                                   ">": operator.gt}
_SPEC = re.compile(r"^\s*(?:(?P<scope>[^:<>=]+):)?\s*(?P<name>[a-z_0-9]+)\s*(?P<op><=|>=|<|>)\s*"
                   r"(?P<value>[0-9]*\.?[0-9]+)\s*(?P<unit>ms|s|%|/s)?\s*$")


class SLOError(ValueError):
    """A malformed objective; str() is the one line to print."""


@dataclass(frozen=True)
class Objective:
    text: str
    scope: str | None  # a target label, or None for all targets pooled
    name: str  # ttft_p99, error_rate, ...
    metric: str  # ttft, itl, ... or the rate's name
    stat: str | None  # p99, p99_9, mean, min, max; None for rates
    op: str
    threshold: float  # ms for latencies, a fraction for error_rate, per second for rates

    @property
    def per_request(self) -> bool:
        """Judged request by request for goodput: an upper bound on a latency statistic."""
        return self.metric in LATENCY_METRICS and self.op in ("<=", "<")

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)


def parse(text: str | None, labels: Iterable[str] = ()) -> list[Objective]:
    """The objectives of `--slo` (None: the default), checked against the run's target labels."""
    if text is not None and text.strip().lower() == "none":
        return []
    objectives = [_parse_one(part) for part in (text or "").split(",") if part.strip()]
    if not any(o.metric == "error_rate" for o in objectives):
        objectives.append(_parse_one(DEFAULT))
    known = set(labels)
    for o in objectives:
        if o.scope is not None and known and o.scope not in known:
            raise SLOError(f"--slo {o.text!r}: no target {o.scope!r} in this run (targets: {', '.join(sorted(known))})")
    return objectives


def _parse_one(part: str) -> Objective:
    found = _SPEC.match(part)
    if found is None:
        raise SLOError(f"--slo {part.strip()!r}: expected [TARGET:]NAME OP VALUE, "
                       "e.g. ttft_p99<=800ms or error_rate<=1%")
    scope = found["scope"].strip() if found["scope"] else None
    name, op, value, unit = found["name"], found["op"], float(found["value"]), found["unit"]
    if name in RATES:
        metric, stat = name, None
        if name == "error_rate":
            if unit == "%":
                value /= 100
            elif unit is not None or value > 1:
                raise SLOError(f"--slo {part.strip()!r}: error_rate takes a percentage (1%) or a fraction (0.01)")
        elif unit not in (None, "/s"):
            raise SLOError(f"--slo {part.strip()!r}: {name} is per second, not {unit}")
    else:
        metric, _, stat = name.rpartition("_")
        if metric not in LATENCY_METRICS or not STATS.match(stat):
            raise SLOError(f"--slo {part.strip()!r}: unknown objective {name!r} (latencies: "
                           f"{', '.join(m + '_p99' for m in LATENCY_METRICS[:6])}, ... with p50..p99_9, mean, "
                           f"min or max; rates: {', '.join(RATES)})")
        if unit in ("%", "/s"):
            raise SLOError(f"--slo {part.strip()!r}: {name} is a time (ms or s), not {unit}")
        value = value * 1000 if unit == "s" else value
        q = STATS.match(stat)["q"]  # type: ignore[index]
        if q is not None and not 0 < float(q.replace("_", ".")) < 100:
            raise SLOError(f"--slo {part.strip()!r}: a percentile is between p0 and p100")
    return Objective(text=part.strip(), scope=scope, name=name, metric=metric, stat=stat, op=op, threshold=value)


# -- evaluation on raw samples --------------------------------------------------------------------

def _values(samples: Sequence[dict[str, Any]], metric: str) -> list[float]:
    ok = [s for s in samples if s.get("ok")]
    if metric == "itl":
        return sorted(float(x) for s in ok for x in s.get("itl_ms") or ())
    return sorted(float(s[f"{metric}_ms"]) for s in ok if s.get(f"{metric}_ms") is not None)


def _statistic(values: list[float], stat: str) -> float | None:
    if not values:
        return None
    if stat == "mean":
        return sum(values) / len(values)
    if stat in ("min", "max"):
        return values[0] if stat == "min" else values[-1]
    return percentile(values, float(stat[1:].replace("_", ".")))


def _meets(sample: dict[str, Any], objectives: Sequence[Objective]) -> bool:
    """One request against every per-request objective (goodput)."""
    if not sample.get("ok"):
        return False
    for o in objectives:
        if o.metric == "itl":
            if not all(o.holds(float(g)) for g in sample.get("itl_ms") or ()):
                return False
            continue
        value = sample.get(f"{o.metric}_ms")
        if value is None or not o.holds(float(value)):
            return False
    return True


def goodput(samples: Sequence[dict[str, Any]], objectives: Sequence[Objective], duration_s: float) -> float:
    per_request = [o for o in objectives if o.per_request]
    return sum(1 for s in samples if _meets(s, per_request)) / max(duration_s, 1e-9)


def measure(o: Objective, samples: Sequence[dict[str, Any]], duration_s: float,
            objectives: Sequence[Objective]) -> float | None:
    """The value the objective is judged on (None: nothing to judge)."""
    if o.metric == "error_rate":
        return sum(1 for s in samples if not s.get("ok")) / len(samples) if samples else None
    if o.metric == "requests_per_s":
        return len(samples) / max(duration_s, 1e-9)
    if o.metric == "output_tokens_per_s":
        return sum(s.get("completion_tokens") or 0 for s in samples if s.get("ok")) / max(duration_s, 1e-9)
    if o.metric == "goodput_per_s":
        return goodput(samples, objectives, duration_s)
    return _statistic(_values(samples, o.metric), o.stat or "p50")


def evaluate(objectives: Sequence[Objective], samples: Sequence[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """The summary's `slo` section: each objective with its measured value and verdict, and goodput."""
    results = []
    for o in objectives:
        scoped = [s for s in samples if o.scope is None or s.get("region") == o.scope]
        value = measure(o, scoped, duration_s, [p for p in objectives if p.scope in (None, o.scope)])
        results.append({"objective": o.text, "scope": o.scope or "all", "name": o.name, "op": o.op,
                        "threshold": _shown(o, o.threshold), "measured": None if value is None else _shown(o, value),
                        "unit": _unit(o), "passed": value is not None and o.holds(value),
                        **({"note": "no samples to judge"} if value is None else {})})
    per_request = [o for o in objectives if o.per_request]
    out: dict[str, Any] = {"objectives": results, "passed": all(r["passed"] for r in results)}
    if per_request:
        regions = sorted({s.get("region") for s in samples if s.get("region")})
        out["goodput_per_s"] = round(goodput(samples, [o for o in per_request if o.scope is None], duration_s), 3)
        out["goodput_by_target"] = {r: round(goodput([s for s in samples if s.get("region") == r],
                                                     [o for o in per_request if o.scope in (None, r)], duration_s), 3)
                                    for r in regions}
        out["goodput_objectives"] = [o.text for o in per_request]
    return out


def _unit(o: Objective) -> str:
    return "%" if o.metric == "error_rate" else "/s" if o.metric in RATES else "ms"


def _shown(o: Objective, value: float) -> float:
    return round(value * 100, 3) if o.metric == "error_rate" else round(value, 3)


def failed(slo: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [r for r in (slo or {}).get("objectives", []) if not r.get("passed")]


def describe(result: dict[str, Any]) -> str:
    """`ttft_p99<=800ms: 612.3 ms (pass)` for consoles and reports."""
    measured = "no samples" if result.get("measured") is None else f"{result['measured']:g} {result['unit']}"
    return f"{result['objective']}: {measured} ({'pass' if result['passed'] else 'FAIL'})"

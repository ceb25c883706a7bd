"""Capacity search: the highest load a target carries within its objectives.

A bracketed search over concurrency (closed loop, `--users`) or request rate (open loop, `--rate`):
start at the given load and double it until a step misses an objective, then bisect between the
last load that passed and the first that failed (halving instead when even the first step fails),
until the bracket is within `resolution` of its lower end, the step budget is spent or the time
budget would be exceeded. A step whose load generator saturated (loadtests/saturation.py) ends the
search there, saying so: beyond that point the numbers would measure chatconf, not the target.

The search decides; `run_step(load) -> Step` measures (one bounded `chatconf load` run per step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Step:
    """One measured load level."""

    load: float
    passed: bool  # every objective met
    saturated: list[str] = field(default_factory=list)  # generator warnings: the step is not usable
    figures: dict[str, Any] = field(default_factory=dict)  # ttft p50/p99, tpot, error rate, throughput...
    missed: list[str] = field(default_factory=list)  # the objectives it missed, with their values
    interrupted: bool = False


@dataclass
class SweepResult:
    unit: str  # "users" or "req/s"
    steps: list[Step]
    capacity: float | None  # the highest load that met every objective (None: not even the lowest)
    first_failure: float | None
    stopped: str  # why the search ended

    def as_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "capacity": self.capacity, "first_failure": self.first_failure,
                "stopped": self.stopped,
                "steps": [{"load": s.load, "passed": s.passed, "saturated": s.saturated, "missed": s.missed,
                           **s.figures} for s in self.steps]}


def search(run_step: Callable[[float], Step], *, start: float, integer: bool, max_steps: int,
           time_budget_s: float, step_cost_s: float, resolution: float = 0.1, minimum: float = 1.0,
           clock: Callable[[], float] = time.monotonic) -> SweepResult:
    """Exponential bracketing, then bisection; every bound is checked before a step starts."""
    unit = "users" if integer else "req/s"
    began = clock()
    steps: list[Step] = []
    passed_at: float | None = None
    failed_at: float | None = None
    load = _round(start, integer)
    stopped = ""
    while True:
        if len(steps) >= max_steps:
            stopped = f"step budget of {max_steps} spent"
            break
        if clock() - began + step_cost_s > time_budget_s:
            stopped = f"time budget of {time_budget_s:g} s would be exceeded by another step"
            break
        step = run_step(load)
        steps.append(step)
        if step.interrupted:
            stopped = "interrupted"
            break
        if step.saturated:
            stopped = f"the load generator saturated at {load:g} {unit} ({step.saturated[0]})"
            break
        if step.passed:
            passed_at = load if passed_at is None else max(passed_at, load)
        else:
            failed_at = load if failed_at is None else min(failed_at, load)
        nxt = _next(passed_at, failed_at, load, integer, minimum)
        if nxt is None or (passed_at is not None and failed_at is not None
                           and _narrow(passed_at, failed_at, resolution, integer)):
            stopped = _why(passed_at, failed_at, minimum, unit)
            break
        load = nxt
    return SweepResult(unit=unit, steps=steps, capacity=passed_at, first_failure=failed_at, stopped=stopped)


def _next(passed_at: float | None, failed_at: float | None, load: float, integer: bool,
          minimum: float) -> float | None:
    if failed_at is None:
        return _round(load * 2, integer)
    if passed_at is None:
        lower = _round(load / 2, integer)
        return None if load <= minimum or lower < minimum or lower == load else lower
    middle = _round((passed_at + failed_at) / 2, integer)
    return None if middle in (passed_at, failed_at) else middle


def _narrow(lo: float, hi: float, resolution: float, integer: bool) -> bool:
    return hi - lo <= 1 if integer else (hi - lo) <= resolution * lo


def _why(passed_at: float | None, failed_at: float | None, minimum: float, unit: str) -> str:
    if passed_at is None:
        return f"even {minimum:g} {unit} missed an objective"
    return f"bracketed between {passed_at:g} (met) and {failed_at:g} {unit} (missed)"


def _round(value: float, integer: bool) -> float:
    return float(max(1, math.floor(value))) if integer else round(value, 3)

"""`chatconf load --sweep`: the capacity search (loadtests/sweep.py) driven with real Locust runs.

Each target (region or --base-url) is searched on its own, so its capacity is its own: one bounded
run per step, in `REPORT_DIR/sweep-<target>/step-NN-<load>/` (a full load report each), judged with
the same objectives (`--slo`) as a plain run. The result goes to the console, `sweep.json` and
`sweep.html` (latency against load, the capacity marked).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

from ..jsonutil import dumps
from ..outputs import write_atomic
from ..redact import console_text

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
STEP_OVERHEAD_S = 8.0
"""Start-up and shut-down of one step's Locust processes, on top of its --run-time (measured: 3-6 s)."""


def sweep_targets(session: Any, targets: dict[str, str], report_dir: Path) -> int:
    from loadtests.sweep import search

    args = session.args
    closed = args.rate is None
    results: dict[str, Any] = {}
    interrupted = False
    for label, url in targets.items():
        run_step = _stepper(session, label, url, report_dir / f"sweep-{_safe(label)}", closed)
        result = search(run_step, start=float(args.users if closed else args.rate), integer=closed,
                        max_steps=args.sweep_steps, time_budget_s=args.sweep_time,
                        step_cost_s=session.run_time + STEP_OVERHEAD_S)
        results[label] = result.as_dict()
        if result.stopped == "interrupted":
            interrupted = True
            break
    doc = {"tool": "chatconf", "kind": "sweep", "objectives": [o.text for o in session.objectives],
           "step_run_time_s": session.run_time, "simulated": session.simulated, "targets": results,
           **({"interrupted": True} if interrupted else {})}
    write_atomic(report_dir / "sweep.json", dumps(doc, indent=True) + "\n")
    from loadtests.report_sweep import render_sweep

    write_atomic(report_dir / "sweep.html", render_sweep(doc))
    print(format_sweep(doc))
    if args.report_dir:
        print(f"reports: {report_dir}/sweep.json, sweep.html, sweep-*/step-*/", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r["capacity"] is not None for r in results.values()) else EXIT_FAILED


def _stepper(session: Any, label: str, url: str, where: Path, closed: bool) -> Any:
    """The step function of one target's search: one judged Locust run at a given load."""
    from loadtests import slo
    from loadtests.sweep import Step

    args = session.args
    counter = iter(range(1, 1000))

    def run_step(load: float) -> Step:
        users = int(load) if closed else max(args.users, math.ceil(load * 10))  # open loop: room in flight
        step_dir = where / f"step-{next(counter):02d}-{load:g}"
        outcome = session.run({label: url}, step_dir, users=users, rate=None if closed else load)
        summary = outcome.summary or {}
        region = (summary.get("regions") or {}).get(label) or {}
        missed = [slo.describe(r) for r in slo.failed(summary.get("slo"))]
        verdicts = [str(v.get("message")) for v in summary.get("verdicts") or []]
        step = Step(load=load, passed=outcome.code is None and not missed and not verdicts,
                    saturated=list((summary.get("generator") or {}).get("warnings") or []),
                    figures=_figures(region, summary), missed=missed + verdicts,
                    interrupted=outcome.interrupted or outcome.code == EXIT_INTERRUPTED)
        if not args.quiet:
            print(f"chatconf load --sweep: {console_text(label)} at {load:g} {'users' if closed else 'req/s'}: "
                  f"{'met' if step.passed else 'MISSED'}"
                  + (f" ({'; '.join(console_text(m) for m in step.missed[:2])})" if step.missed else "")
                  + (f"; generator saturated: {console_text(step.saturated[0])}" if step.saturated else ""),
                  file=sys.stderr, flush=True)
        return step

    return run_step


def _figures(region: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    def stat(metric: str, q: str) -> Any:
        return (region.get(metric) or {}).get(q)

    requests = region.get("requests") or 0
    return {"requests": requests, "error_rate_pct": round(100 * (region.get("failures") or 0) / requests, 2)
            if requests else None, "requests_per_s": region.get("requests_per_s"),
            "goodput_per_s": (summary.get("slo") or {}).get("goodput_per_s"),
            "ttft_p50_ms": stat("ttft_ms", "p50"), "ttft_p99_ms": stat("ttft_ms", "p99"),
            "tpot_p50_ms": stat("tpot_ms", "p50"), "e2e_p99_ms": stat("e2e_ms", "p99")}


def format_sweep(doc: dict[str, Any]) -> str:
    lines = [f"chatconf load --sweep: objectives {', '.join(doc['objectives']) or 'none'}; "
             f"{doc['step_run_time_s']:g} s per step" + (" (SIMULATED targets)" if doc.get("simulated") else "")]
    for label, result in doc["targets"].items():
        unit = result["unit"]
        lines.append(f"{console_text(label)}: " + ("capacity " + f"{result['capacity']:g} {unit}"
                                                    if result["capacity"] is not None else "no load met the objectives")
                     + f" ({console_text(result['stopped'])})")
        lines.append(f"  {'load':>8} {'verdict':>7} {'req/s':>7} {'err %':>6} {'ttft p50':>9} {'ttft p99':>9} "
                     f"{'tpot p50':>9} {'e2e p99':>8}")
        for step in sorted(result["steps"], key=lambda s: s["load"]):
            verdict = "met" if step["passed"] else "missed"
            lines.append(f"  {step['load']:>8g} {verdict:>7} {_n(step.get('requests_per_s')):>7} "
                         f"{_n(step.get('error_rate_pct')):>6} {_n(step.get('ttft_p50_ms')):>9} "
                         f"{_n(step.get('ttft_p99_ms')):>9} {_n(step.get('tpot_p50_ms')):>9} "
                         f"{_n(step.get('e2e_p99_ms')):>8}")
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60] or "target"

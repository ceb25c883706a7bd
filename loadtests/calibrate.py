"""`chatconf load --calibrate`: the harness measured against known latencies (its own bias).

The embedded mock serves a fixed schedule (role chunk at 50 ms, first token at 200 ms, one token
every 20 ms, no jitter) and records what it actually did (`/_mock/stats`: server-side TTFT and
inter-token gaps). Real Locust runs step up the number of concurrent streams; at each step the
bias is measured - server-actual per percentile, next to the generator's CPU and event-loop lag.
The generator saturates at the first step whose bias leaves the tolerance (2 ms at p50, 5 ms at
p99, research/loadtest-anchors.md s7.1). Mock and generator are pinned to different cores when the
machine has two or more.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .launcher import LocustRun, read_summary

CALIBRATION_LATENCY: dict[str, Any] = {
    "name": "calibration",
    "description": "calibration schedule: fixed latency, no jitter",
    "network_rtt_ms": 0,
    "role_chunk_ms": 50,
    "ttft_ms": 200,
    "itl_ms": 20,
    "jitter": 0.0,
    "tokens_per_event": 1,
    "usage_lag_ms": 5,
    "output_tokens": [20, 60],
    "reasoning_tokens": [10, 10],
}
DEFAULT_STEPS = (10, 50, 100, 200, 300)
TOLERANCE_MS = {"p50": 2.0, "p99": 5.0}
QUANTILES = ("p50", "p90", "p99", "mean")
WARM_UP_S = 2.0


def _diff(client: dict[str, Any], ref: dict[str, Any] | float) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for q in QUANTILES:
        c = client.get(q)
        r = ref if isinstance(ref, (int, float)) else ref.get(q)
        out[q] = None if c is None or r is None else round(float(c) - float(r), 3)
    return out


def measured_window(step_dir: Path, since: float, duration: float) -> dict[str, Any]:
    """Client-side statistics of the requests sent after the warm-up (`since`, wall clock)."""
    from conformance.jsonutil import loads

    from .aggregate import Collector

    samples = [loads(line) for line in (step_dir / "samples.jsonl").read_bytes().splitlines() if line]
    return Collector().region_summary([s for s in samples if s["t"] >= since], max(duration, 1e-9))


def step_result(
    users: int,
    summary: dict[str, Any],
    server: dict[str, Any],
    injected: dict[str, Any],
    region: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Bias of one step: client metric minus the mock's own record (and minus the injected value)."""
    region = region or next(iter(summary["regions"].values()))
    bias = {
        "ttft_ms": _diff(region["ttft_ms"], server.get("server_ttft_ms") or {}),
        "itl_ms": _diff(region["itl_ms"], server.get("server_itl_ms") or {}),
    }
    vs_injected = {
        "ttft_ms": _diff(region["ttft_ms"], injected["network_rtt_ms"] + injected["ttft_ms"]),
        "first_event_ms": _diff(region["first_event_ms"], injected["network_rtt_ms"] + injected["role_chunk_ms"]),
        "itl_ms": _diff(region["itl_ms"], injected["itl_ms"]),
        "tpot_ms": _diff(region["tpot_ms"], injected["itl_ms"] / injected["tokens_per_event"]),
    }
    within = all(b.get(q) is not None and abs(b[q]) <= tol for b in bias.values() for q, tol in TOLERANCE_MS.items())
    gen = summary.get("generator") or {}
    cpu = [v.get("mean") for v in (gen.get("cpu_percent_by_worker") or {}).values() if v.get("mean") is not None]
    lag = gen.get("loop_lag_ms") or {}
    return {
        "users": users,
        "requests": region["requests"],
        "failures": region["failures"],
        "bias_ms": bias,
        "vs_injected_ms": vs_injected,
        "server_ttft_ms": server.get("server_ttft_ms"),
        "server_itl_ms": server.get("server_itl_ms"),
        "server_schedule_late_ms": server.get("schedule_late_ms"),
        "loop_lag_p99_ms": lag.get("p99"),
        "cpu_percent": round(max(cpu), 1) if cpu else None,
        "within_tolerance": within and region["failures"] == 0,
    }


def _after_warm_up(mock: Any, run: LocustRun) -> float:
    """Wait for the first request, let the opening burst pass, reset the mock's record: the start
    of the measured window (wall clock). Both sides then describe the same steady-state streams."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.procs and run.procs[0].poll() is None:
        if mock.stats().get("requests", 0) > 0:
            break
        time.sleep(0.05)
    time.sleep(WARM_UP_S)
    mock.reset_stats()
    return time.time()


def warm_up_mock(base_url: str, *, profile: str, model: str, requests: int = 3) -> None:
    """A few streams before measuring, so the mock's first-request costs do not land in step 1."""
    from conformance.profiles import load_profile

    from .client import StreamClient
    from .workload import Workload

    work = Workload(load_profile(profile).model(model), mix={"short": 1})
    client = StreamClient(base_url, "chatconf-calibration")
    try:
        for _ in range(requests):
            client.post_stream("/chat/completions", work.next().body)
    finally:
        client.close()


def pin_plan() -> tuple[set[int] | None, set[int] | None]:
    """(mock cores, generator cores): split the machine when it has at least two cores."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(cores) < 2:
        return None, None
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def calibrate(
    *,
    steps: tuple[int, ...] = DEFAULT_STEPS,
    seconds: float = 4.0,
    work_dir: Path,
    profile: str = "dashscope",
    model: str = "qwen-plus",
    latency: dict[str, Any] | None = None,
    progress: Any = None,
    stop_when_saturated: bool = True,
) -> dict[str, Any]:
    """Run the steps; returns {"steps": [...], "saturation_streams", "per_metric", ...}."""
    from conformance.mock import MockConfig, MockServer

    injected = dict(latency or CALIBRATION_LATENCY)
    mock_cpu, gen_cpu = pin_plan()
    results: list[dict[str, Any]] = []
    summaries: dict[int, Path] = {}
    mock = MockServer(MockConfig(profile=profile, latency=injected))
    base_url = mock.start()
    try:
        proc = getattr(mock, "_proc", None)
        if mock_cpu and proc is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, mock_cpu)
        warm_up_mock(base_url, profile=profile, model=model)
        for users in steps:
            step_dir = work_dir / f"step-{users}"
            step_dir.mkdir(parents=True, exist_ok=True)
            mock.reset_stats()
            run = LocustRun(
                custom=[
                    "--chatconf-targets",
                    f"calibration={base_url}",
                    "--chatconf-simulated",
                    "1",
                    "--chatconf-mix",
                    "short=1",
                    "--chatconf-quiet",
                    "1",
                    "--chatconf-model",
                    model,
                    "--chatconf-profile",
                    profile,
                    "--chatconf-report-dir",
                    str(step_dir),
                ],
                users=users,
                spawn_rate=float(users),
                run_time=seconds + WARM_UP_S,
                workers=0,
                log_path=step_dir / "locust.log",
                quiet=True,
                cpu=gen_cpu,
            )
            try:
                run.start()
                since = _after_warm_up(mock, run)
                run.wait()
            finally:
                run.stop()
            summary = read_summary(step_dir)
            if summary is None:
                raise RuntimeError(f"calibration step {users}: Locust wrote no report (see {step_dir}/locust.log)")
            window = measured_window(step_dir, since, seconds)
            result = step_result(users, summary, mock.stats(), injected, window)
            results.append(result)
            summaries[users] = step_dir
            if progress is not None:
                progress(format_step(result))
            if stop_when_saturated and not result["within_tolerance"] and len(results) > 1:
                break
    finally:
        mock.stop()
    passing = [r["users"] for r in results if r["within_tolerance"]]
    saturation = max(passing) if passing else None
    reference = next((r for r in results if r["users"] == saturation), results[-1])
    failing = next((r["users"] for r in results if not r["within_tolerance"]), None)
    per_metric = {f"{k} (vs server-actual)": v for k, v in reference["bias_ms"].items()}
    per_metric.update({f"{k} (vs injected)": v for k, v in reference["vs_injected_ms"].items()})
    return {
        "note": (
            "Bias = harness measurement - the mock's own record of the same streams (ms), per "
            f"percentile. Injected: role chunk {injected['role_chunk_ms']:g} ms, first token "
            f"{injected['network_rtt_ms'] + injected['ttft_ms']:g} ms, {injected['itl_ms']:g} ms between "
            f"tokens, no jitter. Tolerance {TOLERANCE_MS['p50']:g} ms at p50, {TOLERANCE_MS['p99']:g} ms "
            "at p99; one Locust process; mock and generator pinned to separate cores when possible."
        ),
        "injected": injected,
        "tolerance_ms": TOLERANCE_MS,
        "steps": results,
        "saturation_streams": saturation,
        "first_failing_streams": failing,
        "reference_streams": reference["users"],
        "per_metric": per_metric,
        "reference_dir": str(summaries[reference["users"]]),
        "pinned": {"mock": sorted(mock_cpu) if mock_cpu else None, "generator": sorted(gen_cpu) if gen_cpu else None},
    }


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


def format_step(r: dict[str, Any]) -> str:
    b = r["bias_ms"]
    return (
        f"  {r['users']:4d} streams: {r['requests']:5d} req ({r['failures']} failed), TTFT bias p50 "
        f"{_signed(b['ttft_ms']['p50'])} p99 {_signed(b['ttft_ms']['p99'])} ms, ITL bias p50 "
        f"{_signed(b['itl_ms']['p50'])} p99 {_signed(b['itl_ms']['p99'])} ms, loop lag p99 "
        f"{r['loop_lag_p99_ms']} ms, CPU {r['cpu_percent']}% "
        f"{'ok' if r['within_tolerance'] else 'OUT OF TOLERANCE'}"
    )


def format_calibration(cal: dict[str, Any]) -> str:
    lines = ["chatconf load --calibrate (SIMULATED target: the embedded mock with a fixed schedule)"]
    lines += [format_step(r) for r in cal["steps"]]
    sat = cal.get("saturation_streams")
    lines.append(
        f"generator within tolerance up to {sat} concurrent streams per worker process"
        if sat is not None
        else "generator out of tolerance at every step"
    )
    lines.append(f"bias at {cal['reference_streams']} streams (ms):")
    for metric, qs in cal["per_metric"].items():
        lines.append(f"  {metric:36s} " + "  ".join(f"{q} {_signed(qs[q])}" for q in QUANTILES))
    return "\n".join(lines)


def run_calibration(args: Any, *, profile: Any, model: str, run_time: float) -> int:
    """CLI entry (`chatconf load --calibrate`): print the table, write the reports."""
    from .report_files import write_reports

    steps = tuple(s for s in DEFAULT_STEPS if s <= max(args.users, 1) * 30) or DEFAULT_STEPS
    seconds = max(4.0, run_time / len(steps))
    work = Path(tempfile.mkdtemp(prefix="chatconf-calibrate-"))
    try:
        if not args.quiet:
            print(f"calibrating: {len(steps)} steps of {seconds:.0f} s against the embedded mock", file=sys.stderr)
        cal = calibrate(
            steps=steps,
            seconds=seconds,
            work_dir=work,
            profile=args.profile or "dashscope",
            model=model,
            progress=None if args.quiet else (lambda line: print(line, file=sys.stderr)),
        )
        print(format_calibration(cal))
        ref = Path(cal["reference_dir"])
        summary = read_summary(ref)
        if args.report_dir and summary is not None:
            samples = []
            with contextlib.suppress(OSError):
                from conformance.jsonutil import loads

                samples = [loads(line) for line in (ref / "samples.jsonl").read_bytes().splitlines() if line]
            out = write_reports(args.report_dir, summary, samples, calibration=cal)
            print(f"reports: {out}/summary.json, samples.jsonl, report.html", file=sys.stderr)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""How accurate is `chatconf load`, and how much load does one Locust worker process drive?

Three measurements against the embedded mock with a known schedule (role chunk 50 ms, first token
200 ms, 20 ms between tokens, no jitter), the mock and the load generator pinned to separate cores:

1. bias (measured - the mock's own record) at p50/p99 for TTFT and ITL at 100 concurrent streams
   (targets: within 2 ms at p50, 5 ms at p99);
2. the highest concurrency one worker process drives before the bias leaves that tolerance
   (target: >= 300 streams), stepping 50, 100, 200, 300, 400, 500;
3. one mock stream scored by our rules and by vLLM `bench serve`'s and GuideLLM's rules
   (research/loadtest-anchors.md section 4): TTFT and TPOT side by side.

    .venv/bin/python benchmarks/bench_load.py [--seconds 6] [--steps 50,100,200,300,400] [--json OUT]

Not run in CI. The machine's other work shares the cores: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conformance.mock import MockConfig, MockServer  # noqa: E402
from loadtests.calibrate import CALIBRATION_LATENCY, TOLERANCE_MS, calibrate, format_step  # noqa: E402
from loadtests.client import StreamClient  # noqa: E402
from loadtests.metrics import NS_PER_MS, classify_chunk, stream_metrics  # noqa: E402

ONE_STREAM_LATENCY = {
    "name": "anchors",
    "network_rtt_ms": 0,
    "role_chunk_ms": 0,
    "ttft_ms": 300,
    "itl_ms": 20,
    "jitter": 0.0,
    "tokens_per_event": 3,
    "usage_lag_ms": 50,
    "output_tokens": [64, 64],
}


def other_tool_rules(ex) -> dict[str, float | None]:
    """The same stream scored by other tools' anchoring rules (re-implemented, not run)."""
    t0 = ex.t_send_ns
    choice_events = [ev for ev in ex.events if not ev.is_done and isinstance(ev.json, dict) and ev.json.get("choices")]
    token_events = [ev for ev in ex.events if not ev.is_done and classify_chunk(ev.json)[0]]
    usage = next(
        (ev.json["usage"] for ev in ex.events if not ev.is_done and isinstance(ev.json, dict) and ev.json.get("usage")),
        {},
    )
    n = usage.get("completion_tokens")
    end_ns = next((ev.t_ns for ev in ex.events if ev.is_done), ex.t_end_ns)

    def ms(t: int) -> float:
        return (t - t0) / NS_PER_MS

    out: dict[str, float | None] = {}
    # vLLM bench serve (as read): TTFT at the first chunk with non-empty choices (the role chunk),
    # latency at the last choices chunk, TPOT = (latency - TTFT) / (N - 1)
    v_ttft = ms(choice_events[0].t_ns)
    v_lat = ms(choice_events[-1].t_ns)
    out["vllm_ttft_ms"] = v_ttft
    out["vllm_tpot_ms"] = (v_lat - v_ttft) / (n - 1) if n and n > 1 else None
    # GuideLLM: TTFT at the first token iteration; ITL = (last - first) / (N - 1);
    # TPOT = (last token iteration - start) / N
    g_first, g_last = ms(token_events[0].t_ns), ms(token_events[-1].t_ns)
    out["guidellm_ttft_ms"] = g_first
    out["guidellm_itl_ms"] = (g_last - g_first) / (n - 1) if n and n > 1 else None
    out["guidellm_tpot_ms"] = g_last / n if n else None
    # fw-ai: latency_per_token = (E2E to done - TTFT) / N
    out["fwai_latency_per_token_ms"] = (ms(end_ns) - g_first) / n if n else None
    return out


def one_stream_comparison(runs: int = 5) -> dict[str, float | None]:
    rows: list[dict[str, float | None]] = []
    with MockServer(MockConfig(latency=ONE_STREAM_LATENCY)) as base_url:
        client = StreamClient(base_url, "bench")
        try:
            for _ in range(runs):
                ex = client.post_stream(
                    "/chat/completions",
                    {
                        "model": "qwen-plus",
                        "stream": True,
                        "stream_options": {"include_usage": True},
                        "max_tokens": 64,
                        "messages": [{"role": "user", "content": "hello"}],
                    },
                )
                m = stream_metrics(ex)
                row = {
                    "chatconf_ttft_ms": m.ttft_ms,
                    "chatconf_first_event_ms": m.first_event_ms,
                    "chatconf_tpot_ms": m.tpot_ms,
                    "chatconf_itl_p50_ms": sorted(m.itl_ms)[len(m.itl_ms) // 2],
                    "completion_tokens": m.completion_tokens,
                }
                row.update(other_tool_rules(ex))
                rows.append(row)
        finally:
            client.close()
    keys = rows[0].keys()
    return {
        k: sorted(r[k] for r in rows if r[k] is not None)[len(rows) // 2]
        if any(r[k] is not None for r in rows)
        else None
        for k in keys
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per step (after warm-up)")
    ap.add_argument("--steps", default="50,100,200,300,400,500")
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args()
    steps = tuple(int(s) for s in opts.steps.split(","))
    results: dict[str, object] = {"injected": CALIBRATION_LATENCY, "tolerance_ms": TOLERANCE_MS}

    print(
        "1) one stream, scored by each tool's rules (injected: first token 300 ms, 20 ms/event, "
        "3 tokens per event, 64 tokens, usage 50 ms after the last token)"
    )
    cmp = one_stream_comparison()
    for k, v in cmp.items():
        print(f"   {k:30s} {v if v is None else round(v, 2)}")
    results["one_stream"] = cmp

    print(f"2) bias vs the mock's record, stepping concurrency {steps} ({opts.seconds:g} s each)")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as work:
        cal = calibrate(
            steps=steps, seconds=opts.seconds, work_dir=Path(work), progress=print, stop_when_saturated=False
        )
    at100 = next((s for s in cal["steps"] if s["users"] == 100), None)
    if at100:
        b = at100["bias_ms"]
        print(
            f"   at 100 streams: TTFT bias p50 {b['ttft_ms']['p50']:+.2f} p99 {b['ttft_ms']['p99']:+.2f} ms; "
            f"ITL bias p50 {b['itl_ms']['p50']:+.2f} p99 {b['itl_ms']['p99']:+.2f} ms "
            f"(target {TOLERANCE_MS['p50']:g} / {TOLERANCE_MS['p99']:g} ms)"
        )
    print(
        f"   highest concurrency within tolerance: {cal['saturation_streams']} streams (target >= 300); "
        f"pinned: {cal['pinned']}"
    )
    results["steps"] = cal["steps"]
    results["saturation_streams"] = cal["saturation_streams"]
    for s in cal["steps"]:
        print(format_step(s))
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

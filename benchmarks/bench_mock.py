"""Mock server speed, measured side by side with a minimal hand-written Starlette SSE endpoint.

    .venv/bin/python benchmarks/bench_mock.py [--quick]

Server processes are pinned to CPU 0, the client (raw asyncio sockets on uvloop, in this process)
to CPU 1, so the server's single core is what is measured. Reports:
1. SSE events/s with zero injected latency, 100 concurrent streams, mock vs baseline (ratio);
2. concurrent streams sustained (all open at once, every event delivered), mock vs baseline;
3. with injected latency at 500 concurrent streams: server-side TTFT / inter-token gaps vs the
   configured profile, and how late writes were against their absolute deadlines (p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from conformance.mock import MockConfig, MockServer

TOKENS = 200
BENCH_LATENCY = {"name": "bench-zero", "output_tokens": [TOKENS, TOKENS], "tokens_per_event": 1}
BODY = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": "Who are you?"}],
                   "stream": True}).encode()

BASELINE = textwrap.dedent('''
    import json, socket, sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    TOKENS = int(sys.argv[1])
    CHUNK = ('{"choices":[{"delta":{"content":" word"},"finish_reason":null,"index":0,"logprobs":null}],'
             '"object":"chat.completion.chunk","usage":null,"created":1700000000,"system_fingerprint":null,'
             '"model":"qwen-plus","id":"chatcmpl-00000000-0000-0000-0000-000000000000"}')

    async def chat(request):
        body = await request.json()
        async def events():
            for _ in range(TOKENS + 2):
                yield ("data: " + CHUNK + "\\n\\n").encode()
            yield b"data: [DONE]\\n\\n"
        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/compatible-mode/v1/chat/completions", chat, methods=["POST"])])
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(4096)
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096)).run(sockets=[sock])
''')


def pin(pid: int, cpu: int) -> bool:
    try:
        if (os.cpu_count() or 1) > cpu:
            os.sched_setaffinity(pid, {cpu})
            return True
    except (AttributeError, OSError):
        pass
    return False


async def one_stream(port: int, path: str) -> tuple[int, float, bool]:
    """(events, seconds, completed) for one streamed request over a fresh connection."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                 b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    events, carry, done = 0, b"", False
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            joined = carry + data
            events += joined.count(b"data: ") - carry.count(b"data: ")
            done = done or b"[DONE]" in joined
            carry = joined[-8:]
    finally:
        writer.close()
    return events, time.perf_counter() - t0, done


async def closed_loop(port: int, path: str, concurrency: int, seconds: float) -> dict[str, float]:
    stop = time.perf_counter() + seconds
    totals = {"events": 0, "streams": 0, "failed": 0}

    async def worker() -> None:
        while time.perf_counter() < stop:
            try:
                n, _, ok = await one_stream(port, path)
            except OSError:
                totals["failed"] += 1
                continue
            totals["events"] += n
            totals["streams"] += 1
            totals["failed"] += 0 if ok else 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"events_per_s": totals["events"] / elapsed, "streams_per_s": totals["streams"] / elapsed,
            "failed": totals["failed"]}


async def keepalive_streams(port: int, path: str, stop: float) -> int:
    """Streams one after another over one kept-alive connection until `stop` (as a Locust user of
    `chatconf load` or an SDK client does); returns how many completed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
               b"Content-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    count = 0
    try:
        while time.perf_counter() < stop:
            writer.write(request)
            tail = b""
            while not tail.endswith(b"\r\n0\r\n\r\n"):   # the chunked body's last chunk
                data = await reader.read(65536)
                if not data:
                    return count
                tail = (tail + data)[-16:]
            count += 1
    finally:
        writer.close()
    return count


async def ramped(port: int, path: str, concurrency: int, seconds: float, *, keep_alive: bool,
                 ramp_s: float = 1.0) -> int:
    """Closed loop at `concurrency` streams, users started evenly over `ramp_s` (as a load test does)."""
    stop = time.perf_counter() + seconds
    count = 0

    async def user(delay: float) -> None:
        nonlocal count
        await asyncio.sleep(delay)
        if keep_alive:
            done = await keepalive_streams(port, path, stop)
            count += done
            return
        while time.perf_counter() < stop:
            await one_stream(port, path)
            count += 1

    await asyncio.gather(*(user(ramp_s * i / concurrency) for i in range(concurrency)))
    return count


async def all_at_once(port: int, path: str, concurrency: int) -> dict[str, float]:
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one_stream(port, path) for _ in range(concurrency)), return_exceptions=True)
    elapsed = time.perf_counter() - t0
    good = [r for r in results if isinstance(r, tuple) and r[2] and r[0] >= TOKENS]
    return {"completed": len(good), "of": concurrency, "seconds": elapsed,
            "events_per_s": sum(r[0] for r in good) / elapsed}


def start_baseline() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", BASELINE, str(TOKENS)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    pin(proc.pid, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/compatible-mode/v1/chat/completions", content=BODY, timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--only-latency", action="store_true", help="run section 3 only (schedule accuracy)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 8.0
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    pinned = pin(0, 1)
    path = "/compatible-mode/v1/chat/completions"
    print(f"cpus: {os.cpu_count()}, client pinned to cpu 1: {pinned}; servers pinned to cpu 0; "
          f"{TOKENS} content events per stream (~250 B each)")

    if not args.only_latency:
        speed_sections(path, seconds)
    latency_section(path, seconds)
    return 0


def speed_sections(path: str, seconds: float) -> None:
    """Sections 1 and 2: zero-latency throughput and concurrency, mock vs baseline."""
    results: dict[str, dict[str, dict[str, float]]] = {"mock": {}, "baseline": {}}
    mock = MockServer(MockConfig(latency=BENCH_LATENCY))
    mock.start()
    assert mock._proc is not None
    pin(mock._proc.pid, 0)
    base, bport = start_baseline()
    try:
        for name, port in (("mock", mock.port), ("baseline", bport)):
            assert port is not None
            asyncio.run(closed_loop(port, path, 20, 1.0))   # warm up
            results[name]["throughput"] = asyncio.run(closed_loop(port, path, 100, seconds))
            for c in (1000, 2000):
                results[name][f"concurrent_{c}"] = asyncio.run(all_at_once(port, path, c))
    finally:
        mock.stop()
        base.terminate()
        base.wait(5)
        if base.stdout:
            base.stdout.close()

    m, b = results["mock"], results["baseline"]
    print("\n1. zero latency, 100 concurrent streams, closed loop")
    for name, r in results.items():
        t = r["throughput"]
        print(f"   {name:<9} {t['events_per_s']:>10,.0f} events/s  {t['streams_per_s']:>7,.1f} streams/s  "
              f"failed {t['failed']:.0f}")
    print(f"   ratio mock/baseline events/s: {m['throughput']['events_per_s'] / b['throughput']['events_per_s']:.2f}")
    print("\n2. streams opened all at once (every event of every stream delivered)")
    for c in (1000, 2000):
        for name, r in results.items():
            x = r[f"concurrent_{c}"]
            print(f"   {name:<9} {x['completed']:.0f}/{x['of']:.0f} completed in {x['seconds']:.2f} s "
                  f"({x['events_per_s']:,.0f} events/s)")


def latency_section(path: str, seconds: float) -> None:
    """Section 3: server-side schedule accuracy with injected latency at 500 concurrent streams."""
    warmup = 2.0
    print("\n3. injected latency, 500 concurrent streams, users ramped over 1 s, closed loop")
    print("   (server-side actual vs configured; lateness = |write time - scheduled deadline|, in ms;")
    print(f"    steady = after a {warmup:g} s warm-up, as load tools measure; whole = from the first request)")
    cases = [("singapore", "singapore"),
             ("itl 50 ms", {"name": "bench-50", "ttft_ms": 200, "itl_ms": 50, "jitter": 0.2, "role_chunk_ms": 50,
                            "tokens_per_event": 3, "output_tokens": [90, 90]})]
    for label, lat in cases:
        for keep_alive in (True, False):
            timed = MockServer(MockConfig(latency=lat))
            timed.start()
            assert timed._proc is not None and timed.port is not None
            pin(timed._proc.pid, 0)
            try:
                streams, whole, steady = asyncio.run(measured(timed, path, seconds + 4, warmup, keep_alive))
            finally:
                timed.stop()
            conf = steady["configured"]
            ttft, itl, late = steady["server_ttft_ms"], steady["server_itl_ms"], steady["schedule_late_ms"]
            wl = whole["schedule_late_ms"]
            conn = "keep-alive users" if keep_alive else "new connection per stream"
            print(f"   [{label}, {conn}] configured ttft {conf['expected_server_ttft_ms']:g} ms, itl "
                  f"{conf['itl_ms']:g} ms, jitter +/-{conf['jitter'] * 100:.0f}%; {streams} streams, "
                  f"{late['count']:,} steady token events ({late['count'] / (seconds + 4 - warmup):,.0f}/s)")
            print(f"      server ttft mean {ttft['mean']:.2f} ms (configured mean "
                  f"{conf['expected_server_ttft_ms']:g}), itl mean {itl['mean']:.2f} ms "
                  f"(configured {conf['itl_ms']:g})")
            print(f"      lateness steady p50 {late['p50']:.3f}  p90 {late['p90']:.3f}  p99 {late['p99']:.3f}  "
                  f"max {late['max']:.3f};  whole run p99 <= {wl['p99']:.3f}  max {wl['max']:.3f}")


async def measured(mock: MockServer, path: str, seconds: float, warmup: float,
                   keep_alive: bool) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Run the ramped load; (streams, stats from the first request, stats after the warm-up)."""
    assert mock.port is not None
    load = asyncio.ensure_future(ramped(mock.port, path, 500, seconds, keep_alive=keep_alive))
    await asyncio.sleep(warmup)
    early = await asyncio.to_thread(mock.stats)
    await asyncio.to_thread(mock.reset_stats)
    streams = await load
    steady = await asyncio.to_thread(mock.stats)
    return streams, merged_lateness(early, steady), steady


def merged_lateness(early: dict[str, Any], steady: dict[str, Any]) -> dict[str, Any]:
    """Whole-run lateness percentiles are not derivable from two summaries; report the worse of the two
    phases' p99 and max, which bounds the whole run's from above."""
    a, b = early["schedule_late_ms"], steady["schedule_late_ms"]
    return {"schedule_late_ms": {"p99": max(a["p99"], b["p99"]), "max": max(a["max"], b["max"])}}


if __name__ == "__main__":
    sys.exit(main())

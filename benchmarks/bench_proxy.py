"""`chatconf proxy`'s added latency per SSE event, side by side with a direct connection, in one run.

    .venv/bin/python benchmarks/bench_proxy.py [--streams 100 --events 60 --gap-ms 25 --rounds 2] [--record]

One process (pinned to CPU 0, uvloop) runs both the upstream and the client: sse_upstream.Upstream, a raw
asyncio HTTP server that answers every POST with an event stream of `--events` realistic chat chunks
`--gap-ms` apart, stamping each chunk with `perf_counter_ns()` taken right before its write; and `--streams` concurrent
raw-socket clients that note when each chunk arrives. Stream starts are spread over one gap, as real
users' are. The proxy (`chatconf proxy`, a subprocess pinned to CPU 1) sits in between for the proxied
rounds. Direct and proxied rounds alternate; per event, latency = arrival (the kernel's receive stamp on the
client's socket; --read-time: when the client read it) - write. The proxy's added
latency is the difference of the two distributions at p50 and p99 (events cannot be paired across
rounds). The proxy validates every stream as it does for users (`--record` also writes the recording).

Every run prints the CPU time the hypervisor stole from CPU 0 and the proxy's CPU during the rounds
(/proc/stat "steal"). On this machine the slow minutes (p99 of 2-12 ms for everything, the do-nothing
relay too) are minutes when the host's other guests take 5-20% of our CPUs; a run with 20 ms or more
stolen says CONTAMINATED and measures the neighbours, not the proxy.

`--before TREE` runs a second proxy from another checkout (a git worktree of an older commit) in the
same run: rounds go direct, proxy, before, direct, ... so a noisy minute on the machine lands on both
alike, and each gets its own table (the run-to-run spread of p99 on this machine is larger than most
changes it is used to judge).

`--floor` puts a do-nothing relay in the proxy's place instead (same CPU, same uvloop): an asyncio
protocol that writes every byte it reads to the other side at once, with no HTTP parsing, checking
or recording. What it adds is the cost of one more Python process hop on this machine, the floor
under anything `chatconf proxy` can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mock import pin
from sse_upstream import RUNNING, STAMP, Upstream

from conformance.stats import percentile
from loadtests.client import enable_rx_timestamps, recv_stamped

PATH = b"/v1/chat/completions"
BODY = (b'{"model":"qwen-plus","messages":[{"role":"user","content":"Who are you?"}],"stream":true,'
        b'"stream_options":{"include_usage":true}}')


# -- the client: arrival time of every stamped event ----------------------------------------------------

READ_TIME = False
"""--read-time: stamp arrivals when the client's loop reads them (the client shares CPU 0 with the
upstream, so its own delays add noise to both rounds), not when the kernel received the bytes."""


async def read_stamped(sock: socket.socket) -> tuple[bytes, int]:
    """Whatever the socket has, and its arrival time: the kernel's receive stamp (loadtests.client's
    SO_TIMESTAMPNS reading, on the perf_counter_ns clock), or the read time where there is none."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            if READ_TIME:
                return sock.recv(65536), time.perf_counter_ns()
            return recv_stamped(sock, 65536)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())


async def one_stream(port: int, path: bytes, delay: float, latencies: list[tuple[int, int]]) -> bool:
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    if not READ_TIME:
        enable_rx_timestamps(sock)
    await loop.sock_sendall(sock, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Authorization: Bearer sk-bench-key-000\r\nContent-Type: application/json\r\n"
                            b"Connection: close\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
    carry, done = b"", False
    try:
        while True:
            data, now = await read_stamped(sock)
            if not data:
                break
            carry += data
            cut = carry.rfind(b"\n\n")
            if cut < 0:
                continue
            for stamp, index in STAMP.findall(carry, 0, cut):
                latencies.append((int(index), now - int(stamp)))
            done = done or b"[DONE]" in carry[:cut + 2]
            carry = carry[cut + 2:]
            if done:
                break
    finally:
        sock.close()
    return done


async def round_of(port: int, path: bytes, streams: int, gap_s: float) -> tuple[list[tuple[int, int]], int]:
    """(event index, latency ns) of every event of `streams` concurrent streams, and how many completed."""
    latencies: list[tuple[int, int]] = []
    rng = random.Random(1)
    results = await asyncio.gather(*(one_stream(port, path, rng.random() * gap_s, latencies)
                                     for _ in range(streams)))
    return latencies, sum(results)


# -- the floor: a relay that does nothing but copy bytes --------------------------------------------------

class _Relay(asyncio.Protocol):
    """One side of a relayed connection: what it reads is written to `peer` at once."""

    def __init__(self, peer: asyncio.Transport | None = None):
        self.peer = peer
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.early.append(data)
        else:
            self.peer.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()


class _RelayClient(_Relay):
    """The client side: once accepted, it connects to the upstream and relays to it."""

    upstream_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        task = asyncio.ensure_future(self.connect())
        RUNNING.add(task)
        task.add_done_callback(RUNNING.discard)

    async def connect(self) -> None:
        _, upstream = await asyncio.get_running_loop().create_connection(
            lambda: _Relay(self.transport), "127.0.0.1", self.upstream_port)
        self.peer = upstream.transport
        for data in self.early:
            upstream.transport.write(data)


async def floor_relay(upstream_port: int) -> None:
    _RelayClient.upstream_port = upstream_port
    server = await asyncio.get_running_loop().create_server(_RelayClient, "127.0.0.1", 0, backlog=4096)
    print(f"floor relay: listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def start_proxy(upstream_port: int, record: str | None, cpu: int,
                floor: bool = False, tree: Path | None = None) -> tuple[subprocess.Popen[str], int]:
    """The proxy (or the floor relay) as a subprocess pinned to `cpu`; `tree`: run that checkout's
    chatconf (-P and PYTHONPATH, so neither the cwd nor the installed package is used instead)."""
    extra = ["--record", record] if record else []
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    isolate = ["-P"] if tree else []
    command = [__file__, "--floor-relay", str(upstream_port)] if floor else [
        *isolate, *profile, "-m", "conformance.cli", "proxy", "--port", "0",
        "--upstream", f"http://127.0.0.1:{upstream_port}", *extra]
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())} if tree else None
    proc = subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    pin(proc.pid, cpu)
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        raise SystemExit(f"proxy did not start: {line!r}")
    return proc, int(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


STEAL_LIMIT_S = 0.015
"""Steal is counted in clock ticks (10 ms here): two ticks or more during the rounds flags the run."""


def stolen_s(cpu: int) -> float:
    """CPU time the hypervisor gave to other guests while `cpu` had work (Linux /proc/stat, "steal"): a
    run during which this grows measures the host's neighbours, not the proxy; 0 where unknown."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{cpu} "):
                return int(line.split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return 0.0


def preemptions(pid: int) -> int:
    """Times the process was switched out while it still wanted the CPU (Linux /proc): another
    process on its core ran instead, whatever the proxy had in hand waited."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def ms(ns: float) -> str:
    return f"{ns / 1e6:7.3f}"


@dataclass
class Measured:
    """One proxy's rounds: per-event latencies, completed streams, its CPU time and preemptions."""
    name: str
    proc: subprocess.Popen[str]
    port: int
    latencies: list[tuple[int, int]] = field(default_factory=list)
    complete: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    preempted: int = 0

    async def round(self, streams: int, gap_s: float) -> None:
        cpu0, wall0, pre0 = cpu_seconds(self.proc.pid), time.perf_counter(), preemptions(self.proc.pid)
        lat, ok = await round_of(self.port, PATH, streams, gap_s)
        self.cpu_s += cpu_seconds(self.proc.pid) - cpu0
        self.preempted += preemptions(self.proc.pid) - pre0
        self.wall_s += time.perf_counter() - wall0
        self.latencies += lat
        self.complete += ok


async def bench(args: argparse.Namespace) -> int:
    Upstream.events, Upstream.gap_s = args.events, args.gap_ms / 1000
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", 0, backlog=4096)
    upstream_port = server.sockets[0].getsockname()[1]
    here = Path(__file__).resolve().parent.parent
    trees: list[tuple[str, Path | None]] = [("proxied", here if args.before else None)]
    if args.before:
        trees.append(("before", Path(args.before)))
    with tempfile.TemporaryDirectory() as tmp:
        proxies: list[Measured] = []
        try:
            for name, tree in trees:
                record = os.path.join(tmp, f"{name}.jsonl") if args.record else None
                proxies.append(Measured(name, *start_proxy(upstream_port, record, args.proxy_cpu, args.floor, tree)))
            for proxy in proxies:   # warm-up every path
                await round_of(proxy.port, PATH, min(10, args.streams), Upstream.gap_s)
            await round_of(upstream_port, PATH, min(10, args.streams), Upstream.gap_s)
            direct: list[tuple[int, int]] = []
            complete_direct = 0
            steal0 = [stolen_s(0), stolen_s(args.proxy_cpu)]
            for _ in range(args.rounds):
                lat, ok = await round_of(upstream_port, PATH, args.streams, Upstream.gap_s)
                direct += lat
                complete_direct += ok
                for proxy in proxies:
                    await proxy.round(args.streams, Upstream.gap_s)
            stolen = [stolen_s(0) - steal0[0], stolen_s(args.proxy_cpu) - steal0[1]]
        finally:
            for proxy in proxies:
                if args.floor:
                    proxy.proc.kill()   # nothing to write out (and a shell's background job ignores SIGINT)
                else:
                    proxy.proc.send_signal(signal.SIGINT)
                proxy.proc.wait(10)
        lines = {p.name: len(Path(tmp, f"{p.name}.jsonl").read_text().splitlines()) for p in proxies} \
            if args.record else {}
    server.close()
    expected = args.rounds * args.streams
    print(f"{args.streams} concurrent streams x {args.events} events, {args.gap_ms:g} ms apart "
          f"({args.streams / Upstream.gap_s:,.0f} events/s), {args.rounds} round(s) each"
          + (f"; proxy recording ({', '.join(f'{n}: {c} lines' for n, c in lines.items())})" if lines else "")
          + ("; FLOOR: a do-nothing relay in the proxy's place" if args.floor else "")
          + (f"; before: {args.before}" if args.before else "")
          + ("; arrivals: read time" if READ_TIME else "; arrivals: kernel receive stamps"))
    print(f"completed streams: direct {complete_direct}/{expected}, "
          + ", ".join(f"{p.name} {p.complete}/{expected}" for p in proxies)
          + f"; load average {os.getloadavg()[0]:.2f}; CPU time stolen by the hypervisor during the rounds: "
          f"CPU 0 {stolen[0] * 1000:.0f} ms, CPU {args.proxy_cpu} {stolen[1] * 1000:.0f} ms"
          + (" (CONTAMINATED: the host's other guests took time from this run)"
             if max(stolen) >= STEAL_LIMIT_S else ""))
    for proxy in proxies:
        print(f"{proxy.name}: proxy CPU {proxy.cpu_s / proxy.wall_s:.0%} of one core, "
              f"{proxy.cpu_s / len(proxy.latencies) * 1e6:.0f} µs per event, preempted {proxy.preempted} time(s)")
    print("per-event latency (write -> arrival), ms:     p50      p90      p99    p99.9      max")
    verdicts: list[str] = []
    for label, keep in (("all events", lambda i: True), ("first event", lambda i: i == 0),
                        ("later events", lambda i: i > 0)):
        rows = {}
        for name, pairs in (("direct", direct), *((p.name, p.latencies) for p in proxies)):
            values = sorted(lat for i, lat in pairs if keep(i))
            rows[name] = [percentile(values, q) for q in (50, 90, 99, 99.9)] + [values[-1]]
            print(f"  {label:<12} {name:<8} ({len(values):>6})         " + "  ".join(ms(v) for v in rows[name]))
        for proxy in proxies:
            diff = [p - d for p, d in zip(rows[proxy.name], rows["direct"], strict=True)]
            who = "the proxy" if proxy.name == "proxied" else proxy.name
            print(f"  {label:<12} added by {who:<22}" + "  ".join(ms(v) for v in diff))
            if label == "all events":
                verdicts.append(f"{'' if who == 'the proxy' else who + ': '}{'met' if diff[2] < 1e6 else 'NOT met'} "
                                f"(p50 {diff[0] / 1e6:.3f} ms, p99 {diff[2] / 1e6:.3f} ms)")
    print("target p99 added < 1 ms: " + "; ".join(verdicts))
    return 0 if all(p.complete == expected for p in proxies) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--gap-ms", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="the proxy also writes a recording")
    parser.add_argument("--proxy-cpu", type=int, default=1, help="CPU the proxy is pinned to (client and upstream: 0)")
    parser.add_argument("--before", metavar="TREE", help="also run the proxy of this checkout, in the same rounds")
    parser.add_argument("--floor", action="store_true", help="measure a do-nothing relay instead of the proxy")
    parser.add_argument("--floor-relay", type=int, metavar="PORT", help=argparse.SUPPRESS)   # the relay child
    parser.add_argument("--read-time", action="store_true",
                        help="time arrivals when the client reads them, not with kernel receive stamps")
    args = parser.parse_args()
    global READ_TIME
    READ_TIME = args.read_time
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if args.floor_relay:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(floor_relay(args.floor_relay))
        return 0
    if args.floor and args.record:
        parser.error("--floor relays bytes only: it has no recording")
    if args.floor and args.before:
        parser.error("--floor and --before do not go together: the floor relay has no checkout")
    if args.before and not (Path(args.before) / "conformance" / "cli.py").is_file():
        parser.error(f"--before {args.before}: not a chatconf checkout (no conformance/cli.py)")
    pin(0, 0)
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())

"""`chatconf load` against GuideLLM and AIPerf, side by side in one run: each tool's own bias.

    .venv/bin/python benchmarks/bench_load_compare.py [--steps 100,300,1000] [--seconds 15] [--json OUT]
    .venv/bin/python benchmarks/bench_load_compare.py --quick        # steps 50,100, 2 s warm-up + 4 s
    .venv/bin/python benchmarks/bench_load_compare.py --https        # TLS: a self-signed certificate made
                                                                     # for the run, trusted via SSL_CERT_FILE

One independent upstream (benchmarks/sse_upstream.py, not chatconf's mock) is pinned to CPU 0. It
injects a fixed TTFT (plus a small uniform spread) and a fixed gap between one-token chunks, and
records what it actually wrote. At each concurrency step the three tools run one after the other,
closed loop with exactly N streams, each pinned with all its processes to CPU 1 and limited to one
worker process:

- chatconf: `chatconf load --users N --spawn-rate N --workers 0` (one Locust process);
- GuideLLM: `guidellm run --profile kind=concurrent,streams=N`, GUIDELLM__MAX_WORKER_PROCESSES=1;
- AIPerf: `aiperf profile --concurrency N --workers-max 1 --record-processors 1`.

Bias = the tool's percentile - the server's recorded percentile over the same requests (the method of
loadtests/calibrate.py): those started after a warm-up (default 5 s from the step's first request),
from the tool's per-request export and the server's per-stream record. Both TTFT and the per-token
gap the tool reports are compared (per chunk for chatconf and AIPerf, a per-request mean for
GuideLLM; the server's matching distribution is used).
With --aiperf-paired, AIPerf also writes its raw export and each chunk's arrival is paired with the
server's write stamp in that chunk. Tolerance: 2 ms at p50, 5 ms at p99. Client CPU is the tool's
whole process tree over the measured window. GuideLLM and AIPerf live in their own venvs
(--guidellm-bin, --aiperf-bin or GUIDELLM_BIN, AIPERF_BIN); a tool that is absent is skipped.
Everything runs offline on 127.0.0.1. Run it on a quiet machine: other work on the cores shows up as bias.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load_tools import PER_REQUEST, Sample, Tool, ToolResult, make_tokenizer, tools  # noqa: E402
from sse_upstream import percentile  # noqa: E402

TOLERANCE_MS = {"p50": 2.0, "p99": 5.0}
START_ALLOWANCE_S = 240.0   # tool start-up and shut-down on top of the measured seconds
SAMPLE_S = 0.5


# -- the upstream process ------------------------------------------------------------------------------

class Upstream:
    """benchmarks/sse_upstream.py in its own process, pinned to one CPU; its record over HTTP."""

    def __init__(self, cpu: int, ttft_ms: float, spread_ms: float, gap_ms: float, tokens: int,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sse_upstream.py"), "--cpu", str(cpu), "--ttft-ms", f"{ttft_ms:g}",
             "--ttft-spread-ms", f"{spread_ms:g}", "--gap-ms", f"{gap_ms:g}", "--tokens", str(tokens),
             *(["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else [])],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"benchmark upstream did not start: {line.strip()!r}")
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{int(line.split()[1])}"
        self._tls = ssl.create_default_context(cafile=str(tls[0])) if tls else None

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=30, context=self._tls) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- client CPU: the tool's whole process tree ---------------------------------------------------------

def tree_cpu(root: int, seen: dict[int, tuple[str, float]]) -> float:
    """CPU seconds so far of `root` and all its descendants (Locust and AIPerf start their own
    sessions, so the tree is followed by parent pid); `seen` keeps exited processes' last value."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                head, tail = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
                fields = tail.split()
                stats[int(entry)] = (int(fields[1]), head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / tick)
    tree, frontier = {root}, [root]
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    for pid in tree & stats.keys():
        seen[pid] = (stats[pid][1], stats[pid][2])
    return sum(cpu for _, cpu in seen.values())


class Sampler(threading.Thread):
    """Every SAMPLE_S: (time, tool CPU seconds, streams the server has open)."""

    def __init__(self, root: int, upstream: Upstream) -> None:
        super().__init__(daemon=True)
        self.root, self.upstream = root, upstream
        self.samples: list[tuple[float, float, int]] = []
        self.done = threading.Event()
        self.seen: dict[int, tuple[str, float]] = {}

    def run(self) -> None:
        while not self.done.wait(SAMPLE_S):
            with contextlib.suppress(OSError, ValueError):
                active = int(self.upstream.get("/_bench/stats")["active"])
                self.samples.append((time.monotonic(), tree_cpu(self.root, self.seen), active))

    def top_processes(self) -> list[tuple[str, float]]:
        """The tool's busiest processes over its whole run (name, CPU seconds)."""
        return sorted(((name, round(cpu, 2)) for name, cpu in self.seen.values()), key=lambda x: -x[1])[:6]

    def open_streams(self, since: float, until: float) -> float | None:
        """Mean number of streams the server had open between `since` and `until` (monotonic): a tool
        that cannot keep N streams going shows fewer."""
        held = [s[2] for s in self.samples if since <= s[0] <= until]
        return round(sum(held) / len(held)) if held else None

    def cpu_percent(self, since: float, until: float) -> float | None:
        """The tool's CPU between `since` and `until` (monotonic), in % of one core."""
        inside = [s for s in self.samples if since <= s[0] <= until]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
            return None
        return round(100 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1)


# -- one step of one tool ------------------------------------------------------------------------------

@dataclass
class StepResult:
    tool: str
    streams: int
    requests: int
    ttft_bias: dict[str, float | None]
    gap_bias: dict[str, float | None]
    gap_kind: str
    client_cpu: float | None
    within: bool
    server: dict[str, Any]
    paired: dict[str, Any] | None = None
    error: str | None = None
    processes: list[tuple[str, float]] | None = None
    whole_run: dict[str, Any] | None = None   # the tool's own summary over its whole run (warm-up included)
    open_streams: float | None = None


def bias(tool: dict[str, float | None], server: dict[str, Any]) -> dict[str, float | None]:
    return {q: None if tool.get(q) is None or server.get(q) is None else round(tool[q] - server[q], 3)
            for q in ("p50", "p99")}


def within_tolerance(*biases: dict[str, float | None]) -> bool:
    return all(b.get(q) is not None and abs(b[q]) <= tol for b in biases for q, tol in TOLERANCE_MS.items())


def pin_to(cpu: int) -> Any:
    def preexec() -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {cpu})
    return preexec


def window(samples: list[Sample], since_s: float) -> tuple[int, dict[str, float | None], dict[str, float | None]]:
    """(requests, TTFT p50/p99, gap p50/p99) of the tool's requests that started at or after `since_s`."""
    kept = [s for s in samples if s.start >= since_s]
    ttft = sorted(s.ttft for s in kept)
    gaps = sorted(g for s in kept for g in s.gaps)
    return (len(kept), {"p50": percentile(ttft, 50), "p99": percentile(ttft, 99)},
            {"p50": percentile(gaps, 50), "p99": percentile(gaps, 99)})


def self_signed(work: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command (for --https)."""
    cert, key = work / "upstream-cert.pem", work / "upstream-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def run_tool(tool: Tool, upstream: Upstream, streams: int, seconds: float, warmup: float, work: Path,
             tokenizer: Path | None, cpu: int, cafile: Path | None = None) -> StepResult:
    """Reset the server's record, run the tool once (bounded: warm-up + measured seconds), and compare the
    requests it started after the warm-up with the server's record of the requests that arrived then."""
    out = work / f"{tool.name}-{streams}"
    out.mkdir(parents=True, exist_ok=True)
    upstream.get("/_bench/reset")
    cpu0, t0, wall0 = upstream.get("/_bench/stats")["cpu_s"], time.monotonic(), time.time()
    with (out / "tool.log").open("wb") as log:
        proc = subprocess.Popen(tool.command(upstream.url, streams, warmup + seconds, out, tokenizer), cwd=out,
                                env={**tool.env(tokenizer), **({"SSL_CERT_FILE": str(cafile)} if cafile else {})},
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=pin_to(cpu))
        sampler = Sampler(proc.pid, upstream)
        sampler.start()
        error = None
        try:
            proc.wait(timeout=warmup + seconds + START_ALLOWANCE_S)
        except subprocess.TimeoutExpired:
            error = "timed out"
        finally:
            stop_group(proc)
            sampler.done.set()
            sampler.join()
    first = upstream.get("/_bench/stats")["first_wall_ns"] or 0
    since_ns = first + int(warmup * 1e9)
    first_request = t0 + max(first / 1e9 - wall0, 0.0)
    server = upstream.get(f"/_bench/stats?full=1&since={since_ns}")
    server["cpu_percent"] = round(100 * (server["cpu_s"] - cpu0) / max(time.monotonic() - t0, 1e-9), 1)
    res: ToolResult = tool.result(out)
    error = error or res.error or (None if proc.returncode == 0 else f"exit code {proc.returncode}")
    requests, ttft, gap = window(res.samples, since_ns / 1e9)
    ref_gap = server["request_gap_ms"] if res.gap_kind == PER_REQUEST else server["gap_ms"]
    tb, gb = bias(ttft, server["ttft_ms"]), bias(gap, ref_gap)
    whole = {"requests": res.requests, "ttft_ms": res.ttft, "gap_ms": res.gap}
    paired = None
    if res.paired is not None:
        n, pt, pg = window(res.paired, since_ns / 1e9)
        paired = {"requests": n, "ttft": pt, "gap": pg}
    measured = (first_request + warmup, first_request + warmup + seconds)
    return StepResult(tool.name, streams, requests, tb, gb, res.gap_kind, sampler.cpu_percent(*measured),
                      within_tolerance(tb, gb) and requests > 0 and not res.error, server, paired, error,
                      sampler.top_processes(), whole, sampler.open_streams(*measured))


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End the tool's own process group (it runs in its own session): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)   # leftovers of a finished tool (its session only)


# -- output --------------------------------------------------------------------------------------------

def fmt(x: float | None, signed: bool = True) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def format_row(r: StepResult) -> str:
    verdict = "ok" if r.within else ("OUT" + (f" ({r.error})" if r.error else ""))
    cpu = "-" if r.client_cpu is None else f"{r.client_cpu:.0f}%"
    held = "-" if r.open_streams is None else f"{r.open_streams:,.0f}"
    return (f"| {r.tool} | {r.streams:,} | {held} | {r.requests:,} | {fmt(r.ttft_bias['p50'])} / "
            f"{fmt(r.ttft_bias['p99'])} | "
            f"{fmt(r.gap_bias['p50'])} / {fmt(r.gap_bias['p99'])} ({r.gap_kind}) | {cpu} | {verdict} |")


def format_server(streams: int, r: StepResult) -> str:
    s = r.server
    return (f"  server during {r.tool}@{streams}: CPU {s['cpu_percent']:.0f}%, completed {s['completed']:,}, "
            f"TTFT p50/p99 {fmt(s['ttft_ms']['p50'], False)}/{fmt(s['ttft_ms']['p99'], False)} ms, gap p50/p99 "
            f"{fmt(s['gap_ms']['p50'], False)}/{fmt(s['gap_ms']['p99'], False)} ms, lateness p50/p99 "
            f"{fmt(s['late_ms']['p50'])}/{fmt(s['late_ms']['p99'])} ms\n  busiest client processes (CPU s, whole run): "
            + ", ".join(f"{name} {cpu:.1f}" for name, cpu in (r.processes or [])[:4]))


def highest_within(results: list[StepResult], tool: str) -> int | None:
    ok = [r.streams for r in results if r.tool == tool and r.within]
    return max(ok) if ok else None


# -- main ----------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="100,300,1000", help="concurrent streams per step (comma-separated)")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured seconds of each tool at each step")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds after a step's first request before the measured window (requests started "
                         "earlier count for neither the tool nor the server)")
    ap.add_argument("--quick", action="store_true", help="steps 50,100, 4 s each")
    ap.add_argument("--tools", default="chatconf,guidellm,aiperf")
    ap.add_argument("--ttft-ms", type=float, default=200.0)
    ap.add_argument("--ttft-spread-ms", type=float, default=20.0)
    ap.add_argument("--gap-ms", type=float, default=40.0)
    ap.add_argument("--tokens", type=int, default=64, help="output tokens per answer (one per chunk)")
    ap.add_argument("--chatconf-bin", default=str(Path(sys.executable).parent / "chatconf"))
    ap.add_argument("--guidellm-bin", default=os.environ.get("GUIDELLM_BIN", "/work/venvs/guidellm/bin/guidellm"))
    ap.add_argument("--aiperf-bin", default=os.environ.get("AIPERF_BIN", "/work/venvs/aiperf/bin/aiperf"))
    ap.add_argument("--aiperf-paired", action="store_true",
                    help="AIPerf writes its raw export; pair each chunk's arrival with the server's stamp")
    ap.add_argument("--https", action="store_true",
                    help="the upstream serves https with a self-signed certificate the tools trust (SSL_CERT_FILE)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--keep", help="keep every tool's reports and logs in this directory")
    ap.add_argument("--json", help="also write the results here")
    return ap.parse_args(argv)


def parse_steps(text: str) -> list[int] | None:
    """Positive stream counts from "100,300,1000"; None (after one line on stderr) when it is not that."""
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        print(f"error: --steps wants positive integers separated by commas, got {text!r}", file=sys.stderr)
        return None
    return steps


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C, and SIGTERM too, unwind through the `finally`s that stop the tool and the server (a job
    # started in the background by a shell ignores SIGINT unless the handler is set here)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(argv)
    steps = [50, 100] if args.quick else parse_steps(args.steps)
    if steps is None:
        return 2
    seconds = 4.0 if args.quick else args.seconds
    warmup = 2.0 if args.quick else args.warmup
    if warmup < 0:
        print("error: --warmup must be >= 0", file=sys.stderr)
        return 2
    if seconds <= 0 or args.tokens < 2 or args.gap_ms <= 0:
        print("error: --seconds and --gap-ms must be > 0 and --tokens >= 2", file=sys.stderr)
        return 2
    cpus = os.sched_getaffinity(0)
    if {args.server_cpu, args.client_cpu} - cpus or args.server_cpu == args.client_cpu:
        print(f"error: --server-cpu and --client-cpu must be two different CPUs of {sorted(cpus)}", file=sys.stderr)
        return 2
    wanted = {t.strip() for t in args.tools.split(",") if t.strip()}
    chosen = [t for t in tools(Path(args.chatconf_bin), Path(args.guidellm_bin), Path(args.aiperf_bin))
              if t.name in wanted]
    if not chosen:
        print("error: --tools names none of chatconf, guidellm, aiperf", file=sys.stderr)
        return 2
    present = []
    for tool in chosen:
        if tool.available():
            present.append(tool)
        else:
            print(f"skipping {tool.name}: {tool.why_absent} ({tool.executable})")
    for tool in present:
        if tool.name == "aiperf" and args.aiperf_paired:
            tool.export_level = "raw"  # type: ignore[attr-defined]
    os.sched_setaffinity(0, {args.server_cpu})   # this process mostly waits; keep it off the client's core
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-load-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, steps, seconds, warmup, present, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def build_tokenizer(present: list[Tool], work: Path) -> Path | None:
    """The tiny offline tokenizer, built by whichever tool venv is present (None if only chatconf runs)."""
    for tool in present:
        if tool.name in ("guidellm", "aiperf") and tool.executable:
            return make_tokenizer(tool.executable.parent / "python", work)
    return None


def run(args: argparse.Namespace, steps: list[int], seconds: float, warmup: float, present: list[Tool],
        work: Path) -> int:
    tokenizer = build_tokenizer(present, work)
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    scheme = ", https" if args.https else ""
    print(f"{started}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; server CPU {args.server_cpu}, "
          f"clients CPU {args.client_cpu}; injected TTFT {args.ttft_ms:g} ms (+ uniform 0-{args.ttft_spread_ms:g}), "
          f"gap {args.gap_ms:g} ms, {args.tokens} tokens one per chunk{scheme}; per tool and step "
          f"{warmup:g} s warm-up + {seconds:g} s measured")
    tls = self_signed(work) if args.https else None
    upstream = Upstream(args.server_cpu, args.ttft_ms, args.ttft_spread_ms, args.gap_ms, args.tokens, tls)
    results: list[StepResult] = []
    try:
        for streams in steps:
            for tool in present:
                r = run_tool(tool, upstream, streams, seconds, warmup, work, tokenizer, args.client_cpu,
                             tls[0] if tls else None)
                results.append(r)
                print(format_row(r), flush=True)
                print(format_server(streams, r), flush=True)
                if r.paired:
                    p = r.paired
                    print(f"  aiperf paired with the server's stamps: TTFT bias p50/p99 {fmt(p['ttft']['p50'])}/"
                          f"{fmt(p['ttft']['p99'])} ms, gap bias p50/p99 {fmt(p['gap']['p50'])}/"
                          f"{fmt(p['gap']['p99'])} ms ({p['requests']:,} requests)", flush=True)
    finally:
        upstream.stop()
    print_table(results, present)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "started": started, "https": args.https, "load_average": load, "seconds": seconds, "warmup": warmup,
            "steps": steps,
            "injected": {"ttft_ms": args.ttft_ms, "ttft_spread_ms": args.ttft_spread_ms, "gap_ms": args.gap_ms,
                         "tokens": args.tokens},
            "tolerance_ms": TOLERANCE_MS, "results": [asdict(r) for r in results],
            "highest_within": {t.name: highest_within(results, t.name) for t in present}}, indent=2))
    return 0


def print_table(results: list[StepResult], present: list[Tool]) -> None:
    print("\n| tool | streams | open (mean) | requests | TTFT bias p50 / p99 (ms) | gap bias p50 / p99 (ms) | "
          "client CPU | within 2 / 5 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: (r.streams, [t.name for t in present].index(r.tool))):
        print(format_row(r))
    print()
    for tool in present:
        best = highest_within(results, tool.name)
        print(f"{tool.name}: highest concurrency within tolerance: {best if best is not None else 'none'}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)

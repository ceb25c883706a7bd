"""`chatconf validate` speed and memory on a large SSE capture, side by side with a plain baseline.

Generates a realistic DashScope stream (role chunk, content chunks of ~250 bytes, finish chunk,
usage chunk, [DONE]) into a temp dir, then in one run measures:

- baseline: split the file into lines, `json.loads` each data payload and run
  `jsonschema.Draft202012Validator(chunk_schema).iter_errors` on it (the same chunk schema,
  `build_schema("chunk", profile)`), i.e. what a straightforward validator does;
- chatconf: `read_path` + `check_exchange` (decode + parse + schema + every stream rule), exactly
  what `chatconf validate` runs, in a fresh subprocess per file size so peak RSS is its own.

The baseline runs on the first `--baseline-chunks` chunks only (its per-chunk cost is constant and
the full file would take minutes); pass `--baseline-chunks 0` to run it on the whole file.

    .venv/bin/python benchmarks/bench_validate.py [--chunks 200000] [--small 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CID = "chatcmpl-3bb05cf5-cd81-9fbc-a5f0-b8d67a025022"
WORDS = ("Qwen", " is", " a", " large", " language", " model", " from", " Alibaba", " Cloud", ",", " 你好", " 👋")


def _chunk(choice: dict | None, usage: dict | None = None) -> str:
    return json.dumps({"choices": [choice] if choice else [], "object": "chat.completion.chunk", "usage": usage,
                       "created": 1715931028, "system_fingerprint": None, "model": "qwen-plus", "id": CID},
                      ensure_ascii=False, separators=(",", ":"))


def generate(path: Path, chunks: int) -> int:
    """Write a `chunks`-event stream (content chunks padded to ~250 bytes); returns the byte size."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("data: " + _chunk({"delta": {"content": "", "role": "assistant"}, "index": 0, "logprobs": None,
                                     "finish_reason": None}) + "\n\n")
        content = max(chunks - 3, 1)
        for i in range(content):
            text = WORDS[i % len(WORDS)] + " " * (i % 7)
            fh.write("data: " + _chunk({"finish_reason": None, "delta": {"content": text}, "index": 0,
                                         "logprobs": None}) + "\n\n")
        fh.write("data: " + _chunk({"finish_reason": "stop", "delta": {"content": ""}, "index": 0,
                                     "logprobs": None}) + "\n\n")
        fh.write("data: " + _chunk(None, {"prompt_tokens": 22, "completion_tokens": content,
                                          "total_tokens": 22 + content,
                                          "prompt_tokens_details": {"cached_tokens": 0}}) + "\n\n")
        fh.write("data: [DONE]\n\n")
    return path.stat().st_size


def plain_loop(path: Path, validator, limit: int) -> tuple[int, int]:
    """What a team writes by hand: lines, json.loads, iter_errors. (chunks, errors); limit 0 = all."""
    count = errors = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh.read().splitlines() if not limit else fh:
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                continue
            errors += sum(1 for _ in validator.iter_errors(json.loads(payload)))
            count += 1
            if limit and count >= limit:
                break
    return count, errors


def baseline(path: Path, limit: int) -> dict:
    """The plain loop with chatconf's chunk schema, timed in this process (limit 0 = whole file)."""
    import jsonschema

    from conformance.profiles import load_profile
    from conformance.schemas import build_schema

    validator = jsonschema.Draft202012Validator(build_schema("chunk", load_profile("dashscope")))
    start = time.perf_counter()
    count, errors = plain_loop(path, validator, limit)
    wall = time.perf_counter() - start
    return {"chunks": count, "wall_s": wall, "errors": errors}


_CHILD = r"""
import json, sys, time
def PEAK_MB():  # this process's own peak RSS (ru_maxrss would include a parent's: kept over execve)
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")) / 1024
from conformance.captures import read_path
from conformance.profiles import load_profile
from conformance.rules import check_exchange
profile = load_profile("dashscope")
start = time.perf_counter()
events = violations = 0
for ex in read_path(sys.argv[1]):
    checked = iter(ex.events)
    def counted():
        global events
        for ev in checked:
            events += 1
            yield ev
    ex.events = counted()
    violations += sum(1 for _ in check_exchange(ex, profile))
wall = time.perf_counter() - start
print(json.dumps({"chunks": events - 1, "wall_s": wall, "violations": violations,
                  "rss_mb": PEAK_MB()}))
"""

_STAGES = r"""
import json, sys, time
from conformance.captures import read_path
from conformance.profiles import load_profile
from conformance.rules import check_exchange
from conformance.schemas import schema_set
profile = load_profile("dashscope")
valid = schema_set("dashscope").chunk.is_valid
out = {}
def stage(name, fn):
    start = time.perf_counter(); fn(); out[name] = time.perf_counter() - start
def decode():
    for ex in read_path(sys.argv[1]):
        for ev in ex.events: pass
def parse():
    for ex in read_path(sys.argv[1]):
        for ev in ex.events: ev.json
def schema():
    for ex in read_path(sys.argv[1]):
        for ev in ex.events:
            if not ev.is_done: valid(ev.json)
def full():
    for ex in read_path(sys.argv[1]):
        for v in check_exchange(ex, profile): pass
for name, fn in (("decode", decode), ("parse", parse), ("schema", schema), ("rules", full)):
    stage(name, fn)
print(json.dumps(out))
"""

_IDLE = r"""
import json
def PEAK_MB():  # this process's own peak RSS (ru_maxrss would include a parent's: kept over execve)
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")) / 1024
import conformance.captures, conformance.rules, conformance.profiles
conformance.profiles.load_profile("dashscope")
from conformance.schemas import schema_set
schema_set("dashscope")
print(json.dumps({"rss_mb": PEAK_MB()}))
"""


def chatconf(path: Path) -> dict:
    """End-to-end `chatconf validate` path in a fresh interpreter (peak RSS is its own)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                         check=True, timeout=900)
    return json.loads(out.stdout)


def stages(path: Path) -> dict:
    """Cumulative time of each stage: decode, + parse, + schema is_valid, + all rules."""
    out = subprocess.run([sys.executable, "-c", _STAGES, str(path)], capture_output=True, text=True,
                         check=True, timeout=900)
    return json.loads(out.stdout)


def idle_rss() -> float:
    out = subprocess.run([sys.executable, "-c", _IDLE], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)["rss_mb"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=200_000, help="chunks in the large file (default 200000)")
    ap.add_argument("--small", type=int, default=50_000, help="chunks in the small file (default 50000)")
    ap.add_argument("--baseline-chunks", type=int, default=20_000,
                    help="baseline on the first N chunks (0: whole large file)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats, best time kept (default 3)")
    ap.add_argument("--breakdown", action="store_true", help="also time each stage (decode, parse, schema, rules)")
    ap.add_argument("--target", type=float, default=30.0, help="ratio to report against (default 30x)")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    with tempfile.TemporaryDirectory(prefix="chatconf-bench-") as tmp:
        small, large = Path(tmp) / "small.sse", Path(tmp) / "large.sse"
        sizes = {small: generate(small, args.small), large: generate(large, args.chunks)}
        # Interleaved repeats, best of each: a busy machine slows whichever run it hits, not one side.
        bases, smalls, larges = [], [], []
        for _ in range(args.repeat):
            bases.append(baseline(large, args.baseline_chunks))
            smalls.append(chatconf(small))
            larges.append(chatconf(large))
        base = min(bases, key=lambda r: r["wall_s"])
        runs = [(small, min(smalls, key=lambda r: r["wall_s"])), (large, min(larges, key=lambda r: r["wall_s"]))]
        for path, pool in ((small, smalls), (large, larges)):
            runs[0 if path is small else 1][1]["rss_mb"] = max(r["rss_mb"] for r in pool)
        idle = idle_rss()
        split = stages(small) if args.breakdown else None
    base_rate = base["chunks"] / base["wall_s"]
    print(f"validate benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, chunk ~{sizes[large] // args.chunks} bytes on the wire, "
          f"best of {args.repeat} interleaved runs")
    print(f"{'path':<44} {'file':>9} {'chunks':>8} {'wall s':>8} {'chunks/s':>10} {'vs base':>8} {'peak RSS':>9}")
    print(f"{'baseline: lines+json.loads+jsonschema':<44} {sizes[large] / 2**20:>7.1f}MB {base['chunks']:>8} "
          f"{base['wall_s']:>8.2f} {base_rate:>10,.0f} {'1.0x':>8} {'-':>9}")
    for path, run in runs:
        rate = run["chunks"] / run["wall_s"]
        print(f"{'chatconf: read_path + check_exchange':<44} {sizes[path] / 2**20:>7.1f}MB {run['chunks']:>8} "
              f"{run['wall_s']:>8.2f} {rate:>10,.0f} {rate / base_rate:>7.1f}x {run['rss_mb']:>7.1f}MB")
    ratio = (runs[1][1]["chunks"] / runs[1][1]["wall_s"]) / base_rate
    growth = runs[1][1]["rss_mb"] - runs[0][1]["rss_mb"]
    print(f"interpreter + imports + compiled schemas alone: {idle:.1f} MB peak RSS")
    print(f"ratio on the large file: {ratio:.1f}x (target >= {args.target:.0f}x: "
          f"{'met' if ratio >= args.target else 'NOT met'}); peak RSS grows {growth:+.1f} MB from "
          f"{args.small} to {args.chunks} chunks; violations found: "
          f"{runs[0][1]['violations']} / {runs[1][1]['violations']} (a valid stream: expect 0)")
    if split:
        n, prev = args.small, 0.0
        parts = []
        for name in ("decode", "parse", "schema", "rules"):
            parts.append(f"{name} {(split[name] - prev) / n * 1e6:.1f}")
            prev = split[name]
        print(f"where the time goes (us/chunk, {n} chunks, each stage alone): {', '.join(parts)}; "
              f"total {split['rules'] / n * 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""HAR memory: peak RSS of reading and checking a HAR, against file size, streamed vs. whole-document.

Generates HAR files of realistic chat-completions entries (request headers and body, a streamed SSE
answer of ~40 chunks in `content.text`, timings), then in one run, per size, in a fresh subprocess each:

- whole: what chatconf did before HARs were streamed (and what `json.load` + a loop does): parse the
  whole document, then read and check each entry (`iter_har` + `check_exchange`);
- streamed: `chatconf validate`'s path (`read_path` + `check_exchange`), entries parsed one at a time.

Peak RSS comes from the child's rusage. The whole-document baseline is skipped above --whole-max-mb.

    .venv/bin/python benchmarks/bench_har.py [--sizes-mb 50,250,1000] [--whole-max-mb 300]
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

URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"


def _sse(i: int) -> str:
    cid = f"chatcmpl-{i:08d}-0000-0000-0000-000000000000"
    base = {"object": "chat.completion.chunk", "created": 1715931028, "system_fingerprint": None,
            "model": "qwen-plus", "id": cid}
    events = [{"choices": [{"delta": {"content": "", "role": "assistant"}, "index": 0, "logprobs": None,
                            "finish_reason": None}], "usage": None, **base}]
    for k in range(38):
        events.append({"choices": [{"delta": {"content": f" token{k}"}, "index": 0, "logprobs": None,
                                    "finish_reason": None}], "usage": None, **base})
    events.append({"choices": [{"delta": {"content": ""}, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                   "usage": None, **base})
    events.append({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 38, "total_tokens": 59},
                   **base})
    return "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events) + "data: [DONE]\n\n"


def _entry(i: int) -> str:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {i}"}], "stream": True,
            "stream_options": {"include_usage": True}}
    return json.dumps({
        "startedDateTime": "2026-12-03T05:00:00.000Z", "time": 812.5,
        "request": {"method": "POST", "url": URL, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Content-Type", "value": "application/json"},
                                {"name": "Authorization", "value": "Bearer sk-bench"}],
                    "postData": {"mimeType": "application/json", "text": json.dumps(body)}},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Content-Type", "value": "text/event-stream"},
                                 {"name": "x-request-id", "value": f"{i:08d}-0000-0000-0000-000000000000"}],
                     "content": {"size": 0, "mimeType": "text/event-stream", "text": _sse(i)}},
        "timings": {"send": 0.1, "wait": 310.2, "receive": 502.2}})


def generate(path: Path, megabytes: int) -> int:
    """Write a HAR of about `megabytes` MB; returns the number of entries."""
    target = megabytes * 1024 * 1024
    written = n = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": [')
        while written < target:
            text = ("," if n else "") + _entry(n)
            fh.write(text)
            written += len(text)
            n += 1
        fh.write("]}}")
    return n


CHILD = r"""
import sys, time
from pathlib import Path
from conformance.profiles import load_profile
from conformance.rules import check_exchange
mode, path = sys.argv[1], Path(sys.argv[2])
profile = load_profile("dashscope")
start = time.perf_counter()
if mode == "whole":
    from conformance.jsonutil import loads
    from conformance.captures.har_reader import iter_har
    exchanges = iter_har(loads(path.read_bytes()))
else:
    from conformance.captures import read_path
    exchanges = read_path(path)
count = violations = 0
for ex in exchanges:
    count += 1
    violations += sum(1 for _ in check_exchange(ex, profile))
print(count, violations, time.perf_counter() - start)
"""


def measure(mode: str, path: Path) -> tuple[int, float, float]:
    """(entries, seconds, peak RSS MB) of one child process."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(path)], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{mode} child failed on {path}: status {status}")
    count, _violations, seconds = out.split()
    return int(count), float(seconds), usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", default="50,250,1000")
    ap.add_argument("--whole-max-mb", type=int, default=300)
    args = ap.parse_args()
    print(f"{'HAR size':>9} {'entries':>8} | {'whole: RSS':>11} {'s':>6} | {'streamed: RSS':>14} {'s':>6} {'MB/s':>6}")
    with tempfile.TemporaryDirectory(prefix="chatconf-bench-har-") as tmp:
        for megabytes in (int(x) for x in args.sizes_mb.split(",")):
            path = Path(tmp) / f"{megabytes}mb.har"
            started = time.perf_counter()
            entries = generate(path, megabytes)
            size = path.stat().st_size / 1024 / 1024
            print(f"  (generated {size:.0f} MB in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
            whole = "-"
            if megabytes <= args.whole_max_mb:
                _, seconds, rss = measure("whole", path)
                whole = f"{rss:>8.0f} MB {seconds:>6.1f}"
            count, seconds, rss = measure("streamed", path)
            assert count == entries, (count, entries)
            rate = size / seconds
            print(f"{size:>6.0f} MB {entries:>8} | {whole:>18} | {rss:>11.0f} MB {seconds:>6.1f} {rate:>6.1f}")
            path.unlink()


if __name__ == "__main__":
    main()

"""StreamChecker throughput on a synthetic 200,000-chunk DashScope stream (F3 shape, with usage).

Reports chunks/s for: the checker alone on pre-decoded events (parse + schema + all stream rules),
decode + checker (SSEDecoder over 64 KiB reads, the validate path), and the naive baseline
(pure-Python jsonschema iter_errors per chunk, the 'measured-here' reference) on a sample.
Run: .venv/bin/python benchmarks/bench_stream_checker.py [chunks]
"""

from __future__ import annotations

import gc
import sys
import time

import jsonschema
import orjson

from conformance.profiles import load_profile
from conformance.rules import StreamChecker
from conformance.schemas import build_schema
from conformance.sse import SSEDecoder, SSEEvent

COMMON = {"object": "chat.completion.chunk", "created": 1715931028, "system_fingerprint": None,
          "model": "qwen-plus", "id": "chatcmpl-3bb05cf5cd819fbca5f0b8d67a025022"}


def chunk(delta: dict, finish: str | None = None, **extra: object) -> bytes:
    body = {"choices": [{"delta": delta, "finish_reason": finish, "index": 0, "logprobs": None}],
            "usage": None, **COMMON, **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def stream_bytes(n: int) -> bytes:
    parts = [chunk({"content": "", "role": "assistant"})]
    content = chunk({"content": " token"})
    parts.extend([content] * (n - 3))
    parts.append(chunk({"content": ""}, "stop"))
    usage = {"prompt_tokens": 22, "completion_tokens": n, "total_tokens": n + 22}
    parts.append(b"data: " + orjson.dumps({"choices": [], **COMMON, "usage": usage}) + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


REQUEST = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True,
           "stream_options": {"include_usage": True}}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    profile = load_profile("dashscope")
    body = stream_bytes(n)
    dec = SSEDecoder()
    events = dec.feed(body) + dec.close()
    datas = [ev.data for ev in events]
    del events
    gc.collect()
    gc.freeze()  # the 200k setup strings are not the checker's garbage: keep them out of GC passes

    def alone() -> float:
        checker = StreamChecker(profile, REQUEST)
        t0 = time.perf_counter()
        found = []
        for i, data in enumerate(datas):
            found += checker.feed(SSEEvent(data, index=i))
        found += checker.finish()
        assert not found, found[:3]
        return time.perf_counter() - t0

    t_alone = min(alone() for _ in range(3))

    parsed = [None if d.startswith("[DONE]") else orjson.loads(d) for d in datas]
    gc.freeze()

    def preparsed() -> float:
        checker = StreamChecker(profile, REQUEST)
        t0 = time.perf_counter()
        for i, (data, obj) in enumerate(zip(datas, parsed, strict=True)):
            checker.feed_data(data, i, obj)
        checker.finish()
        return time.perf_counter() - t0

    t_pre = min(preparsed() for _ in range(3))
    parsed.clear()
    found = []

    checker = StreamChecker(profile, REQUEST)
    t0 = time.perf_counter()
    dec = SSEDecoder()
    for k in range(0, len(body), 65536):
        for ev in dec.feed(body[k:k + 65536]):
            found += checker.feed(ev)
    for ev in dec.close():
        found += checker.feed(ev)
    found += checker.finish()
    t_full = time.perf_counter() - t0
    assert not found, found[:3]

    sample = min(n, 20_000)
    naive = jsonschema.Draft202012Validator(build_schema("chunk", profile))
    lines = body.split(b"\n\n")[:sample]
    t0 = time.perf_counter()
    for line in lines:
        text = line.decode()[6:]
        if text != "[DONE]":
            list(naive.iter_errors(orjson.loads(text)))
    t_naive = (time.perf_counter() - t0) * n / sample

    print(f"chunks: {n}")
    print(f"StreamChecker alone (parse+schema+rules): {n / t_alone:,.0f} chunks/s "
          f"({t_alone / n * 1e6:.2f} us/chunk)")
    print(f"schema + rules on pre-parsed chunks:     {n / t_pre:,.0f} chunks/s ({t_pre / n * 1e6:.2f} us/chunk)")
    print(f"SSEDecoder + StreamChecker:              {n / t_full:,.0f} chunks/s")
    print(f"naive jsonschema per chunk:              {n / t_naive:,.0f} chunks/s")
    print(f"ratio decode+check vs naive:             {t_naive / t_full:.1f}x")


if __name__ == "__main__":
    main()

"""A raw asyncio HTTP/1.1 upstream that streams DashScope-style chat chunks, for the benchmarks.

It is written for the benchmarks and shares no code with chatconf's mock (conformance/mock), so a
measurement of chatconf against it is not a measurement of chatconf against itself. Every content
chunk carries the `perf_counter_ns()` taken just before its write (content `" s<ns>"`, one
whitespace-separated token), so a client can pair each arrival with its write.

Two servers:

- `Upstream`: answers every POST with `events` chunks `gap_s` apart (one sleep per stream);
  bench_proxy.py runs it in its own process and event loop.
- `ScheduledUpstream`: the load-comparison server. Role chunk at once, the first token `ttft_ns`
  (plus a uniform spread) after the request arrived, then one token every gap on an absolute
  schedule (a late write does not push the next one back), then the finish chunk, the usage chunk
  (when `stream_options.include_usage`) and `data: [DONE]`. One heap drives every stream's next write,
  so 1,000 streams cost one timer, not 1,000. It records what it actually did per completed stream
  (first-token write - request arrival, each gap between token writes, lateness against the
  schedule) and answers `GET /_bench/stats[?full=1&since=<wall ns>]`, `POST /_bench/reset`,
  `GET /v1/models` and `GET /health`.

    python benchmarks/sse_upstream.py --ttft-ms 200 --gap-ms 20 --tokens 64 [--cpu 0] [--tls-cert C --tls-key K]

prints `port <n>` when listening; it serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import heapq
import itertools
import json
import os
import random
import re
import resource
import signal
import ssl
import sys
import time
from array import array
from typing import Any

from conformance import stats

CREATED = int(time.time())
ANSWER_ID = "chatcmpl-3f1a2b4c-0000-4000-8000-000000000000"
CHUNK = ('{"id":"chatcmpl-3f1a2b4c-0000-4000-8000-000000000000","object":"chat.completion.chunk","created":'
         + str(CREATED) + ',"model":"qwen-plus","system_fingerprint":null,"choices":[{"index":0,"delta":{%s},'
         '"logprobs":null,"finish_reason":%s}],"usage":null}')
RUNNING: set[asyncio.Future[None]] = set()
STAMP = re.compile(rb'"content":"t(\d+)-(\d+)"')
SERVER_STAMP = re.compile(r" s(\d+)")
RECEIVED_STAMP = re.compile(r"chatcmpl-r(\d+)")
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
HEAD_OK = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
           b"transfer-encoding: chunked\r\nx-request-id: 3f1a2b4c-0000-4000-8000-000000000000\r\n\r\n")
NS_PER_MS = 1_000_000


def sse_frame(payload: str | bytes) -> bytes:
    """One `data:` event as one HTTP chunk."""
    data = payload.encode() if isinstance(payload, str) else payload
    event = b"data: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


def json_response(status: str, body: Any) -> bytes:
    """A complete HTTP/1.1 keep-alive response with a JSON body."""
    data = json.dumps(body).encode()
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(data)).encode() + b"\r\n\r\n" + data)


def percentile(values: list[int] | array, q: float) -> float | None:
    """conformance.stats' linear percentile of already sorted values, None when there are none."""
    return stats.percentile(values, q) if values else None


def describe_ns(values: array) -> dict[str, float | int | None]:
    """p50/p90/p99/mean/max/n of nanosecond values, in ms."""
    ordered = sorted(values)
    out: dict[str, float | int | None] = {"n": len(ordered)}
    for q in (50, 90, 99):
        v = percentile(ordered, q)
        out[f"p{q}"] = None if v is None else round(v / NS_PER_MS, 4)
    out["mean"] = round(sum(ordered) / len(ordered) / NS_PER_MS, 4) if ordered else None
    out["max"] = round(ordered[-1] / NS_PER_MS, 4) if ordered else None
    return out


class RequestReader(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive request framing: head plus a Content-Length body."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            match = CONTENT_LENGTH.search(self.buf, 0, head_end + 2)
            length = int(match.group(1)) if match else 0
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            head, body = self.buf[:head_end], self.buf[head_end + 4:end]
            self.buf = self.buf[end:]
            self.request(head, body)

    def request(self, head: bytes, body: bytes) -> None:
        raise NotImplementedError


# -- bench_proxy.py's upstream: every POST gets `events` stamped chunks ---------------------------------

class Upstream(RequestReader):
    """Any POST gets a chunked text/event-stream answer of `events` chunks `gap_s` apart."""

    events = 60
    gap_s = 0.025

    def request(self, head: bytes, body: bytes) -> None:
        task = asyncio.ensure_future(self.stream())
        RUNNING.add(task)
        task.add_done_callback(RUNNING.discard)

    async def stream(self) -> None:
        write = self.transport.write
        write(HEAD_OK)
        for i in range(self.events):
            if i:
                await asyncio.sleep(self.gap_s)
            if self.transport.is_closing():
                return
            delta = '"role":"assistant","content":"t%d-%d"' if i == 0 else '"content":"t%d-%d"'
            finish = '"stop"' if i == self.events - 1 else "null"
            write(sse_frame(CHUNK % (delta % (time.perf_counter_ns(), i), finish)))
        tail = (b'data: {"id":"chatcmpl-3f1a2b4c-0000-4000-8000-000000000000","object":"chat.completion.chunk",'
                b'"created":%d,"model":"qwen-plus","system_fingerprint":null,"choices":[],"usage":'
                b'{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}\n\ndata: [DONE]\n\n'
                % (CREATED, self.events, self.events + 12))
        write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))


# -- the load-comparison upstream: scheduled tokens, recorded writes ------------------------------------

# every chunk's id carries the server's receive time (one id per stream, as the API has), so a client
# export can be paired request by request; content chunks also carry their write time
ROLE = (CHUNK % ('"role":"assistant","content":""', "null")).replace(ANSWER_ID, "chatcmpl-r%d")
TOKEN = ("data: " + CHUNK.replace(ANSWER_ID, "chatcmpl-r%%d") % ('"content":" s%d"', "null") + "\n\n").encode()
FINISH = (CHUNK % ("", '"stop"')).replace(ANSWER_ID, "chatcmpl-r%d")
DONE = sse_frame(b"[DONE]") + b"0\r\n\r\n"


def usage_frame(received: int, tokens: int) -> bytes:
    return sse_frame(f'{{"id":"chatcmpl-r{received}","object":"chat.completion.chunk",'
                     f'"created":{CREATED},"model":"qwen-plus","system_fingerprint":null,"choices":[],"usage":'
                     f'{{"prompt_tokens":12,"completion_tokens":{tokens},"total_tokens":{tokens + 12}}}}}')


class Record:
    """What the server actually did, per stream completed since the last reset (parallel arrays:
    stream i has its gaps at gaps[gap_at[i]:gap_at[i + 1]] and its lateness likewise)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.completed = 0
        self.aborted = 0
        self.first_wall_ns: int | None = None
        self.wall = array("q")           # per stream: wall-clock time the request arrived
        self.ttft = array("q")
        self.request_gaps = array("q")   # per stream: (last - first token write) / (tokens - 1)
        self.gaps, self.gap_at = array("q"), array("q", [0])
        self.late, self.late_at = array("q"), array("q", [0])

    def add(self, wall: int, received: int, writes: list[int], late: list[int]) -> None:
        self.completed += 1
        self.wall.append(wall)
        self.ttft.append(writes[0] - received)
        self.request_gaps.append((writes[-1] - writes[0]) // max(len(writes) - 1, 1))
        self.gaps.extend(b - a for a, b in itertools.pairwise(writes))
        self.gap_at.append(len(self.gaps))
        self.late.extend(late)
        self.late_at.append(len(self.late))

    def stats(self, full: bool, since_ns: int = 0) -> dict[str, Any]:
        """Counters; with `full`, the distributions of the streams that arrived at or after `since_ns`."""
        out: dict[str, Any] = {"received": self.received, "completed": self.completed, "aborted": self.aborted,
                               "active": len(Stream.live), "first_wall_ns": self.first_wall_ns,
                               "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
        if full:
            keep = [i for i, w in enumerate(self.wall) if w >= since_ns]
            gaps, late = array("q"), array("q")
            for i in keep:
                gaps.extend(self.gaps[self.gap_at[i]:self.gap_at[i + 1]])
                late.extend(self.late[self.late_at[i]:self.late_at[i + 1]])
            out.update(streams=len(keep), ttft_ms=describe_ns(array("q", (self.ttft[i] for i in keep))),
                       gap_ms=describe_ns(gaps), late_ms=describe_ns(late),
                       request_gap_ms=describe_ns(array("q", (self.request_gaps[i] for i in keep))))
        return out


RECORD = Record()


class Stream:
    """One streamed answer: its schedule and the actual write times of its tokens."""

    live: set[Stream] = set()
    __slots__ = ("due", "late", "left", "received", "tokens", "transport", "usage", "wall", "writes")

    def __init__(self, transport: asyncio.Transport, tokens: int, usage: bool, received: int, wall: int) -> None:
        self.transport = transport
        self.tokens = tokens
        self.left = tokens
        self.usage = usage
        self.received = received
        self.wall = wall
        self.due = 0
        self.writes: list[int] = []
        self.late: list[int] = []

    def __lt__(self, other: Stream) -> bool:
        return self.due < other.due

    def finish(self) -> None:
        """Record a stream whose every token was written, then close its answer."""
        self.transport.write(sse_frame(FINISH % self.received)
                             + (usage_frame(self.received, self.tokens) if self.usage else b"") + DONE)
        RECORD.add(self.wall, self.received, self.writes, self.late)


class Clock:
    """One heap of (next write, stream) for every stream; one pending timer for all of them."""

    def __init__(self, gap_ns: int) -> None:
        self.gap_ns = gap_ns
        self.heap: list[tuple[int, int, Stream]] = []
        self.handle: asyncio.Handle | None = None
        self.wake_at = 0
        self.seq = 0

    def add(self, stream: Stream, due: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, stream))
        if self.handle is None or due < self.wake_at:
            self.arm()

    def arm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if not self.heap:
            return
        due = self.heap[0][0]
        wait = (due - time.perf_counter_ns()) / 1e9
        self.wake_at = due
        # event-loop timers tick in whole milliseconds: wake at most 1 ms late, never spin
        self.handle = asyncio.get_running_loop().call_later(max(wait, 0.0005), self.tick)

    def tick(self) -> None:
        self.handle = None
        heap, gap = self.heap, self.gap_ns
        pop, push = heapq.heappop, heapq.heappush
        now = time.perf_counter_ns()
        horizon = now + 200_000   # writes due within 0.2 ms go out now
        while heap and heap[0][0] <= horizon:
            due, seq, s = pop(heap)
            if s.transport.is_closing():
                Stream.live.discard(s)
                RECORD.aborted += 1
                continue
            now = time.perf_counter_ns()
            event = TOKEN % (s.received, now)
            s.transport.write(b"%x\r\n%s\r\n" % (len(event), event))
            s.writes.append(now)
            s.late.append(now - due)
            s.left -= 1
            if s.left:
                push(heap, (due + gap, seq, s))
            else:
                Stream.live.discard(s)
                s.finish()
        self.arm()


class ScheduledUpstream(RequestReader):
    """Chat completions on a fixed schedule, plus the routes the load tools probe."""

    tokens = 64
    ttft_ns = 200 * NS_PER_MS
    ttft_spread_ns = 20 * NS_PER_MS
    clock: Clock

    def request(self, head: bytes, body: bytes) -> None:
        received = time.perf_counter_ns()
        line = head.split(b"\r\n", 1)[0].split(b" ")
        method, path = line[0], line[1] if len(line) > 1 else b"/"
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self.chat(body, received)
        elif path.startswith(b"/_bench/"):
            if path.startswith(b"/_bench/reset"):
                RECORD.reset()
                gc.collect()
            since = re.search(rb"since=(\d+)", path)
            self.transport.write(json_response("200 OK", RECORD.stats(b"full=1" in path,
                                                                      int(since.group(1)) if since else 0)))
        elif path.endswith(b"/models"):
            self.transport.write(json_response("200 OK", {"object": "list", "data": [
                {"id": "qwen-plus", "object": "model", "created": CREATED, "owned_by": "bench"}]}))
        elif method == b"GET" and path.split(b"?")[0] in (b"/health", b"/v1/health", b"/"):
            self.transport.write(json_response("200 OK", {"status": "ok"}))
        else:
            self.transport.write(json_response("404 Not Found", {"error": {"message": "not found"}}))

    def chat(self, body: bytes, received: int) -> None:
        try:
            req = json.loads(body)
        except ValueError:
            self.transport.write(json_response("400 Bad Request", {"error": {"message": "body is not JSON"}}))
            return
        limit = req.get("max_completion_tokens") or req.get("max_tokens") or self.tokens
        tokens = max(1, min(int(limit), self.tokens))
        if not req.get("stream"):
            self.transport.write(json_response("200 OK", {
                "id": "chatcmpl-1", "object": "chat.completion", "created": CREATED, "model": "qwen-plus",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": " s0" * tokens},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": tokens + 12}}))
            return
        RECORD.received += 1
        wall = time.time_ns()
        if RECORD.first_wall_ns is None:
            RECORD.first_wall_ns = wall
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self.transport.write(HEAD_OK + sse_frame(ROLE % received))
        stream = Stream(self.transport, tokens, usage, received, wall)
        Stream.live.add(stream)
        self.clock.add(stream, received + self.ttft_ns + int(random.random() * self.ttft_spread_ns))


def pin(cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {cpu})


async def serve(args: argparse.Namespace) -> None:
    ScheduledUpstream.tokens = args.tokens
    ScheduledUpstream.ttft_ns = int(args.ttft_ms * NS_PER_MS)
    ScheduledUpstream.ttft_spread_ns = int(args.ttft_spread_ms * NS_PER_MS)
    ScheduledUpstream.clock = Clock(int(args.gap_ms * NS_PER_MS))
    loop = asyncio.get_running_loop()
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = await loop.create_server(ScheduledUpstream, "127.0.0.1", args.port, backlog=8192, ssl=tls)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=200.0)
    parser.add_argument("--ttft-spread-ms", type=float, default=20.0,
                        help="TTFT is uniform in [ttft, ttft + spread): streams that start together drift apart, "
                             "so the server writes a steady flow instead of one burst per gap")
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument("--tls-cert", help="serve https with this certificate (PEM); needs --tls-key")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tokens < 1 or args.gap_ms <= 0 or args.ttft_ms < 0 or args.ttft_spread_ms < 0:
        print("error: --tokens must be >= 1, --gap-ms > 0, --ttft-ms and --ttft-spread-ms >= 0", file=sys.stderr)
        return 2
    pin(args.cpu)
    with contextlib.suppress(ImportError):
        import uvloop
        uvloop.install()
    gc.freeze()
    gc.disable()   # streams make no reference cycles; /_bench/reset collects between steps
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

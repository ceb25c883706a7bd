"""A deliberately broken HTTP server on a loopback port, for the run's robustness tests.

Real sockets, raw HTTP/1.1, one behaviour per instance: `garbage` (200 with bytes that are neither
JSON nor SSE), `hang` (reads the request, never answers), `close` (starts an SSE stream, then drops
the connection), `huge` (a 10 MB JSON body), and:

- `bad-strings`: every answer is a 400 error envelope whose message holds a lone surrogate (the JSON
  escape `\\ud800`), NUL and C0/C1 controls; every second one also raw bytes that are not UTF-8;
- `sse-bad-utf8`: a well-formed stream whose second event holds a byte that is not UTF-8;
- `echo-key`: echoes the key it received (from `Authorization: Bearer <key>`) in the error message,
  `param`, `code` and the `model` field, raw, JSON-escaped, percent-encoded and in base64;
- `trickle-headers`: reads the request, then sends the response headers one byte per second;
- `drop-second`: answers the first request on a connection (keep-alive, no `Connection: close`),
  then reads the second one and closes the connection without a byte of answer;
- `flood`: answers every request with a stream of `flood_bytes` (default 16 MB) of tiny valid
  chunks (about 130 bytes each) and `[DONE]`: a stream too big to keep whole. One chunk after the
  first 512 KiB has another id (`FLOOD_ODD_ID`), a stream.same-id violation deep inside the flood.
- `saturating`: a valid stream after `base_ms` plus a wait that grows with the requests in flight
  beyond `free_slots` (`slot_ms` per extra request): a server with a capacity, for the load sweep;
- `ratelimit`: every answer is a 429 with `Retry-After: 1` (after `ok_first` valid streams);
- `echo-key-500`: a 500 whose JSON error body and `x-echo-key` header echo the Authorization header.

For the proxy: `ok` (a small valid chat.completion), `reset` (reads the request, then resets the
connection: RST, no byte of answer), `not-http` (answers bytes that are no HTTP status line) and
`paced` (a valid stream: one event, a 300 ms pause, the rest; `sent_at` holds the `time.monotonic()`
of each event's write). `mode` is read per request, so a test may switch it between requests.

With `preflight_ok`, the first request gets a small valid chat.completion instead, so chatconf's
preflight passes and the misbehaviour reaches the suite.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import threading
import time
from urllib.parse import quote

HUGE_BYTES = 10 * 1024 * 1024
FLOOD_BYTES = 16 * 1024 * 1024
FLOOD_CHUNK = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
               b'"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n')
FLOOD_ODD_ID = "odd-one-out"
VALID = (b'{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"qwen-plus","choices":[{"index":0,'
         b'"message":{"role":"assistant","content":"H"},"finish_reason":"length"}],'
         b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')

_PACED_CHUNK = ('data: {"id":"chatcmpl-p","object":"chat.completion.chunk","created":' + str(int(time.time()))
                + ',"model":"qwen-plus","choices":[{"index":0,"delta":{%s},"finish_reason":%s}]}\n\n')
PACED_EVENTS = [(_PACED_CHUNK % ('"role":"assistant","content":""', "null")).encode(),
                (_PACED_CHUNK % ('"content":"Hi"', "null")).encode(),
                (_PACED_CHUNK % ("", '"stop"')).encode(), b"data: [DONE]\n\n"]


_CHUNK = ('data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":%d,"model":"qwen-plus",'
          '"choices":%s,"usage":%s}\n\n')


def valid_stream() -> bytes:
    """A small conforming chat stream (role chunk, two tokens, usage, [DONE]) created now."""
    now = int(time.time())
    deltas = (('{"role":"assistant","content":""}', "null"), ('{"content":"Hi"}', "null"),
              ('{"content":" there"}', '"stop"'))
    events = [_CHUNK % (now, f'[{{"index":0,"delta":{d},"finish_reason":{f}}}]', "null") for d, f in deltas]
    events.append(_CHUNK % (now, "[]", '{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}'))
    return ("".join(events) + "data: [DONE]\n\n").encode()


_BAD_CHUNK = (b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,'
              b'"model":"qwen-plus","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}\n\n')


class HostileServer:
    SSE_BAD_UTF8 = (_BAD_CHUNK % (b"hello", b"null") + _BAD_CHUNK % (b"caf\xe9 \xff", b"null")
                    + _BAD_CHUNK % (b"", b'"stop"') + b"data: [DONE]\n\n")
    """The `sse-bad-utf8` body: event 1 holds bytes that are not UTF-8."""

    def __init__(self, mode: str, *, preflight_ok: bool = False, flood_bytes: int = FLOOD_BYTES, ok_first: int = 0,
                 free_slots: int = 3, slot_ms: float = 40.0, base_ms: float = 0.0):
        self.requests = 0
        self.in_flight = 0
        self.free_slots = free_slots
        self.slot_ms = slot_ms
        self.base_ms = base_ms
        self.flood_bytes = flood_bytes
        self.ok_first = ok_first
        self._preflight_ok = preflight_ok
        self.mode = mode
        self.port = 0
        self.answered = 0
        self.sent_at: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        """Close the listener and end every connection handler (a hanging one sleeps for an hour),
        so none is left pending when the loop goes away."""
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        handlers = [t for t in asyncio.all_tasks() if t is not current]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, bytes]:
        """(the key from `Authorization: Bearer <key>`, the body)."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        key = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            if line.lower().startswith(b"authorization:"):
                key = line.split(b":", 1)[1].strip().decode("latin-1").removeprefix("Bearer ")
        body = await reader.readexactly(length) if length else b""
        return key, body

    async def _flood(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        block = FLOOD_CHUNK * (65536 // len(FLOOD_CHUNK))
        odd = FLOOD_CHUNK.replace(b'"id":"c"', b'"id":"%s"' % FLOOD_ODD_ID.encode())
        sent = 0
        while sent < self.flood_bytes:
            payload = odd + block if sent == 8 * len(block) else block
            writer.write(b"%x\r\n" % len(payload) + payload + b"\r\n")
            sent += len(payload)
            await writer.drain()
        done = (b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
                b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        writer.write(b"%x\r\n" % len(done) + done + b"\r\n0\r\n\r\n")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            served = 0
            while True:
                key, _ = await self._read_request(reader)
                served += 1
                self.requests += 1
                if (self._preflight_ok and self.requests == 1) or self.mode == "ok":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(VALID) + VALID)
                elif self.mode in ("ratelimit", "echo-key-500"):
                    if self.requests - self._preflight_ok <= self.ok_first:
                        stream = valid_stream()
                        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                     b"content-length: %d\r\n\r\n" % len(stream) + stream)
                    elif self.mode == "ratelimit":
                        body = b'{"error":{"message":"slow down","type":"rate_limit","code":"Throttling"}}'
                        writer.write(b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                                     b"retry-after: 1\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                    else:
                        body = json.dumps({"error": {"message": f"upstream saw Authorization: Bearer {key}",
                                                     "type": "server_error", "code": f"auth={key}"}}).encode()
                        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                                     b"x-echo-key: %s\r\nx-request-id: %s\r\ncontent-length: %d\r\n\r\n"
                                     % (key.encode(), key.encode(), len(body)) + body)
                elif self.mode == "saturating":
                    self.in_flight += 1
                    try:
                        extra = max(0, self.in_flight - self.free_slots) * self.slot_ms
                        await asyncio.sleep((self.base_ms + extra) / 1000)
                        stream = valid_stream()
                        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                     b"content-length: %d\r\n\r\n" % len(stream) + stream)
                        await writer.drain()
                    finally:
                        self.in_flight -= 1
                elif self.mode == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                elif self.mode == "not-http":
                    writer.write(b"\x00\xffSSH-2.0-garbage \x1b[31m not http at all\r\n\r\n" * 4)
                    await writer.drain()
                    return
                elif self.mode == "paced":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
                    for i, event in enumerate(PACED_EVENTS):
                        if i == 1:
                            await asyncio.sleep(0.3)
                        writer.write(b"%x\r\n" % len(event) + event + b"\r\n")
                        await writer.drain()
                        self.sent_at.append(time.monotonic())
                    writer.write(b"0\r\n\r\n")
                elif self.mode == "hang":
                    await asyncio.sleep(3600)
                elif self.mode == "garbage":
                    body = b"\x00\xff<html>not json\x1b[31m" * 20
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
                elif self.mode == "huge":
                    body = b'{"id":"chatcmpl-x","object":"chat.completion","pad":"' + b"x" * HUGE_BYTES + b'"}'
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
                elif self.mode == "bad-strings":
                    self.answered += 1
                    body = (b'{"error":{"message":"bad \\ud800 surrogate, NUL \\u0000, controls \\u001b\\u0085%s",'
                            b'"type":"invalid_request_error","param":null,"code":"bad\\udfff"}}'
                            % (b" and raw bytes \xff\xfe\xc3(" if self.answered % 2 == 0 else b""))
                    writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
                elif self.mode == "sse-bad-utf8":
                    body = self.SSE_BAD_UTF8
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
                elif self.mode == "echo-key":
                    b64 = base64.b64encode(key.encode()).decode()
                    b64_bearer = base64.b64encode(f"Bearer {key}".encode()).decode()
                    message = (f"invalid api key {key} (Bearer {key}; {quote(key, safe='')}; "
                               f"{json.dumps(key)}; {b64}; {b64_bearer})")
                    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                 "param": key, "code": f"key:{key}"},
                                       "model": key}).encode()
                    writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
                                 b"x-echo-key: %s\r\ncontent-length: %d\r\n\r\n" % (key.encode(), len(body))
                                 + body)
                elif self.mode == "trickle-headers":
                    for byte in b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}":
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(1)
                elif self.mode == "drop-second":
                    if served > 1:
                        return  # the request was read; close without answering (finally closes)
                    body = (b'{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"qwen-plus",'
                            b'"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},'
                            b'"finish_reason":"stop"}],'
                            b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
                elif self.mode == "flood":
                    await self._flood(writer)
                elif self.mode == "close":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
                    event = b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,' \
                            b'"model":"qwen-plus","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
                    writer.write(b"%x\r\n" % len(event) + event + b"\r\n")
                    await writer.drain()
                    writer.transport.abort()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

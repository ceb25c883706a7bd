"""The proxy's own HTTP/1.1 front (conformance/proxy/server.py), in-process over real loopback sockets:
framing and keep-alive as clients rely on them, bad requests, and, with ProxyApp behind it, a client
that leaves mid-stream and a client too slow to read. Each test takes milliseconds to a second."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from conformance.profiles import load_profile
from conformance.proxy import server as front
from conformance.proxy.app import ProxyApp, ProxyConfig
from conformance.proxy.server import FrontServer, Request, ResponseWriter


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


async def _echo(request: Request, writer: ResponseWriter) -> None:
    """Answers what it was asked, as JSON; /stream answers three chunks without a length."""
    if request.path == "/stream":
        writer.start(200, [(b"content-type", b"text/event-stream")])
        for part in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
            writer.write(part)
            await asyncio.sleep(0)
        writer.end()
        return
    body = json.dumps({"method": request.method, "path": request.path, "raw_path": request.raw_path.decode(),
                       "query": request.query.decode(), "body": None if request.body is None else len(request.body),
                       "headers": [[n.decode(), v.decode()] for n, v in request.headers]}).encode()
    writer.answer(200, [(b"content-type", b"application/json")], body)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """Status line, headers (lower-case names) and the body, de-chunked, of one answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        return status.encode(), headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if not size:
                return status.encode(), headers, body
    return status.encode(), headers, await reader.read()


def _front(handler: Callable[[Request, ResponseWriter], Awaitable[None]],
           talk: Callable[[int], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = FrontServer(handler)
        sock = _listening()
        await server.start(sock)
        try:
            return await asyncio.wait_for(talk(sock.getsockname()[1]), 10)
        finally:
            await server.shutdown()

    return asyncio.run(main())


def test_keep_alive_chunked_and_continued_bodies_and_head_on_one_connection() -> None:
    async def talk(port: int) -> Any:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/a%20b?x=1&y=%20 HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nX-Key: V\r\n\r\nhello")
        first = await _read_answer(reader)
        writer.write(b"POST /c HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        second = await _read_answer(reader)
        writer.write(b"POST /d HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        continued = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"xyz")
        third = await _read_answer(reader)
        writer.write(b"HEAD /e HTTP/1.1\r\nHost: p\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"GET /stream HTTP/1.1\r\nHost: p\r\n\r\n")
        stream = await _read_answer(reader)
        writer.write(b"GET /last HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        last = await _read_answer(reader)
        closed = await reader.read()
        writer.close()
        return first, second, continued, third, head, stream, last, closed

    first, second, continued, third, head, stream, last, closed = _front(_echo, talk)
    status, headers, body = first
    asked = json.loads(body)
    assert status == b"HTTP/1.1 200 OK"
    assert asked["method"] == "POST" and asked["raw_path"] == "/v1/a%20b" and asked["path"] == "/v1/a b"
    assert asked["query"] == "x=1&y=%20" and asked["body"] == 5
    assert ["x-key", "V"] in asked["headers"]                 # names lower-case, values as sent
    assert "date" not in headers and "server" not in headers and "connection" not in headers
    assert json.loads(second[2])["body"] == 7                  # chunked request body, reassembled
    assert continued == b"HTTP/1.1 100 Continue\r\n\r\n" and json.loads(third[2])["body"] == 3
    assert b"content-length: " in head.lower() and head.endswith(b"\r\n\r\n")   # HEAD: no body follows
    assert stream[1]["transfer-encoding"] == "chunked" and stream[2] == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    assert last[1]["connection"] == "close" and closed == b""  # connection: close is honoured


def test_a_malformed_request_gets_a_400_and_the_connection_closes() -> None:
    async def talk(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await reader.read()
        writer.close()
        return answer

    answer = _front(_echo, talk)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"connection: close" in answer


def test_a_body_over_the_limit_is_a_413_then_the_connection_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(front, "MAX_REQUEST_BYTES", 1000)
    app = ProxyApp(ProxyConfig(upstream="http://127.0.0.1:9", profile=load_profile("dashscope")))

    async def talk(port: int) -> Any:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
        answer = await _read_answer(reader)
        rest = await reader.read()
        writer.close()
        return answer, rest

    try:
        (status, headers, body), rest = _front(app.handle, talk)
    finally:
        app.close()
    assert status.startswith(b"HTTP/1.1 413") and json.loads(body)["error"]["code"] == "request_too_large"
    assert headers["connection"] == "close" and rest == b""


class _Upstream(asyncio.Protocol):
    """Answers any request with a chunked event stream written by `script(transport)`."""

    script: Callable[[asyncio.Transport], Awaitable[None]]
    lost: list[Exception | None] = []
    paused = 0
    delay = 0.0   # before the response head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.seen = b""

    def data_received(self, data: bytes) -> None:
        self.seen += data
        if b"\r\n\r\n" in self.seen:
            asyncio.get_running_loop().call_later(type(self).delay, self.answer)

    def answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
            self.task = asyncio.ensure_future(type(self).script(self.transport))

    def pause_writing(self) -> None:
        type(self).paused += 1

    def connection_lost(self, exc: Exception | None) -> None:
        type(self).lost.append(exc)


def _event(i: int, pad: int = 0) -> bytes:
    event = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1770285809,"model":"qwen-plus",'
             b'"choices":[{"index":0,"delta":{"content":"%d%s"},"finish_reason":null}]}\n\n' % (i, b"x" * pad))
    return b"%x\r\n%s\r\n" % (len(event), event)


def _proxied(script: Callable[[asyncio.Transport], Awaitable[None]],
             talk: Callable[[int, ProxyApp], Awaitable[Any]], *,
             delay: float = 0.0) -> tuple[Any, ProxyApp, list[dict[str, Any]]]:
    """`talk(port, app)` against a proxy in front of an upstream that answers with `script`;
    also the proxy's finished exchanges and whatever its loop logged as an error."""

    class Upstream(_Upstream):
        lost: list[Exception | None] = []
        paused = 0

    Upstream.script = staticmethod(script)  # type: ignore[assignment]
    Upstream.delay = delay
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        upstream = await loop.create_server(Upstream, "127.0.0.1", 0)
        app = ProxyApp(ProxyConfig(upstream=f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}/v1",
                                   profile=load_profile("dashscope")))
        server = FrontServer(app.handle)
        sock = _listening()
        await server.start(sock)
        try:
            result = await asyncio.wait_for(talk(sock.getsockname()[1], app), 10)
            for _ in range(100):   # the proxy finishes the exchange from its work queue
                if app.findings.exchanges:
                    break
                await asyncio.sleep(0.01)
            return result, app, Upstream
        finally:
            await server.shutdown()
            upstream.close()
            app.close()

    (result, app, upstream_class) = asyncio.run(main())
    return (result, upstream_class), app, errors


BODY = b'{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"stream":true}'
REQUEST = (b"POST /chat/completions HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


@pytest.mark.parametrize("leaves", ["mid-stream", "before the answer"])
def test_a_client_that_leaves_ends_the_exchange_and_drops_the_upstream(leaves: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    finished: list[dict[str, Any]] = []
    done = ProxyApp._done

    def spy(self: ProxyApp, capture: Any, method: str, path: str, **kw: Any) -> Any:
        finished.append(kw)
        return done(self, capture, method, path, **kw)

    monkeypatch.setattr(ProxyApp, "_done", spy)

    async def script(transport: asyncio.Transport) -> None:
        for i in range(200):
            if transport.is_closing():
                return
            transport.write(_event(i))
            await asyncio.sleep(0.005)

    async def talk(port: int, app: ProxyApp) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        seen = await reader.readuntil(b'"content":"2"') if leaves == "mid-stream" else b""
        writer.close()            # the user closed the tab
        await asyncio.sleep(0.3)
        return seen

    (seen, upstream), app, errors = _proxied(script, talk, delay=0.0 if leaves == "mid-stream" else 0.1)
    assert seen.startswith(b"HTTP/1.1 200 OK") or leaves != "mid-stream"
    assert [kw.get("client_gone") for kw in finished] == [True]
    assert upstream.lost, "the upstream connection was not dropped"
    assert errors == []
    assert app.in_flight == 0


def test_a_slow_client_pauses_the_upstream_instead_of_buffering_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that reads nothing for a while: the proxy stops reading the upstream (whose own send
    buffer then fills up and pauses it) and resumes once the client reads; nothing is lost."""
    count, pad = 500, 32000   # ~16 MB of events

    async def script(transport: asyncio.Transport) -> None:
        for i in range(count):
            transport.write(_event(i, pad))
            if i % 10 == 0:
                await asyncio.sleep(0)
        transport.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")

    async def talk(port: int, app: ProxyApp) -> Any:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, REQUEST)
        await asyncio.sleep(1.0)   # not reading: the proxy's buffer towards us fills up
        reader = asyncio.StreamReader(limit=2**26)
        parts = []
        while part := await loop.sock_recv(sock, 1 << 20):
            parts.append(part)
            if part.endswith(b"0\r\n\r\n"):
                break
        sock.close()
        reader.feed_data(b"".join(parts))
        reader.feed_eof()
        status, _, body = await _read_answer(reader)
        return status, body

    ((status, body), upstream), _, errors = _proxied(script, talk)
    assert status == b"HTTP/1.1 200 OK"
    assert body.count(b"data: {") == count and body.endswith(b"data: [DONE]\n\n")
    assert upstream.paused > 0, "the proxy read the upstream as fast as it could instead of pausing it"
    assert errors == []

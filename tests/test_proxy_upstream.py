"""The proxy's upstream client keeps connections alive: a new connection per request costs the proxy a
connect and the upstream an accept for every stream, which at 100 streams starting together is most of
the start burst. These run in-process against a raw asyncio server and take milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from conformance.proxy.upstream import UpstreamPool

CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
           b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
SIZED = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
CLOSING = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"


class _Answers(asyncio.Protocol):
    """Answers each request (one per data_received is enough here) with the next of `answers`;
    `hang_up_after_each` closes the connection once the answer is written."""

    connections = 0
    answers: list[bytes] = []
    hang_up_after_each = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        type(self).connections += 1
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(type(self).answers.pop(0))
        if type(self).hang_up_after_each:
            self.transport.close()


async def _bodies(pool: UpstreamPool, count: int, between: Callable[[], Awaitable[None]]) -> list[bytes]:
    bodies = []
    for _ in range(count):
        response = await pool.request("POST", "/v1/chat/completions", [], b"{}", timeout_s=5, idle_timeout_s=5)
        bodies.append(b"".join([chunk async for chunk in response.chunks()]))
        response.close()
        await between()
    return bodies


def _run(answers: list[bytes], *, hang_up: bool = False) -> tuple[list[bytes], int]:
    """The bodies of len(answers) requests in a row through one pool, and how many connections it opened.
    Every reader woken by arriving bytes has run by then (the proxy's checks wait while one has not)."""

    class Server(_Answers):
        connections = 0

    Server.answers, Server.hang_up_after_each = list(answers), hang_up

    async def main() -> list[bytes]:
        server = await asyncio.get_running_loop().create_server(Server, "127.0.0.1", 0)
        pool = UpstreamPool("http", "127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            bodies = await _bodies(pool, len(answers), lambda: asyncio.sleep(0.01))  # let a hang-up land
            assert pool.wakeups.pending == 0
            return bodies
        finally:
            pool.close()
            server.close()

    return asyncio.run(main()), Server.connections


def test_chunked_and_sized_answers_leave_the_connection_for_the_next_request() -> None:
    bodies, connections = _run([CHUNKED, SIZED, CHUNKED])
    assert bodies == [b"data: [DONE]\n\n", b"{}", b"data: [DONE]\n\n"]
    assert connections == 1


def test_an_answer_that_says_connection_close_is_not_reused() -> None:
    bodies, connections = _run([CLOSING, SIZED])
    assert bodies == [b"{}", b"{}"]
    assert connections == 2


def test_a_kept_connection_the_upstream_closed_meanwhile_is_replaced_without_an_error() -> None:
    bodies, connections = _run([CHUNKED, CHUNKED, CHUNKED], hang_up=True)
    assert bodies == [b"data: [DONE]\n\n"] * 3
    assert connections == 3


def test_a_reader_woken_for_each_chunk_leaves_no_wake_pending_once_it_runs() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    seen: list[int] = []

    async def main() -> list[bytes]:
        async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            for part in (b"3\r\none\r\n", b"3\r\ntwo\r\n", b"0\r\n\r\n"):
                await asyncio.sleep(0.01)   # the reader waits for each
                writer.write(part)
            await writer.drain()

        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        pool = UpstreamPool("http", "127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            response = await pool.request("GET", "/", [], b"", timeout_s=5, idle_timeout_s=5)
            chunks = []
            async for chunk in response.chunks():
                seen.append(pool.wakeups.pending)   # the reader runs: its wake is no longer pending
                chunks.append(chunk)
            response.close()
            return chunks
        finally:
            pool.close()
            server.close()

    assert asyncio.run(main()) == [b"one", b"two"]
    assert seen == [0, 0]


def test_a_request_woken_by_its_answers_headers_counts_as_pending_until_it_runs() -> None:
    """The task waiting for the headers relays the answer's first event once it runs, so the proxy's checks
    must see it as pending from the moment the headers are parsed until it resumes (and not after)."""
    seen: dict[str, int] = {}

    async def main() -> int:
        async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(CHUNKED)
            await writer.drain()

        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        pool = UpstreamPool("http", "127.0.0.1", server.sockets[0].getsockname()[1])

        def probe() -> None:   # a check queued behind the poll that parsed the headers sees the wake
            if pool.wakeups.pending:
                seen.setdefault("while woken", pool.wakeups.pending)
            else:
                asyncio.get_running_loop().call_soon(probe)

        try:
            asyncio.get_running_loop().call_soon(probe)
            response = await pool.request("POST", "/v1/chat/completions", [], b"{}", timeout_s=5, idle_timeout_s=5)
            seen["after"] = pool.wakeups.pending
            b"".join([chunk async for chunk in response.chunks()])
            response.close()
            return pool.wakeups.pending
        finally:
            pool.close()
            server.close()

    assert asyncio.run(main()) == 0
    assert seen == {"while woken": 1, "after": 0}

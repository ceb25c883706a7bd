"""The mock under abuse at scale (issue 3): thousands of idle connections and hundreds of clients
that vanish mid-stream must neither crash the server process nor make its memory grow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from conformance.client import ChatClient, ClientConfig
from conformance.mock import MockConfig, MockServer

USER = [{"role": "user", "content": "Tell me a story."}]
IDLE_CONNECTIONS = 2000


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _request(stream: bool) -> bytes:
    payload = json.dumps({"model": "qwen-plus", "messages": USER, "stream": stream, "max_tokens": 200}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)


async def _vanishing_clients(port: int, count: int, concurrency: int = 50) -> None:
    """Clients that read the first bytes of a stream, then drop the connection."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(stream=True))
            await writer.drain()
            await reader.read(1500)
            writer.transport.abort()

    await asyncio.gather(*(one() for _ in range(count)))


async def _idle(port: int, count: int) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    await asyncio.sleep(0.2)
    for _, writer in conns:
        writer.transport.abort()


def test_idle_connections_and_vanishing_clients_do_not_crash_or_leak() -> None:
    latency = {"name": "soak", "ttft_ms": 2, "itl_ms": 2, "output_tokens": [200, 200]}
    with MockServer(MockConfig(latency=latency, seed=3)) as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        proc = _server_process(base_url)
        asyncio.run(_vanishing_clients(port, 300))   # warm-up: caches, pools, allocator arenas
        before = _rss_kb(proc)
        asyncio.run(_idle(port, IDLE_CONNECTIONS))
        asyncio.run(_vanishing_clients(port, 900))
        after = _rss_kb(proc)
        with ChatClient(ClientConfig(base_url=base_url, api_key="k")) as client:
            ex = client.chat({"model": "qwen-plus", "messages": USER, "max_tokens": 8})
        assert ex.status == 200 and ex.transport_error is None
        # 900 more abandoned streams after the warm-up must not hold on to memory.
        assert after - before < 20_000, f"mock RSS grew {after - before} kB over 900 abandoned streams"


def _server_process(base_url: str) -> int:
    """The pid of the mock child serving `base_url` (found by its listening port)."""
    port = int(base_url.split(":")[2].split("/")[0])
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
                inode = fields[9]
    assert inode is not None, "mock is not listening"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if fd.readlink().as_posix() == f"socket:[{inode}]":
                    return int(proc.name)
        except OSError:
            continue
    raise AssertionError("no process owns the mock's socket")

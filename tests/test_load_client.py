"""The load-test streaming client: bytes timestamped as they arrive, chunked decoding, keep-alive.

research/measured-here.md: Locust's FastHttpUser `response.stream` batched SSE events and delayed
them by hundreds of ms. These tests hold the client to the server's real send times.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest

from loadtests.client import ChunkedDecoder, HTTPProtocolError, StreamClient, Target
from loadtests.metrics import stream_metrics
from tests.certs import self_signed


class TinyServer:
    """A loopback HTTP/1.1 server that answers each request with a scripted response."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/compatible-mode/v1"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while not self._stop:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(
                    next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))
                )
                while len(buf) < length:
                    buf += conn.recv(65536)
                body, buf = json.loads(buf[:length]), buf[length:]
                if not self.handler(conn, body):
                    return
        finally:
            conn.close()

    def close(self):
        self._stop = True
        self.sock.close()
        self.thread.join(timeout=2)


def sse_chunk(obj) -> bytes:
    data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def delta(content):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": content, "finish_reason": None}],
        "usage": None,
    }


FIRST_S, GAP_S, N = 0.2, 0.02, 10


def scripted_stream(conn, body):
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-request-id: abc\r\n\r\n"
    )
    conn.sendall(sse_chunk(delta({"role": "assistant", "content": ""})))
    time.sleep(FIRST_S)
    for i in range(N):
        if i:
            time.sleep(GAP_S)
        conn.sendall(sse_chunk(delta({"content": f"t{i} "})))
    usage = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": N, "total_tokens": N + 3},
    }
    conn.sendall(sse_chunk(usage) + sse_chunk(b"[DONE]") + b"0\r\n\r\n")
    return True


@pytest.fixture
def server():
    srv = TinyServer(scripted_stream)
    yield srv
    srv.close()


def test_events_are_timestamped_at_arrival_not_in_batches(server):
    client = StreamClient(server.base_url, "sk-test-secret-key")
    try:
        ex = client.post_stream("/chat/completions", {"model": "m", "stream": True})
    finally:
        client.close()
    m = stream_metrics(ex)
    assert m.ok, (ex.transport_error, m.error)
    assert ex.status == 200 and ex.headers["x-request-id"] == "abc"
    assert m.first_event_ms < 50
    assert FIRST_S * 1000 <= m.ttft_ms < FIRST_S * 1000 + 60
    assert len(m.itl_ms) == N - 1
    # every gap is a real gap: nothing arrives batched (ITL 0) as with FastHttpUser's stream
    # (server and client share one process and its GIL here, so single gaps wobble by a few ms)
    assert min(m.itl_ms) >= GAP_S * 1000 * 0.5
    assert GAP_S * 1000 <= sorted(m.itl_ms)[len(m.itl_ms) // 2] < GAP_S * 1000 + 5
    assert m.tpot_ms == pytest.approx(sum(m.itl_ms) / (N - 1), rel=1e-6)
    assert "sk-test-secret-key" not in json.dumps(ex.request.headers)


def test_keep_alive_reuses_one_connection(server):
    client = StreamClient(server.base_url, None)
    try:
        for _ in range(3):
            assert stream_metrics(client.post_stream("/chat/completions", {"stream": True})).ok
    finally:
        client.close()
    assert client.connects == 1 and server.connections == 1


def test_json_error_body_with_content_length():
    def handler(conn, body):
        payload = json.dumps({"error": {"code": "limit_requests", "message": "too many"}}).encode()
        conn.sendall(
            b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        return True

    srv = TinyServer(handler)
    client = StreamClient(srv.base_url, "k")
    try:
        ex = client.post_stream("/chat/completions", {"stream": True})
        ex2 = client.post_stream("/chat/completions", {"stream": True})
    finally:
        client.close()
        srv.close()
    m = stream_metrics(ex)
    assert (ex.status, m.error, m.error_code) == (429, "429", "limit_requests")
    assert ex2.status == 429 and client.connects == 1


def test_mid_stream_drop_is_reported_not_raised():
    def handler(conn, body):
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        conn.sendall(sse_chunk(delta({"content": "partial"})))
        return False  # close the connection without the terminating chunk

    srv = TinyServer(handler)
    client = StreamClient(srv.base_url, "k")
    try:
        ex = client.post_stream("/chat/completions", {"stream": True})
    finally:
        client.close()
        srv.close()
    m = stream_metrics(ex)
    assert m.error == "dropped" and m.ttft_ms is not None
    assert "closed mid-body" in ex.transport_error


def test_unreachable_target_is_a_transport_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ex = StreamClient(f"http://127.0.0.1:{port}/v1", "k", connect_timeout=2).post_stream("/chat/completions", {})
    assert ex.status is None and "refused" in ex.transport_error.lower()
    assert stream_metrics(ex).error == "connect_error"


def test_chunked_decoder_any_split():
    body = b"".join(sse_chunk(delta({"content": f"w{i}"})) for i in range(20)) + b"0\r\n\r\n"
    expected = b"".join(b"data: " + json.dumps(delta({"content": f"w{i}"})).encode() + b"\n\n" for i in range(20))
    rng = random.Random(3)
    for _ in range(50):
        dec = ChunkedDecoder()
        out = b""
        pos = 0
        while pos < len(body):
            step = rng.randint(1, 40)
            out += b"".join(dec.feed(body[pos : pos + step]))
            pos += step
        assert out == expected and dec.done
    with pytest.raises(HTTPProtocolError):
        ChunkedDecoder().feed(b"zz\r\n")


def test_target_parsing():
    t = Target.parse("https://dashscope-intl.aliyuncs.com/compatible-mode/v1/")
    assert (t.scheme, t.host, t.port, t.base_path) == (
        "https",
        "dashscope-intl.aliyuncs.com",
        443,
        "/compatible-mode/v1",
    )
    assert t.url("/chat/completions") == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
    with pytest.raises(ValueError):
        Target.parse("ftp://x")


def test_chunked_decoder_whole_chunk_fast_path_matches_the_general_rules() -> None:
    # one whole chunk per read (the common case), then the cases that must take the general path
    dec = ChunkedDecoder()
    assert dec.feed(b"5\r\nhello\r\n") == [b"hello"]
    assert dec.feed(b"3;ext=1\r\nabc\r\n") == [b"abc"]
    assert dec.feed(b"4\r\nab") == [b"ab"]
    assert dec.feed(b"cd\r\n") == [b"cd"]
    assert dec.feed(b"2\r\nxy\r\n0\r\n\r\n") == [b"xy"]
    assert dec.done
    with pytest.raises(HTTPProtocolError):
        ChunkedDecoder().feed(b"2\r\nxyz\r\n")


def test_gevent_reader_reads_and_times_out_like_a_gevent_socket() -> None:
    gsocket = pytest.importorskip("gevent.socket")
    from loadtests.client import _HubReader

    a, b = gsocket.socketpair()
    a.settimeout(0.2)
    try:
        reader = _HubReader.for_socket(a, 0.2)
        assert reader is not None
        b.sendall(b"data")
        data, t_ns = reader.read(100)
        assert data == b"data" and abs(time.perf_counter_ns() - t_ns) < 1e9
        with pytest.raises(TimeoutError, match="timed out"):
            reader.read(100)
        b.close()
        assert reader.read(100)[0] == b""
        reader.close()
    finally:
        a.close()
    assert _HubReader.for_socket(socket.socket(), 1.0) is None  # a plain socket keeps its own recv


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(srv.getsockname())
        conn, _ = srv.accept()
    finally:
        srv.close()
    return client, conn


def _wait_for_stamps(reader_sock: socket.socket, writer: socket.socket) -> None:
    """Linux turns receive timestamps on for the whole stack in a deferred work item when the first
    socket asks: until then a read carries no stamp (the client falls back to the read time)."""
    from loadtests.client import _ANC_SIZE

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        writer.sendall(b"x")
        _, anc, _, _ = reader_sock.recvmsg(16, _ANC_SIZE)
        if anc:
            return
        time.sleep(0.01)
    pytest.fail("the kernel never stamped a read")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel receive timestamps are Linux's")
def test_arrival_time_is_when_bytes_reached_the_socket_not_when_they_were_read() -> None:
    # a busy event loop reads late; the kernel's stamp keeps the time the bytes arrived
    from loadtests.client import _SocketReader, enable_rx_timestamps

    client, conn = _tcp_pair()
    try:
        assert enable_rx_timestamps(client)
        _wait_for_stamps(client, conn)
        t_before_send = time.perf_counter_ns()
        conn.sendall(b"event")
        t_after_send = time.perf_counter_ns()
        time.sleep(0.15)  # the reader is 150 ms late
        t_before_read = time.perf_counter_ns()
        data, t_arrival = _SocketReader(client, True).read(100)
        assert data == b"event"
        # loopback delivers inside sendall: the stamp falls between the two clock readings around it
        # (20 ms of slack for a preempted test process), well before the read
        assert t_before_send - 20e6 <= t_arrival <= t_after_send + 20e6
        assert t_before_read - t_arrival > 100e6
        conn.sendall(b"again")
        time.sleep(0.05)
        t_before_read = time.perf_counter_ns()
        _, t_unstamped = _SocketReader(client, False).read(100)  # without the stamp: the read time
        assert t_unstamped >= t_before_read
    finally:
        client.close()
        conn.close()


def test_gevent_reader_uses_the_kernel_stamp_too() -> None:
    gsocket = pytest.importorskip("gevent.socket")
    from loadtests.client import _HubReader, enable_rx_timestamps

    srv = gsocket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    a = gsocket.create_connection(srv.getsockname())
    b, _ = srv.accept()
    srv.close()
    a.settimeout(1.0)
    try:
        stamped = enable_rx_timestamps(a)
        assert stamped or not sys.platform.startswith("linux")
        if stamped:
            _wait_for_stamps(a._sock, b)
        reader = _HubReader.for_socket(a, 1.0, stamped)
        assert reader is not None
        b.sendall(b"event")
        time.sleep(0.1)  # a blocking sleep: the hub cannot read meanwhile
        data, t_arrival = reader.read(100)
        assert data == b"event"
        late_ms = (time.perf_counter_ns() - t_arrival) / 1e6
        assert late_ms > 90 if stamped else late_ms < 50
        reader.close()
    finally:
        a.close()
        b.close()


def test_tls_and_non_tcp_sockets_get_no_kernel_stamps() -> None:
    from loadtests.client import enable_rx_timestamps

    ctx = ssl.create_default_context()
    raw = socket.socket()
    tls = ctx.wrap_socket(raw, server_hostname="example.invalid", do_handshake_on_connect=False)
    try:
        assert enable_rx_timestamps(tls) is False
    finally:
        tls.close()


def test_the_report_names_the_clock_each_target_is_timed_with() -> None:
    from loadtests.client import arrival_clock

    expected = "kernel" if sys.platform.startswith("linux") else "read"
    assert arrival_clock("https://dashscope-intl.aliyuncs.com/compatible-mode/v1") == expected
    assert arrival_clock("http://127.0.0.1:8000/compatible-mode/v1") == expected


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    return self_signed(tmp_path_factory.mktemp("tls"))


def _tls_sse_server(cert: tuple[Path, Path], events: list[bytes], gap_s: float) -> tuple[int, threading.Thread]:
    """One TLS connection: read a request, answer with chunked SSE events `gap_s` apart."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += tls.recv(65536)
            head, _, body = buf.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for ev in events:
                time.sleep(gap_s)
                tls.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
            tls.sendall(b"0\r\n\r\n")
            time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_an_https_stream_is_decrypted_from_the_stamped_socket(tls_files, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    events = [b'data: {"n": %d}\n\n' % i for i in range(3)] + [b"data: [DONE]\n\n"]
    port, thread = _tls_sse_server(tls_files, events, 0.05)
    client = StreamClient(f"https://127.0.0.1:{port}/v1", "sk-test-key-123456")
    try:
        ex = client.post_stream("/chat/completions", {"model": "m", "stream": True, "messages": []})
    finally:
        client.close()
    thread.join(5)
    assert ex.transport_error is None and ex.status == 200
    assert [ev.data for ev in ex.events] == ['{"n": 0}', '{"n": 1}', '{"n": 2}', "[DONE]"]
    gaps = [(b.t_ns - a.t_ns) / 1e6 for a, b in zip(ex.events, ex.events[1:], strict=False)]
    assert all(40 < g < 200 for g in gaps), gaps


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel receive timestamps are Linux's")
def test_tls_bytes_read_late_keep_the_time_they_arrived(tls_files, monkeypatch) -> None:
    """The https case of the busy loop: decrypted bytes carry the kernel's stamp of their record."""
    from loadtests.client import _SocketReader, _TLSReader, enable_rx_timestamps, tls_handshake

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*tls_files)
    client_ctx = ssl.create_default_context(cafile=str(tls_files[0]))
    listener = socket.create_server(("127.0.0.1", 0))
    sent: dict[str, int] = {}
    go = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else Nagle holds "event" behind the
        with server_ctx.wrap_socket(conn, server_side=True) as tls:  # unacknowledged session tickets ~40 ms
            go.wait(5)
            sent["before"] = time.perf_counter_ns()
            tls.sendall(b"event")
            sent["after"] = time.perf_counter_ns()
            time.sleep(0.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sock = socket.create_connection(listener.getsockname(), timeout=5)
    try:
        tls = tls_handshake(sock, client_ctx, "127.0.0.1")
        assert enable_rx_timestamps(sock)
        _wait_for_stamps_tls()
        reader = _TLSReader(_SocketReader(sock, True), tls, sock)
        go.set()
        time.sleep(0.15)  # the reader is 150 ms late
        t_before_read = time.perf_counter_ns()
        data, t_arrival = reader.read(100)
        assert data == b"event"
        assert sent["before"] - 20e6 <= t_arrival <= sent["after"] + 20e6
        assert t_before_read - t_arrival > 100e6
    finally:
        sock.close()
        listener.close()
        thread.join(5)


def _wait_for_stamps_tls() -> None:
    """As `_wait_for_stamps`, on a second plain pair: the kernel's switch is for the whole stack."""
    client, conn = _tcp_pair()
    try:
        from loadtests.client import enable_rx_timestamps

        enable_rx_timestamps(client)
        _wait_for_stamps(client, conn)
    finally:
        client.close()
        conn.close()

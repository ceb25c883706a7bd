"""Every client trusts the same certificates: `SSL_CERT_FILE` works for the preflight and `run` as for `load`.

Before conformance/tls.py the preflight and the conformance client used httpx's bundle and ignored
SSL_CERT_FILE, so a gateway behind a company CA passed `load` but `run` stopped at its preflight.
A loopback https server with a self-signed certificate stands in for such a gateway.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.client import ChatClient, ClientConfig
from conformance.errors import UsageError
from conformance.preflight import preflight
from conformance.tls import client_context
from loadtests.client import StreamClient
from tests.certs import self_signed

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen-plus",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, certificate) of a loopback https server whose certificate nobody trusts by default."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls-trust"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v1", cert
    server.shutdown()
    server.server_close()


def _preflight(url: str) -> None:
    preflight(url, model="qwen-plus", api_key="sk-test-not-a-key-1234", api_key_env="DASHSCOPE_API_KEY",
              timeout_s=5)


def test_untrusted_certificate_is_refused_with_a_hint(https_url, monkeypatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(UsageError, match=r"not trusted.*SSL_CERT_FILE"):
        _preflight(https_url[0])


def test_ssl_cert_file_is_trusted_by_every_client(https_url, monkeypatch) -> None:
    url, cert = https_url
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    _preflight(url)  # no UsageError
    client = ChatClient(ClientConfig(base_url=url, api_key="sk-test-not-a-key-1234", retries=0))
    try:
        ex = client.chat({"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}]})
    finally:
        client.close()
    assert ex.transport_error is None and ex.status == 200
    load = StreamClient(url, "sk-test-not-a-key-1234", timeout=5)
    try:
        ex = load.post_stream("/chat/completions", {"model": "qwen-plus", "messages": []})
    finally:
        load.close()
    assert ex.transport_error is None and ex.status == 200


def test_the_context_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    first = client_context()
    assert client_context() is first  # loaded once per setting
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    assert client_context() is not first
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname

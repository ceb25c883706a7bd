"""A user debugging their app against the mock can see what their client sent: GET /_mock/requests
(guarded like the control routes: it holds prompts) and `chatconf mock --log-requests`."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import openai

from conformance.mock import MockConfig, MockServer

KEY = "sk-request-log-key-5521"


def test_the_last_requests_are_listed_with_the_key_redacted():
    with MockServer(MockConfig(api_key=KEY)) as base_url:
        client = openai.OpenAI(api_key=KEY, base_url=base_url, max_retries=0)
        client.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "first"}])
        client.chat.completions.create(model="qwen-max", stream=True, max_tokens=5,
                                       messages=[{"role": "user", "content": "second"}]).close()
        root = base_url.split("/compatible-mode")[0]
        denied = httpx.get(f"{root}/_mock/requests")
        log = httpx.get(f"{root}/_mock/requests", params={"limit": 2}, headers={"Authorization": f"Bearer {KEY}"})
    assert denied.status_code == 401  # prompts are client data: the control credential guards them
    data = log.json()
    assert data["received"] >= 2 and len(data["requests"]) == 2
    first, second = data["requests"]
    assert first["body"]["messages"][0]["content"] == "first" and second["body"]["stream"] is True
    assert first["headers"]["authorization"] == "Bearer [REDACTED]"
    assert KEY not in log.text
    assert "openai" in first["headers"].get("user-agent", "").lower()


def test_log_requests_prints_one_line_per_request(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "mock", "--port", "0", "--log-requests"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = proc.stdout.readline() if proc.stdout else ""
        base_url = banner.split("serving ", 1)[1].split(" ", 1)[0]
        httpx.post(f"{base_url}/chat/completions", headers={"Authorization": "Bearer any"},
                   json={"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "n": 2}, timeout=10)
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and "request 1" not in line:
            line = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "chatconf mock: request 1: POST /compatible-mode/v1/chat/completions model='qwen-plus' messages=1 n=2" \
        in line


def test_huge_bodies_are_kept_clipped():
    """A client flooding the mock with huge bodies must not make the log pin them all in memory."""
    from conformance.mock.request_log import BODY_KEPT_BYTES, TEXT_CLIP, RequestLog

    log = RequestLog()
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (2 * BODY_KEPT_BYTES) + b'"}]}'
    for _ in range(3):
        log.add("/v1/chat/completions", {b"authorization": b"Bearer k"}, raw, {"model": "m"}, True)
    entry = log.snapshot()["requests"][-1]
    assert "body" not in entry and len(entry["body_text"]) < TEXT_CLIP + 40
    assert entry["body_text"].endswith(f"... [{len(raw)} bytes]")

"""Issue 13 item 2: the mock's control routes take a credential, and a bind beyond loopback says what
it exposes. The app is driven through Starlette's TestClient (no socket); the project's own callers
(MockServer.set_faults / reset_stats) go through a real loopback server."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from conformance.cli import main as cli_main
from conformance.mock import MockConfig, MockServer
from conformance.mock.app import MockApp

FAULT = {"faults": ["stream.done-last"]}


def _client(**config: Any) -> TestClient:
    return TestClient(MockApp(MockConfig(**config)))


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_with_an_api_key_the_control_routes_need_it() -> None:
    client = _client(api_key="sk-right")
    for headers in ({}, _bearer("sk-wrong"), {"authorization": "sk-right"}):
        put = client.put("/_mock/faults", json=FAULT, headers=headers)
        reset = client.post("/_mock/stats/reset", headers=headers)
        assert (put.status_code, reset.status_code) == (401, 401), headers
        assert "API key" in put.json()["error"]["message"] and "sk-right" not in put.text
    assert client.get("/_mock/faults").json() == {"faults": []}      # nothing changed
    assert client.put("/_mock/faults", json=FAULT, headers=_bearer("sk-right")).json() == FAULT
    assert client.post("/_mock/stats/reset", headers=_bearer("sk-right")).json() == {"reset": True}
    assert client.get("/_sim/beijing/_mock/faults").json() == FAULT  # reads stay open, prefix or not
    assert client.put("/_sim/beijing/_mock/faults", json={"faults": []}).status_code == 401


def test_a_control_token_replaces_the_api_key_for_control() -> None:
    client = _client(api_key="sk-right", control_token="ctl-token")
    assert client.put("/_mock/faults", json=FAULT, headers=_bearer("sk-right")).status_code == 401
    assert client.put("/_mock/faults", json=FAULT, headers=_bearer("ctl-token")).status_code == 200
    keyless = _client(host="0.0.0.0", control_token="ctl-token")
    assert keyless.post("/_mock/stats/reset").status_code == 401
    assert keyless.post("/_mock/stats/reset", headers=_bearer("ctl-token")).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "mock.example"])
def test_a_keyless_mock_beyond_loopback_refuses_control(host: str) -> None:
    client = _client(host=host)
    put = client.put("/_mock/faults", json=FAULT)
    assert put.status_code == 403 and put.json()["error"]["code"] == "control_disabled"
    assert client.post("/_mock/stats/reset").status_code == 403
    assert client.get("/_mock/faults").json() == {"faults": []}
    assert client.get("/_mock/stats").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_keyless_loopback_mock_stays_open_to_control(host: str) -> None:
    client = _client(host=host)
    assert client.put("/_mock/faults", json=FAULT).json() == FAULT
    assert client.post("/_mock/stats/reset").status_code == 200


def test_mock_server_sends_the_credential_it_was_configured_with() -> None:
    """The project's own callers (the mutation self-test, load calibration, benchmarks) keep working."""
    server = MockServer(MockConfig(api_key="sk-right", control_token="ctl"), in_process=True)
    server.start()
    try:
        server.set_faults(["stream.done-last"])
        assert server.app.faults == ("stream.done-last",)
        server.reset_stats()
        assert server.stats()["requests"] == 0
        with pytest.raises(ValueError, match="unknown"):
            server.set_faults(["stream.nope"])
    finally:
        server.stop()


@pytest.mark.parametrize(("argv", "env", "expect"), [
    (["--host", "0.0.0.0"], {}, "(any non-empty key accepted)"),
    (["--host", "::", "--api-key", "sk-right"], {}, "(need the API key)"),
    (["--host", "0.0.0.0"], {"CHATCONF_CONTROL_TOKEN": "ctl"}, "(need the control token)"),
    (["--host", "127.0.0.1"], {}, None),
])
def test_a_bind_beyond_loopback_warns_on_one_stderr_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str],
                                                         argv: list[str], env: dict[str, str],
                                                         expect: str | None) -> None:
    """The bind itself is redirected to 127.0.0.1 and serving returns at once: the test exposes no port
    and never blocks; the warning depends on the --host the user asked for."""
    import socket

    from conformance.mock import server as mock_server

    real_bind = mock_server.bind_socket
    seen: dict[str, Any] = {}

    def loopback_bind(host: str, port: int) -> socket.socket:
        seen["host"] = host
        return real_bind("127.0.0.1", 0)

    def no_serve(server: Any, sock: socket.socket) -> None:
        seen["control_token"] = server.config.app.config.control_token
        sock.close()

    monkeypatch.setattr(mock_server, "bind_socket", loopback_bind)
    monkeypatch.setattr(mock_server, "serve", no_serve)
    monkeypatch.delenv("CHATCONF_CONTROL_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["mock", "--port", "0", *argv]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert seen["host"] == argv[1]
    if expect is None:
        assert err == []
        return
    assert len(err) == 1 and err[0].startswith(f"chatconf mock: warning: listening on {argv[1]}, beyond loopback")
    assert expect in err[0] and "PUT /_mock/faults" in err[0] and "sk-right" not in err[0]
    assert seen["control_token"] == env.get("CHATCONF_CONTROL_TOKEN")

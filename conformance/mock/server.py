"""Run the mock: in a child process (default; the load tests and `chatconf run` need the server
off their own event loop and GIL) or in a thread (fast unit tests).

The child binds port 0 itself and reports the real port on stdout (no racy free-port probing); it
reads its config from stdin (an API key never appears in argv) and exits when stdin closes, so a
parent that dies for any reason leaves no orphan server behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from ..descriptors import reserve_descriptors
from ..heap import settle_heap
from ..processes import stop_process
from .config import MockConfig
from .exposure import control_secret

READY = "CHATCONF-MOCK-READY"
API_PREFIX = "/compatible-mode/v1"


class MockStartError(RuntimeError):
    """The mock could not start (port in use, bad config, child died); message is one line."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, or MockStartError with a one-line reason (e.g. port in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno in (98, 48) else (exc.strerror or str(exc))
        raise MockStartError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


SERVER_THRESHOLDS = (20_000, 20, 100)
"""Collector thresholds of a process that serves streams (conformance.heap)."""


def prepare_process() -> None:
    """Process-wide settings for a process that only serves the mock (`chatconf mock`, the MockServer
    child), applied before it serves and before it starts threads. A descriptor table big enough for
    thousands of connections, so accept() never stalls to grow it; and a quiet cyclic GC: a full
    collection of a big heap stops every stream for tens of ms, so start-up objects (profiles,
    schemas, compiled rules) move out of its sight and young collections run less often."""
    reserve_descriptors()
    settle_heap(SERVER_THRESHOLDS)


def serve(server: Any, sock: socket.socket) -> None:
    """Run uvicorn on an already-bound socket until it is told to exit or gets Ctrl-C; the socket is
    always closed (`chatconf mock` and the MockServer child both serve this way)."""
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def uvicorn_server(app: Any, *, loop: str = "auto", date_header: bool = True) -> Any:
    """uvicorn for the mock (date_header=False: no Date header of its own)."""
    import uvicorn

    config = uvicorn.Config(app, loop=loop, http="httptools" if _has("httptools") else "auto",
                            lifespan="off", log_level="warning", access_log=False, server_header=False,
                            date_header=date_header, timeout_keep_alive=30, backlog=2048,
                            proxy_headers=False)   # loopback mock: no proxies, one frame less per resume
    server = uvicorn.Server(config)
    return server


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


class MockServer:
    """`with MockServer(MockConfig()) as base_url: ...` — a running mock, stopped on exit."""

    def __init__(self, config: MockConfig | None = None, *, in_process: bool = False,
                 start_timeout_s: float = 20.0, own_session: bool = False):
        self.config = config or MockConfig()
        self.in_process = in_process
        # own_session: the child does not get a terminal's Ctrl-C; its parent stops it when it is
        # done with it (plain `locust`: after its users stopped, so none sees the mock vanish)
        self.own_session = own_session
        self.start_timeout_s = start_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None
        self.app: Any = None   # the MockApp, when in_process

    # -- public ---------------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RuntimeError("mock server not started")
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + API_PREFIX

    def url_for(self, preset: str) -> str:
        """Base URL that serves the same API with latency preset `preset` (singapore, none, ...)."""
        return f"{self.root_url}/_sim/{preset}{API_PREFIX}"

    def start(self) -> str:
        if self.port is not None:
            return self.base_url
        if self.in_process:
            self._start_thread()
        else:
            self._start_child()
        self._wait_ready()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._thread = None
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                if proc.stdin:
                    proc.stdin.close()   # the child's signal to shut down cleanly
            except OSError:
                pass
            try:
                stop_process(proc, wait_s=5.0, term_s=3.0)
            finally:
                if proc.stdout:
                    proc.stdout.close()
        self.port = None

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.root_url + "/_mock/stats", headers=self._control_headers(), timeout=10).json()

    def reset_stats(self) -> None:
        resp = httpx.post(self.root_url + "/_mock/stats/reset", headers=self._control_headers(), timeout=10)
        if resp.status_code != 200:
            raise RuntimeError(resp.json()["error"]["message"])

    def set_faults(self, names: list[str] | tuple[str, ...]) -> None:
        """Switch the running server's conformance fault modes (ValueError for an unknown name)."""
        resp = httpx.put(self.root_url + "/_mock/faults", json={"faults": list(names)},
                         headers=self._control_headers(), timeout=10)
        if resp.status_code != 200:
            raise ValueError(resp.json()["error"]["message"])

    def _control_headers(self) -> dict[str, str]:
        """The credential the server's control routes ask for (exposure.py), when it has one."""
        secret = control_secret(self.config)
        return {"authorization": f"Bearer {secret}"} if secret else {}

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        from .app import MockApp

        app = self.app = MockApp(self.config)
        self._sock = bind_socket(self.config.host, self.config.port)
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn_server(app)
        sock = self._sock
        self._thread = threading.Thread(target=lambda: self._server.run(sockets=[sock]),
                                        name="chatconf-mock", daemon=True)
        self._thread.start()

    def _start_child(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # -P: never the working directory first on sys.path (a `conformance/` folder there, e.g. an older
        # checkout or a user's own package of that name, would shadow the installed mock)
        cmd = [sys.executable, "-P", "-m", "conformance.mock"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env, start_new_session=self.own_session)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(self.config.to_json() + "\n")
        self._proc.stdin.flush()
        line = _readline(self._proc.stdout, self.start_timeout_s)
        if not line.startswith(READY):
            err = ""
            try:
                self._proc.wait(timeout=5)
                err = (self._proc.stderr.read() if self._proc.stderr else "").strip()
            except subprocess.TimeoutExpired:
                pass
            self.stop()
            last = err.splitlines()[-1] if err else (line.strip() or "no output")
            raise MockStartError(f"mock server did not start: {last}")
        self.port = int(line.split()[1])
        # stderr is not read any more: send it to a thread that drains it so the child never blocks
        threading.Thread(target=_drain, args=(self._proc.stderr,), daemon=True).start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        url = self.root_url + "/_mock/stats"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise MockStartError("mock server did not answer in time")


def _readline(stream: Any, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def _drain(stream: Any) -> None:
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass

"""Starting and stopping real Locust processes (a local runner, or a master plus local workers).

Used by `chatconf load`, its calibration and benchmarks/bench_load.py. This module never imports
Locust or gevent. Children run in their own session (a terminal Ctrl-C reaches only the parent,
which stops them in order) and get SIGTERM when the parent dies (PR_SET_PDEATHSIG), so a run
never leaves Locust processes behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conformance.jsonutil import JSONError, loads
from conformance.processes import stop_process

from .report_files import REPORT_ERROR

STOP_GRACE_S = 20.0


def locustfile_path() -> Path:
    return Path(__file__).resolve().parent / "locustfile.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- child processes --------------------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec: own session (Ctrl-C is ours to forward) and SIGTERM when this process dies."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocustRun:
    """A Locust master/local process plus optional local workers, stopped in order, never orphaned."""

    def __init__(
        self,
        *,
        custom: list[str],
        users: int,
        spawn_rate: float,
        run_time: float,
        workers: int,
        log_path: Path,
        quiet: bool,
        env: dict[str, str] | None = None,
        cpu: set[int] | None = None,
    ):
        self.custom = custom
        self.users = users
        self.spawn_rate = spawn_rate
        self.run_time = run_time
        self.workers = workers
        self.log_path = log_path
        self.quiet = quiet
        self.env = env
        self.cpu = cpu
        self.procs: list[subprocess.Popen[bytes]] = []
        self.progress_lines: list[str] = []

    def _base_cmd(self) -> list[str]:
        # -P: the working directory never shadows the installed packages (see conformance/mock/server.py)
        return [sys.executable, "-P", "-m", "locust", "-f", str(locustfile_path()), "--only-summary", "--loglevel",
                "INFO"]

    def start(self) -> None:
        env = dict(self.env or os.environ)
        env["CHATCONF_EMBEDDED"] = "1"
        env.setdefault("PYTHONUNBUFFERED", "1")
        read_fd, write_fd = os.pipe()
        env["CHATCONF_PROGRESS_FD"] = str(write_fd)
        cmd = [
            *self._base_cmd(),
            "--headless",
            "-u",
            str(self.users),
            "-r",
            f"{self.spawn_rate:g}",
            "-t",
            f"{max(1, round(self.run_time))}s",
            "--exit-code-on-error",
            "0",
            "--stop-timeout",
            "0",
            *self.custom,
        ]
        port = None
        if self.workers:
            port = free_port()
            cmd += [
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.workers),
                "--expect-workers-max-wait",
                "60",
            ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            master = subprocess.Popen(
                cmd,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=(write_fd,),
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(write_fd)
        self.procs.append(master)
        self._pin(master.pid)
        wenv = {k: v for k, v in env.items() if k != "CHATCONF_PROGRESS_FD"}
        for _ in range(self.workers):
            wcmd = [*self._base_cmd(), "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
            proc = subprocess.Popen(
                wcmd, stdout=self._log, stderr=subprocess.STDOUT, env=wenv, preexec_fn=_die_with_parent
            )
            self.procs.append(proc)
            self._pin(proc.pid)
        self._reader = threading.Thread(target=self._read_progress, args=(read_fd,), daemon=True)
        self._reader.start()

    def _pin(self, pid: int) -> None:
        if self.cpu:
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(pid, self.cpu)

    def _read_progress(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self.progress_lines.append(line)
                if not self.quiet and not line.startswith(REPORT_ERROR):
                    print(line, file=sys.stderr, flush=True)

    def wait(self) -> int:
        """Wait for the master (bounded: run time + start-up + stop grace); return its exit code."""
        master = self.procs[0]
        deadline = time.monotonic() + self.run_time + 90 + STOP_GRACE_S
        while master.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                break
            time.sleep(0.1)
        for proc in self.procs[1:]:
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reader.join(timeout=5)
        return master.returncode if master.returncode is not None else -1

    def stop(self) -> None:
        """Ask the master to finish (it writes the report and tells workers to quit), then make sure."""
        master = self.procs[0] if self.procs else None
        if master is not None and master.poll() is None:
            with contextlib.suppress(OSError):
                master.send_signal(signal.SIGTERM)
            try:
                master.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
        for proc in self.procs[1:]:
            stop_process(proc, wait_s=5.0, term_s=5.0)
        if getattr(self, "_reader", None) is not None:
            self._reader.join(timeout=5)
        self.close()

    def close(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None


def report_error(progress_lines: list[str]) -> str | None:
    """The Locust process's one line about a report file it could not write, if it sent one."""
    for line in progress_lines:
        if line.startswith(REPORT_ERROR):
            return line.removeprefix(REPORT_ERROR)
    return None


def read_summary(report_dir: Path) -> dict[str, Any] | None:
    try:
        return loads((report_dir / "summary.json").read_bytes())
    except (OSError, JSONError):
        return None

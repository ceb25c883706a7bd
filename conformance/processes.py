"""Stopping child processes without orphans or zombies: the mock's server process and Locust's
master and workers all end the same way."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, *, wait_s: float = 5.0, term_s: float = 3.0) -> None:  # type: ignore[type-arg]
    """Wait for a child that was already asked to exit, then SIGTERM it, then SIGKILL it; always reaped."""
    if proc.poll() is not None:
        return
    try:
        proc.wait(timeout=wait_s)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.terminate()
    try:
        proc.wait(timeout=term_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

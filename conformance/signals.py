"""SIGTERM ends a command the way Ctrl-C does: `finally` blocks and context managers run.

Python's default SIGTERM handler kills the process on the spot, so a `chatconf run` stopped by CI, a
container runtime or `kill` left its partial reports unwritten, its embedded mock to notice a closed
pipe, and temporary files behind. Here SIGTERM raises `Terminated` (a KeyboardInterrupt, so every
interrupt path already handles it) in the main thread; the command then exits 143 (128 + 15).
A second SIGTERM during the clean-up is ignored; SIGKILL stays the way to force.

Either signal also sets `interrupt_requested()`: an interrupt raised at an arbitrary point can surface
as some other exception (inside Hypothesis' engine it was seen as an empty AssertionError, and the run
went on), so the suite asks the flag, not the exception, whether a check was cut short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (raised where the main thread was)."""


_requested = False


def interrupt_requested() -> bool:
    """Whether SIGINT or SIGTERM arrived while a command ran (see the module docstring)."""
    return _requested


@dataclass
class TermState:
    received: bool = False


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[TermState]:
    """While inside, SIGTERM raises Terminated once; `state.received` says whether it came."""
    state = TermState()
    if threading.current_thread() is not threading.main_thread():
        yield state  # only the main thread may set handlers (a command run from a test thread)
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        global _requested
        if state.received:
            return
        state.received = _requested = True
        raise Terminated()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        global _requested
        _requested = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    previous_int = signal.signal(signal.SIGINT, on_sigint) if signal.getsignal(signal.SIGINT) is \
        signal.default_int_handler else None
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)

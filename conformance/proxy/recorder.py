"""The proxy's recording, written by one thread so the event loop never redacts or serialises a line.

Redacting and serialising a 60-event exchange takes about 2 ms of Python; on the event loop, 100
streams ending within one gap stalled every other stream for up to 200 ms. Here the loop only puts
the finished Exchange on a bounded FIFO queue; a writer thread turns each into its line and appends
it to the live file (RecordingWriter(live=True): flushed per line, readable while it grows). One queue,
and one writer at a time taking a line and writing it under a lock, keep the lines in the order the
exchanges were numbered.

The thread asks the kernel to run it only when the CPU has nothing else to do (SCHED_IDLE, Linux;
elsewhere it runs at normal priority): when the loop's socket wakes it, the kernel switches to the loop
at once instead of letting the writer finish its time slice, and the writer cannot take the GIL back
from the loop in the middle of a burst of events on the loop's CPU (with `--record`, the proxy's added
p99 per event went from 0.88-1.37 ms to 0.52-0.80 ms in the same runs: benchmarks/README.md). On a CPU
other processes keep busy, an idle-class thread gets almost no time (Linux gives it a weight of 3
against 1,024 for a normal thread, and an unprivileged thread cannot leave the class again): once a
quarter of the queue waits, a new writer at normal priority takes over from the next line on (`catch_ups`
counts these), and drops to the idle class itself once it has caught up.

A full queue makes the loop wait for a free slot (backpressure) instead of dropping an exchange: a
recording with gaps would misnumber every later finding. Waiting only happens when exchanges end
faster than the writer can write them for `max_pending` exchanges in a row (a disk that stalls, or a
sustained rate above roughly 500 long streams a second); `waits` counts those puts and `wait_s`
their total time, so a slowed proxy says why (`GET /_proxy/health`, the stop line).

`close()` writes everything queued, then closes the file: the proxy calls it on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exchange import Exchange
from ..outputs import OutputError
from ..recording import RecordingWriter

MAX_PENDING = 1024
"""Finished exchanges waiting for the writer; ten times the concurrency the proxy is measured at."""

_STOP = None


class BackgroundRecorder:
    """`put(ex)` from the event loop; the lines reach `path` in put order, written by a thread."""

    def __init__(self, path: str | Path, *, max_pending: int = MAX_PENDING):
        self.path = Path(path)
        self._writer = RecordingWriter(path, live=True)
        self._queue: queue.Queue[tuple[Exchange, Callable[[], Any] | None] | None] = queue.Queue(max_pending)
        self._catch_up_at = max(1, max_pending // 4)
        self.queued = 0
        self.waits = 0
        self.wait_s = 0.0
        self.catch_ups = 0
        self._closed = False
        self._turn = threading.Lock()   # held by a writer while it takes one line and writes it
        self._stopped = False           # a writer took the end of the queue
        self._urgent = False            # the active writer runs at normal priority (catching up)
        self._threads: list[threading.Thread] = []
        self._active: threading.Thread
        self._start_writer(idle=True)

    @property
    def written(self) -> int:
        """Lines in the file so far."""
        return self._writer.count

    @property
    def error(self) -> OutputError | None:
        """Set when a write failed (full disk): the recording stopped there, the proxy goes on."""
        return self._writer.error

    def put(self, ex: Exchange, events: Callable[[], Any] | None = None) -> None:
        """Queue one finished exchange; waits only while the queue is full. The Exchange must not
        change afterwards (the writer reads it from its own thread). `events`, when given, makes
        its events in that thread, just before its line is written."""
        if self._closed:
            raise ValueError("recording is closed")
        self.queued += 1
        try:
            self._queue.put_nowait((ex, events))
            if self._queue.qsize() >= self._catch_up_at:
                self._catch_up()
            return
        except queue.Full:   # a catch-up writer started when the queue was a quarter full
            pass
        self.waits += 1
        started = time.perf_counter()
        while True:
            try:
                self._queue.put((ex, events), timeout=1.0)
                break
            except queue.Full:
                if not self._active.is_alive():  # pragma: no cover - _run catches everything per line
                    raise RuntimeError("the recording thread stopped") from None
        self.wait_s += time.perf_counter() - started

    def close(self) -> None:
        """Write every queued line, then close the file; raises the OutputError of a failed write."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            for thread in self._threads:
                thread.join()
        self._writer.close()

    def _catch_up(self) -> None:
        """A backlog: unless a normal-priority writer already works on it, start one; the idle-class
        writer stops after the line it is on."""
        if not self._urgent:
            self._urgent = True
            self.catch_ups += 1
            self._start_writer(idle=False)

    def _start_writer(self, *, idle: bool) -> None:
        """Start a writer and make it the active one (before it runs: it checks that it is)."""
        thread = threading.Thread(target=self._run, args=(idle,), name="chatconf-recorder", daemon=True)
        self._threads = [*(t for t in self._threads if t.is_alive()), thread]
        self._active = thread
        thread.start()

    def _run(self, idle: bool) -> None:
        """Take and write lines one at a time under `_turn`, so a writer taking over continues exactly
        where the one before stopped, until another writer is the active one or the end is reached."""
        if idle:
            run_when_idle()
        me = threading.current_thread()
        while True:
            with self._turn:
                if self._stopped or self._active is not me:
                    return
                item = self._queue.get()
                if item is _STOP:
                    self._stopped = True
                    return
                self._write(*item)
                if not idle and self._queue.empty():   # caught up: the idle class from now on
                    run_when_idle()
                    idle = True
                    self._urgent = False

    def _write(self, ex: Exchange, events: Callable[[], Any] | None) -> None:
        try:
            if events is not None:
                ex.events = events()
            self._writer.write(ex)
        except Exception as exc:  # pragma: no cover - write() turns every failure into a line or .error
            if self._writer.error is None:
                self._writer.error = OutputError(self.path, OSError(0, f"recording thread: {exc!r}"))


def run_when_idle() -> None:
    """Give the calling thread the kernel's idle scheduling class where there is one (Linux): it runs
    only on CPU time no normal thread wants, and a normal thread that wakes takes the CPU from it."""
    set_policy = getattr(os, "sched_setscheduler", None)
    idle = getattr(os, "SCHED_IDLE", None)
    if set_policy is None or idle is None:
        return
    with contextlib.suppress(OSError):   # a sandbox that forbids it: normal priority, as before
        set_policy(0, idle, os.sched_param(0))   # 0: the calling thread

"""The load worker's collection pacing keeps CPython's young generation small under churn.

loadtests/gcpace.py: with the worker's thresholds, a heap that frees as fast as it allocates (streams
ending as others start) while it keeps a slowly growing set (samples) never reaches the automatic
threshold, so the young generation grows until one long collection visits it all. The pacer collects
on a clock. Each case runs in a fresh interpreter (the collector's settings are process-wide).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHURN = textwrap.dedent(
    """
    import gc, sys, time
    from collections import deque
    import gevent
    from loadtests.gcpace import pace_collections, settle_heap

    settle_heap()
    pacer = gevent.spawn(pace_collections, 0.05, 4) if sys.argv[1] == "paced" else None
    in_flight, kept = deque(), []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:       # a second of churn, yielding as a worker's loop does
        for _ in range(50):
            in_flight.append([None])          # a request starts...
            if len(in_flight) > 2000:
                in_flight.popleft()           # ...and an older one ends
        if len(kept) < 30000:
            kept.append([0.0])                # a sample, kept to the end
        gevent.sleep(0)
    young = len(gc.get_objects(0)) + len(gc.get_objects(1))
    print(young, len(kept))
    """
)


def young_after_churn(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, timeout=60, check=True)
    young, kept = out.stdout.split()
    return int(young), int(kept)


def test_without_pacing_the_young_generations_hold_everything() -> None:
    """The known-bad: the worker's thresholds alone never collect this heap."""
    young, kept = young_after_churn("unpaced")
    assert young >= kept + 2000


def test_paced_collections_keep_the_young_generations_small() -> None:
    young, kept = young_after_churn("paced")
    assert kept >= 5000  # the loop ran long enough to matter
    assert young < kept / 2, (young, kept)

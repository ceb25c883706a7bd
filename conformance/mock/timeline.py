"""When each part of a streamed answer is written: absolute deadlines for the steps of one stream,
with the injected incidents (stall, dropped connection, mid-stream error) placed on them.

Laid out before the first write, so the send loop only waits and writes. Deadlines are absolute
(from the request's arrival), so a late write never pushes the rest of the stream later. Parts
that share a deadline and carry no token of their own (finish chunk, `[DONE]`, a usage chunk with
no lag, fault bytes) go out in the same write as the part before them: one write instead of
several, as a server flushing its buffer would send them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .latency import LatencyProfile
from .render import ROLE, TOK, USAGE, Step

NOT_TOKEN = -1        # marks: >= 0 is the token event's number (0 = first token)
DROP = -2             # close the connection here, without a terminating chunk
MIDSTREAM_ERROR = -3  # send the error event here and end the body



class Timeline:
    """Parallel lists rather than a tuple per write: three containers per stream instead of one per
    event keep the cyclic GC's young generation small while thousands of streams are open."""

    __slots__ = ("deadlines", "marks", "payloads")

    def __init__(self) -> None:
        self.deadlines: list[float] = []
        self.payloads: list[bytes] = []
        self.marks: list[int] = []

    def __iter__(self) -> Iterator[tuple[float, bytes, int]]:
        return zip(self.deadlines, self.payloads, self.marks, strict=True)

    def add(self, deadline: float, payload: bytes, mark: int) -> None:
        self.deadlines.append(deadline)
        self.payloads.append(payload)
        self.marks.append(mark)


def timeline(steps: list[Step], latency: LatencyProfile, rng: random.Random, t0: float, *,
             incidents: dict[str, int], stall_s: float = 0.0, slow_headers_s: float = 0.0) -> Timeline:
    """The writes of one stream in order. Random draws happen in step order, so a seeded stream
    gets the same timings whatever its faults."""
    first_tok = t0 + latency.first_token_s(rng)
    shift = slow_headers_s if "slow_headers" in incidents else 0.0   # pushes every later deadline
    merge = not latency.is_zero   # with no latency every part keeps its own write, like production
    stall, drop, error = incidents.get("stall"), incidents.get("drop"), incidents.get("midstream_error")
    out = Timeline()
    deadlines, payloads = out.deadlines, out.payloads
    deadline = t0
    tokens = 0
    for step in steps:
        kind = step.kind
        if kind == TOK:
            if tokens:
                deadline += latency.gap_s(rng)
                if stall == tokens:
                    shift += stall_s
                incident = DROP if drop == tokens else MIDSTREAM_ERROR if error == tokens else None
                if incident is not None:   # right after the previous write, not at this token's time
                    out.add(deadlines[-1] if deadlines else t0, b"", incident)
                    return out
            else:
                deadline = first_tok
        elif kind == ROLE:
            deadline = t0 + latency.role_s(first_tok - t0)
        elif kind == USAGE:
            deadline += latency.usage_lag_s()
        target = deadline + shift
        if merge and kind != TOK and kind != ROLE and deadlines and deadlines[-1] == target:
            payloads[-1] += step.encode()
            continue
        out.add(target, step.encode(), tokens if kind == TOK else NOT_TOKEN)
        if kind == TOK:
            tokens += 1
    return out

"""A stream's timeline: absolute deadlines from the latency profile, incidents placed on it, parts
that share a deadline written together only when latency is simulated, same timings for a seed."""

from __future__ import annotations

import itertools
import random

from conformance.mock.latency import NONE, LatencyProfile
from conformance.mock.render import DONE, END, FIN, RAW, ROLE, TOK, USAGE, Step
from conformance.mock.timeline import DROP, MIDSTREAM_ERROR, NOT_TOKEN, timeline

LAT = LatencyProfile(name="t", network_rtt_ms=10, role_chunk_ms=20, ttft_ms=100, itl_ms=30, jitter=0.0,
                     usage_lag_ms=5)
T0 = 1000.0


def steps(tokens: int = 4, usage: bool = True) -> list[Step]:
    out = [Step(ROLE, [b"role\n"])]
    out += [Step(TOK, [f"tok{i}\n".encode()]) for i in range(tokens)]
    out.append(Step(FIN, [b"fin\n"]))
    if usage:
        out.append(Step(USAGE, [b"usage\n"]))
    out.append(Step(END, [DONE]))
    return out


def test_deadlines_follow_the_profile_from_the_request_arrival() -> None:
    writes = list(timeline(steps(), LAT, random.Random(1), T0, incidents={}))
    deadlines = [round(d - T0, 6) for d, _, _ in writes]
    marks = [m for _, _, m in writes]
    # role at rtt+role, first token at rtt+ttft, then one gap per token, usage after its lag
    assert deadlines == [0.03, 0.11, 0.14, 0.17, 0.2, 0.205]
    assert marks == [NOT_TOKEN, 0, 1, 2, 3, NOT_TOKEN]
    assert writes[4][1] == b"tok3\nfin\n"                 # finish chunk rides with the last token
    assert writes[5][1] == b"usage\n" + DONE               # [DONE] rides with the usage chunk


def test_without_latency_every_part_keeps_its_own_write() -> None:
    writes = list(timeline(steps(), NONE, random.Random(1), T0, incidents={}))
    assert [p for _, p, _ in writes] == [s.items[0] for s in steps()]
    assert {d for d, _, _ in writes} == {T0}


def test_fault_bytes_go_out_with_the_part_before_them() -> None:
    faulty = steps(usage=False)
    faulty.insert(2, Step(RAW, [b"garbage\n"]))
    writes = list(timeline(faulty, LAT, random.Random(1), T0, incidents={}))
    assert writes[1][1] == b"tok0\ngarbage\n" and writes[1][2] == 0
    assert b"".join(p for _, p, _ in writes) == b"".join(s.items[0] for s in faulty)   # nothing lost


def test_same_seed_same_timings_and_jitter_stays_in_its_band() -> None:
    jittery = LatencyProfile(name="j", ttft_ms=100, itl_ms=30, jitter=0.5)
    a = [d for d, _, _ in timeline(steps(30), jittery, random.Random(7), T0, incidents={})]
    b = [d for d, _, _ in timeline(steps(30), jittery, random.Random(7), T0, incidents={})]
    c = [d for d, _, _ in timeline(steps(30), jittery, random.Random(8), T0, incidents={})]
    assert a == b and a != c
    gaps = [y - x for x, y in itertools.pairwise(a[1:])]   # no usage lag: finish, usage, [DONE] ride along
    assert len(gaps) == 29
    assert all(0.015 - 1e-9 <= g <= 0.045 + 1e-9 for g in gaps)


def test_a_stall_pushes_every_later_deadline() -> None:
    plain = [d for d, _, _ in timeline(steps(), LAT, random.Random(1), T0, incidents={})]
    stalled = [d for d, _, _ in timeline(steps(), LAT, random.Random(1), T0, incidents={"stall": 2}, stall_s=0.5)]
    assert stalled[:3] == plain[:3]
    assert [round(s - p, 6) for s, p in zip(stalled[3:], plain[3:], strict=True)] == [0.5, 0.5, 0.5]


def test_slow_headers_push_the_whole_stream() -> None:
    plain = [d for d, _, _ in timeline(steps(), LAT, random.Random(1), T0, incidents={})]
    slow = [d for d, _, _ in timeline(steps(), LAT, random.Random(1), T0, incidents={"slow_headers": 1},
                                      slow_headers_s=2.0)]
    assert [round(s - p, 6) for s, p in zip(slow, plain, strict=True)] == [2.0] * len(plain)


def test_drop_and_midstream_error_end_the_timeline_right_after_the_previous_write() -> None:
    for key, mark in (("drop", DROP), ("midstream_error", MIDSTREAM_ERROR)):
        writes = list(timeline(steps(), LAT, random.Random(1), T0, incidents={key: 2}))
        assert [m for _, _, m in writes] == [NOT_TOKEN, 0, 1, mark]
        assert writes[-1][0] == writes[-2][0] and writes[-1][1] == b""

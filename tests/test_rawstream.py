"""RawStream: an SSE body kept raw while in flight decodes to exactly the events a live decoder gives.

The load client keeps each stream's bytes and arrival times and decodes them when the stream is
scored (conformance/rawstream.py). Every field of every event, its time above all, must be what
`SSEDecoder.feed` would have produced as the pieces arrived: for any split of the bytes, with
invalid UTF-8, an unterminated last event, and across the switch to live decoding past RAW_LIMIT.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import rawstream
from conformance.rawstream import RawStream
from conformance.sse import SSEDecoder
from tests.test_sse_decoder import CASES

JUNK = [b"\xff", b"\xe4\xbd", b"\r", b"\n\n", b": ping\n", b"data: \xc3\n\n", b"event: x\ndata: y"]


def fields(events: list) -> list[tuple]:
    return [(e.data, e.event, e.id, e.retry, e.t_ns, e.index, e.terminated, e.not_utf8) for e in events]


def live(pieces: list[tuple[bytes, int]]) -> list[tuple]:
    decoder, events = SSEDecoder(), []
    for piece, t in pieces:
        events += decoder.feed(piece, t)
    return fields(events + decoder.close())


def kept(pieces: list[tuple[bytes, int]]) -> list[tuple]:
    raw = RawStream()
    for piece, t in pieces:
        raw.add(piece, t)
    return fields(raw.events())


@st.composite
def arrivals(draw: st.DrawFn) -> list[tuple[bytes, int]]:
    """A stream (a real transcript, with junk spliced in) cut into pieces at increasing times."""
    _, body, _ = draw(st.sampled_from(CASES))
    inserts = draw(st.lists(st.tuples(st.integers(0, len(body)), st.sampled_from(JUNK)), max_size=4))
    for at, junk in sorted(inserts, reverse=True):
        body = body[:at] + junk + body[at:]
    if draw(st.booleans()):  # end without the last blank line
        body = body.rstrip(b"\r\n")
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=40))))
    bounds = [0, *cuts, len(body)]
    return [(body[a:b], 1_000 + 7 * i) for i, (a, b) in enumerate(itertools.pairwise(bounds)) if b > a]


@settings(max_examples=300, deadline=None)
@given(arrivals(), st.sampled_from([rawstream.RAW_LIMIT, 0, 40, 300]))
def test_kept_raw_decodes_to_the_live_events(pieces: list[tuple[bytes, int]], limit: int) -> None:
    """Also with a limit the stream passes part way (live decoding from there on)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rawstream, "RAW_LIMIT", limit)
        assert kept(pieces) == live(pieces)


def test_each_event_keeps_the_time_of_its_own_piece() -> None:
    """Known-bad guard: stamping with the last read's time (or the decode time) would fail here."""
    pieces = [(b"data: a\n\n", 10), (b"data: b\n", 20), (b"\n", 30), (b"data: [DONE]\n\n", 40)]
    assert [(f[0], f[4]) for f in kept(pieces)] == [("a", 10), ("b", 20), ("[DONE]", 40)]


def test_memory_stays_bounded_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past RAW_LIMIT nothing more is kept raw: the stream is decoded as it arrives."""
    monkeypatch.setattr(rawstream, "RAW_LIMIT", 1000)
    raw = RawStream()
    for i in range(500):
        raw.add(b'data: {"n":%d}\n\n' % i, i)
    assert raw.pieces == 0 and len(raw._data) == 0
    events = raw.events()
    assert [e.data for e in events] == [f'{{"n":{i}}}' for i in range(500)]
    assert [e.t_ns for e in events] == list(range(500))


def test_pieces_count_what_is_kept() -> None:
    raw = RawStream()
    for i in range(3):
        raw.add(b"data: x\n\n", i)
    assert raw.pieces == 3

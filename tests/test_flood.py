"""A server that floods events (issue 13, item 4): an Exchange keeps a bounded head and tail of the
stream, the stream rules still see every event as it arrives, and what was cut is said in the
Exchange, the recording, the evidence and `chatconf validate`."""

from __future__ import annotations

from pathlib import Path

from conformance.client import ChatClient, ClientConfig
from conformance.exchange import EventKeeper, Exchange
from conformance.limits import KEEP_HEAD_EVENTS, KEEP_TAIL_EVENTS
from conformance.profiles import load_profile
from conformance.recording import RecordingWriter, iter_recording
from conformance.rules import LiveStreamCheck, check_exchange
from conformance.sse import SSEEvent
from conformance.suite.evidence import exchange_evidence
from conformance.validate import validate_paths

from .hostile_server import FLOOD_ODD_ID, HostileServer

STREAM = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
PROFILE = load_profile("openai")


def _flooded(**client_kwargs: object) -> Exchange:
    with HostileServer("flood", flood_bytes=1024 * 1024) as server, \
            ChatClient(ClientConfig(base_url=server.base_url, api_key="k", deadline_s=30),
                       **client_kwargs) as client:  # type: ignore[arg-type]
        return client.chat(STREAM)


def test_keeper_keeps_head_and_tail_in_order_and_counts_the_rest():
    keeper = EventKeeper(head_events=3, head_bytes=1000, tail_events=2)
    for i in range(10):
        keeper.add(SSEEvent(f"e{i}", index=i))
    assert [ev.index for ev in keeper.events()] == [0, 1, 2, 8, 9]
    assert (keeper.dropped_events, keeper.dropped_chars) == (5, 10)
    assert "5 events" in (keeper.note(checked=True) or "")
    small = EventKeeper(head_events=3, head_bytes=1000, tail_events=2)
    small.add(SSEEvent("x", index=0))
    assert small.note(checked=True) is None and small.dropped_events == 0


def test_keeper_head_is_bounded_in_bytes_too():
    keeper = EventKeeper(head_events=100, head_bytes=10, tail_events=1)
    for i in range(5):
        keeper.add(SSEEvent("abcd", index=i))
    assert [ev.index for ev in keeper.events()] == [0, 1, 4]


def test_flooded_stream_is_kept_bounded_and_judged_whole():
    ex = _flooded(stream_rules=lambda ex: LiveStreamCheck(ex, PROFILE))
    assert ex.transport_error is None, ex.transport_error
    assert len(ex.events) == KEEP_HEAD_EVENTS + KEEP_TAIL_EVENTS  # type: ignore[arg-type]
    assert ex.truncated and ex.dropped_events > 5_000
    assert ex.events[-1].is_done  # type: ignore[index]
    assert any("not kept" in note and "saw every event" in note for note in ex.notes)
    # The odd id sits among the dropped events; the rules saw it as it arrived.
    kept = "".join(ev.data for ev in ex.events)  # type: ignore[union-attr]
    assert FLOOD_ODD_ID not in kept
    same_id = [v for v in check_exchange(ex, PROFILE) if v.rule == "stream.same-id"]
    assert same_id and FLOOD_ODD_ID in same_id[0].message
    assert same_id[0].event is not None and same_id[0].event >= KEEP_HEAD_EVENTS
    evidence = exchange_evidence(ex, violations=same_id)
    assert "events not kept" in evidence["events_not_kept"]
    assert evidence["event_count"] == len(ex.events) + ex.dropped_events  # type: ignore[arg-type]


def test_truncated_recording_says_so_and_is_not_judged_silently(tmp_path: Path):
    ex = _flooded()  # no live rules: what was cut was never checked
    assert any("rules run later see only the kept events" in note for note in ex.notes)
    path = tmp_path / "recording.jsonl"
    with RecordingWriter(path) as writer:
        writer.write(ex)
    assert path.stat().st_size < 512 * 1024
    back = next(iter_recording(path.read_text(encoding="utf-8").splitlines()))
    assert (back.dropped_events, back.dropped_chars) == (ex.dropped_events, ex.dropped_chars)
    assert [e.index for e in back.events] == [e.index for e in ex.events]  # type: ignore[union-attr]
    found = list(check_exchange(back, PROFILE))
    assert any(v.rule == "stream.not-kept" and str(ex.dropped_events) in v.message for v in found)
    [result] = validate_paths([str(path)], profile=PROFILE)
    assert any(w.rule == "stream.not-kept" for w in result.warnings), result.as_dict()

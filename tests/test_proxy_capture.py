"""ExchangeCapture keeps a stream raw and decodes it again for the recording: the events must be the
ones the decoder gave as the chunks were forwarded (data, times, indices, flags), in every ending."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.profiles import load_profile
from conformance.proxy.capture import ExchangeCapture
from conformance.sse import SSEDecoder

PROFILE = load_profile("dashscope")
BODY = b'{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"stream":true}'
CHUNK = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1770285809,"model":"qwen-plus",'
         b'"choices":[{"index":0,"delta":{"content":"%d"},"finish_reason":null}]}\n\n')
PIECES = [(CHUNK % 0)[:40], (CHUNK % 0)[40:] + (CHUNK % 1)[:7], (CHUNK % 1)[7:], b"data: \xff bad\n\n",
          b"data: [DONE]\n\n", b"data: trailing-unterminated"]


def fields(events: Any) -> list[tuple[Any, ...]]:
    return [(e.data, e.t_ns, e.index, e.terminated, e.not_utf8) for e in events]


def live(pieces: list[bytes], *, close: bool) -> list[tuple[Any, ...]]:
    decoder, events = SSEDecoder(), []
    for i, piece in enumerate(pieces):
        events += decoder.feed(piece, 1000 + i)
    return fields(events + (decoder.close() if close else []))


def capture(pieces: list[bytes], **kw: Any) -> ExchangeCapture:
    cap = ExchangeCapture(PROFILE, method="POST", url="http://up/v1/chat/completions",
                          headers=[("content-type", "application/json")], body=BODY, source="test", **kw)
    cap.sent()
    cap.response(200, [("content-type", "text/event-stream")], t_ns=999)
    for i, piece in enumerate(pieces):
        cap.chunk(piece, 1000 + i)
    return cap


@pytest.mark.parametrize("decode_events", [True, False])
def test_recorded_events_are_the_forwarded_ones(decode_events: bool) -> None:
    cap = capture(PIECES)
    cap.finish(decode_events=decode_events)
    events = cap.ex.events if decode_events else cap.events_later()
    assert fields(events) == live(PIECES, close=True)
    assert fields(events)[-1][0] == "trailing-unterminated" and not events[-1].terminated


def test_a_client_that_left_keeps_what_was_seen_without_the_unterminated_tail() -> None:
    cap = capture(PIECES)
    cap.finish(client_gone=True)
    assert fields(cap.ex.events) == live(PIECES, close=False)


def test_a_capture_stopped_at_its_size_limit_keeps_the_pieces_before_the_limit() -> None:
    cap = capture(PIECES, max_bytes=len(PIECES[0]) + len(PIECES[1]))
    cap.finish()
    assert fields(cap.ex.events) == live(PIECES[:2], close=False)
    assert any("not checked" in note for note in cap.ex.notes)


def test_without_a_recording_nothing_of_the_stream_is_kept() -> None:
    cap = capture(PIECES, keep_events=False)
    assert cap._raw is None
    cap.finish()
    assert cap.ex.events == []


def _findings(body: bytes, *, early: bool, **finish: Any) -> list[tuple[Any, ...]]:
    cap = ExchangeCapture(PROFILE, method="POST", url="http://up/v1/chat/completions",
                          headers=[("content-type", "application/json")], body=body, source="test")
    cap.sent()
    cap.ex.sent_at = 1770285809.0   # the chunk's `created`: both captures judge it against the same time
    if early:
        cap.check_request_early()
    cap.response(200, [("content-type", "text/event-stream")], t_ns=999)
    cap.chunk(CHUNK % 0, 1000)
    return [(v.rule, v.message, v.entry, v.event, v.pointer, v.level) for v in cap.finish(entry=7, **finish)]


@pytest.mark.parametrize("body", [BODY, BODY.replace(b'"stream"', b'"temperature":5,"stream"'),
                                  b'{"model":"qwen-plus","messages":[],"stream":true}'])
@pytest.mark.parametrize("finish", [{}, {"client_gone": True}, {"transport_error": "connection reset"}])
def test_request_rules_run_early_give_the_findings_of_the_end(body: bytes, finish: dict[str, Any]) -> None:
    early = _findings(body, early=True, **finish)
    assert early == _findings(body, early=False, **finish)
    assert any(rule.startswith("request.") for rule, *_ in early) == (body != BODY)


def test_a_request_found_clean_early_is_not_checked_again_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.proxy import capture as capture_module

    def again(*_: Any) -> None:
        raise AssertionError("request rules ran again")

    cap = ExchangeCapture(PROFILE, method="POST", url="http://up/v1/chat/completions", headers=[], body=BODY,
                          source="test")
    cap.check_request_early()
    monkeypatch.setattr(capture_module, "request_findings", again)
    monkeypatch.setattr(capture_module, "check_request", again)
    cap.response(200, [("content-type", "text/event-stream")], t_ns=999)
    found = cap.finish(entry=1)
    assert found and all(v.rule.startswith("stream.") for v in found)   # no events: the stream rules still ran

"""The live client and the recording against servers that misbehave at the byte level: strings no
encoder likes, invalid UTF-8 in a stream, an echoed key, silence, trickled headers, and connections
dropped between requests (the hostile server's modes)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.client import ChatClient, ClientConfig, TargetUnresponsive
from conformance.exchange import Exchange, HTTPRequest
from conformance.jsonutil import dumps, loads
from conformance.recording import RecordingWriter, iter_recording
from conformance.redact import REDACTED, clear_secrets, redact_text, register_secret, report_text
from conformance.sse import SSEDecoder, SSEEvent

from .hostile_server import HostileServer

BODY = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
CANARY = "canary-7f3a9c2e1b"


@pytest.fixture
def canary():
    register_secret(CANARY)
    yield CANARY
    clear_secrets()


# -- item 1: any string survives the recording -------------------------------------------------------

NASTY = "lone \ud800 and \udfff, NUL \x00, ESC \x1b, C1 \x85\x9f, replaced \ufffd, non-char \uffff"


def test_dumps_keeps_lone_surrogates_as_escapes():
    text = dumps({"m": NASTY, "big": 2 ** 70})
    text.encode("utf-8")  # never raises
    assert loads(text) == {"m": NASTY, "big": 2 ** 70}
    assert loads(dumps({"m": NASTY}, indent=True)) == {"m": NASTY}


def test_recording_writes_every_exchange_whatever_the_strings(tmp_path: Path):
    exchanges = [
        Exchange(request=HTTPRequest(body=BODY), status=400, body={"error": {"message": NASTY, "code": "\udcff"}}),
        Exchange(request=HTTPRequest(body=BODY), status=400, body_text=NASTY, transport_error=NASTY, notes=[NASTY]),
        Exchange(request=HTTPRequest(body={**BODY, "stream": True}), status=200,
                 events=[SSEEvent('{"x":"\ud800"}'), SSEEvent("[DONE]")]),
    ]
    path = tmp_path / "recording.jsonl"
    with RecordingWriter(path) as writer:
        for ex in exchanges:
            writer.write(ex)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    back = list(iter_recording(lines))
    assert back[0].body["error"]["message"] == NASTY  # lossless
    assert back[1].body_text == NASTY and back[1].notes == [NASTY]
    assert back[2].events[0].data == '{"x":"\ud800"}'


def test_report_text_is_safe_for_utf8_xml_and_consoles():
    out = report_text(NASTY)
    out.encode("utf-8")
    assert "\\ud800" in out and "\\x00" in out and "\\x1b" in out and "\\uffff" in out
    assert "\ufffd" in out  # a real character, kept


def test_body_that_is_not_utf8_is_kept_with_a_note():
    with HostileServer("bad-strings") as server, ChatClient(ClientConfig(server.base_url)) as client:
        parsed = client.chat(BODY)
        ex = client.chat(BODY)
    assert parsed.body["error"]["message"].startswith("bad \ud800 surrogate, NUL \x00")
    assert ex.status == 400 and ex.transport_error is None and ex.body is None
    assert "\ufffd" in ex.body_text and "\\ud800" in ex.body_text
    assert any("not valid UTF-8" in n for n in ex.notes)


# -- item 2: invalid UTF-8 in a live stream is reported ----------------------------------------------

def test_decoder_locates_invalid_utf8_and_ignores_a_real_replacement_character():
    dec = SSEDecoder()
    events = dec.feed(b"data: a\n\ndata: \xef\xbf\xbd sent as UTF-8\n\ndata: b\xe2") + dec.feed(b"\x28c\n\n")
    events += dec.close()
    assert [e.index for e in events] == [0, 1, 2]
    assert dec.decode_errors == 1
    assert dec.decode_error_event == 2
    assert dec.decode_error_offset == len(b"data: a\n\ndata: \xef\xbf\xbd sent as UTF-8\n\ndata: b")


def test_decoder_counts_a_stream_cut_inside_a_character():
    dec = SSEDecoder()
    dec.feed(b"data: ok\n\ndata: x\xe2\x82")
    dec.close()
    assert dec.decode_errors == 1 and dec.decode_error_event == 1 and dec.decode_error_offset == 17


def test_live_stream_with_invalid_utf8_is_a_stream_json_finding_at_its_event():
    """The stream arrived whole (no transport error); the event that held the bytes breaks stream.json,
    the rule a capture of the same bytes breaks under `chatconf validate` (and the load client's)."""
    from conformance.profiles import load_profile
    from conformance.rules import check_exchange
    from loadtests.checking import check_stream

    with HostileServer("sse-bad-utf8") as server, ChatClient(ClientConfig(server.base_url)) as client:
        ex = client.chat({**BODY, "stream": True})
    assert ex.status == 200 and len(ex.events) == 4 and ex.transport_error is None
    assert [ev.index for ev in ex.events if ev.not_utf8] == [1] and "caf\ufffd \ufffd" in ex.events[1].data
    assert any(n.startswith("invalid UTF-8 in event 1 (byte ") for n in ex.notes)
    profile = load_profile("dashscope")
    found = [(v.rule, v.event) for v in check_exchange(ex, profile) if v.rule in ("stream.json", "stream.terminated")]
    assert found == [("stream.json", 1)]
    assert [(v["rule"], v["event"]) for v in check_stream(ex, profile) if v["rule"] == "stream.json"] == [
        ("stream.json", 1)]


# -- item 3: the key the harness sent never leaves the process ---------------------------------------

def test_registered_secret_and_its_encodings_are_redacted(canary):
    raw = canary.encode()
    for form in (canary, f"Bearer {canary}", "%22" + canary, base64.b64encode(raw).decode(),
                 base64.b64encode(b"Bearer " + raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
                 base64.b64encode(raw + b":").decode()):
        out = redact_text(f"echo: {form}!")
        assert canary not in out and base64.b64encode(raw).decode() not in out and REDACTED in out, form


def test_echoed_key_is_scrubbed_from_the_exchange_and_recording(canary, tmp_path: Path):
    path = tmp_path / "r.jsonl"
    with HostileServer("echo-key") as server, RecordingWriter(path) as rec, \
            ChatClient(ClientConfig(server.base_url, api_key=canary), on_exchange=rec.write) as client:
        ex = client.chat(BODY)
    assert ex.status == 401
    text = dumps(ex.body) + ex.body_text + dumps(ex.headers)
    assert canary not in text and ex.body["model"] == REDACTED
    line = path.read_text()
    assert canary not in line and base64.b64encode(canary.encode()).decode() not in line


# -- item 4: a hard deadline and a circuit breaker ---------------------------------------------------

def test_trickled_headers_end_at_the_deadline():
    with HostileServer("trickle-headers") as server, \
            ChatClient(ClientConfig(server.base_url, read_timeout_s=2, deadline_s=3)) as client:
        start = time.monotonic()
        ex = client.chat(BODY)
        elapsed = time.monotonic() - start
    assert ex.status is None and ex.transport_error.startswith("timed out: no response headers within the 3 s")
    assert elapsed < 5


def test_breaker_stops_sending_after_three_silent_exchanges():
    with HostileServer("hang") as server, \
            ChatClient(ClientConfig(server.base_url, read_timeout_s=0.3, deadline_s=1)) as client:
        for _ in range(3):
            assert client.chat(BODY).transport_error.startswith("timed out")
        start = time.monotonic()
        with pytest.raises(TargetUnresponsive, match="target stopped answering: 3 requests in a row got no response"):
            client.chat(BODY)
        assert time.monotonic() - start < 0.1
        assert client.sent == 3


def test_breaker_counts_only_consecutive_silence():
    with HostileServer("drop-second") as server, ChatClient(ClientConfig(server.base_url, max_silent=1)) as client:
        for _ in range(4):
            assert client.chat(BODY).status == 200


# -- item 5: a dropped keep-alive connection is resent once ------------------------------------------

def test_dropped_keepalive_connection_is_retried_once_transparently():
    with HostileServer("drop-second") as server, ChatClient(ClientConfig(server.base_url)) as client:
        first = client.chat(BODY)
        second = client.chat(BODY)
    assert first.status == 200 and first.transport_error is None
    assert second.status == 200 and second.transport_error is None, second.transport_error
    assert second.body["choices"][0]["message"]["content"] == "hi"
    assert client.sent == 2 and client.reconnects == 1
    assert any("resent once on a new connection" in n for n in second.notes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["key=", "api_key=", "Access-Token=", "=", "bearer ", "BeArEr\t", "sk-", "Sk-", "x",
                                  "abcdefgh", " ", "&", "\u0130", "\u0131", "\u017f", "\u212a", "ke", "y"]),
                max_size=12).map("".join))
def test_the_key_pattern_shortcut_never_skips_a_match(text):
    """redact_text skips the key patterns for text without `=`, `sk-` or `bearer`: only where none can match
    (case-insensitive letters included: dotted and dotless i, long s, the Kelvin sign)."""
    from conformance.redact import _KEY_PATTERNS, _replacement

    expected = text
    for pattern in _KEY_PATTERNS:
        expected = pattern.sub(_replacement, expected)
    assert redact_text(text) == expected

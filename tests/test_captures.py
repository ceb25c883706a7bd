"""Capture readers: what each file format turns into (Exchanges a rule can check), and the
one-line CaptureError for everything that is not a capture."""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.captures import NOTE_SINGLE_CHUNK, CaptureError, NotACapture, detect_format, read_path
from conformance.captures.jsonl_reader import read_jsonl
from conformance.exchange import Exchange, HTTPRequest
from conformance.recording import write_recording
from conformance.resources import fixtures_dir
from conformance.sse import SSEEvent

CID = "chatcmpl-3bb05cf5-cd81-4fbc-a5f0-b8d67a025022"
CHUNK = {"choices": [{"delta": {"content": "你好 👋"}, "finish_reason": None, "index": 0, "logprobs": None}],
         "object": "chat.completion.chunk", "usage": None, "created": 1715931028, "system_fingerprint": None,
         "model": "qwen-plus", "id": CID}
COMPLETION = {"choices": [{"message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop",
                           "index": 0, "logprobs": None}], "object": "chat.completion",
              "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
              "created": 1770285809, "system_fingerprint": None, "model": "qwen-plus", "id": CID}
ERROR = {"error": {"code": "invalid_parameter_error", "param": None, "type": "invalid_request_error",
                   "message": "developer is not one of ['system', 'assistant', 'user', 'tool', 'function']"},
         "id": CID}
REQUEST = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Who are you?"}], "stream": True,
           "stream_options": {"include_usage": True}}


def sse_text(*payloads: object, eol: str = "\n") -> str:
    return "".join(f"data: {p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)}{eol}{eol}"
                   for p in payloads)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def one(path: Path, fmt: str = "auto") -> Exchange:
    exchanges = list(read_path(path, fmt))
    assert len(exchanges) == 1
    return exchanges[0]


# -- raw SSE transcripts ---------------------------------------------------------------------------

def test_sse_transcript_is_one_streamed_exchange_with_status_assumed(tmp_path: Path) -> None:
    ex = one(write(tmp_path, "s.sse", "\ufeff" + sse_text(CHUNK, CHUNK, "[DONE]", eol="\r\n")))
    assert ex.request is None and ex.status == 200
    assert any("200 assumed" in n for n in ex.notes)
    assert isinstance(ex.events, Iterator)  # one-shot: a multi-GB file is never held in memory
    events = list(ex.events)
    assert [e.json for e in events[:2]] == [CHUNK, CHUNK]
    assert events[-1].is_done and [e.index for e in events] == [0, 1, 2]


def test_txt_and_unknown_extensions_are_sniffed_as_sse(tmp_path: Path) -> None:
    for name in ("curl-output.txt", "capture.log", "noext"):
        path = write(tmp_path, name, ": comment\n\n" + sse_text(CHUNK, "[DONE]"))
        assert detect_format(path) == "sse"
        assert len(list(one(path).events)) == 2


def test_sse_error_body_on_a_stream_request_becomes_an_error_exchange(tmp_path: Path) -> None:
    """DashScope answers a rejected stream request with one `data: {"error": ...}` line (F8)."""
    ex = one(write(tmp_path, "err.sse", sse_text(ERROR)))
    assert ex.events is None and ex.status is None
    assert ex.body == ERROR and ex.body_text.startswith("data: {")
    assert ex.is_error


@pytest.mark.parametrize("before", [0, 1, 2000])
def test_sse_invalid_utf8_marks_the_event_that_holds_it_wherever_it_sits(tmp_path: Path, before: int) -> None:
    """Issue 13 item 7: it used to make the file unreadable; now the event is decoded as a live client
    decodes it (U+FFFD) and marked, so the stream rules report it, as they do on the live path."""
    good = sse_text(CHUNK).encode()
    path = write(tmp_path, "bad.sse", good * before + b"data: {\"x\": \"\xc3\x28\"}\n\n" + good)
    events = list(one(path).events)
    assert [ev.index for ev in events if ev.not_utf8] == [before]
    assert events[before].data == '{"x": "\ufffd("}' and events[before].json == {"x": "\ufffd("}
    assert not any(ev.not_utf8 for ev in events[before + 1:])


def _peak_while_iterating(path: Path, chunks: int) -> int:
    block = sse_text(CHUNK).encode() * 1000
    with path.open("wb") as fh:
        for _ in range(chunks // 1000):
            fh.write(block)
    tracemalloc.start()
    try:
        count = sum(1 for _ in one(path).events)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert count == chunks


def test_sse_transcript_memory_stays_flat(tmp_path: Path) -> None:
    """4x the chunks, same peak: the transcript is streamed in blocks, never held whole."""
    small = _peak_while_iterating(tmp_path / "small.sse", 5_000)
    large = _peak_while_iterating(tmp_path / "large.sse", 20_000)
    size = (tmp_path / "large.sse").stat().st_size
    assert large < size // 2, (large, size)
    assert large < small * 1.5, (small, large)


def test_sse_oversized_event_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("conformance.captures.errors.MAX_EVENT_BYTES", 10_000)
    path = write(tmp_path, "huge.sse", sse_text(CHUNK) + "data: " + "x" * 50_000 + "\n\n" + sse_text("[DONE]"))
    with pytest.raises(CaptureError, match=r"SSE (event|line) (larger|longer) than 10000 bytes"):
        list(one(path).events)


# -- single JSON documents -------------------------------------------------------------------------

def test_json_documents_are_classified_by_shape(tmp_path: Path) -> None:
    req = one(write(tmp_path, "req.json", json.dumps(REQUEST)))
    assert req.request is not None and req.request.body == REQUEST
    assert req.status is None and req.body is None and req.events is None

    comp = one(write(tmp_path, "c.json", json.dumps(COMPLETION)))
    assert comp.status == 200 and comp.body == COMPLETION and comp.request is None

    err = one(write(tmp_path, "e.json", json.dumps(ERROR)))
    assert err.body == ERROR and err.status is None and err.is_error

    chunk = one(write(tmp_path, "k.json", json.dumps(CHUNK)))
    assert NOTE_SINGLE_CHUNK in chunk.notes and [e.json for e in chunk.events] == [CHUNK]


def test_json_pair_document_and_list(tmp_path: Path) -> None:
    pair = {"request": {"method": "POST", "url": "https://x/v1/chat/completions",
                        "headers": {"Authorization": "Bearer sk-abcdef123456"}, "body": REQUEST},
            "response": {"status": 400, "headers": {}, "body": ERROR}}
    ex = one(write(tmp_path, "pair.json", json.dumps(pair)))
    assert ex.status == 400 and ex.request.body == REQUEST
    assert "sk-abcdef123456" not in json.dumps(ex.request.headers)
    exchanges = list(read_path(write(tmp_path, "list.json", json.dumps([REQUEST, COMPLETION]))))
    assert [e.entry for e in exchanges] == [0, 1]
    assert exchanges[0].request is not None and exchanges[1].body == COMPLETION


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b'{"choices": [', "truncated"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"a": "\xff"}', "invalid UTF-8 at byte 7"),
    (b"42", "not a chat request"),
    (b"[]", "empty JSON list"),
])
def test_json_errors_are_one_line(tmp_path: Path, content: bytes, reason: str) -> None:
    with pytest.raises(CaptureError, match=reason) as info:
        list(read_path(write(tmp_path, "x.json", content)))
    assert "\n" not in str(info.value)


def test_json_size_limit_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("conformance.captures.json_reader.MAX_DOCUMENT_BYTES", 1000)
    with pytest.raises(CaptureError, match="too large"):
        list(read_path(write(tmp_path, "big.json", json.dumps({"x": "y" * 2000}))))


# -- JSONL recordings ------------------------------------------------------------------------------

def _recorded() -> list[Exchange]:
    req = HTTPRequest(url="http://127.0.0.1:8000/v1/chat/completions",
                      headers={"Authorization": "Bearer sk-secret000111"}, body=REQUEST)
    events = [SSEEvent(json.dumps(CHUNK), t_ns=2_000_000, index=0), SSEEvent("[DONE]", t_ns=3_000_000, index=1)]
    return [Exchange(request=req, status=200, headers={"content-type": "text/event-stream"}, events=events,
                     t_send_ns=1_000_000),
            Exchange(request=HTTPRequest(body={**REQUEST, "stream": False}), status=200, body=COMPLETION)]


def test_jsonl_recording_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write_recording(path, _recorded())
    assert detect_format(path) == "jsonl"
    first, second = read_path(path)
    assert first.request.body == REQUEST and [e.data for e in first.events][-1] == "[DONE]"
    assert first.events[0].t_ns - first.t_send_ns == 1_000_000
    assert second.entry == 1 and second.body == COMPLETION
    assert "sk-secret000111" not in path.read_text()


def test_jsonl_line_limit_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    write_recording(path, _recorded())
    with pytest.raises(CaptureError, match="line 1 longer than"):
        list(read_jsonl(path, limit=100))
    bad = write(tmp_path, "bad.jsonl", path.read_text() + '{"response": \n')
    with pytest.raises(CaptureError, match="line 3"):
        list(read_path(bad))


# -- HAR -------------------------------------------------------------------------------------------

def _entry(method: str, url: str, *, req: object = None, status: int = 200, mime: str = "application/json",
           text: str | None = None, b64: bool = False, timings: dict | None = None) -> dict:
    content: dict = {"size": len(text or ""), "mimeType": mime}
    if text is not None:
        content["text"] = base64.b64encode(text.encode()).decode() if b64 else text
        if b64:
            content["encoding"] = "base64"
    request: dict = {"method": method, "url": url, "httpVersion": "HTTP/2",
                     "headers": [{"name": "Authorization", "value": "Bearer sk-har0123456789"},
                                 {"name": "Content-Type", "value": "application/json"}]}
    if req is not None:
        request["postData"] = {"mimeType": "application/json", "text": json.dumps(req)}
    return {"request": request, "timings": timings or {"send": 1, "wait": 250.5, "receive": 80},
            "response": {"status": status, "headers": [{"name": "Content-Type", "value": mime},
                                                       {"name": "Set-Cookie", "value": "sid=abc"}],
                         "content": content}}


URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions?api_key=sk-inurl987654"


def _har(*entries: dict) -> str:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}})


def test_har_entries_base64_streams_skips_and_timings(tmp_path: Path) -> None:
    har = _har(
        _entry("GET", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/models", text="{}"),
        _entry("POST", URL, req={**REQUEST, "stream": False}, text=json.dumps(COMPLETION), b64=True),
        _entry("POST", URL, req=REQUEST, mime="text/event-stream", text=sse_text(CHUNK, "[DONE]")),
        _entry("POST", "https://example.com/v1/embeddings", req={"input": "x"}, text="{}"),
        _entry("POST", URL, req=REQUEST, status=400, mime="text/event-stream", text=sse_text(ERROR)),
    )
    capture = read_path(write(tmp_path, "s.har", har))
    exchanges = list(capture)
    assert capture.format == "har"
    assert [e.entry for e in exchanges] == [1, 2, 4]  # HAR entry indices, so users can find them
    assert len(capture.notes) == 2 and all("skipped" in n for n in capture.notes)
    plain, stream, error = exchanges
    assert plain.body == COMPLETION and plain.status == 200 and plain.events is None
    assert plain.request.body == {**REQUEST, "stream": False}
    assert plain.t_headers_ns - plain.t_send_ns == 250_500_000
    assert plain.t_end_ns - plain.t_send_ns == 330_500_000
    assert [e.data for e in stream.events][-1] == "[DONE]" and stream.events[0].json == CHUNK
    assert error.status == 400 and error.body == ERROR and error.events is None
    dumped = repr([(e.request.url, e.request.headers, e.headers) for e in exchanges])
    for secret in ("sk-har0123456789", "sk-inurl987654", "sid=abc"):
        assert secret not in dumped


def test_har_without_response_body_checks_the_request_only(tmp_path: Path) -> None:
    ex = one(write(tmp_path, "s.har", _har(_entry("POST", URL, req=REQUEST, text=None))))
    assert ex.request.body == REQUEST and ex.status is None and ex.body is None
    assert any("request checked only" in n for n in ex.notes)


def test_har_saved_as_json_is_read_as_har(tmp_path: Path) -> None:
    ex = one(write(tmp_path, "export.json", _har(_entry("POST", URL, req=REQUEST, text=json.dumps(COMPLETION)))))
    assert ex.body == COMPLETION


@pytest.mark.parametrize(("doc", "reason"), [
    ({"entries": []}, "not a HAR file"),
    ({"log": {"entries": [_entry("GET", "https://x/v1/models", text="{}")]}}, "no chat-completions POST"),
    ({"log": {"entries": [{**_entry("POST", URL, req=REQUEST, text="{}"),
                           "response": {"status": 200, "content": {"text": "%%%", "encoding": "gzip"}}}]}},
     "unsupported encoding"),
])
def test_har_errors(tmp_path: Path, doc: dict, reason: str) -> None:
    with pytest.raises(CaptureError, match=reason):
        list(read_path(write(tmp_path, "x.har", json.dumps(doc))))


def test_shipped_har_fixtures_read(tmp_path: Path) -> None:
    hars = sorted((fixtures_dir() / "good" / "har").glob("*.har"))
    assert len(hars) >= 2
    for har in hars:
        exchanges = list(read_path(har))
        assert exchanges and all(e.request is not None and e.request.body for e in exchanges)


# -- detection -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "fmt"), [
    ("a.json", json.dumps(COMPLETION), "json"),
    ("a.har", _har(), "har"),
    ("a.jsonl", '{"response": {}}\n', "jsonl"),
    ("a.dat", '{"response": {"status": 200}}\n{"response": {"status": 200}}\n', "jsonl"),
    ("a.dat", json.dumps(COMPLETION, indent=2), "json"),
    ("a.json", sse_text(CHUNK), "sse"),  # content wins over a misleading extension
])
def test_detect_format(tmp_path: Path, name: str, content: str, fmt: str) -> None:
    assert detect_format(write(tmp_path, name, content)) == fmt


def test_forced_format_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path, "body.json", json.dumps(COMPLETION))
    with pytest.raises(CaptureError, match="no SSE events"):
        list(one(path, "sse").events)
    with pytest.raises(CaptureError, match="unknown format"):
        read_path(path, "xml")


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"), (b"\n \r\n", "only whitespace"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"hello world", "not a capture"),
])
def test_detect_refuses(tmp_path: Path, content: bytes, reason: str) -> None:
    with pytest.raises(CaptureError, match=reason):
        read_path(write(tmp_path, "x.bin", content))


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        read_path(tmp_path / "nope.sse")
    with pytest.raises(CaptureError, match="is a directory"):
        read_path(tmp_path)


# -- not captures at all ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "what"), [
    ("summary.json", json.dumps({"tool": "chatconf", "checks": [], "totals": {}}), "chatconf run summary"),
    ("summary.json", json.dumps({"tool": "chatconf", "regions": {}}), "chatconf load summary"),
    ("samples.jsonl", json.dumps({"region": "sg", "kind": "stream", "worker": 0, "ok": True, "e2e_ms": 1.0})
     + "\n", "chatconf load samples"),
    ("report.html", "<!doctype html><html></html>", "HTML document"),
    ("report.html", "", "HTML document"),
    ("index", "\ufeff\n <HTML><body>x</body></HTML>", "HTML document"),
    ("junit.xml", '<?xml version="1.0"?>\n<testsuite name="chatconf"></testsuite>', "JUnit XML report"),
    ("models.json", json.dumps({"object": "list", "data": []}), "unrecognised JSON document"),
    ("run.log", "INFO starting\n", "log file"),
])
def test_non_captures_raise_not_a_capture(tmp_path: Path, name: str, content: str, what: str) -> None:
    with pytest.raises(NotACapture, match=f"^not a capture: {what}"):
        list(read_path(write(tmp_path, name, content)))
    assert issubclass(NotACapture, CaptureError)  # callers that only know CaptureError still refuse it


@pytest.mark.parametrize(("name", "content"), [
    ("x.json", "42"), ("x.json", "[1, 2]"), ("x.json", '{"choices": ['), ("x.log", '{"choices": ['),
    ("x.jsonl", '{"model": "qwen-plus"}\n{"model": "qwen-max"}\n'),
    ("pair.json", '{"request": {"body": {}}, "response": "oops"}'),      # an attempt at a pair
    ("line.json", '{"chatconf": "recording/1", "request": {"body": {}}}'),  # a recording line, no response
])
def test_broken_input_stays_a_plain_capture_error(tmp_path: Path, name: str, content: str) -> None:
    with pytest.raises(CaptureError) as info:
        list(read_path(write(tmp_path, name, content)))
    assert not isinstance(info.value, NotACapture)


def test_jsonl_lines_may_be_bare_documents(tmp_path: Path) -> None:
    record = {"request": {"body": REQUEST}, "response": {"status": 200, "body": COMPLETION}}
    lines = [json.dumps(REQUEST), json.dumps(record), json.dumps(COMPLETION), json.dumps(ERROR), json.dumps(CHUNK)]
    exchanges = list(read_path(write(tmp_path, "mixed.jsonl", "\n".join(lines) + "\n")))
    assert [e.entry for e in exchanges] == [0, 1, 2, 3, 4]
    assert exchanges[0].request.body == REQUEST and exchanges[0].status is None
    assert exchanges[1].status == 200 and exchanges[1].request.body == REQUEST
    assert exchanges[2].body == COMPLETION and exchanges[3].is_error
    assert NOTE_SINGLE_CHUNK in exchanges[4].notes


# -- issue 13 item 7: an HTTP status is an integer 100-599; a HAR stream keeps its own bytes ---------

@pytest.mark.parametrize("status", [10**30, 999, 99, 600, "200", True, 200.5, -7])
def test_har_entry_with_an_impossible_status_is_unreadable_with_a_clear_reason(tmp_path: Path, status: object) -> None:
    """Before: 10**30 was a valid answer (no range check; since HARs are streamed, a yajl overflow
    called the file "truncated"), 999 an error answer, "200" a missing response."""
    entry = _entry("POST", URL, req=REQUEST, text=json.dumps(COMPLETION))
    entry["response"]["status"] = status
    reason = r"entry 0: response\.status .* is not an HTTP status \(an integer 100-599\)"
    with pytest.raises(CaptureError, match=reason):
        list(read_path(write(tmp_path, "x.har", _har(entry))))


@pytest.mark.parametrize("status", [0, -1, None])
def test_har_entry_without_a_response_status_checks_the_request_only(tmp_path: Path, status: object) -> None:
    entry = _entry("POST", URL, req=REQUEST, text=json.dumps(COMPLETION))
    entry["response"]["status"] = status
    ex = one(write(tmp_path, "x.har", _har(entry)))
    assert ex.status is None and any("request checked only" in n for n in ex.notes)


def test_a_64_bit_overflow_elsewhere_in_a_har_does_not_make_it_unreadable(tmp_path: Path) -> None:
    entries = [_entry("POST", URL, req=REQUEST, text=json.dumps(COMPLETION)) for _ in range(3)]
    entries[1]["response"]["bodySize"] = 2**70   # beyond the C parser's 64-bit integers
    exchanges = list(read_path(write(tmp_path, "x.har", _har(*entries))))
    assert [ex.entry for ex in exchanges] == [0, 1, 2] and all(ex.body == COMPLETION for ex in exchanges)


def test_a_recording_with_an_impossible_status_is_unreadable(tmp_path: Path) -> None:
    line = {"chatconf": "recording/1", "entry": 0, "request": {"body": REQUEST},
            "response": {"status": 10**30, "headers": {}, "body": COMPLETION}}
    with pytest.raises(CaptureError, match=r"'response\.status' .* is not an HTTP status"):
        list(read_path(write(tmp_path, "x.jsonl", json.dumps(line) + "\n")))


def test_har_base64_stream_with_invalid_utf8_marks_its_event(tmp_path: Path) -> None:
    """The raw bytes go to the SSE decoder, as a live stream's do (it was "not UTF-8 text": unreadable)."""
    body = (sse_text(CHUNK).encode() + b'data: {"x": "caf\xe9"}\n\n' + b"data: [DONE]\n\n")
    entry = _entry("POST", URL, req=REQUEST, mime="text/event-stream", text="")
    entry["response"]["content"].update(text=base64.b64encode(body).decode(), encoding="base64")
    ex = one(write(tmp_path, "x.har", _har(entry)))
    assert [ev.index for ev in ex.events if ev.not_utf8] == [1] and ex.events[1].json == {"x": "caf\ufffd"}

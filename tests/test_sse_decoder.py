"""SSEDecoder: the same events for ANY split of the bytes, and exact first-byte timestamps.

Live clients see arbitrary TCP chunking (a read may end inside a CRLF pair or inside a UTF-8
character) and capture readers feed fixed-size blocks; both must decode exactly what a one-shot
decode gives. Transcripts are the seed-001 curl streaming sample and the research shapes F4
(thinking) and F5 (tool call), rendered with every line-ending / framing variant the WHATWG
event-stream rules allow.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.sse import SSEDecoder, SSEError, decode_bytes, looks_like_sse

_COMMON = ('"object":"chat.completion.chunk","usage":null,"created":1715931028,"system_fingerprint":null,'
           '"model":"qwen-plus","id":"chatcmpl-3bb05cf5cd819fbca5f0b8d67a025022"')


def _chunk(choice: str) -> str:
    return '{"choices":[' + choice + '],' + _COMMON + "}"


# Seed 001, "Sample output" of the curl streaming call.
SEED_001 = [
    _chunk('{"delta":{"content":"","role":"assistant"},"index":0,"logprobs":null,"finish_reason":null}'),
    _chunk('{"finish_reason":null,"delta":{"content":"I am"},"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":" a large-scale"},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":" language model"},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":" from Alibaba Cloud"},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":", and my name is Qwen."},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":""},"finish_reason":"stop","index":0,"logprobs":null}'),
    "[DONE]",
]
# research/dashscope-realworld.md s2 F4: thinking stream, with multi-byte reasoning and content.
THINKING = [
    _chunk('{"delta":{"content":null,"role":"assistant","reasoning_content":""},"index":0,"logprobs":null,'
           '"finish_reason":null}'),
    _chunk('{"finish_reason":null,"logprobs":null,"delta":{"content":null,"reasoning_content":"用户说你好"},'
           '"index":0}'),
    _chunk('{"delta":{"content":"你好, 👋🏽 How can I help?","reasoning_content":null},"finish_reason":null,'
           '"index":0,"logprobs":null}'),
    _chunk('{"finish_reason":"stop","delta":{"content":"","reasoning_content":null},"index":0,"logprobs":null}'),
    '{"choices":[],"usage":{"prompt_tokens":1030,"completion_tokens":844,"total_tokens":1874,'
    '"completion_tokens_details":{"reasoning_tokens":798,"text_tokens":844}},' + _COMMON.replace(
        '"usage":null,', "") + "}",
    "[DONE]",
]
# F5: a streamed tool call whose arguments arrive in pieces (escaped quotes inside data).
TOOL_CALL = [
    _chunk('{"delta":{"content":null,"tool_calls":[{"index":0,"id":"call_eee11723464a4b9eb8cee71d",'
           '"type":"function","function":{"name":"weather","arguments":""}}],"role":"assistant"},'
           '"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":null,"tool_calls":[{"index":0,"id":"","type":"function","function":'
           '{"arguments":"{\\"location\\": \\"São Paulo 東京"}}]},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"delta":{"content":null,"tool_calls":[{"index":0,"id":"","type":"function","function":'
           '{"arguments":"\\"}"}}]},"finish_reason":null,"index":0,"logprobs":null}'),
    _chunk('{"finish_reason":"tool_calls","delta":{},"index":0,"logprobs":null}'),
    "[DONE]",
]
STREAMS = {"seed001": SEED_001, "thinking": THINKING, "tool_call": TOOL_CALL}


def render(payloads: list[str], *, eol: str = "\n", space: bool = True, comments: bool = False,
           bom: bool = False, multiline: bool = False) -> tuple[bytes, list[str]]:
    """A transcript of `payloads` and the event data a decoder must produce for it."""
    out, expected = [], []
    if bom:
        out.append("\ufeff")
    if comments:
        out.append(": keep-alive" + eol + eol)
    prefix = "data: " if space else "data:"
    for payload in payloads:
        if multiline and payload.startswith('{"choices":['):
            cut = len('{"choices":[')
            parts = [payload[:cut], payload[cut:]]
        else:
            parts = [payload]
        if comments:
            out.append(":ping" + eol)
        out.extend(prefix + part + eol for part in parts)
        out.append(eol)
        expected.append("\n".join(parts))
    return "".join(out).encode("utf-8"), expected


VARIANTS = {
    "lf": {},
    "crlf": {"eol": "\r\n"},
    "cr": {"eol": "\r"},
    "no-space": {"space": False},
    "comments": {"comments": True},
    "multiline": {"multiline": True},
    "bom": {"bom": True},
    "crlf-bom-comments-multiline": {"eol": "\r\n", "bom": True, "comments": True, "multiline": True},
    "cr-no-space-multiline": {"eol": "\r", "space": False, "multiline": True},
}
CASES = [(f"{s}-{v}", *render(STREAMS[s], **VARIANTS[v])) for s in STREAMS for v in VARIANTS]


def decode_split(raw: bytes, cuts: list[int]) -> list[tuple[str, int, int, bool]]:
    """Feed `raw` cut at `cuts`; chunk i is stamped t_ns=i+1. Returns (data, index, t_ns, terminated)."""
    dec = SSEDecoder()
    events, prev = [], 0
    for i, cut in enumerate([*sorted(set(cuts)), len(raw)]):
        events += dec.feed(raw[prev:cut], i + 1)
        prev = cut
    events += dec.close()
    assert dec.decode_errors == 0
    return [(e.data, e.index, e.t_ns, e.terminated) for e in events]


@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_shot_decode_gives_the_payloads(name: str, raw: bytes, expected: list[str]) -> None:
    events = decode_bytes(raw)
    assert [e.data for e in events] == expected
    assert [e.index for e in events] == list(range(len(expected)))
    assert all(e.terminated for e in events)
    assert events[-1].is_done
    for e in events[:-1]:
        assert e.parse_error is None and isinstance(e.json, dict)


@st.composite
def split_case(draw: st.DrawFn) -> tuple[str, bytes, list[str], list[int]]:
    name, raw, expected = draw(st.sampled_from(CASES))
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=30))
    return name, raw, expected, cuts


@settings(max_examples=400, deadline=None)
@given(split_case())
def test_any_split_gives_the_same_events(case: tuple[str, bytes, list[str], list[int]]) -> None:
    _name, raw, expected, cuts = case
    got = decode_split(raw, cuts)
    assert [g[0] for g in got] == expected
    assert [g[1] for g in got] == list(range(len(expected)))


@pytest.mark.parametrize("name", ["thinking-crlf", "tool_call-cr", "thinking-crlf-bom-comments-multiline"])
def test_every_single_split_point(name: str) -> None:
    """Exhaustive: one cut at every byte, so every CR|LF boundary and every UTF-8 interior is hit."""
    _, raw, expected = next(c for c in CASES if c[0] == name)
    assert b"\r" in raw and any(ch.encode() in raw for ch in "你東")
    for cut in range(len(raw) + 1):
        assert [g[0] for g in decode_split(raw, [cut])] == expected, cut


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(CASES), st.randoms(use_true_random=False), st.integers(1, 7))
def test_small_uneven_blocks(case: tuple[str, bytes, list[str]], rnd: random.Random, most: int) -> None:
    """Tiny and uneven blocks (1..7 bytes) as a slow network delivers them."""
    _, raw, expected = case
    cuts, pos = [], 0
    while pos < len(raw):
        pos += rnd.randint(1, most)
        cuts.append(min(pos, len(raw)))
    assert [g[0] for g in decode_split(raw, cuts)] == expected


def test_split_inside_multibyte_character_keeps_the_text() -> None:
    raw, _ = render(["你好👋"])
    emoji = raw.index("👋".encode())
    for cut in (raw.index("好".encode()) + 1, emoji + 1, emoji + 2, emoji + 3):
        assert decode_split(raw, [cut])[0][0] == "你好👋"


def test_split_between_cr_and_lf_is_one_line_end() -> None:
    raw = b"data: a\r\n\r\ndata: b\r\n\r\n"
    for cut in (8, 10, 19):  # after a CR, before its LF
        assert raw[cut - 1:cut] == b"\r"
        assert [g[0] for g in decode_split(raw, [cut])] == ["a", "b"]
    # A lone CR followed by a chunk starting with LF still gives exactly one blank line per pair.
    assert [g[0] for g in decode_split(b"data: a\r\r\ndata: b\n\n", [8])] == ["a", "b"]


# -- timestamps: an event gets the t_ns of the chunk carrying its first byte ----------------------

def test_event_gets_the_time_of_the_chunk_with_its_first_byte() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: {\"a\":", 100) == []
    first = dec.feed(b"1}\n\nd", 200)
    assert [(e.data, e.t_ns) for e in first] == [('{"a":1}', 100)]
    second = dec.feed(b"ata: x\n\n", 300)
    assert [(e.data, e.t_ns) for e in second] == [("x", 200)]
    third = dec.feed(b"data: y\n\ndata: z\n\n", 400)
    assert [(e.data, e.t_ns) for e in third] == [("y", 400), ("z", 400)]


def test_comment_and_blank_lines_do_not_start_an_event() -> None:
    dec = SSEDecoder()
    assert dec.feed(b": ping\n\n", 10) == []
    assert dec.feed(b"\n", 20) == []
    events = dec.feed(b"data: x\n\n", 30)
    assert [(e.data, e.t_ns) for e in events] == [("x", 30)]
    assert dec.comments == 1


def test_first_byte_in_a_chunk_that_ends_mid_character() -> None:
    dec = SSEDecoder()
    raw = "data: 你\n\n".encode()
    assert dec.feed(raw[:7], 5) == []  # "data: " + first byte of 你
    events = dec.feed(raw[7:], 6)
    assert [(e.data, e.t_ns) for e in events] == [("你", 5)]


def test_multi_line_event_keeps_the_time_of_its_first_line() -> None:
    dec = SSEDecoder()
    dec.feed(b"data: a\n", 1)
    events = dec.feed(b"data: b\n\n", 2)
    assert [(e.data, e.t_ns) for e in events] == [("a\nb", 1)]


# -- framing details -------------------------------------------------------------------------------

def test_unterminated_trailing_event_is_flushed_and_marked() -> None:
    got = decode_split(b"data: a\n\ndata: [DONE]", [])
    assert got == [("a", 0, 1, True), ("[DONE]", 1, 1, False)]


def test_event_and_id_fields_and_retry() -> None:
    events = decode_bytes(b"event: result\nid: 7\nretry: 10\ndata: x\n\ndata: y\n\n")
    assert (events[0].event, events[0].id, events[0].retry, events[0].data) == ("result", "7", 10, "x")
    assert (events[1].event, events[1].id, events[1].retry) == (None, "7", None)  # last id persists


def test_bom_is_only_stripped_at_the_start() -> None:
    assert [e.data for e in decode_bytes("\ufeffdata: a\n\n".encode())] == ["a"]
    events = decode_bytes("data: a\n\n\ufeffdata: b\n\n".encode())
    assert [e.data for e in events] == ["a"]  # a BOM mid-stream makes an unknown field name


def test_oversized_event_is_refused() -> None:
    dec = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(SSEError):
        dec.feed(b"data: " + b"x" * 2000 + b"\n\n")


def test_long_line_in_small_pieces_is_refused_without_quadratic_work() -> None:
    """A 4 MB line fed in 1 KB pieces: refused at the limit (pieces are joined once, not per feed)."""
    dec = SSEDecoder(max_event_bytes=2 * 1024 * 1024)
    piece = b"x" * 1024
    dec.feed(b"data: ")
    with pytest.raises(SSEError):
        for _ in range(4096):
            dec.feed(piece)


def test_long_line_in_pieces_is_joined_exactly() -> None:
    payload = json.dumps({"content": "ab" * 50_000})
    raw = f"data: {payload}\n\n".encode()
    assert decode_split(raw, list(range(0, len(raw), 997)))[0][0] == payload


def test_looks_like_sse() -> None:
    assert looks_like_sse("\ufeff\n\ndata: {}\n")
    assert looks_like_sse(": comment\n")
    assert not looks_like_sse('{"data": 1}')
    assert not looks_like_sse("hello")

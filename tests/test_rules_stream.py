"""StreamChecker: one incremental pass, constant state, deterministic, and silent on every DashScope
stream shape research saw (F3-F5, C12, C13, C22, C23), while catching what breaks clients."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.profiles import load_profile
from conformance.rules import StreamChecker, Violation
from conformance.rules.stream import MAX_PER_RULE
from conformance.sse import SSEDecoder, SSEEvent, decode_bytes

DASH = load_profile("dashscope")
CID = "chatcmpl-63414f89-5a1e-9d3c-b2f4-1e72cf1f6e40"
REQ = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True,
       "stream_options": {"include_usage": True}}


def chunk(choices: list[dict[str, Any]], usage: Any = None, **over: Any) -> dict[str, Any]:
    body = {"choices": choices, "object": "chat.completion.chunk", "usage": usage, "created": 1770285809,
            "system_fingerprint": None, "model": "qwen-plus", "id": CID}
    body.update(over)
    return body


def delta(d: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"delta": d, "finish_reason": finish, "index": index, "logprobs": None}


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def plain(n_content: int = 2, usage: bool = True) -> list[Any]:
    out: list[Any] = [chunk([delta({"content": "", "role": "assistant"})])]
    out += [chunk([delta({"content": f" t{i}"})]) for i in range(n_content)]
    out.append(chunk([delta({"content": ""}, "stop")]))
    if usage:
        out.append(chunk([], USAGE))
    out.append("[DONE]")
    return out


def sse_bytes(items: list[Any]) -> bytes:
    return b"".join(b"data: " + (x.encode() if isinstance(x, str) else orjson.dumps(x)) + b"\n\n" for x in items)


def run(items: list[Any], request: Any = REQ, **kw: Any) -> list[Violation]:
    checker = StreamChecker(DASH, request, **kw)
    out: list[Violation] = []
    for ev in decode_bytes(sse_bytes(items)):
        out += checker.feed(ev)
    return out + checker.finish()


def ids(found: list[Violation]) -> list[str]:
    return [v.rule for v in found]


def test_plain_stream_with_and_without_usage() -> None:
    assert run(plain()) == []
    no_usage_req = {**REQ, "stream_options": None}
    assert run(plain(usage=False), no_usage_req) == []
    assert ids(run(plain(), no_usage_req)) == ["stream.usage-only-when-asked"]
    assert ids(run(plain(usage=False))) == ["stream.usage-last"]


def test_request_dependent_rules_are_skipped_without_request() -> None:
    """A bare .sse transcript: usage presence cannot be judged either way."""
    assert run(plain(), None) == []
    assert run(plain(usage=False), None) == []


def test_dashscope_tool_call_continuations_pass() -> None:
    """C22: id "" and no name (or name "") on continuations, arguments null, trailing "", delta {}."""
    tc0 = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    items = [chunk([delta({"content": None, "role": "assistant", "tool_calls": [tc0]})]),
             chunk([delta({"content": None, "tool_calls": [
                 {"index": 0, "id": "", "type": "function", "function": {"name": "", "arguments": '{"a":'}}]})]),
             chunk([delta({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": None}}]})]),
             chunk([{"delta": {"tool_calls": [{"index": 0, "id": "", "type": "function",
                                               "function": {"arguments": " 1}"}}]}, "index": 0}]),
             chunk([delta({}, "tool_calls")]), chunk([], USAGE), "[DONE]"]
    assert run(items) == []


def test_parallel_tool_calls_need_consecutive_indices() -> None:
    def first(k: int) -> dict[str, Any]:
        return {"index": k, "id": f"call_{k}", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    ok = [chunk([delta({"role": "assistant", "tool_calls": [first(0)]})]),
          chunk([delta({"tool_calls": [first(1)]})]), chunk([delta({}, "tool_calls")]), "[DONE]"]
    assert run(ok, None) == []
    skip = [chunk([delta({"role": "assistant", "tool_calls": [first(0)]})]),
            chunk([delta({"tool_calls": [first(2)]})]), chunk([delta({}, "tool_calls")]), "[DONE]"]
    (v,) = run(skip, None)
    assert (v.rule, v.event, v.pointer) == ("stream.tool-call-index", 1, "/choices/0/delta/tool_calls/0/index")


def test_forced_tool_choice_may_finish_with_stop() -> None:
    tc0 = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    items = [chunk([delta({"role": "assistant", "tool_calls": [tc0]})]), chunk([delta({}, "stop")]), "[DONE]"]
    assert ids(run(items, {**REQ, "stream_options": None})) == ["stream.finish-tool-calls"]
    forced = {**REQ, "stream_options": None, "tool_choice": {"type": "function", "function": {"name": "w"}}}
    assert run(items, forced) == []


def test_mid_stream_error_ends_the_stream_with_or_without_done() -> None:
    """C6 (DashScope: no [DONE] after the error) and S30 (vLLM: [DONE] follows): both valid."""
    err = {"error": {"message": "Output data may contain inappropriate content.", "type": "data_inspection_failed",
                     "code": "data_inspection_failed", "param": None}}
    items = [*plain()[:2], err]
    assert run(items) == []
    assert run([*items, "[DONE]"]) == []
    broken = [*items[:2], {"error": {"type": "x", "code": None}}]
    found = run(broken)
    assert ids(found) == ["schema.error"] and found[0].event == 2


def test_transport_error_reports_only_termination() -> None:
    checker = StreamChecker(DASH, REQ)
    for ev in decode_bytes(sse_bytes(plain()[:2])):
        assert checker.feed(ev) == []
    (v,) = checker.finish("connection reset by peer")
    assert (v.rule, v.level, v.event) == ("stream.terminated", "warning", None)


def test_repeated_violations_are_capped_with_a_summary() -> None:
    """A 200k-chunk stream that breaks one rule everywhere must not flood memory or the report."""
    items = plain(n_content=MAX_PER_RULE + 30)
    for c in items[1:-3]:
        c["id"] = "chatcmpl-other"
    found = run(items)
    same = [v for v in found if v.rule == "stream.same-id"]
    assert len(same) == MAX_PER_RULE + 1
    assert same[-1].message.startswith("30 more stream.same-id") and same[-1].unlisted == 30


def test_strict_mode_reports_unknown_fields_once_as_warnings() -> None:
    items = plain()
    for c in items[:-1]:
        c["obfuscation"] = "x1"
    assert run(items) == []
    found = run(items, strict=True)
    assert ids(found) == ["schema.unknown-field"]
    assert found[0].level == "warning" and found[0].event == 0


def test_headers_enable_content_type_and_request_id() -> None:
    headers = {"content-type": "text/event-stream;charset=UTF-8", "x-request-id": CID.removeprefix("chatcmpl-")}
    assert run(plain(), headers=headers) == []
    found = run(plain(), headers={"content-type": "application/json", "x-request-id": "nope"})
    assert ids(found) == ["stream.content-type", "stream.request-id"]


def test_same_violations_however_the_bytes_are_split() -> None:
    """Determinism: whole-body decode, random byte splits and feed_data all give the same findings."""
    items = plain()
    items[2]["model"] = "other"
    items[3]["choices"][0]["delta"]["role"] = "assistant"
    data = sse_bytes(items)
    reference = run(items)
    assert ids(reference) == ["stream.same-model", "stream.role-once"]
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), 12))
        checker = StreamChecker(DASH, REQ)
        dec = SSEDecoder()
        found: list[Violation] = []
        for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
            for ev in dec.feed(data[a:b]):
                found += checker.feed(ev)
        for ev in dec.close():
            found += checker.feed(ev)
        assert found + checker.finish() == reference
    checker = StreamChecker(DASH, REQ)
    found = []
    for i, ev in enumerate(decode_bytes(data)):
        found += checker.feed_data(ev.data, i)
    assert found + checker.finish() == reference


def test_memory_stays_flat_over_a_long_stream() -> None:
    """No event list is kept: 20k chunks cost no more state than 200."""
    def peak(n: int) -> int:
        payload = orjson.dumps(chunk([delta({"content": " tok"})])).decode()
        checker = StreamChecker(DASH, REQ)
        checker.feed(SSEEvent(orjson.dumps(plain()[0]).decode(), index=0))
        tracemalloc.start()
        for i in range(1, n):
            checker.feed_data(payload, i)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size
    assert peak(20_000) < peak(200) + 64 * 1024


def test_choice_indices_with_n() -> None:
    req = {**REQ, "n": 2}
    items = [chunk([delta({"content": "", "role": "assistant"}, index=i)]) for i in (0, 1)]
    items += [chunk([delta({"content": ""}, "stop", index=i)]) for i in (1, 0)]
    items += [chunk([], USAGE), "[DONE]"]
    assert run(items, req) == []
    assert ids(run(items, REQ)) == ["stream.choice-indices"]
    found = run(items[:1] + items[3:], req)
    assert ids(found) == ["stream.choice-indices"] and found[0].event is None


def test_thinking_stream_with_uncapped_reasoning_tokens() -> None:
    """C14/C34: max_tokens does not cap reasoning; detail blocks disagree, never a finish-length finding."""
    items = [chunk([delta({"content": None, "role": "assistant", "reasoning_content": ""})]),
             chunk([delta({"content": None, "reasoning_content": "think"})]),
             chunk([delta({"content": "answer", "reasoning_content": None})]),
             chunk([delta({"content": "", "reasoning_content": None}, "length")]),
             chunk([], {"prompt_tokens": 10, "completion_tokens": 844, "total_tokens": 854,
                        "completion_tokens_details": {"reasoning_tokens": 798, "text_tokens": 844}}), "[DONE]"]
    assert run(items, {**REQ, "max_tokens": 50}) == []
    assert ids(run(items, {**REQ, "max_tokens": 40})) == ["stream.finish-length"]


def test_schema_failures_on_every_chunk_are_capped_too() -> None:
    items = plain(n_content=MAX_PER_RULE + 5)
    for c in items[1:-3]:
        c["choices"][0]["finish_reason"] = ""  # D5: "" instead of null
    found = run(items)
    assert {v.rule for v in found} == {"schema.chunk"}
    assert len(found) == MAX_PER_RULE + 1 and found[-1].event is None


# -- any value anywhere: findings, never an exception ----------------------------------------------------

_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.sampled_from(["", "x", "stop"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["index", "x", "role"]), inner,
                                                                max_size=3),
    max_leaves=8)
_PATHS = [("choices", 0, "index"), ("choices", 0, "delta"), ("choices", 0, "delta", "role"),
          ("choices", 0, "delta", "content"), ("choices", 0, "delta", "tool_calls"),
          ("choices", 0, "delta", "tool_calls", 0, "index"), ("choices", 0, "delta", "tool_calls", 0, "function"),
          ("choices", 0, "finish_reason"), ("choices", 0), ("choices",), ("usage",), ("id",), ("created",),
          ("model",), ("object",)]


def _tool_stream() -> list[Any]:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    return [chunk([delta({"content": None, "role": "assistant", "tool_calls": [call]})]),
            chunk([delta({}, "tool_calls")]), chunk([], USAGE), "[DONE]"]


@settings(max_examples=400, deadline=None)
@given(base=st.sampled_from(["plain", "tools"]), at=st.integers(0, 4), path=st.sampled_from(_PATHS),
       value=_ANY_JSON)
def test_any_value_at_any_field_is_a_finding_not_a_crash(base: str, at: int, path: tuple[Any, ...],
                                                          value: Any) -> None:
    """A hostile server can put any JSON anywhere (an index that is a list once stopped validate with
    an internal error): the stream rules report, they never raise."""
    items = plain(3) if base == "plain" else _tool_stream()
    target = items[min(at, len(items) - 2)]
    node: Any = target
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = value
    run(items)  # must not raise

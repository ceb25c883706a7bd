"""Error and non-stream response rules on Exchanges: every envelope variant DashScope really sends
passes (C4: no param / id / request_id, code null; C5: SSE-formatted bodies on stream requests;
C9/C41/C42: types other than invalid_request_error), and what breaks clients is caught."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.exchange import Exchange, HTTPRequest
from conformance.jsonutil import dumps
from conformance.profiles import load_profile
from conformance.rules import check_exchange, check_request, first_request_error
from conformance.sse import SSEEvent, decode_bytes

DASH = load_profile("dashscope")
KEYS = ["error", "choices", "delta", "index", "tool_calls", "function", "name", "arguments", "id", "usage",
        "finish_reason", "role", "content", "message", "model", "messages", "stream", "stream_options",
        "include_usage", "n", "tools", "max_tokens", "type", "code", "prompt_tokens", "total_tokens",
        "completion_tokens", "completion_tokens_details", "object", "created"]
OPENAI = load_profile("openai")
STREAM_REQ = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True}
PLAIN_REQ = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}


def err(code: Any = "invalid_parameter_error", type_: Any = "invalid_request_error", message: str = "Bad.",
        **top: Any) -> dict[str, Any]:
    return {"error": {"code": code, "param": None, "message": message, "type": type_}, **top}


def rules(ex: Exchange, profile=DASH) -> list[str]:
    return [v.rule for v in check_exchange(ex, profile)]


@pytest.mark.parametrize(("status", "body"), [
    (400, err()),
    (400, {"error": {"code": "invalid_parameter_error", "message": "m", "type": "invalid_request_error"}}),
    (400, {"error": {"code": None, "message": "Required body invalid.", "type": "invalid_request_error"}}),
    (400, err("data_inspection_failed", "data_inspection_failed", id="chatcmpl-1")),
    (400, err("Arrearage", "Arrearage", request_id="8605e472")),
    (401, err("invalid_api_key", request_id="b02e047c")),
    (404, err("model_not_found")),
    (429, {"error": {"message": "You have exceeded your request limit.", "type": "limit_requests",
                     "code": "limit_requests"}}),
    (429, err("limit_burst_rate", "limit_burst_rate")),
    (500, err("internal_error", "internal_error")),
    (503, err("ModelServingError", "ModelServingError")),
    (400, err(id="chatcmpl-abc", request_id="chatcmpl-abc")),  # ccx#161: request_id held the chatcmpl- id
])
def test_real_dashscope_error_envelopes_pass(status: int, body: dict[str, Any]) -> None:
    assert rules(Exchange(request=HTTPRequest(body=PLAIN_REQ), status=status, body=body)) == []


def test_sse_error_body_on_stream_request_as_text_or_events() -> None:
    """C5: the same 400 body a reader may keep as text or split into events."""
    text = f"data: {dumps(err())}\n\n"
    assert rules(Exchange(request=HTTPRequest(body=STREAM_REQ), status=400, body_text=text)) == []
    events = decode_bytes(text.encode())
    assert rules(Exchange(request=HTTPRequest(body=STREAM_REQ), status=400, events=events)) == []
    assert rules(Exchange(request=HTTPRequest(body=STREAM_REQ), status=400, body=err())) == ["error.stream-body-sse"]
    bad = decode_bytes(b'data: {"error": {"type": "invalid_request_error", "code": null}}\n\n')
    assert rules(Exchange(request=HTTPRequest(body=STREAM_REQ), status=400, events=bad)) == ["schema.error"]


def test_status_types_follow_the_profile() -> None:
    assert rules(Exchange(status=401, body=err("invalid_api_key", "server_error"))) == ["error.status-type"]
    assert rules(Exchange(status=400, body=err(type_=None))) == ["error.status-type"]
    assert rules(Exchange(status=403, body=err("AccessDenied", "whatever"))) == []  # 403: any type
    assert rules(Exchange(body=err(type_="weird"))) == []  # status unknown (bare .json)


def test_openai_profile_needs_every_error_member() -> None:
    no_param = {"error": {"code": "x", "message": "m", "type": "invalid_request_error"}}
    assert rules(Exchange(status=400, body=no_param), OPENAI) == ["schema.error"]
    assert rules(Exchange(status=400, body=no_param), DASH) == []


def test_error_envelope_variants_that_break_clients() -> None:
    assert rules(Exchange(status=500, body_text="upstream connect error")) == ["error.envelope"]
    assert rules(Exchange(status=400, body={"error": "bad"})) == ["error.envelope"]
    assert rules(Exchange(status=400, body=err(code=400))) == ["schema.error"]  # vLLM-style integer code
    assert rules(Exchange(status=200, body=err())) == ["error.status-code"]
    found = list(check_exchange(Exchange(status=400, body=err("BadThing")), DASH))
    assert [(v.rule, v.level) for v in found] == [("error.code-snake-case", "warning")]
    assert rules(Exchange(status=400, body=err("BadThing")), OPENAI) == []  # openai: no snake_case rule


def test_request_rules_are_silent_when_the_server_rejected_the_request() -> None:
    bad_req = {**PLAIN_REQ, "temperature": 2}
    assert rules(Exchange(request=HTTPRequest(body=bad_req), status=400, body=err())) == []
    ok = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1770285809, "model": "qwen-plus",
          "system_fingerprint": None, "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    assert rules(Exchange(request=HTTPRequest(body=bad_req), status=200, body=ok)) == ["request.temperature-range"]


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1770285809, "model": "qwen-plus",
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_non_stream_tool_call_rules() -> None:
    tools = [{"type": "function", "function": {"name": "w"}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": ""}}
    req = HTTPRequest(body={**PLAIN_REQ, "tools": tools})
    assert rules(Exchange(request=req, status=200, body=completion({"content": "", "tool_calls": [call]},
                                                                    "tool_calls"))) == []
    assert rules(Exchange(request=req, status=200, body=completion({"content": None, "tool_calls": [call]},
                                                                    "tool_calls"))) == []
    forced = HTTPRequest(body={**PLAIN_REQ, "tools": tools, "tool_choice": "required"})
    assert rules(Exchange(request=forced, status=200, body=completion({"content": None, "tool_calls": [call]}))) == []
    assert rules(Exchange(request=req, status=200, body=completion({"content": "x"}, "tool_calls"))) == [
        "response.finish-tool-calls"]
    array_args = {**call, "function": {"name": "w", "arguments": "[1]"}}
    assert rules(Exchange(request=req, status=200, body=completion({"content": "", "tool_calls": [array_args]},
                                                                    "tool_calls"))) == ["response.tool-arguments-json"]


def test_non_json_success_body() -> None:
    assert rules(Exchange(status=200, headers={"content-type": "application/json"}, body_text="<html>")) == [
        "schema.completion"]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "stop", "[DONE]"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(request=JSON, body=JSON, events=st.lists(JSON, max_size=5), status=st.sampled_from([None, 200, 400, 429]))
def test_no_input_makes_the_rules_raise(request: Any, body: Any, events: list[Any], status: int | None) -> None:
    """Bad traffic is what this tool exists for: any JSON anywhere gives violations, never an exception."""
    for profile in (DASH, OPENAI):
        check_request(request, profile, check_model=True)
        first_request_error(request, profile)
    req = HTTPRequest(body=request)
    list(check_exchange(Exchange(request=req, status=status, body=body), DASH, strict=True))
    evs = [SSEEvent(dumps(e), index=i) for i, e in enumerate(events)]
    list(check_exchange(Exchange(request=req, status=status, events=evs), DASH, strict=True))


def test_event_stream_kept_as_text_is_checked_as_a_stream() -> None:
    first = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1770285809, "model": "qwen-plus",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    last = {**first, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]}
    text = f"data: {dumps(first)}\n\ndata: {dumps(last)}\n\ndata: [DONE]\n\n"
    assert rules(Exchange(request=HTTPRequest(body=STREAM_REQ), status=200, body_text=text)) == []
    assert rules(Exchange(status=200, body_text=text.replace("data: [DONE]\n\n", ""))) == ["stream.done-last"]


def test_strict_mode_warns_about_unknown_fields_in_bodies_and_errors() -> None:
    body = completion({"content": "x", "audio": None})
    body["service_tier"] = None
    body["x_gateway"] = "edge-1"
    found = list(check_exchange(Exchange(status=200, body=body), DASH, strict=True))
    assert [(v.rule, v.level, v.pointer) for v in found] == [("schema.unknown-field", "warning", ""),
                                                             ("schema.unknown-field", "warning", "/choices/0/message")]
    assert "x_gateway" in found[0].message and "audio" in found[1].message
    assert list(check_exchange(Exchange(status=200, body=body), DASH)) == []
    found = list(check_exchange(Exchange(status=400, body=err(trace="abc")), DASH, strict=True))
    assert [(v.rule, v.level) for v in found] == [("schema.unknown-field", "warning")]

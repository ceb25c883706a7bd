"""Every schema constraint has a known-good and a known-bad instance, per profile where they differ:
each range bound from both sides, the tool-name pattern (64/65 characters, bad characters), stop
homogeneity (seed 001's own ["Hello", 104307]), nullable fields as real traffic has them, the
usage-only chunk, and DashScope's tool-call continuation id ""."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.schemas import schema_set

PROFILES = ("dashscope", "openai", "qwen-reference")
USER = [{"role": "user", "content": "hi"}]


def request(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "qwen-plus", "messages": list(USER)}
    body.update(over)
    return body


def valid(kind: str, profile: str, instance: Any) -> bool:
    validator = schema_set(profile).for_kind(kind)
    fast = validator.is_valid(instance)
    assert fast == (not list(validator.errors(instance))), "fast and precise paths disagree"
    return fast


# (param, value, {profile: valid?}) -- one row per bound side, per profile where the docs differ.
BOUNDS = [
    ("temperature", 0, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("temperature", -0.01, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("temperature", 1.99, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("temperature", 2, {"dashscope": False, "openai": True, "qwen-reference": False}),  # C32: [0, 2)
    ("temperature", 2.01, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("top_p", 0, {"dashscope": False, "openai": True, "qwen-reference": False}),  # (0, 1]
    ("top_p", 0.01, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("top_p", 1, {"dashscope": True, "openai": True, "qwen-reference": True}),  # drift top_p_one
    ("top_p", 1.01, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("presence_penalty", -2, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("presence_penalty", -2.01, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("presence_penalty", 2, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("presence_penalty", 2.01, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("n", 0, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("n", 1, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("n", 4, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("n", 5, {"dashscope": False, "openai": True, "qwen-reference": True}),
    ("n", 10, {"dashscope": False, "openai": True, "qwen-reference": True}),
    ("n", 11, {"dashscope": False, "openai": True, "qwen-reference": False}),
    ("n", 129, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("max_tokens", 0, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("max_tokens", 1, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("seed", -1, {"dashscope": False, "openai": True, "qwen-reference": False}),
    ("seed", 0, {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("seed", 2**31, {"dashscope": True, "openai": True, "qwen-reference": True}),  # drift seed_above_int31
    ("seed", 2**63, {"dashscope": True, "openai": False, "qwen-reference": True}),
    ("seed", 2**64 - 1, {"dashscope": True, "openai": False, "qwen-reference": True}),
    ("seed", 2**64, {"dashscope": False, "openai": False, "qwen-reference": False}),
    ("seed", -(2**63), {"dashscope": False, "openai": True, "qwen-reference": False}),
]


@pytest.mark.parametrize(("param", "value", "expect"), BOUNDS, ids=lambda x: str(x)[:20])
def test_request_bounds_per_profile(param: str, value: Any, expect: dict[str, bool]) -> None:
    for profile, ok in expect.items():
        assert valid("request", profile, request(**{param: value})) is ok, profile


@pytest.mark.parametrize(("name", "ok"), [
    ("w" * 64, True), ("w" * 65, False), ("get_current-weather_2", True), ("get weather", False),
    ("get.weather", False), ("天气", False), ("", False), ("a/b", False),
])
def test_tool_name_pattern(name: str, ok: bool) -> None:
    body = request(tools=[{"type": "function", "function": {"name": name, "parameters": {}}}])
    for profile in PROFILES:
        assert valid("request", profile, body) is ok


@pytest.mark.parametrize(("stop", "ok"), [
    ("END", True), (["a", "b"], True), ([104307, 13], True), ([[104307], [13, 14]], True), (None, True),
    (["Hello", 104307], False),  # seed 001's own counterexample
    ([[1], "a"], False), ([1, [2]], False), ([-1], False), (7, False), ([[]], False),
])
def test_stop_homogeneity(stop: Any, ok: bool) -> None:
    assert valid("request", "dashscope", request(stop=stop)) is ok


def test_n_with_tools_is_in_the_dashscope_schema() -> None:
    tools = [{"type": "function", "function": {"name": "w"}}]
    assert valid("request", "dashscope", request(n=1, tools=tools))
    assert valid("request", "dashscope", request(n=None, tools=tools))
    assert not valid("request", "dashscope", request(n=2, tools=tools))
    assert valid("request", "dashscope", request(n=2, tools=None))  # tools: null is no tools


@pytest.mark.parametrize(("role", "expect"), [
    ("developer", {"dashscope": False, "openai": True, "qwen-reference": True}),  # C29
    ("function", {"dashscope": True, "openai": True, "qwen-reference": False}),
    ("system", {"dashscope": True, "openai": True, "qwen-reference": True}),
    ("bot", {"dashscope": False, "openai": False, "qwen-reference": False}),
])
def test_roles_per_profile(role: str, expect: dict[str, bool]) -> None:
    body = request(messages=[{"role": role, "content": "x", "name": "f"}, *USER])
    for profile, ok in expect.items():
        assert valid("request", profile, body) is ok, profile


def test_request_nullable_fields_and_extras_real_clients_send() -> None:
    """Clients send explicit nulls (OpenAI SDK model_dump) and DashScope extras (C39)."""
    body = request(temperature=None, top_p=None, tools=None, stream_options=None, stop=None, seed=None,
                   enable_thinking=False, thinking_budget=100, top_k=20, enable_search=True,
                   parallel_tool_calls=False, messages=[
                       {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                       {"role": "assistant", "content": None, "function_call": None, "refusal": None,
                        "reasoning_content": "thought", "tool_calls": [
                            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
                       {"role": "tool", "content": "1", "tool_call_id": "call_1"}])
    assert valid("request", "dashscope", body)
    assert not valid("request", "dashscope", request(messages=[{"role": "user", "content": []}]))
    assert not valid("request", "dashscope", request(messages=[{"role": "user", "content": None}]))
    assert valid("request", "dashscope", request(messages=[*USER, {"role": "assistant"}]))


def completion(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "choices": [{"message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop", "index": 0,
                     "logprobs": None}], "object": "chat.completion",
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}, "created": 1770285809,
        "system_fingerprint": None, "model": "qwen-plus", "id": "chatcmpl-1"}
    body.update(over)
    return body


def test_completion_nullable_fields_as_real_traffic_has_them() -> None:
    assert valid("completion", "dashscope", completion())
    assert valid("completion", "dashscope", completion(system_fingerprint=""))  # seed 001 curl sample
    assert valid("completion", "dashscope", completion(service_tier=None, usage=None))
    msg = {"role": "assistant", "content": "x", "function_call": None, "tool_calls": None,
           "reasoning_content": "why", "refusal": None}
    choice = {"message": msg, "finish_reason": "stop", "index": 0}  # no logprobs key at all
    assert valid("completion", "dashscope", completion(choices=[choice]))
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
             "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": 1},
             "completion_tokens_details": {"reasoning_tokens": 1, "text_tokens": 2}}
    assert valid("completion", "dashscope", completion(usage=usage))


@pytest.mark.parametrize("change", [
    {"object": "chat.completion.chunk"}, {"choices": []}, {"created": "now"}, {"id": ""},
    {"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": None, "index": 0}]},
    {"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "", "index": 0}]},
    {"choices": [{"message": {"role": "user", "content": "x"}, "finish_reason": "stop", "index": 0}]},
    {"choices": [{"message": {"role": "assistant", "tool_calls": [
        {"id": "", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        "finish_reason": "tool_calls", "index": 0}]},
    {"usage": {"prompt_tokens": 1, "completion_tokens": 2}},
])
def test_completion_known_bad(change: dict[str, Any]) -> None:
    assert not valid("completion", "dashscope", completion(**change))


def chunk(choices: list[Any], **over: Any) -> dict[str, Any]:
    body = {"choices": choices, "object": "chat.completion.chunk", "usage": None, "created": 1,
            "system_fingerprint": None, "model": "qwen-plus", "id": "chatcmpl-1"}
    body.update(over)
    return body


@pytest.mark.parametrize("instance", [
    chunk([], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),  # usage-only chunk (S16)
    chunk([{"delta": {"content": "", "role": "assistant"}, "index": 0, "logprobs": None, "finish_reason": None}]),
    chunk([{"delta": {"content": "x"}, "index": 0}]),  # C13: finish_reason/logprobs keys missing
    chunk([{"delta": {}, "index": 0, "finish_reason": "tool_calls"}]),
    chunk([{"delta": {"content": None, "reasoning_content": "t", "role": None}, "index": 0, "finish_reason": None}]),
    chunk([{"delta": {"tool_calls": [{"index": 0, "id": "", "type": "function",
                                      "function": {"name": "", "arguments": None}}]}, "index": 0}]),  # C22
    chunk([{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, "index": 0}]),
    chunk([{"delta": {"content": "x", "function_call": None, "tool_calls": None, "role": None}, "index": 0}]),
])
def test_chunk_known_good(instance: dict[str, Any]) -> None:
    for profile in PROFILES:
        assert valid("chunk", profile, instance)


@pytest.mark.parametrize("instance", [
    chunk([{"delta": {"content": "x"}, "index": 0, "finish_reason": ""}]),  # D5: "" is not null
    chunk([{"delta": {"tool_calls": [{"id": "call_1", "function": {"name": "w"}}]}, "index": 0}]),  # no index
    chunk([{"delta": {"role": "user"}, "index": 0}]),
    chunk([{"delta": {"content": 5}, "index": 0}]),
    chunk([{"index": 0}]),
    chunk([], object="chat.completion"),
    chunk([], created=None),
    chunk([], usage={"prompt_tokens": 1}),
    {"output": {"choices": []}, "request_id": "x"},  # F14 native shape
])
def test_chunk_known_bad(instance: dict[str, Any]) -> None:
    assert not valid("chunk", "dashscope", instance)


@pytest.mark.parametrize(("instance", "expect"), [
    ({"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": "c"}},
     {"dashscope": True, "openai": True}),
    ({"error": {"message": "m", "type": "limit_requests", "code": "limit_requests"}},  # F12: no param
     {"dashscope": True, "openai": False}),
    ({"error": {"message": "m", "type": "invalid_request_error", "code": None}, "request_id": "r"},
     {"dashscope": True, "openai": False}),
    ({"error": {"message": "m", "type": "t", "param": None, "code": None}, "id": "chatcmpl-1", "request_id": "1"},
     {"dashscope": True, "openai": True}),
    ({"error": {"message": "m", "type": "t", "param": None, "code": 400}}, {"dashscope": False, "openai": False}),
    ({"error": {"message": "", "type": "t", "param": None, "code": None}}, {"dashscope": False, "openai": False}),
    ({"error": {"type": "t", "param": None, "code": None}}, {"dashscope": False, "openai": False}),
    ({"code": "InvalidApiKey", "message": "m", "request_id": "r"}, {"dashscope": False, "openai": False}),
])
def test_error_envelope_per_profile(instance: dict[str, Any], expect: dict[str, bool]) -> None:
    for profile, ok in expect.items():
        assert valid("error", profile, instance) is ok, profile


def test_strict_schemas_close_objects_only() -> None:
    extra = chunk([{"delta": {"content": "x"}, "index": 0}], obfuscation="abc")
    assert valid("chunk", "dashscope", extra)
    strict = schema_set("dashscope", strict=True).chunk
    assert not strict.is_valid(extra)
    assert [e.keyword for e in strict.errors(extra)] == ["unevaluatedProperties"]


def test_counting_errors_without_messages_agrees_with_listing_them():
    """Once a stream's schema.chunk listing is full, chunks are only counted (the fast path): the count
    must be what the listing would have said."""
    from conformance.schemas import schema_set

    chunk = schema_set("dashscope").chunk
    for instance in ({}, {"choices": [{"delta": {"content": "a"}}]}, {"id": 1, "object": "x", "choices": "no"},
                     {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                      "choices": [{"index": 0, "delta": {"role": "robot"}, "finish_reason": "maybe"}]}):
        assert chunk.count_errors(instance) == len(list(chunk.errors(instance))) > 0


def test_error_counts_are_cached_by_exact_text_and_the_cache_stays_bounded(monkeypatch):
    """Floods repeat the same bad event: its count is remembered per text, never per shape."""
    import json

    from conformance import schemas

    monkeypatch.setattr(schemas, "COUNT_CACHE_SIZE", 3)
    chunk = schemas.SchemaValidator("chunk", schemas.build_schema("chunk", schemas.load_profile("dashscope")))
    one_error = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    cases = [{}, {"choices": [{"delta": {"content": "a"}}]}, one_error, {**one_error, "object": "nope"}, {}]
    for instance in cases * 2:
        text = json.dumps(instance)
        assert chunk.count_errors(instance, text) == chunk.count_errors(instance) == len(list(chunk.errors(instance)))
        assert len(chunk._counts) <= 3
    long_text = json.dumps({"pad": "x" * schemas.COUNT_CACHE_TEXT})
    chunk._counts.clear()
    chunk.count_errors(json.loads(long_text), long_text)
    assert not chunk._counts  # long events are counted afresh: the cache is for tiny ones


def test_a_stream_of_invalid_chunks_counts_every_violation_past_the_listing():
    from conformance.profiles import load_profile
    from conformance.rules.stream import MAX_PER_RULE, StreamChecker
    from conformance.sse import SSEEvent

    checker = StreamChecker(load_profile("dashscope"))
    listed = [v for i in range(300) for v in checker.feed(SSEEvent("{}", index=i))]
    listed += checker.finish()
    schema = [v for v in listed if v.rule == "schema.chunk"]
    per_chunk = len(list(checker._chunk.errors({})))
    assert len([v for v in schema if not v.unlisted]) == MAX_PER_RULE
    assert sum(v.weight for v in schema) == 300 * per_chunk

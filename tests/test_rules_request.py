"""Request rules: schema failures land on their specific ids, cross-field rules judge message
history and model capabilities, and `first_request_error` picks what a real server reports first
(the mock answers with it, `chatconf run` expects it)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.profiles import load_profile
from conformance.rules import check_request, error_values, first_request_error

DASH = load_profile("dashscope")
OPENAI = load_profile("openai")
QWEN_REF = load_profile("qwen-reference")
USER = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"model": "qwen-plus", "messages": list(USER)}
    b.update(over)
    return b


def rules(b: Any, profile=DASH, **kw: Any) -> list[tuple[str, str]]:
    return [(v.rule, v.pointer) for v in check_request(b, profile, **kw)]


def call(call_id: str | None, name: str = "weather") -> dict[str, Any]:
    c: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": "{}"}}
    if call_id is not None:
        c["id"] = call_id
    return c


@pytest.mark.parametrize(("over", "expected"), [
    ({"temperature": 2}, [("request.temperature-range", "/temperature")]),
    ({"temperature": "warm"}, [("request.schema", "/temperature")]),
    ({"top_p": 0}, [("request.top_p-range", "/top_p")]),
    ({"presence_penalty": -2.5}, [("request.presence_penalty-range", "/presence_penalty")]),
    ({"n": 0}, [("request.n-range", "/n")]),
    ({"max_tokens": 0}, [("request.max_tokens-range", "/max_tokens")]),
    ({"seed": -1}, [("request.seed-range", "/seed")]),
    ({"stop": ["Hello", 104307]}, [("request.stop-homogeneous", "/stop")]),
    ({"stop": 7}, [("request.stop-homogeneous", "/stop")]),
    ({"tools": []}, [("request.tools-nonempty", "/tools")]),
    ({"tools": [{"type": "function", "function": {"name": "a" * 65}}]},
     [("request.tool-name", "/tools/0/function/name")]),
    ({"tools": [{"type": "function", "function": {}}]}, [("request.tool-name", "/tools/0/function/name")]),
    ({"n": 2, "tools": TOOLS}, [("request.n-with-tools", "/n")]),
    ({"messages": []}, [("request.messages-nonempty", "/messages")]),
    ({"messages": [{"role": "developer", "content": "x"}, *USER]}, [("request.role-allowed", "/messages/0/role")]),
    ({"messages": [{"role": "user"}]}, [("request.content-required", "/messages/0/content")]),
    ({"messages": [{"role": "user", "content": None}]}, [("request.content-required", "/messages/0/content")]),
    ({"model": ""}, [("request.model-required", "/model")]),
])
def test_schema_failures_map_to_specific_rules(over: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert rules(body(**over)) == expected


def test_missing_model_and_non_object_body() -> None:
    assert rules({"messages": USER}) == [("request.model-required", "/model")]
    assert rules([1, 2]) == [("request.schema", "")]
    assert rules({"model": "qwen-plus"}) == [("request.messages-nonempty", "/messages")]


def test_range_messages_state_the_profile_interval() -> None:
    (v,) = check_request(body(temperature=2), DASH)
    assert v.message == "expected temperature in [0, 2), received 2"
    (v,) = check_request(body(top_p=0), DASH)
    assert v.message == "expected top_p in (0, 1], received 0"


def test_valid_requests_pass_on_every_profile() -> None:
    for profile in (DASH, OPENAI, QWEN_REF):
        assert check_request(body(temperature=0, top_p=1, seed=0, stop=["a"], n=1, tools=TOOLS), profile) == []


def test_profile_differences() -> None:
    dev = body(messages=[{"role": "developer", "content": "x"}, *USER])
    assert rules(dev) == [("request.role-allowed", "/messages/0/role")]
    assert rules(dev, OPENAI) == [] and rules(dev, QWEN_REF) == []
    fn_role = body(messages=[*USER, {"role": "function", "name": "f", "content": "1"}, *USER])
    assert rules(fn_role, QWEN_REF) == [("request.role-allowed", "/messages/1/role")]
    n_tools = body(model="gpt-4o", n=2, tools=TOOLS)
    assert rules(n_tools, OPENAI) == []
    assert rules(body(model="gpt-4o", temperature=2), OPENAI) == []
    assert rules(body(n=10), QWEN_REF) == [] and rules(body(n=11), QWEN_REF) == [("request.n-range", "/n")]
    sys_late = body(messages=[*USER, {"role": "system", "content": "x"}, *USER])
    assert rules(sys_late) == [("request.system-first", "/messages/1/role")]
    assert rules(sys_late, OPENAI) == []


def test_last_message_role_allows_partial_assistant_prefix() -> None:
    """C30: a trailing assistant turn with partial: true is DashScope's prefix continuation."""
    last = [*USER, {"role": "assistant", "content": "Once upon"}]
    assert rules(body(messages=last)) == [("request.last-message-role", "/messages/1/role")]
    last[1]["partial"] = True
    assert rules(body(messages=last)) == []


def test_seed_tool_loop_answers_without_tool_call_id() -> None:
    """Seed 001's own loop appends {"role": "tool", "name": ...} with no tool_call_id."""
    msgs = [*USER, {"role": "assistant", "content": "", "tool_calls": [call("call_1", "get_current_time")]},
            {"name": "get_current_time", "role": "tool", "content": "Current time: 12:00."}]
    assert rules(body(messages=msgs, tools=TOOLS)) == []
    assert rules(body(model="gpt-4o", messages=msgs, tools=TOOLS), OPENAI) == [
        ("request.tool-calls-answered", "/messages/1/tool_calls")]


def test_tool_history_rules() -> None:
    orphan = [*USER, {"role": "tool", "tool_call_id": "x", "content": "1"}, *USER]
    assert rules(body(messages=orphan)) == [("request.tool-after-tool-calls", "/messages/1")]
    wrong_id = [*USER, {"role": "assistant", "content": "", "tool_calls": [call("call_1")]},
                {"role": "tool", "tool_call_id": "call_9", "content": "1"}]
    assert rules(body(messages=wrong_id)) == [("request.tool-after-tool-calls", "/messages/2/tool_call_id"),
                                              ("request.tool-calls-answered", "/messages/1/tool_calls")]
    two = [*USER, {"role": "assistant", "content": "", "tool_calls": [call("call_1"), call("call_2")]},
           {"role": "tool", "tool_call_id": "call_2", "content": "1"},
           {"role": "tool", "tool_call_id": "call_1", "content": "2"}]
    assert rules(body(messages=two)) == []
    (v,) = check_request(body(messages=two[:3] + USER), DASH)
    assert v.rule == "request.tool-calls-answered" and "call_1" in v.message


@pytest.mark.parametrize(("over", "expected"), [
    ({"model": "qwen-max", "n": 2}, [("request.n-model", "/n")]),
    ({"model": "qwen-plus", "n": 2}, []),
    ({"model": "qwen-max", "max_tokens": 8193}, [("request.max_tokens-limit", "/max_tokens")]),
    ({"model": "qwen-max", "max_tokens": 8192}, []),
    ({"model": "qwq-plus"}, [("request.stream-only-model", "/stream")]),
    ({"model": "qwq-plus", "stream": True}, []),
    ({"model": "qwen3-32b"}, [("request.thinking-non-stream", "/stream")]),
    ({"model": "qwen3-32b", "enable_thinking": False}, []),
    ({"model": "qwen3-32b", "stream": True}, []),
    ({"model": "qwen3-max", "enable_thinking": True}, [("request.thinking-non-stream", "/enable_thinking")]),
    ({"model": "qwen-plus", "enable_thinking": True}, []),  # C17: qwen-plus thinks non-stream
    ({"model": "qwen-max", "enable_thinking": True}, [("request.enable_thinking-supported", "/enable_thinking")]),
    ({"model": "some-other-model", "n": 3, "enable_thinking": True, "max_tokens": 10**6}, []),
])
def test_model_capability_rules(over: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert rules(body(**over)) == expected


def test_model_unknown_only_when_asked() -> None:
    assert rules(body(model="Qwen-Plus")) == []
    assert rules(body(model="Qwen-Plus"), check_model=True) == [("request.model-unknown", "/model")]


@pytest.mark.parametrize(("b", "key"), [
    (body(), None),
    ({"messages": USER, "temperature": 5}, "request.model-required"),
    (body(model="Qwen-Plus", temperature=5), "request.model-unknown"),
    (body(messages=[{"role": "developer", "content": "x"}], temperature=5), "request.role-allowed"),
    (body(temperature=5, messages=[*USER, {"role": "system", "content": "x"}, *USER]), "request.temperature-range"),
    (body(model="qwen-max", n=2, messages=[*USER, {"role": "tool", "content": "x"}, *USER]),
     "request.tool-after-tool-calls"),
    (body(temperature="hot"), "request.schema"),
    (body(top_k=-1), "request.schema"),
    ([1], "request.schema"),
])
def test_first_request_error_prefers_what_a_server_reports_first(b: Any, key: str | None) -> None:
    found = first_request_error(b, DASH)
    assert (found[0] if found else None) == key


def test_first_request_error_on_openai_profile() -> None:
    key, v = first_request_error(body(model="gpt-4o", seed=2**64), OPENAI)
    assert v.rule == "request.seed-range" and key == "request.seed-range"
    key, v = first_request_error(body(model="gpt-4o", messages=[*USER, {"role": "tool", "content": "1"}]), OPENAI)
    assert v.rule == "request.tool-after-tool-calls"


def test_error_values_render_the_documented_message() -> None:
    b = body(messages=[{"role": "developer", "content": "x"}, *USER])
    key, v = first_request_error(b, DASH)
    text = DASH.error(key).render(**error_values(v, b, DASH))
    assert text.startswith("developer is not one of ['system', 'assistant', 'user', 'tool', 'function']")
    assert text.endswith("'messages.[0].role'")
    b = body(model="qwen-max", max_tokens=9000)
    key, v = first_request_error(b, DASH)
    assert DASH.error(key).render(**error_values(v, b, DASH)).endswith("[1, 8192]")


def test_profile_from_a_yaml_path_without_error_table(tmp_path) -> None:
    """A custom profile (any name, no `errors:` entries) still validates with its own bounds and
    falls back to the generic request.schema answer."""
    path = tmp_path / "gateway.yaml"
    path.write_text("name: my-gateway\nextends: dashscope\nparams:\n  temperature: {minimum: 0, maximum: 1}\n"
                    "errors: null\n", encoding="utf-8")
    profile = load_profile(str(path))
    assert rules(body(temperature=1.5), profile) == [("request.temperature-range", "/temperature")]
    assert rules(body(temperature=1.0), profile) == []
    key, v = first_request_error(body(temperature=1.5), profile)
    assert (key, v.rule) == ("request.schema", "request.temperature-range")


def test_integers_below_int64_are_not_rounded_into_range() -> None:
    """orjson reads -2^63-1000 as the float -2^63, which is in range: the mock accepted it (openai profile)."""
    from conformance.jsonutil import loads
    body = loads(b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
                 b'"seed": -9223372036854776808}')
    assert body["seed"] == -9223372036854776808
    assert [v.rule for v in check_request(body, OPENAI)] == ["request.seed-range"]

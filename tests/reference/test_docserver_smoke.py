"""Smoke tests of the independent reference server (tests/reference/docserver.py).

The clean server is exercised with the official ``openai`` SDK; every fault is checked to change what goes over
the wire, by sending the same raw request to the clean and the faulty server and comparing the normalised answers.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.reference.docserver import FAULTS, DocServer

KEY = "sk-reference-test"
CHAT = "/compatible-mode/v1/chat/completions"

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_time",
            "description": "Useful for when you want to know the current time.",
            "parameters": {},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Useful for querying the weather in a specific city.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "A city or county."}},
            },
            "required": ["location"],
        },
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[DocServer]:
    with DocServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: DocServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=10) as c:
        yield c


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------------------------------------------
# The clean server, through the SDK
# --------------------------------------------------------------------------------------------------------------


def test_non_stream(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "You are a helpful assistant."}, *_user("Who are you?")]
    before = int(time.time())
    completion = client.chat.completions.create(model="qwen-plus", messages=messages)
    raw = completion.model_dump()
    assert raw["id"].startswith("chatcmpl-")
    assert raw["object"] == "chat.completion"
    assert raw["model"] == "qwen-plus"
    assert before - 1 <= raw["created"] <= int(time.time()) + 1
    assert raw["system_fingerprint"] is None
    (choice,) = raw["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "Qwen" in choice["message"]["content"]
    usage = raw["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())


def test_stream_with_include_usage_matches_non_stream(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": "qwen-plus",
        "messages": _user("Write a long story about a clock."),
        "seed": 42,
        "max_tokens": 120,
    }
    plain = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in body)
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == plain.choices[0].message.content
    assert len(text.split()) == 120
    assert body[-1].choices[0].finish_reason == plain.choices[0].finish_reason == "length"
    assert last.usage.model_dump() == plain.usage.model_dump()


def test_long_story_is_long(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="qwen-plus", messages=_user("Write a long story."))
    assert len(completion.choices[0].message.content.split()) >= 200


def test_stop_string_never_appears(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {"model": "qwen-plus", "messages": _user("Who are you?"), "stop": ["Qwen"]}
    plain = client.chat.completions.create(**kwargs)
    assert "Qwen" not in plain.choices[0].message.content
    assert plain.choices[0].finish_reason == "stop"
    streamed = "".join(
        c.choices[0].delta.content or "" for c in client.chat.completions.create(**kwargs, stream=True) if c.choices
    )
    assert streamed == plain.choices[0].message.content


def test_n_two_streams_interleaved(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="qwen-plus", messages=_user("Who are you?"), n=2, stream=True))
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    plain = client.chat.completions.create(model="qwen-plus", messages=_user("Who are you?"), n=2)
    assert [c.message.content for c in plain.choices] == [texts[0], texts[1]]
    assert [c.index for c in plain.choices] == [0, 1]


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, Any]] = _user("How is the weather in Singapore?")
    first = client.chat.completions.create(model="qwen-plus", messages=messages, tools=WEATHER_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"location": "Singapore"}
    # continue exactly as the documentation's example does: a tool message with a name and no tool_call_id
    messages.append(choice.message.model_dump())
    messages.append({"role": "tool", "name": "get_current_weather", "content": "It is rainy in Singapore today. "})
    second = client.chat.completions.create(model="qwen-plus", messages=messages, tools=WEATHER_TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert "rainy in Singapore" in second.choices[0].message.content


def test_tool_call_respects_max_tokens(client: openai.OpenAI) -> None:
    messages = _user("How is the weather in Singapore?")
    cut = client.chat.completions.create(model="qwen-plus", messages=messages, tools=WEATHER_TOOLS, max_tokens=1)
    assert cut.choices[0].finish_reason == "length" and not cut.choices[0].message.tool_calls
    assert cut.usage.completion_tokens <= 1


def test_wrong_key_is_401_with_documented_envelope(server: DocServer) -> None:
    bad = openai.OpenAI(api_key="sk-wrong", base_url=server.base_url, max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="qwen-plus", messages=_user("hi"))
    assert info.value.status_code == 401
    assert info.value.response.json() == {
        "error": {
            "message": "Incorrect API key provided. ",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@pytest.mark.parametrize("stream", [False, True])
def test_temperature_2_is_400_json(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="qwen-plus", messages=_user("hi"), temperature=2, stream=stream)
    response = info.value.response
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["param"] == "temperature" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_doc_silences_are_accepted(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="qwen-plus", messages=_user("hi"), tools=[], max_tokens=1_000_000)
    client.chat.completions.create(
        model="qwen-plus", messages=_user("hi"), extra_body={"enable_thinking": True, "no_such_parameter": 1}
    )
    lone_tool = [*_user("hi"), {"role": "tool", "content": "42"}]
    client.chat.completions.create(model="qwen-plus", messages=lone_tool)


def test_routes(server: DocServer) -> None:
    assert _raw(server, "GET", CHAT)[0] == 405
    assert _raw(server, "POST", "/compatible-mode/v1/nothing", {"model": "qwen-plus"})[0] == 404
    status, ctype, body = _raw(server, "POST", CHAT, b"{not json")
    assert (status, ctype) == (400, "application/json") and "error" in body
    assert _raw(server, "POST", "/v1/chat/completions", {"model": "qwen-plus", "messages": _user("hi")})[0] == 200


# --------------------------------------------------------------------------------------------------------------
# Every fault changes the wire behaviour
# --------------------------------------------------------------------------------------------------------------


def _raw(server: DocServer, method: str, path: str, body: Any = None, key: str | None = KEY) -> tuple[int, str, Any]:
    """One raw HTTP exchange; returns (status, media type, normalised body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read().decode()
        ctype = (response.getheader("Content-Type") or "").split(";")[0].strip()
        status = response.status
    finally:
        conn.close()
    if ctype == "text/event-stream":
        events = [e.removeprefix("data: ") for e in payload.split("\n\n") if e.strip()]
        parsed: Any = [_maybe_json(e) for e in events]
    else:
        parsed = _maybe_json(payload)
    return status, ctype, _normalise(parsed)


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _normalise(value: Any) -> Any:
    """Replace what legitimately varies between two runs: the first completion id, call ids, a current `created`."""
    first_id: list[str] = []
    now = time.time()

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if key == "id" and isinstance(node, str):
            if node.startswith("call_"):
                return "<call-id>"
            if not first_id:
                first_id.append(node)
            return "<id>" if node == first_id[0] else node
        if key == "created" and isinstance(node, int) and abs(node - now) < 600:
            return "<now>"
        return node

    return walk(value)


BASIC: dict[str, Any] = {"model": "qwen-plus", "messages": _user("Who are you?")}
STREAM: dict[str, Any] = {**BASIC, "stream": True}
WEATHER: dict[str, Any] = {
    "model": "qwen-plus",
    "messages": _user("How is the weather in Hangzhou?"),
    "tools": WEATHER_TOOLS,
}
LONG_NAME_TOOL = [{"type": "function", "function": {"name": "f" * 65, "description": "x", "parameters": {}}}]

# fault -> (request body, key); the key defaults to the right one
PROBES: dict[str, tuple[Any, str | None]] = {
    **{name: (BASIC, KEY) for name in FAULTS if name.startswith("missing_")},
    "created_milliseconds": (BASIC, KEY),
    "created_zero": (BASIC, KEY),
    "created_1e6": (BASIC, KEY),
    "usage_total_mismatch": (BASIC, KEY),
    "usage_negative": (BASIC, KEY),
    "finish_reason_done": (BASIC, KEY),
    "role_bot": (BASIC, KEY),
    "index_off_by_one": (BASIC, KEY),
    "model_wrong_echo": (BASIC, KEY),
    "accept_temperature_2": ({**BASIC, "temperature": 2}, KEY),
    "accept_top_p_0": ({**BASIC, "top_p": 0}, KEY),
    "accept_presence_penalty_out_of_range": ({**BASIC, "presence_penalty": 2.5}, KEY),
    "accept_n_5": ({**BASIC, "n": 5}, KEY),
    "accept_n_other_model": ({**BASIC, "model": "qwen-max", "n": 2}, KEY),
    "accept_n_with_tools": ({**WEATHER, "n": 2}, KEY),
    "accept_system_not_first": (
        {**BASIC, "messages": [*_user("hi"), {"role": "system", "content": "Be brief."}, *_user("Who are you?")]},
        KEY,
    ),
    "accept_last_assistant": ({**BASIC, "messages": [*_user("hi"), {"role": "assistant", "content": "Hello"}]}, KEY),
    "accept_long_tool_name": ({**BASIC, "tools": LONG_NAME_TOOL}, KEY),
    "accept_mixed_stop": ({**BASIC, "stop": ["Hello", 104307]}, KEY),
    "accept_negative_seed": ({**BASIC, "seed": -1}, KEY),
    "accept_missing_model": ({"messages": _user("Who are you?")}, KEY),
    "accept_unknown_model": ({**BASIC, "model": "gpt-4"}, KEY),
    "accept_empty_messages": ({**BASIC, "messages": []}, KEY),
    "accept_unknown_role": ({**BASIC, "messages": [{"role": "wizard", "content": "Who are you?"}]}, KEY),
    "accept_tools_with_stream": ({**WEATHER, "stream": True}, KEY),
    "accept_max_tokens_zero": ({**BASIC, "max_tokens": 0}, KEY),
    "accept_wrong_key": (BASIC, "sk-wrong"),
    "stop_ignored_stream": ({**STREAM, "stop": "Qwen"}, KEY),
    "stop_ignored_nonstream": ({**BASIC, "stop": "Qwen"}, KEY),
    "max_tokens_ignored_stream": ({**STREAM, "max_tokens": 3}, KEY),
    "max_tokens_ignored_nonstream": ({**BASIC, "max_tokens": 3}, KEY),
    "n_ignored_stream": ({**STREAM, "n": 2}, KEY),
    "n_ignored_nonstream": ({**BASIC, "n": 2}, KEY),
    "include_usage_ignored": ({**STREAM, "stream_options": {"include_usage": True}}, KEY),
    "stream_no_done": (STREAM, KEY),
    "stream_no_role": (STREAM, KEY),
    "stream_usage_without_include": (STREAM, KEY),
    "stream_usage_every_chunk": (STREAM, KEY),
    "stream_id_changes": (STREAM, KEY),
    "stream_no_finish_reason": (STREAM, KEY),
    "stream_wrong_object": (STREAM, KEY),
    "auth_403": (BASIC, "sk-wrong"),
    "error_text_plain": (BASIC, "sk-wrong"),
    "error_not_json": (BASIC, "sk-wrong"),
    "error_no_code": (BASIC, "sk-wrong"),
    "error_no_message": (BASIC, "sk-wrong"),
    "bad_param_500": ({**BASIC, "temperature": 2}, KEY),
    "tool_args_not_json": (WEATHER, KEY),
    "tool_name_not_offered": (WEATHER, KEY),
}

# faults that must leave the other path alone: fault -> the same request on the other path
OTHER_PATH: dict[str, dict[str, Any]] = {
    "stop_ignored_stream": {**BASIC, "stop": "Qwen"},
    "stop_ignored_nonstream": {**STREAM, "stop": "Qwen"},
    "max_tokens_ignored_stream": {**BASIC, "max_tokens": 3},
    "max_tokens_ignored_nonstream": {**STREAM, "max_tokens": 3},
    "n_ignored_stream": {**BASIC, "n": 2},
    "n_ignored_nonstream": {**STREAM, "n": 2},
}


def test_fault_registry() -> None:
    assert len(FAULTS) >= 40
    assert set(PROBES) == set(FAULTS)
    for name, (description, statement) in FAULTS.items():
        assert description and statement, name
    with pytest.raises(ValueError, match="unknown fault"):
        DocServer(KEY, ["no_such_fault"])


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_changes_the_wire(server: DocServer, fault: str) -> None:
    body, key = PROBES[fault]
    clean = _raw(server, "POST", CHAT, body, key)
    with DocServer(api_key=KEY, faults=[fault]) as faulty:
        broken = _raw(faulty, "POST", CHAT, body, key)
        if fault in OTHER_PATH:
            other = OTHER_PATH[fault]
            assert _raw(faulty, "POST", CHAT, other) == _raw(server, "POST", CHAT, other), "other path changed"
    assert broken != clean, f"{fault} did not change the response"

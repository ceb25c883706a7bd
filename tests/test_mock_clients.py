"""Real clients against the real mock (a uvicorn child process): the official `openai` SDK and
langchain-openai, as the seed's own examples use them; every round trip is also captured raw
(httpx event hooks) and must pass every conformance rule."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from conformance.exchange import Exchange, HTTPRequest, make_headers
from conformance.jsonutil import loads
from conformance.mock import MockConfig, MockServer
from conformance.profiles import load_profile
from conformance.rules import check_exchange
from conformance.sse import decode_bytes

PROFILE = load_profile("dashscope")

# the seed's tool definitions (seed 001, "Tool calling example"), verbatim in shape
SEED_TOOLS = [
    {"type": "function", "function": {"name": "get_current_time",
                                      "description": "Useful for when you want to know the current time.",
                                      "parameters": {}}},
    {"type": "function", "function": {
        "name": "get_current_weather", "description": "Useful for querying the weather in a specific city.",
        "parameters": {"type": "object", "properties": {"location": {
            "type": "string", "description": "A city or county, such as Beijing, Hangzhou, or Yuhang District."}}},
        "required": ["location"]}},
]


class Capture:
    """httpx event hook: every response the SDK reads becomes an Exchange for check_exchange."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def hook(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        body = loads(req.content) if req.content else None
        request = HTTPRequest(method=req.method, url=str(req.url), headers=dict(req.headers), body=body)
        ex = Exchange(request=request, status=response.status_code,
                      headers=make_headers(response.headers.multi_items()), entry=len(self.exchanges))
        raw = response.content
        if "text/event-stream" in response.headers.get("content-type", "") and response.status_code < 400:
            ex.events = decode_bytes(raw)
        else:
            ex.body_text = raw.decode()
            try:
                ex.body = loads(raw)
            except ValueError:
                ex.body = None
        self.exchanges.append(ex)

    def violations(self) -> list[Any]:
        return [v for ex in self.exchanges for v in check_exchange(ex, PROFILE)]


@pytest.fixture(scope="module")
def base_url():
    with MockServer(MockConfig(seed=7)) as url:
        yield url


@pytest.fixture()
def capture() -> Capture:
    return Capture()


@pytest.fixture()
def client(base_url: str, capture: Capture):
    http = httpx.Client(event_hooks={"response": [capture.hook]})
    with openai.OpenAI(api_key="sk-test", base_url=base_url, http_client=http, max_retries=0) as c:
        yield c


def test_openai_non_stream_matches_the_documented_shape(client: openai.OpenAI, capture: Capture) -> None:
    completion = client.chat.completions.create(
        model="qwen-plus", messages=[{"role": "system", "content": "You are a helpful assistant."},
                                     {"role": "user", "content": "Who are you?"}])
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion" and completion.system_fingerprint is None
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert capture.exchanges[0].header("x-request-id") == completion.id.removeprefix("chatcmpl-")
    assert capture.violations() == []


def test_openai_stream_with_usage(client: openai.OpenAI, capture: Capture) -> None:
    chunks = list(client.chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "Who are you?"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert text.startswith("I am a simulated Qwen model")
    assert capture.violations() == []


def test_openai_seed_multi_round_tool_loop(client: openai.OpenAI, capture: Capture) -> None:
    """The seed's tool loop, unchanged in logic: one call per round (parallel_tool_calls defaults to
    false on DashScope), tool messages without tool_call_id, then a final answer."""
    messages: list[dict[str, Any]] = [{"role": "user",
                                       "content": "How is the weather in Singapore? What time is it now?"}]
    names = []
    for _ in range(5):
        message = client.chat.completions.create(model="qwen-plus", messages=messages,
                                                 tools=SEED_TOOLS).choices[0].message.model_dump()
        if message["content"] is None:
            message["content"] = ""
        messages.append(message)
        if message["tool_calls"] is None:
            break
        call = message["tool_calls"][0]["function"]
        names.append(call["name"])
        if call["name"] == "get_current_weather":
            location = json.loads(call["arguments"])["location"]
            messages.append({"name": "get_current_weather", "role": "tool",
                             "content": f"It is rainy in {location} today. "})
        else:
            messages.append({"name": "get_current_time", "role": "tool", "content": "Current time: 12:00:00."})
    assert names == ["get_current_weather", "get_current_time"]
    assert "It is rainy in Singapore today." in messages[-1]["content"]
    assert "Current time: 12:00:00." in messages[-1]["content"]
    assert capture.violations() == []


def test_openai_streamed_tool_call_deltas(client: openai.OpenAI, capture: Capture) -> None:
    chunks = list(client.chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "What is the weather in Hangzhou?"}],
        tools=SEED_TOOLS, stream=True, stream_options={"include_usage": True}))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id.startswith("call_") and len(deltas[0].id) == 29
    assert deltas[0].function.name == "get_current_weather" and deltas[0].function.arguments == ""
    assert all(d.id == "" for d in deltas[1:])
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"location": "Hangzhou"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert capture.violations() == []


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"temperature": 2}, 400, "invalid_parameter_error"),
    ({"model": "Qwen-Plus"}, 404, "model_not_found"),
    ({"messages": [{"role": "developer", "content": "hi"}]}, 400, "invalid_parameter_error"),
    ({"model": "qwq-plus"}, 400, "invalid_parameter_error"),
])
def test_openai_errors_surface_as_api_status_errors(client: openai.OpenAI, capture: Capture,
                                                    kwargs: dict[str, Any], status: int, code: str) -> None:
    args: dict[str, Any] = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**args)
    assert info.value.status_code == status
    assert info.value.code == code
    assert info.value.request_id == capture.exchanges[-1].header("x-request-id")
    assert capture.violations() == []


def test_openai_wrong_key_is_401_invalid_api_key() -> None:
    with MockServer(MockConfig(api_key="sk-right"), in_process=True) as url:
        with openai.OpenAI(api_key="sk-wrong", base_url=url, max_retries=0) as c, \
                pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
        assert info.value.code == "invalid_api_key"
        with openai.OpenAI(api_key="sk-right", base_url=url, max_retries=0) as c:
            assert c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])


def test_openai_stream_error_is_an_sse_body(base_url: str, capture: Capture) -> None:
    """C5: a rejected stream:true request answers 4xx with a `data: {...}` body."""
    with httpx.Client(event_hooks={"response": [capture.hook]}) as http:
        resp = http.post(base_url + "/chat/completions", headers={"Authorization": "Bearer k"},
                         json={"model": "qwen-plus", "stream": True,
                               "messages": [{"role": "developer", "content": "hi"}]})
    assert resp.status_code == 400 and resp.text.startswith("data: {")
    envelope = json.loads(resp.text.removeprefix("data: "))
    assert "developer is not one of" in envelope["error"]["message"]
    assert envelope["request_id"] == resp.headers["x-request-id"]
    assert capture.violations() == []


def test_langchain_invoke_and_stream_usage(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(api_key="sk-test", base_url=base_url, model="qwen-plus", stream_usage=True, max_retries=0)
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Who are you?"}]
    answer = llm.invoke(messages)
    assert answer.content.startswith("I am a simulated Qwen model")
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.usage_metadata["total_tokens"] > 0
    chunks = list(llm.stream(messages))
    assert "".join(c.content for c in chunks).startswith("I am a simulated Qwen model")
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] > 0


def test_langchain_structured_output_gets_an_object_of_its_schema(base_url: str) -> None:
    """with_structured_output sends response_format json_schema and validates the answer with Pydantic."""
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Forecast(BaseModel):
        city: str
        temperature_c: float
        conditions: list[str]
        windy: bool
        advice: str | None

    llm = ChatOpenAI(api_key="sk-test", base_url=base_url, model="qwen-plus", max_retries=0)
    forecast = llm.with_structured_output(Forecast, method="json_schema").invoke("Weather in Hangzhou tomorrow?")
    assert isinstance(forecast, Forecast) and forecast.city == "Hangzhou" and forecast.conditions


def test_openai_parse_with_nested_models(client: openai.OpenAI, capture: Capture) -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    class Step(BaseModel):
        explanation: str
        output: int = Field(ge=3, le=9)

    class Solution(BaseModel):
        steps: list[Step] = Field(min_length=2)
        final: Literal["done", "stuck"]

    done = client.chat.completions.parse(model="qwen-plus", response_format=Solution,
                                         messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}])
    solution = done.choices[0].message.parsed
    assert isinstance(solution, Solution) and len(solution.steps) >= 2 and solution.final == "done"
    assert all(3 <= s.output <= 9 for s in solution.steps)
    assert capture.violations() == []


def test_n_choices_differ(client: openai.OpenAI, capture: Capture) -> None:
    answer = client.chat.completions.create(model="qwen-plus", n=3, max_tokens=6,
                                            messages=[{"role": "user", "content": "Hi"}])
    texts = [c.message.content for c in answer.choices]
    assert len(set(texts)) == 3, texts
    assert capture.violations() == []


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_call_once_per_city(client: openai.OpenAI, capture: Capture, stream: bool) -> None:
    question = "What is the weather like in Hangzhou and Beijing today?"
    kwargs: dict[str, Any] = {"model": "qwen-plus", "tools": SEED_TOOLS, "parallel_tool_calls": True,
                              "messages": [{"role": "user", "content": question}]}
    if stream:
        calls: dict[int, str] = {}
        for chunk in client.chat.completions.create(stream=True, **kwargs):
            for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                calls[delta_call.index] = calls.get(delta_call.index, "") + (delta_call.function.arguments or "")
        arguments = [calls[i] for i in sorted(calls)]
    else:
        message = client.chat.completions.create(**kwargs).choices[0].message
        arguments = [c.function.arguments for c in message.tool_calls or []]
    assert [json.loads(a)["location"] for a in arguments] == ["Hangzhou", "Beijing"]
    single = client.chat.completions.create(**{**kwargs, "parallel_tool_calls": False}).choices[0].message
    assert len(single.tool_calls or []) == 1  # DashScope's default: one call per turn
    assert capture.violations() == []

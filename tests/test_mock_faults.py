"""Every conformance fault mode of the mock breaks exactly the rule it is named after, and the
mock without faults breaks none: the proof that each check catches what it claims to."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.client import ChatClient, ClientConfig
from conformance.exchange import Exchange
from conformance.mock import MockConfig, MockServer
from conformance.mock.faults import FAULTS
from conformance.profiles import load_profile
from conformance.rules import REGISTRY, check_exchange, check_request

PROFILE = load_profile("dashscope")
USER = [{"role": "user", "content": "Who are you?"}]
TOOLS = [
    {"type": "function", "function": {"name": "get_current_time", "description": "current time",
                                      "parameters": {}}},
    {"type": "function", "function": {"name": "get_current_weather", "description": "weather in a city",
                                      "parameters": {"type": "object",
                                                     "properties": {"location": {"type": "string"}}}}},
]
WEATHER = [{"role": "user", "content": "How is the weather in Singapore?"}]


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "qwen-plus", "messages": USER, **extra}


def stream(**extra: Any) -> dict[str, Any]:
    return body(stream=True, stream_options={"include_usage": True}, **extra)


TOOL_CALL = {"id": "call_0123456789abcdef01234567", "type": "function",
             "function": {"name": "get_current_time", "arguments": "{}"}}

# fault -> request that reaches the fault's code path
TRIGGERS: dict[str, dict[str, Any] | bytes] = {
    "request.model-required": {"messages": USER},
    "request.messages-nonempty": body(messages=[]),
    "request.role-allowed": body(messages=[{"role": "developer", "content": "hi"}, *USER]),
    "request.content-required": body(messages=[{"role": "user"}]),
    "request.temperature-range": body(temperature=2),
    "request.top_p-range": body(top_p=0),
    "request.presence_penalty-range": body(presence_penalty=3),
    "request.n-range": body(n=5),
    "request.n-model": body(model="qwen-max", n=2),
    "request.n-with-tools": body(n=2, tools=TOOLS),
    "request.max_tokens-range": body(max_tokens=0),
    "request.max_tokens-limit": body(max_tokens=40_000),
    "request.seed-range": body(seed=-1),
    "request.stop-homogeneous": body(stop=["a", 1]),
    "request.tools-nonempty": body(tools=[]),
    "request.tool-name": body(tools=[{"type": "function", "function": {"name": "bad name!"}}]),
    "request.system-first": body(messages=[*USER, {"role": "system", "content": "be brief"}, *USER]),
    "request.last-message-role": body(messages=[*USER, {"role": "assistant", "content": "I am"}]),
    "request.tool-after-tool-calls": body(messages=[*USER, {"role": "tool", "content": "12:00"}]),
    "request.tool-calls-answered": body(messages=[*USER, {"role": "assistant", "content": "",
                                                           "tool_calls": [TOOL_CALL]}, *USER]),
    "request.stream-only-model": body(model="qwq-plus"),
    "request.thinking-non-stream": body(model="qwen3-32b"),
    "request.enable_thinking-supported": body(model="qwen-max", enable_thinking=True),
    "request.model-unknown": body(model="Qwen-Plus"),
    "schema.completion": body(),
    "schema.chunk": stream(),
    "schema.error": body(temperature=2),
    "response.content-type": body(),
    "response.usage-arithmetic": body(),
    "response.choices-count": body(),
    "response.choice-index": body(),
    "response.content-or-tool-calls": body(),
    "response.tool-arguments-json": body(messages=WEATHER, tools=TOOLS),
    "response.tool-name-offered": body(messages=WEATHER, tools=TOOLS),
    "response.finish-tool-calls": body(messages=WEATHER, tools=TOOLS),
    "response.finish-length": body(max_tokens=3),
    "response.id-prefix": body(),
    "response.request-id": body(),
    "stream.content-type": stream(),
    "stream.json": stream(),
    "stream.same-id": stream(),
    "stream.same-created": stream(),
    "stream.same-model": stream(),
    "stream.role-first": stream(),
    "stream.role-once": stream(),
    "stream.one-finish": stream(),
    "stream.no-content-after-finish": stream(),
    "stream.choice-indices": stream(),
    "stream.usage-last": stream(),
    "stream.usage-null-elsewhere": stream(),
    "stream.usage-only-when-asked": body(stream=True),
    "stream.usage-arithmetic": stream(),
    "stream.finish-tool-calls": stream(messages=WEATHER, tools=TOOLS),
    "stream.finish-length": stream(max_tokens=3),
    "stream.tool-call-index": stream(messages=WEATHER, tools=TOOLS),
    "stream.tool-call-first-delta": stream(messages=WEATHER, tools=TOOLS),
    "stream.tool-call-stable": stream(messages=WEATHER, tools=TOOLS),
    "stream.tool-arguments-json": stream(messages=WEATHER, tools=TOOLS),
    "stream.error-event": stream(),
    "stream.done-last": stream(),
    "stream.terminated": stream(),
    "stream.request-id": stream(),
    "stream.created-plausible": stream(),
    "stream.model-matches": stream(),
    "response.created-plausible": body(),
    "response.model-matches": body(),
    "error.content-type": body(temperature=2),
    "error.no-leak": body(temperature=2),
    "error.envelope": body(temperature=2),
    "error.status-type": body(temperature=2),
    "error.stream-body-sse": stream(temperature=2),
    "error.code-snake-case": body(temperature=2),
    "error.request-id": body(temperature=2),
    "error.status-code": body(temperature=2),
    "auth.invalid-key": body(),
    "request.malformed-json": b'{"model": "qwen-plus", "messages": [',
}
NOT_RULES = {"auth.invalid-key", "request.malformed-json"}   # profile error keys, not check ids


_CLIENTS: dict[tuple[str, str], ChatClient] = {}


def exchange(base_url: str, trigger: dict[str, Any] | bytes, *, api_key: str = "sk-test") -> Exchange:
    """One round trip through the project's own client (raw capture as an Exchange); clients are
    reused because building an httpx client costs more than a mock round trip."""
    client = _CLIENTS.get((base_url, api_key))
    if client is None:
        client = _CLIENTS[(base_url, api_key)] = ChatClient(ClientConfig(base_url=base_url, api_key=api_key,
                                                                         retries=0))
    if isinstance(trigger, bytes):
        return client.chat(None, raw=trigger)
    return client.chat(trigger)


@pytest.fixture(scope="module", autouse=True)
def _close_clients():
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def rules_broken(ex: Exchange) -> set[str]:
    return {v.rule for v in check_exchange(ex, PROFILE)}


def test_every_fault_is_a_rule_id_and_has_a_trigger() -> None:
    names = set(FAULTS)
    assert names - set(REGISTRY) == NOT_RULES, "fault names must be registered rule ids"
    assert set(TRIGGERS) == names
    assert len(names) >= 25


def test_a_fault_mode_runs_in_a_real_child_process() -> None:
    """The default MockServer (subprocess) gets its fault modes across the process boundary."""
    with MockServer(MockConfig(faults=("stream.done-last",))) as base_url:
        ex = exchange(base_url, TRIGGERS["stream.done-last"])
    assert rules_broken(ex) == {"stream.done-last"}


@pytest.fixture(scope="module")
def clean_server():
    server = MockServer(MockConfig(), in_process=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("name", sorted({k for k, v in TRIGGERS.items() if not isinstance(v, bytes)}))
def test_without_faults_the_trigger_breaks_nothing(clean_server: MockServer, name: str) -> None:
    ex = exchange(clean_server.base_url, TRIGGERS[name])
    assert ex.transport_error is None
    assert rules_broken(ex) == set()


@pytest.fixture()
def faulty_server(clean_server: MockServer):
    yield clean_server
    clean_server.app.set_faults(())


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_breaks_exactly_its_rule(faulty_server: MockServer, name: str) -> None:
    faulty_server.app.set_faults((name,))
    ex = exchange(faulty_server.base_url, TRIGGERS[name], api_key="" if name == "auth.invalid-key" else "sk-test")
    if name == "auth.invalid-key":
        assert ex.status == 401
        assert rules_broken(ex) == {"error.envelope", "error.content-type"}   # text/plain "Unauthorized"
    elif name == "request.model-unknown":   # check_exchange never judges model ids (live servers know more)
        assert ex.status == 200
        assert {v.rule for v in check_request(ex.request.body, PROFILE, check_model=True)} == {name}
    elif name == "request.malformed-json":
        assert ex.status == 500   # the documented answer is 400 (profile errors: request.malformed-json)
        assert rules_broken(ex) == set()
    else:
        assert rules_broken(ex) == {name}

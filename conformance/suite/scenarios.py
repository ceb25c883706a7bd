"""Named request scenarios: the traffic the rule checks are evaluated on.

Each scenario is sent at most once per run and cached (many checks read the same exchanges, so a
live run stays within its budget). Tags say what a scenario exercises; a rule check runs on every
executed scenario whose tags cover the rule's needs, and is skipped when none applies to the target
(for instance streamed tool calls on a model without tools).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exchange import Exchange
from ..redact import PUBLIC_WRONG_KEY
from .answers import first_message

if TYPE_CHECKING:
    from .context import SuiteContext

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Useful for querying the weather in a specific city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "A city, such as Hangzhou."}},
            "required": ["location"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_current_time", "description": "Useful for knowing the current time.",
                 "parameters": {}},
}
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
WHO = {"role": "user", "content": "Who are you?"}
LONG_ANSWER = {"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}
WEATHER_Q = {"role": "user", "content": "What is the weather like in Hangzhou today?"}
MAX_TOKENS = 48
WRONG_KEY = PUBLIC_WRONG_KEY  # made up and public: reproducers show it as it was sent


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    tags: frozenset[str]
    run: Callable[[SuiteContext], list[Exchange]]
    needs: str = ""  # model capability: n | tools | thinking | thinking_non_stream
    requests: int = 1


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, title: str, tags: str, *, needs: str = "", requests: int = 1
             ) -> Callable[[Callable[[SuiteContext], list[Exchange]]], Callable[[SuiteContext], list[Exchange]]]:
    def wrap(func: Callable[[SuiteContext], list[Exchange]]) -> Callable[[SuiteContext], list[Exchange]]:
        SCENARIOS[name] = Scenario(name, title, frozenset(tags.split()), func, needs, requests)
        return func
    return wrap


def base(ctx: SuiteContext, *messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": ctx.model, "messages": list(messages or (SYSTEM, WHO))}
    body.setdefault("max_tokens", MAX_TOKENS)
    body.update(params)
    return body


def stream(ctx: SuiteContext, *messages: dict[str, Any], usage: bool | None = True, **params: Any
           ) -> dict[str, Any]:
    body = base(ctx, *messages, stream=True, **params)
    if usage is not None:
        body["stream_options"] = {"include_usage": usage}
    return body


@scenario("nonstream-basic", "plain non-stream answer", "nonstream")
def _nonstream_basic(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx))]


@scenario("stream-usage", "stream with include_usage", "stream usage")
def _stream_usage(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx))]


@scenario("stream-no-usage", "stream without stream_options", "stream")
def _stream_no_usage(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, usage=None))]


@scenario("stream-usage-false", "stream with include_usage false", "stream")
def _stream_usage_false(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, usage=False))]


@scenario("nonstream-length", "non-stream cut by max_tokens", "nonstream length")
def _nonstream_length(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, LONG_ANSWER, max_tokens=5))]


@scenario("stream-length", "stream cut by max_tokens", "stream usage length")
def _stream_length(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, LONG_ANSWER, max_tokens=5))]


@scenario("nonstream-stop", "non-stream with a stop string", "nonstream stop")
def _nonstream_stop(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, LONG_ANSWER, stop=[" the "], max_tokens=32))]


@scenario("nonstream-n", "non-stream with n=2", "nonstream n", needs="n")
def _nonstream_n(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, n=2, max_tokens=16))]


@scenario("stream-n", "stream with n=2", "stream usage n", needs="n")
def _stream_n(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, n=2, max_tokens=16))]


@scenario("nonstream-tools", "non-stream tool call", "nonstream tools", needs="tools")
def _nonstream_tools(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, WEATHER_Q, tools=[WEATHER_TOOL, TIME_TOOL]))]


@scenario("stream-tools", "streamed tool call (a drift point: the Model Studio page forbids it)",
          "stream usage tools drift", needs="tools")
def _stream_tools(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, WEATHER_Q, tools=[WEATHER_TOOL, TIME_TOOL]))]


@scenario("tool-roundtrip", "tool result sent back, final answer", "nonstream tools", needs="tools", requests=2)
def _tool_roundtrip(ctx: SuiteContext) -> list[Exchange]:
    first = ctx.traffic.run("nonstream-tools")[0]
    message = first_message(first)
    if not message or not message.get("tool_calls"):
        return []
    history: list[dict[str, Any]] = [WEATHER_Q, {"role": "assistant", "content": message.get("content") or "",
                                                 "tool_calls": message["tool_calls"]}]
    for call in message["tool_calls"]:
        history.append({"role": "tool", "tool_call_id": call.get("id", ""),
                        "name": (call.get("function") or {}).get("name", ""),
                        "content": "It is rainy in Hangzhou today."})
    return [ctx.client.chat(base(ctx, *history, tools=[WEATHER_TOOL, TIME_TOOL]))]


@scenario("stream-thinking", "stream with enable_thinking", "stream usage thinking", needs="thinking")
def _stream_thinking(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, {"role": "user", "content": "What is 17 * 23?"}, enable_thinking=True,
                                   max_tokens=64))]


@scenario("nonstream-thinking", "non-stream with enable_thinking", "nonstream thinking",
          needs="thinking_non_stream")
def _nonstream_thinking(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, {"role": "user", "content": "What is 17 * 23?"}, enable_thinking=True,
                                 max_tokens=64))]


@scenario("error-auth", "wrong API key", "error auth")
def _error_auth(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx), api_key=WRONG_KEY, retry=False)]


@scenario("error-auth-stream", "wrong API key on a stream request", "error auth stream-error")
def _error_auth_stream(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx), api_key=WRONG_KEY, retry=False)]


@scenario("error-param", "out-of-range temperature", "error param")
def _error_param(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(base(ctx, temperature=3.5), retry=False)]


@scenario("error-param-stream", "out-of-range temperature on a stream request", "error param stream-error")
def _error_param_stream(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(stream(ctx, temperature=3.5), retry=False)]


@scenario("error-malformed", "body that is not JSON", "error malformed")
def _error_malformed(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat(None, raw=b'{"model": "' + ctx.model.encode() + b'", "messages": [', retry=False)]


@scenario("error-model", "unknown model id", "error model")
def _error_model(ctx: SuiteContext) -> list[Exchange]:
    return [ctx.client.chat({**base(ctx), "model": "chatconf-no-such-model"}, retry=False)]


@dataclass
class Traffic:
    """Runs scenarios on demand, once each, and caches their exchanges and rule violations."""

    ctx: SuiteContext
    exchanges: dict[str, list[Exchange]] = field(default_factory=dict)
    _violations: dict[int, list[Any]] = field(default_factory=dict)

    def applicable(self, name: str) -> bool:
        needs = SCENARIOS[name].needs
        return not needs or self.ctx.supports(needs)

    def run(self, name: str) -> list[Exchange]:
        if name not in self.exchanges:
            self.exchanges[name] = SCENARIOS[name].run(self.ctx) if self.applicable(name) else []
        return self.exchanges[name]

    def matching(self, required: frozenset[str]) -> list[tuple[str, Exchange]]:
        """Run every applicable scenario whose tags cover `required`; return its exchanges."""
        out = []
        for name, sc in SCENARIOS.items():
            if required <= sc.tags and self.applicable(name):
                out.extend((name, ex) for ex in self.run(name))
        return out

    def violations(self, ex: Exchange) -> list[Any]:
        key = id(ex)
        if key not in self._violations:
            from ..rules import check_exchange
            self._violations[key] = list(check_exchange(ex, self.ctx.profile))
        return self._violations[key]

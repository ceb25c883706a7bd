"""Non-stream response rules (response.*): what the schema cannot say about a chat.completion.

Each rule is a small function `(ctx) -> Iterator[Violation]` over a `ResponseContext`; the ones that
need the request (choices-count needs n, tool-name-offered needs tools, finish-length needs
max_tokens) are silent when the request is unknown (a bare .json capture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jsonutil import JSONError, loads
from ..profiles import Profile
from .base import Violation, expected, expected_text, register, rules_of

_EMPTY: dict[str, Any] = {}


@dataclass
class ResponseContext:
    body: dict[str, Any]
    profile: Profile
    request: dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    entry: int = 0
    sent_at: float | None = None

    def v(self, rule_id: str, message: str, pointer: str = "") -> Violation:
        return Violation(rule_id, message, entry=self.entry, pointer=pointer)

    def choices(self) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
        """(position, choice, message) for every well-formed choice."""
        choices = self.body.get("choices")
        if not isinstance(choices, list):
            return
        for i, ch in enumerate(choices):
            if isinstance(ch, dict):
                msg = ch.get("message")
                yield i, ch, msg if isinstance(msg, dict) else _EMPTY


ResponseCheck = Callable[[ResponseContext], Iterator[Violation]]


def response_rule(rule_id: str, title: str, *, cites: str, needs: str = "", when: str = ""
                  ) -> Callable[[ResponseCheck], ResponseCheck]:
    def wrap(func: ResponseCheck) -> ResponseCheck:
        register(rule_id, title, kind="response", cites=cites, needs=needs, when=when, func=func)
        return func
    return wrap


# -- shared helpers (also used by the stream rules) ------------------------------------------------

def usage_problem(usage: Any) -> tuple[str, str] | None:
    """(pointer suffix, message) when usage totals do not add up (N5, S19); None when fine.
    Detail blocks vary (C14): only cached_tokens <= prompt_tokens is asserted about them."""
    if not isinstance(usage, dict):
        return None
    p, c, t = usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens")
    if type(p) is int and type(c) is int and type(t) is int and t != p + c:
        return "/total_tokens", expected(f"total_tokens == prompt_tokens + completion_tokens ({p + c})", t)
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if type(cached) is int and type(p) is int and cached > p:
        return ("/prompt_tokens_details/cached_tokens",
                expected(f"cached_tokens <= prompt_tokens ({p})", cached))
    return None


def answer_tokens(usage: Any) -> int | None:
    """Completion tokens that max_tokens caps: reasoning tokens are not capped (C34), and detail
    blocks disagree between models (C14), so take the smallest estimate available."""
    if not isinstance(usage, dict) or type(usage.get("completion_tokens")) is not int:
        return None
    total = usage["completion_tokens"]
    estimates = [total]
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict):
        if type(details.get("reasoning_tokens")) is int:
            estimates.append(total - details["reasoning_tokens"])
        if type(details.get("text_tokens")) is int:
            estimates.append(details["text_tokens"])
    return min(estimates)


EARLIEST_CREATED = 1_420_070_400   # 2015-01-01: no chat completion is older
LATEST_CREATED = 4_102_444_800     # 2100-01-01: larger values are milliseconds (or garbage)
CLOCK_SKEW_S = 86_400


def created_problem(created: Any, sent_at: float | None) -> str | None:
    """`created` is UNIX time in seconds: in a plausible range, and within a day of the request
    when the send time is known (live traffic); captures of any age only get the range check."""
    if type(created) is not int:
        return None  # the schema reports the type
    if created >= LATEST_CREATED * 100:
        return expected("created in UNIX seconds", created) + " (milliseconds?)"
    if not EARLIEST_CREATED <= created < LATEST_CREATED:
        return expected("created in UNIX seconds between 2015 and 2100", created)
    if sent_at is not None and abs(created - sent_at) > CLOCK_SKEW_S:
        return expected(f"created within a day of the request time ({int(sent_at)})", created)
    return None


def model_problem(request: Any, answered: Any) -> str | None:
    """The answer names the requested model, or a snapshot or alias of it (one id a prefix of the
    other, compared case-insensitively and by the last path segment); anything else is unrelated."""
    requested = request.get("model") if isinstance(request, dict) else None
    if not (isinstance(requested, str) and requested and isinstance(answered, str) and answered):
        return None
    want, got = requested.lower(), answered.lower()
    for a, b in ((want, got), (want.rsplit("/", 1)[-1], got.rsplit("/", 1)[-1])):
        if a.startswith(b) or b.startswith(a):
            return None
    return expected(f"the requested model {requested!r} or a snapshot of it", answered)


def usage_plausibility(usage: Any, request: Any, answered: bool) -> tuple[str, str] | None:
    """Counts that cannot be true: no prompt tokens for a prompt, no completion tokens for an answer."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    has_prompt = isinstance(request, dict) and isinstance(request.get("messages"), list) and request["messages"]
    if has_prompt and prompt == 0:
        return "/prompt_tokens", expected("prompt_tokens >= 1 for a non-empty prompt", prompt)
    if answered and completion == 0:
        return "/completion_tokens", expected("completion_tokens >= 1 for a non-empty answer", completion)
    return None


def max_tokens_of(request: Any) -> int | None:
    value = request.get("max_tokens") if isinstance(request, dict) else None
    return value if type(value) is int else None


def completion_token_cap(request: Any) -> tuple[int, str] | None:
    """The cap on usage.completion_tokens and how to say it: usage counts every choice, so with
    n choices the cap is n x max_tokens."""
    cap = max_tokens_of(request)
    if cap is None:
        return None
    n = request.get("n")
    if type(n) is int and n > 1:
        return cap * n, f"n x max_tokens ({n} x {cap})"
    return cap, f"max_tokens ({cap})"


def forced_tool_choice(request: Any) -> bool:
    """tool_choice "required" or a named function: OpenAI-style servers may then finish with "stop"."""
    choice = request.get("tool_choice") if isinstance(request, dict) else None
    return choice == "required" or isinstance(choice, dict)


def offered_tool_names(request: Any) -> set[str] | None:
    tools = request.get("tools") if isinstance(request, dict) else None
    if not isinstance(tools, list):
        return None
    names = set()
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def arguments_problem(arguments: Any, label: str = "arguments") -> str | None:
    """Tool-call arguments must be a JSON object text; "" means no arguments (C23)."""
    if arguments is None or arguments == "":
        return None
    try:
        parsed = loads(arguments)
    except (JSONError, TypeError):
        return expected(f"{label} that parse as JSON", arguments)
    if not isinstance(parsed, dict):
        return expected(f"{label} that are a JSON object", arguments)
    return None


# -- rules ------------------------------------------------------------------------------------------

def content_type_violation(headers: Mapping[str, str], want: str, rule_id: str, entry: int) -> Violation | None:
    """Only judged when the capture kept the header (bare .json/.sse files have none)."""
    raw = headers.get("content-type")
    if raw is None:
        return None
    media = raw.split(";", 1)[0].strip().lower()
    if media != want:
        return Violation(rule_id, expected(f"Content-Type {want}", raw), entry=entry)
    return None


register("response.content-type", "a non-stream answer is application/json", kind="response",
         cites="001:http-api C2")


@response_rule("response.usage-arithmetic", "usage counts add up and are plausible",
               cites="001:response-parameters N5 S19")
def usage_arithmetic(ctx: ResponseContext) -> Iterator[Violation]:
    """total_tokens is documented as the sum of prompt and completion tokens; a prompt or an
    answer counted as zero tokens is a made-up number."""
    usage = ctx.body.get("usage")
    answered = any(msg.get("content") or msg.get("tool_calls") for _, _, msg in ctx.choices())
    problem = usage_problem(usage) or usage_plausibility(usage, ctx.request, answered)
    if problem:
        yield ctx.v("response.usage-arithmetic", problem[1], "/usage" + problem[0])


@response_rule("response.created-plausible", "created is a UNIX time in seconds, near the request time",
               cites="001:response-parameters C2")
def created_plausible(ctx: ResponseContext) -> Iterator[Violation]:
    """The response table documents `created` as UNIX seconds; milliseconds or 0 break every client
    that turns it into a date."""
    problem = created_problem(ctx.body.get("created"), ctx.sent_at)
    if problem:
        yield ctx.v("response.created-plausible", problem, "/created")


@response_rule("response.model-matches", "the answer's model is the requested one (or a snapshot of it)",
               cites="S6 C2")
def model_matches(ctx: ResponseContext) -> Iterator[Violation]:
    """Gateways that route to another model than asked for must say so; an unrelated id is a misroute."""
    problem = model_problem(ctx.request, ctx.body.get("model"))
    if problem:
        yield ctx.v("response.model-matches", problem, "/model")


@response_rule("response.choices-count", "one choice per requested n", cites="001:param-n N2", needs="nonstream n")
def choices_count(ctx: ResponseContext) -> Iterator[Violation]:
    """len(choices) == n (default 1); needs the request."""
    if ctx.request is None:
        return
    n = ctx.request.get("n")
    want = n if type(n) is int and n > 0 else 1
    choices = ctx.body.get("choices")
    if isinstance(choices, list) and choices and len(choices) != want:
        yield ctx.v("response.choices-count", expected(f"{want} choice(s) for n={want}", len(choices)),
                    "/choices")


@response_rule("response.choice-index", "choices[i].index == i", cites="001:response-parameters N2")
def choice_index(ctx: ResponseContext) -> Iterator[Violation]:
    """Clients pair choices by index; it must be the array position."""
    for i, ch, _ in ctx.choices():
        idx = ch.get("index")
        if type(idx) is int and idx != i:
            yield ctx.v("response.choice-index", expected(f"index {i}", idx), f"/choices/{i}/index")


@response_rule("response.content-or-tool-calls", "message content is a string, or null only with tool calls",
               cites="001:response-parameters N3 C24")
def content_or_tool_calls(ctx: ResponseContext) -> Iterator[Violation]:
    """A null/missing content is only meaningful when the turn is a tool call."""
    for i, _, msg in ctx.choices():
        if msg is _EMPTY:
            continue
        content = msg.get("content")
        if content is None and not msg.get("tool_calls"):
            yield ctx.v("response.content-or-tool-calls",
                        expected_text("string content (null only with tool_calls)",
                                      "null" if "content" in msg else "no content"),
                        f"/choices/{i}/message/content")


@response_rule("response.tool-arguments-json", "tool-call arguments are JSON object text",
               cites="001:tool-example N6 C27", needs="nonstream tools")
def tool_arguments_json(ctx: ResponseContext) -> Iterator[Violation]:
    """Clients json.loads the arguments; "" is read as {} (C23)."""
    for i, _, msg in ctx.choices():
        for j, call in _calls(msg):
            fn = call.get("function")
            problem = arguments_problem(fn.get("arguments")) if isinstance(fn, dict) else None
            if problem:
                yield ctx.v("response.tool-arguments-json", problem,
                            f"/choices/{i}/message/tool_calls/{j}/function/arguments")


@response_rule("response.tool-name-offered", "called tools are among the offered tools",
               cites="001:tool-example N6", needs="nonstream tools")
def tool_name_offered(ctx: ResponseContext) -> Iterator[Violation]:
    """A call to a tool the client never offered cannot be dispatched; needs the request."""
    names = offered_tool_names(ctx.request)
    if names is None:
        return
    for i, _, msg in ctx.choices():
        for j, call in _calls(msg):
            fn = call.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            if isinstance(name, str) and name not in names:
                yield ctx.v("response.tool-name-offered", expected(f"a tool name in {sorted(names)}", name),
                            f"/choices/{i}/message/tool_calls/{j}/function/name")


@response_rule("response.finish-tool-calls", "tool calls and finish_reason tool_calls go together",
               cites="S27 N6 F6", needs="nonstream tools")
def finish_tool_calls(ctx: ResponseContext) -> Iterator[Violation]:
    """With a forced tool_choice, OpenAI-style servers finish with "stop"; that is accepted."""
    forced = forced_tool_choice(ctx.request)
    for i, ch, msg in ctx.choices():
        has_calls = bool(msg.get("tool_calls"))
        reason = ch.get("finish_reason")
        if has_calls and reason != "tool_calls" and not (forced and reason == "stop"):
            yield ctx.v("response.finish-tool-calls", expected("finish_reason 'tool_calls' with tool calls",
                                                               reason), f"/choices/{i}/finish_reason")
        elif reason == "tool_calls" and not has_calls:
            yield ctx.v("response.finish-tool-calls",
                        expected_text("tool_calls in the message for finish_reason 'tool_calls'", "none"),
                        f"/choices/{i}/message")


@response_rule("response.finish-length", "completion tokens respect max_tokens", cites="001:param-max_tokens S20",
               needs="nonstream length")
def finish_length(ctx: ResponseContext) -> Iterator[Violation]:
    """A server that ignores max_tokens bills beyond the cap; needs the request's max_tokens."""
    cap = completion_token_cap(ctx.request)
    used = answer_tokens(ctx.body.get("usage"))
    if cap is not None and used is not None and used > cap[0]:
        yield ctx.v("response.finish-length", expected(f"completion_tokens <= {cap[1]}", used),
                    "/usage/completion_tokens")


@response_rule("response.id-prefix", "completion id starts with chatcmpl-", cites="C2 C3", when="id_prefix")
def id_prefix(ctx: ResponseContext) -> Iterator[Violation]:
    """Clients and logs correlate by the chatcmpl- id."""
    rid = ctx.body.get("id")
    if isinstance(rid, str) and not rid.startswith("chatcmpl-"):
        yield ctx.v("response.id-prefix", expected("an id starting with 'chatcmpl-'", rid), "/id")


@response_rule("response.request-id", "body id is chatcmpl- + x-request-id", cites="C3", when="request_id_in_id")
def request_id(ctx: ResponseContext) -> Iterator[Violation]:
    """Support tickets quote the request id; only judged when the header was captured."""
    header = ctx.headers.get("x-request-id")
    rid = ctx.body.get("id")
    if header and isinstance(rid, str) and rid != f"chatcmpl-{header}":
        yield ctx.v("response.request-id", expected(f"id 'chatcmpl-{header}'", rid), "/id")


def _calls(msg: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        for j, call in enumerate(calls):
            if isinstance(call, dict):
                yield j, call


def check_response_body(body: dict[str, Any], profile: Profile, *, request: Any = None,
                        headers: Mapping[str, str] | None = None, entry: int = 0,
                        sent_at: float | None = None) -> list[Violation]:
    """All response.* rules except content-type (the caller knows whether a header exists)."""
    ctx = ResponseContext(body, profile, request if isinstance(request, dict) else None,
                          headers or {}, entry, sent_at)
    out: list[Violation] = []
    for rule in rules_of("response", profile):
        out.extend(rule.func(ctx))  # type: ignore[misc]
    return out

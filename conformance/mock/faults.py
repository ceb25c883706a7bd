"""Conformance fault modes: each makes the mock break exactly one rule, named by that rule's id,
so the harness can prove every check catches what it claims to (`chatconf mock --fault ID`,
`chatconf run --fault ID`).

FAULTS is the registry, as data: {name: (one-line description, target)}. The target says where the
mock applies it: `request` (the mock accepts requests that break this request rule), `stream` /
`response` (the answer body is rewritten), `stream-headers` / `response-headers`, `error` (error
answers), `auth`, `body` (unparsable request bodies), `plan` (what the model generates).
Some faults only show on requests that reach their code path (e.g. tool faults need a tool call,
stream.usage-last needs include_usage).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .plan import Plan
from .render import END, FIN, RAW, TOK, USAGE, Meta, Step, chunk

_REQUEST_FAULTS = {
    "request.model-required": "a request without `model` is answered (with the default model)",
    "request.messages-nonempty": "an empty `messages` array is answered",
    "request.role-allowed": "unknown roles (e.g. developer) are accepted",
    "request.content-required": "messages without content are accepted",
    "request.temperature-range": "temperature outside [0, 2) (e.g. 2) is accepted",
    "request.top_p-range": "top_p outside the documented range is accepted",
    "request.presence_penalty-range": "presence_penalty outside [-2, 2] is accepted",
    "request.n-range": "n outside 1..4 is accepted",
    "request.n-model": "n > 1 is accepted on models that do not support it",
    "request.n-with-tools": "n > 1 together with tools is accepted",
    "request.max_tokens-range": "max_tokens below 1 is accepted",
    "request.max_tokens-limit": "max_tokens above the model's output limit is accepted",
    "request.seed-range": "a negative / out-of-range seed is accepted",
    "request.stop-homogeneous": "a mixed-type stop array is accepted",
    "request.tools-nonempty": "an empty tools array is accepted",
    "request.tool-name": "invalid tool names (bad characters, > 64 chars) are accepted",
    "request.system-first": "a system message after messages[0] is accepted",
    "request.last-message-role": "a conversation ending with an assistant message is answered",
    "request.tool-after-tool-calls": "a tool message without a preceding tool call is accepted",
    "request.tool-calls-answered": "unanswered assistant tool calls are accepted",
    "request.stream-only-model": "stream-only models answer non-stream calls",
    "request.thinking-non-stream": "thinking is allowed on non-stream calls of stream-only-thinking models",
    "request.enable_thinking-supported": "enable_thinking is accepted on models without thinking",
    "request.model-unknown": "unknown model ids are answered instead of 404 model_not_found",
}

FAULTS: dict[str, tuple[str, str]] = {
    **{name: (desc, "request") for name, desc in _REQUEST_FAULTS.items()},
    "request.malformed-json": ("an unparsable body gets 500 internal_error instead of the documented 400", "body"),
    "auth.invalid-key": ("a bad/missing key gets 401 with a plain-text body (no error envelope)", "auth"),
    # streamed answers
    "stream.content-type": ("streams are served as application/json instead of text/event-stream",
                            "stream-headers"),
    "stream.json": ("a garbage (non-JSON) data event in the middle of the stream", "stream"),
    "stream.same-id": ("one content chunk carries a different id", "stream"),
    "stream.same-created": ("one content chunk carries a different created timestamp", "stream"),
    "stream.same-model": ("one content chunk carries a different model", "stream"),
    "stream.role-first": ("the first chunk has no role", "stream"),
    "stream.role-once": ("a content chunk repeats role: assistant", "stream"),
    "stream.one-finish": ("the finish chunk is sent twice", "stream"),
    "stream.no-content-after-finish": ("a content chunk follows the finish chunk", "stream"),
    "stream.choice-indices": ("choice indices start at 1 instead of 0", "stream"),
    "stream.usage-last": ("the usage chunk comes before the finish chunk (needs include_usage)", "stream"),
    "stream.usage-null-elsewhere": ("a content chunk carries a usage object", "stream"),
    "stream.usage-only-when-asked": ("a usage chunk is sent without stream_options.include_usage", "stream"),
    "stream.usage-arithmetic": ("the usage chunk's total_tokens != prompt + completion", "stream"),
    "stream.finish-tool-calls": ("a streamed tool call finishes with 'stop' instead of 'tool_calls'", "stream"),
    "stream.finish-length": ("max_tokens is ignored: more completion tokens than asked for", "plan"),
    "stream.tool-call-index": ("streamed tool calls start at index 1 instead of 0", "stream"),
    "stream.tool-call-first-delta": ("the first tool-call delta has no id", "stream"),
    "stream.tool-call-stable": ("a tool-call continuation delta carries a different id", "stream"),
    "stream.tool-arguments-json": ("the streamed tool arguments do not concatenate to JSON", "stream"),
    "stream.error-event": ("an error event mid-stream is followed by more chunks and [DONE]", "stream"),
    "stream.done-last": ("the stream ends without data: [DONE]", "stream"),
    "stream.terminated": ("the last event is not terminated by a blank line", "stream"),
    "stream.request-id": ("x-request-id differs from the chunk id's uuid", "stream-headers"),
    "stream.created-plausible": ("every chunk's created is in milliseconds", "stream"),
    "stream.model-matches": ("every chunk names a model unrelated to the requested one", "stream"),
    # non-stream answers
    "response.content-type": ("non-stream answers are served as text/plain", "response-headers"),
    "response.usage-arithmetic": ("total_tokens != prompt_tokens + completion_tokens", "response"),
    "response.choices-count": ("one more choice than n", "response"),
    "response.choice-index": ("choice indices start at 1", "response"),
    "response.content-or-tool-calls": ("a message with content null and no tool_calls", "response"),
    "response.tool-arguments-json": ("tool-call arguments are not valid JSON", "response"),
    "response.tool-name-offered": ("a tool call names a function the request did not offer", "response"),
    "response.finish-tool-calls": ("a tool-call answer finishes with 'stop'", "response"),
    "response.finish-length": ("max_tokens is ignored: more completion tokens than asked for", "plan"),
    "response.id-prefix": ("the completion id lacks the chatcmpl- prefix (and no x-request-id)", "response"),
    "response.request-id": ("x-request-id differs from the completion id's uuid", "response-headers"),
    "response.created-plausible": ("created is in milliseconds", "response"),
    "response.model-matches": ("the answer names a model unrelated to the requested one", "response"),
    "schema.completion": ("the non-stream body says object 'chat.completion.chunk'", "response"),
    "schema.chunk": ("one content chunk has logprobs \"none\" (a string)", "stream"),
    # errors
    "schema.error": ("error.param is an integer", "error"),
    "error.envelope": ("errors come as a flat {code, message} body (no error object)", "error"),
    "error.status-type": ("4xx errors carry type 'internal_error'", "error"),
    "error.stream-body-sse": ("errors on stream:true requests are plain JSON, not a data: line", "error"),
    "error.code-snake-case": ("error codes are CamelCase (InvalidParameterError)", "error"),
    "error.request-id": ("the error body's request_id differs from x-request-id", "error"),
    "error.status-code": ("non-stream errors are sent with status 200", "error"),
    "error.content-type": ("error answers are served as text/plain (with a JSON body)", "error"),
    "error.no-leak": ("error messages end with a Python traceback and a server file path", "error"),
}
UNRELATED_MODEL = "chatconf-unrelated-model"
LEAK = '\nTraceback (most recent call last):\n  File "/srv/dashscope/handler.py", line 42, in chat\nKeyError: x'



class FaultError(ValueError):
    """An unknown fault name."""


def check_names(names: Any) -> tuple[str, ...]:
    out = tuple(str(n) for n in (names or ()))
    unknown = [n for n in out if n not in FAULTS]
    if unknown:
        raise FaultError(f"unknown fault mode {unknown[0]!r} (see chatconf mock --list-faults)")
    return out


def describe() -> list[str]:
    width = max(len(n) for n in FAULTS)
    return [f"{name:<{width}}  {desc}" for name, (desc, _) in FAULTS.items()]


def request_faults(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n for n in names if FAULTS[n][1] == "request")


# -- stream rewrites ---------------------------------------------------------------------------


@dataclass(slots=True)
class Ctx:
    meta: Meta
    plan: Plan
    include_usage: bool


def _other_id() -> str:
    return f"chatcmpl-{uuid.uuid4()}"


def _tok_chunks(steps: list[Step]) -> list[dict[str, Any]]:
    return [item for s in steps if s.kind == TOK for item in s.items if isinstance(item, dict)]


def _content_chunk(steps: list[Step]) -> dict[str, Any] | None:
    """A token chunk in the middle (the second one when there are several)."""
    toks = _tok_chunks(steps)
    return toks[min(1, len(toks) - 1)] if toks else None


def _tool_deltas(steps: list[Step]) -> list[dict[str, Any]]:
    return [tc for c in _tok_chunks(steps) for ch in c["choices"] for tc in (ch["delta"].get("tool_calls") or [])]


def _index_of(steps: list[Step], kind: str) -> int:
    return next((i for i, s in enumerate(steps) if s.kind == kind), len(steps))


def _set(steps: list[Step], key: str, value: Any) -> list[Step]:
    target = _content_chunk(steps)
    if target is not None:
        target[key] = value
    return steps


def _role_first(steps: list[Step], ctx: Ctx) -> list[Step]:
    first = next((s for s in steps if s.items and isinstance(s.items[0], dict)), None)
    if first is not None:
        for ch in first.items[0]["choices"]:
            ch["delta"].pop("role", None)
    return steps


def _role_once(steps: list[Step], ctx: Ctx) -> list[Step]:
    target = _content_chunk(steps)
    if target is not None:
        target["choices"][0]["delta"]["role"] = "assistant"
    return steps


def _one_finish(steps: list[Step], ctx: Ctx) -> list[Step]:
    at = _index_of(steps, FIN)
    steps.insert(at + 1, Step(FIN, [dict(item) for item in steps[at].items]))
    return steps


def _content_after_finish(steps: list[Step], ctx: Ctx) -> list[Step]:
    at = _index_of(steps, FIN)
    steps.insert(at + 1, Step(TOK, [chunk(ctx.meta, [{"delta": {"content": " More."}, "finish_reason": None,
                                                       "index": 0, "logprobs": None}])]))
    return steps


def _choice_indices(steps: list[Step], ctx: Ctx) -> list[Step]:
    for s in steps:
        for item in s.items:
            if isinstance(item, dict):
                for ch in item.get("choices") or []:
                    ch["index"] += 1
    return steps


def _chunk_schema(steps: list[Step], ctx: Ctx) -> list[Step]:
    target = _content_chunk(steps)
    if target is not None:
        target["choices"][0]["logprobs"] = "none"
    return steps


def _usage_last(steps: list[Step], ctx: Ctx) -> list[Step]:
    at = _index_of(steps, USAGE)
    if at < len(steps):
        usage = steps.pop(at)
        steps.insert(_index_of(steps, FIN), usage)
    return steps


def _usage_null_elsewhere(steps: list[Step], ctx: Ctx) -> list[Step]:
    return _set(steps, "usage", ctx.plan.usage())


def _usage_when_not_asked(steps: list[Step], ctx: Ctx) -> list[Step]:
    if not ctx.include_usage:
        steps.insert(_index_of(steps, END), Step(USAGE, [chunk(ctx.meta, [], ctx.plan.usage())]))
    return steps


def _usage_arithmetic(steps: list[Step], ctx: Ctx) -> list[Step]:
    for s in steps:
        if s.kind == USAGE:
            for item in s.items:
                item["usage"] = dict(item["usage"], total_tokens=item["usage"]["total_tokens"] + 1)
    return steps


def _finish(old: str, new: str) -> Callable[[list[Step], Ctx], list[Step]]:
    def rewrite(steps: list[Step], ctx: Ctx) -> list[Step]:
        for s in steps:
            if s.kind == FIN:
                for item in s.items:
                    for ch in item["choices"]:
                        if ch.get("finish_reason") == old:
                            ch["finish_reason"] = new
        return steps
    return rewrite


def _tool_index(steps: list[Step], ctx: Ctx) -> list[Step]:
    for tc in _tool_deltas(steps):
        tc["index"] += 1
    return steps


def _tool_first_delta(steps: list[Step], ctx: Ctx) -> list[Step]:
    for tc in _tool_deltas(steps):
        if tc.get("id"):
            tc["id"] = ""
            break
    return steps


def _tool_stable(steps: list[Step], ctx: Ctx) -> list[Step]:
    conts = [tc for tc in _tool_deltas(steps) if tc.get("id") == ""]
    if conts:
        conts[0]["id"] = f"call_{uuid.uuid4().hex[:24]}"
    return steps


def _tool_json(steps: list[Step], ctx: Ctx) -> list[Step]:
    frags = [tc for tc in _tool_deltas(steps) if (tc.get("function") or {}).get("arguments")]
    if frags:
        frags[-1]["function"]["arguments"] += "}"
    return steps


def _error_event(steps: list[Step], ctx: Ctx) -> list[Step]:
    err = {"error": {"code": "internal_error", "param": None, "type": "internal_error",
                     "message": "An internal error has occured, please try again later or contact service support."},
           "id": ctx.meta.cid, "request_id": ctx.meta.cid.removeprefix("chatcmpl-")}
    steps.insert(min(2, _index_of(steps, FIN)), Step(RAW, [err]))
    return steps


def _no_done(steps: list[Step], ctx: Ctx) -> list[Step]:
    return [s for s in steps if s.kind != END]


def _unterminated(steps: list[Step], ctx: Ctx) -> list[Step]:
    for s in steps:
        if s.kind == END:
            s.items = [b"data: [DONE]"]
    return steps


def _garbage(steps: list[Step], ctx: Ctx) -> list[Step]:
    steps.insert(min(2, _index_of(steps, FIN)), Step(RAW, [b'data: {"choices": [{"delta": \n\n']))
    return steps


def _every_chunk(key: str, value: Callable[[Any], Any]) -> Callable[[list[Step], Ctx], list[Step]]:
    def rewrite(steps: list[Step], ctx: Ctx) -> list[Step]:
        for s in steps:
            for item in s.items:
                if isinstance(item, dict) and key in item:
                    item[key] = value(item[key])
        return steps
    return rewrite


STREAM_REWRITES: dict[str, Callable[[list[Step], Ctx], list[Step]]] = {
    "stream.created-plausible": _every_chunk("created", lambda created: created * 1000),
    "stream.model-matches": _every_chunk("model", lambda _: UNRELATED_MODEL),
    "stream.json": _garbage,
    "stream.same-id": lambda steps, ctx: _set(steps, "id", _other_id()),
    "stream.same-created": lambda steps, ctx: _set(steps, "created", ctx.meta.created + 1),
    "stream.same-model": lambda steps, ctx: _set(steps, "model", ctx.meta.model + "-2025-07-28"),
    "schema.chunk": _chunk_schema,
    "stream.role-first": _role_first,
    "stream.role-once": _role_once,
    "stream.one-finish": _one_finish,
    "stream.no-content-after-finish": _content_after_finish,
    "stream.choice-indices": _choice_indices,
    "stream.usage-last": _usage_last,
    "stream.usage-null-elsewhere": _usage_null_elsewhere,
    "stream.usage-only-when-asked": _usage_when_not_asked,
    "stream.usage-arithmetic": _usage_arithmetic,
    "stream.finish-tool-calls": _finish("tool_calls", "stop"),
    "stream.tool-call-index": _tool_index,
    "stream.tool-call-first-delta": _tool_first_delta,
    "stream.tool-call-stable": _tool_stable,
    "stream.tool-arguments-json": _tool_json,
    "stream.error-event": _error_event,
    "stream.done-last": _no_done,
    "stream.terminated": _unterminated,
}


def rewrite_stream(names: tuple[str, ...], steps: list[Step], ctx: Ctx) -> list[Step]:
    for name in names:
        func = STREAM_REWRITES.get(name)
        if func is not None:
            steps = func(steps, ctx)
    return steps


# -- non-stream rewrites -----------------------------------------------------------------------


def _each_message(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["message"] for c in body["choices"]]


def _r_usage(body: dict[str, Any], ctx: Ctx) -> None:
    body["usage"]["total_tokens"] += 1


def _r_choices_count(body: dict[str, Any], ctx: Ctx) -> None:
    extra = dict(body["choices"][-1], index=len(body["choices"]))
    body["choices"].append(extra)


def _r_choice_index(body: dict[str, Any], ctx: Ctx) -> None:
    for c in body["choices"]:
        c["index"] += 1


def _r_content_null(body: dict[str, Any], ctx: Ctx) -> None:
    for m in _each_message(body):
        if not m.get("tool_calls"):
            m["content"] = None


def _r_tool(field: str, suffix: str) -> Callable[[dict[str, Any], Ctx], None]:
    def rewrite(body: dict[str, Any], ctx: Ctx) -> None:
        for m in _each_message(body):
            for call in m.get("tool_calls") or []:
                call["function"][field] += suffix
    return rewrite


def _r_finish(old: str, new: str) -> Callable[[dict[str, Any], Ctx], None]:
    def rewrite(body: dict[str, Any], ctx: Ctx) -> None:
        for c in body["choices"]:
            if c["finish_reason"] == old:
                c["finish_reason"] = new
    return rewrite


def _r_id_prefix(body: dict[str, Any], ctx: Ctx) -> None:
    body["id"] = body["id"].removeprefix("chatcmpl-")


def _r_object(body: dict[str, Any], ctx: Ctx) -> None:
    body["object"] = "chat.completion.chunk"


RESPONSE_REWRITES: dict[str, Callable[[dict[str, Any], Ctx], None]] = {
    "response.usage-arithmetic": _r_usage,
    "response.choices-count": _r_choices_count,
    "response.choice-index": _r_choice_index,
    "response.content-or-tool-calls": _r_content_null,
    "response.tool-arguments-json": _r_tool("arguments", "}"),
    "response.tool-name-offered": _r_tool("name", "_unoffered"),
    "response.finish-tool-calls": _r_finish("tool_calls", "stop"),
    "response.id-prefix": _r_id_prefix,
    "schema.completion": _r_object,
    "response.created-plausible": lambda body, ctx: body.update(created=body["created"] * 1000),
    "response.model-matches": lambda body, ctx: body.update(model=UNRELATED_MODEL),
}


def rewrite_response(names: tuple[str, ...], body: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    for name in names:
        func = RESPONSE_REWRITES.get(name)
        if func is not None:
            func(body, ctx)
    return body


# -- error rewrites ----------------------------------------------------------------------------


def _camel(code: str | None) -> str | None:
    if not code or "_" not in code:
        return code
    return "".join(part.capitalize() for part in code.split("_"))


def rewrite_error(names: tuple[str, ...], status: int, envelope: dict[str, Any], *, stream: bool
                  ) -> tuple[int, dict[str, Any], bool]:
    """(status, body, send-as-SSE) for an error answer under the active faults."""
    sse = stream
    err = envelope["error"]
    for name in names:
        if name == "schema.error":
            err["param"] = 400
        elif name == "error.status-type" and 400 <= status < 500:
            err["type"] = "internal_error"
        elif name == "error.stream-body-sse":
            sse = False
        elif name == "error.code-snake-case":
            err["code"] = _camel(err.get("code")) or "InvalidParameter"
        elif name == "error.request-id":
            envelope["request_id"] = str(uuid.uuid4())
        elif name == "error.status-code" and not stream:
            status = 200
        elif name == "error.no-leak":
            err["message"] = f"{err.get('message') or ''}{LEAK}"
    if "error.envelope" in names:
        envelope = {"code": _camel(err.get("code")) or "InvalidParameter", "message": err.get("message"),
                    "request_id": envelope.get("request_id")}
    return status, envelope, sse

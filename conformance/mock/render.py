"""Wire shapes of the mock's answers, as DashScope compatible-mode sends them (research F1-F7):
key order, `usage: null` on every chunk but the last, the role chunk, tool-call deltas with
`id: ""` continuations, the usage-only chunk and `[DONE]`.

A streamed answer is first laid out as a list of Steps (what to send, grouped by when to send it)
so fault modes can rewrite it and the scheduler can time it, without either knowing the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .plan import ChoicePlan, Plan
from .tokenizer import tokenize

DONE = b"data: [DONE]\n\n"

# Step kinds: "role" (sent at the role-chunk time), "tok" (token-bearing: one gap each),
# "fin" (finish chunks, right after the last token), "usage" (after the usage lag), "done",
# "raw" (fault-injected bytes, sent with the previous step's timing).
ROLE, TOK, FIN, USAGE, END, RAW = "role", "tok", "fin", "usage", "done", "raw"


@dataclass(slots=True)
class Step:
    kind: str
    items: list[Any] = field(default_factory=list)   # chunk dicts or raw bytes

    def encode(self) -> bytes:
        items = self.items
        if len(items) == 1:
            return encode_item(items[0])
        return b"".join(encode_item(item) for item in items)


def encode_item(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    return b"data: " + orjson.dumps(item) + b"\n\n"


@dataclass(slots=True)
class Meta:
    """What every chunk of one answer shares."""

    cid: str
    created: int
    model: str


def chunk(meta: Meta, choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
    return {"choices": choices, "object": "chat.completion.chunk", "usage": usage, "created": meta.created,
            "system_fingerprint": None, "model": meta.model, "id": meta.cid}


def _choice(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"delta": delta, "finish_reason": finish, "index": index, "logprobs": None}


def _groups(tokens: list[str], size: int) -> list[str]:
    return ["".join(tokens[i:i + size]) for i in range(0, len(tokens), size)]


def _choice_events(choice: ChoicePlan, thinking: bool, per_event: int) -> tuple[dict | None, list[dict]]:
    """(role chunk choice or None, token-bearing choices) for one choice of a stream."""
    i = choice.index
    role: dict | None
    events: list[dict] = []
    if thinking:
        role = _choice(i, {"content": None, "role": "assistant", "reasoning_content": ""})
        events += [_choice(i, {"content": None, "reasoning_content": g})
                   for g in _groups(choice.reasoning, per_event)]
    elif choice.tool_calls:
        role = None   # the first tool-call delta carries the role (F5)
    else:
        role = _choice(i, {"content": "", "role": "assistant"})
    for k, call in enumerate(choice.tool_calls):
        first: dict[str, Any] = {"content": None, "tool_calls": [
            {"index": k, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}]}
        if role is None and not events:
            first["role"] = "assistant"
        events.append(_choice(i, first))
        for frag in _groups(tokenize(call.arguments), max(per_event, 2)):
            events.append(_choice(i, {"content": None, "tool_calls": [
                {"index": k, "id": "", "type": "function", "function": {"arguments": frag}}]}))
        events.append({"delta": {"tool_calls": [{"function": {"arguments": ""}, "index": k, "id": "",
                                                  "type": "function"}]}, "index": i})
    content_delta = (lambda g: {"content": g, "reasoning_content": None}) if thinking else (lambda g: {"content": g})
    events += [_choice(i, content_delta(g)) for g in _groups(choice.content, per_event)]
    return role, events


def _finish_delta(choice: ChoicePlan, thinking: bool) -> dict[str, Any]:
    if choice.tool_calls:
        return {}
    return {"content": "", "reasoning_content": None} if thinking else {"content": ""}


_SLOT = "\x00chatconf-slot\x00"
_SLOT_JSON = orjson.dumps(_SLOT)


def _template(obj: dict[str, Any]) -> tuple[bytes, bytes]:
    """(head, tail) of the encoded event `obj` around its one `_SLOT` string value."""
    raw = encode_item(obj)
    at = raw.index(_SLOT_JSON)
    return raw[:at], raw[at + len(_SLOT_JSON):]


def _encoded_steps(plan: Plan, meta: Meta, *, include_usage: bool, per_event: int) -> list[Step]:
    """`stream_steps` of a one-choice answer without tool calls, every item already encoded.

    Byte for byte what encoding the chunk dicts gives (same key order, same compact JSON), but each
    token event is head + JSON string + tail of a per-answer template: no dict per event, no
    per-event JSON encoding of the envelope, and no container objects for the collector to scan.
    """
    c = plan.choices[0]
    i = c.index
    dumps = orjson.dumps
    steps: list[Step] = []
    if plan.thinking:
        role = _choice(i, {"content": None, "role": "assistant", "reasoning_content": ""})
        groups = [(_template(chunk(meta, [_choice(i, {"content": None, "reasoning_content": _SLOT})])),
                   _groups(c.reasoning, per_event)),
                  (_template(chunk(meta, [_choice(i, {"content": _SLOT, "reasoning_content": None})])),
                   _groups(c.content, per_event))]
    else:
        role = _choice(i, {"content": "", "role": "assistant"})
        groups = [(_template(chunk(meta, [_choice(i, {"content": _SLOT})])), _groups(c.content, per_event))]
    steps.append(Step(ROLE, [encode_item(chunk(meta, [role]))]))
    for (head, tail), texts in groups:
        steps.extend(Step(TOK, [head + dumps(g) + tail]) for g in texts)
    steps.append(Step(FIN, [encode_item(chunk(meta, [_choice(i, _finish_delta(c, plan.thinking), c.finish_reason)]))]))
    if include_usage:
        steps.append(Step(USAGE, [encode_item(chunk(meta, [], plan.usage()))]))
    steps.append(Step(END, [DONE]))
    return steps


def stream_steps(plan: Plan, meta: Meta, *, include_usage: bool, per_event: int,
                 encoded: bool = False) -> list[Step]:
    """The whole streamed answer, in order, grouped by send time.

    `encoded=True` (no fault will rewrite the steps): items may already be bytes, which is cheaper
    for the common one-choice answer and sends the same bytes."""
    if encoded and len(plan.choices) == 1 and not plan.choices[0].tool_calls:
        return _encoded_steps(plan, meta, include_usage=include_usage, per_event=per_event)
    roles, per_choice = [], []
    for choice in plan.choices:
        role, events = _choice_events(choice, plan.thinking, per_event)
        if role is not None:
            roles.append(chunk(meta, [role]))
        per_choice.append(events)
    steps = [Step(ROLE, roles)] if roles else []
    for j in range(max((len(e) for e in per_choice), default=0)):
        steps.append(Step(TOK, [chunk(meta, [events[j]]) for events in per_choice if j < len(events)]))
    steps.append(Step(FIN, [chunk(meta, [_choice(c.index, _finish_delta(c, plan.thinking), c.finish_reason)])
                            for c in plan.choices]))
    if include_usage:
        steps.append(Step(USAGE, [chunk(meta, [], plan.usage())]))
    steps.append(Step(END, [DONE]))
    return steps


def completion(plan: Plan, meta: Meta, *, reasoning: bool) -> dict[str, Any]:
    """The non-stream body (F1, F2, F6)."""
    choices = []
    for c in plan.choices:
        if c.tool_calls:
            message: dict[str, Any] = {"content": "", "role": "assistant", "tool_calls": [
                {"id": call.id, "type": "function", "index": k,
                 "function": {"name": call.name, "arguments": call.arguments}}
                for k, call in enumerate(c.tool_calls)]}
        else:
            message = {"role": "assistant", "content": "".join(c.content)}
        if reasoning and plan.thinking:
            message["reasoning_content"] = "".join(c.reasoning)
        choices.append({"message": message, "finish_reason": c.finish_reason, "index": c.index, "logprobs": None})
    return {"choices": choices, "object": "chat.completion", "usage": plan.usage(), "created": meta.created,
            "system_fingerprint": None, "model": meta.model, "id": meta.cid}


def error_body(*, status: int, code: str | None, type_: str | None, message: str, param: str | None,
               rid: str) -> dict[str, Any]:
    """The compatible-mode error envelope with its top-level id / request_id siblings (C4, F7)."""
    del status
    return {"error": {"code": code, "param": param, "message": message, "type": type_},
            "id": f"chatcmpl-{rid}", "request_id": rid}

"""Request rules: what a chat request must satisfy before a server may answer it.

Two layers. JSON-Schema failures of the profile's request schema are mapped to specific rule ids
(a temperature bound becomes `request.temperature-range`, anything unmapped `request.schema`).
Rules JSON Schema cannot express (message order, tool-call pairing, model capabilities) are small
pure functions `(body, profile) -> Iterator[Violation]` registered with their ids.

`check_request` runs both; `first_request_error` picks the one rejection a real server would send,
which is what the mock answers with and what `chatconf run` expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..profiles import Profile
from ..schemas import SchemaError
from .base import Violation, applies, expected, expected_text, register, rules_of
from .schema_rules import schemas_for

Body = dict[str, Any]
RequestCheck = Callable[[Body, Profile], Iterator[Violation]]

_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_RANGE_PARAMS = {
    "temperature": "request.temperature-range",
    "top_p": "request.top_p-range",
    "presence_penalty": "request.presence_penalty-range",
    "n": "request.n-range",
    "max_tokens": "request.max_tokens-range",
    "seed": "request.seed-range",
}

# -- registry entries for the schema-mapped ids ---------------------------------------------------

_SCHEMA_RULES = [
    ("request.model-required", "`model` is a non-empty string", "001:param-model C8"),
    ("request.messages-nonempty", "`messages` is a non-empty array", "001:param-messages C30"),
    ("request.role-allowed", "every message role is one the profile allows", "001:param-messages C29"),
    ("request.content-required", "system/user/tool messages carry content", "001:param-messages C30"),
    ("request.temperature-range", "temperature inside the documented range", "001:param-temperature C32"),
    ("request.top_p-range", "top_p inside the documented range", "001:param-top_p C33"),
    ("request.presence_penalty-range", "presence_penalty inside [-2, 2]", "001:param-presence_penalty C34"),
    ("request.n-range", "n inside the documented range", "001:param-n C34"),
    ("request.max_tokens-range", "max_tokens is a positive integer", "001:param-max_tokens C34"),
    ("request.seed-range", "seed inside the documented range", "001:param-seed C35"),
    ("request.stop-homogeneous", "stop is a string or a homogeneous array", "001:param-stop C36"),
    ("request.tools-nonempty", "tools, when given, is non-empty", "C25"),
    ("request.tool-name", "tool names are [A-Za-z0-9_-]{1,64}", "001:param-tools C25"),
    ("request.n-with-tools", "n is 1 when tools are given", "001:param-n C25"),
    ("request.schema", "request body matches the request schema", "001:param-model 001:param-messages R8"),
]
_WHEN = {"request.n-with-tools": "n_with_tools"}
for _id, _title, _cites in _SCHEMA_RULES:
    register(_id, _title, kind="request", cites=_cites, when=_WHEN.get(_id, ""))

PRIORITY = (
    "request.schema-body",  # pseudo-id: the body is not even an object (reported as request.schema)
    "request.model-required",
    "request.model-unknown",
    "request.messages-nonempty",
    "request.role-allowed",
    "request.content-required",
    "request.schema",
    "request.temperature-range",
    "request.top_p-range",
    "request.presence_penalty-range",
    "request.n-range",
    "request.max_tokens-range",
    "request.max_tokens-limit",
    "request.seed-range",
    "request.stop-homogeneous",
    "request.tools-nonempty",
    "request.tool-name",
    "request.n-with-tools",
    "request.system-first",
    "request.tool-after-tool-calls",
    "request.tool-calls-answered",
    "request.last-message-role",
    "request.n-model",
    "request.stream-only-model",
    "request.enable_thinking-supported",
    "request.thinking-non-stream",
)
"""Order in which a server reports problems: routing (model), then shape, then parameter bounds,
then cross-field history rules, then model capabilities. Gateways resolve the model before they
validate parameters (C8), so an unknown model wins over a bad temperature."""
_RANK = {rule_id: i for i, rule_id in enumerate(PRIORITY)}


# -- schema failures -> rule ids ------------------------------------------------------------------

def _resolve(body: Any, pointer: str) -> Any:
    node = body
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _range_text(bounds: dict[str, Any]) -> str:
    """Interval notation for a param's JSON-Schema bounds: {"minimum": 0, "exclusiveMaximum": 2} -> [0, 2)."""
    if "exclusiveMinimum" in bounds:
        low = f"({bounds['exclusiveMinimum']}"
    else:
        low = f"[{bounds['minimum']}" if "minimum" in bounds else "(-inf"
    if "exclusiveMaximum" in bounds:
        high = f"{bounds['exclusiveMaximum']})"
    else:
        high = f"{bounds['maximum']}]" if "maximum" in bounds else "inf)"
    return f"{low}, {high}"


def _schema_rule(err: SchemaError, body: Any, profile: Profile) -> tuple[str, str, str]:
    """(rule id, pointer, message) for one request-schema failure."""
    parts = err.pointer.split("/")[1:]
    top = parts[0] if parts else ""
    value = _resolve(body, err.pointer)
    if not parts and err.keyword == "required":
        if "'model'" in err.message:
            return "request.model-required", "/model", expected_text("a `model` string", "no model")
        if "'messages'" in err.message:
            return "request.messages-nonempty", "/messages", expected_text("a non-empty `messages` array",
                                                                          "no messages")
    if top == "model":
        return "request.model-required", "/model", expected("a non-empty model id string", value)
    if top == "messages":
        if len(parts) == 1 and err.keyword == "minItems":
            return "request.messages-nonempty", err.pointer, expected("at least one message", value)
        if len(parts) == 3 and parts[2] == "role" and err.keyword in ("enum", "type"):
            return "request.role-allowed", err.pointer, expected("a role the profile allows", value)
        if len(parts) == 2 and err.keyword == "required" and "'content'" in err.message:
            return ("request.content-required", err.pointer + "/content",
                    expected_text("`content` on a system/user/tool message", "no content"))
        if len(parts) == 3 and parts[2] == "content" and value is None:
            return ("request.content-required", err.pointer,
                    expected("`content` on a system/user/tool message", None))
    if top in _RANGE_PARAMS and len(parts) == 1:
        schema_bounds = profile.params.get(top) or {}
        if top == "n" and err.keyword == "enum":
            return "request.n-with-tools", err.pointer, expected("n == 1 when tools are given", value)
        if err.keyword in _BOUNDS:
            return _RANGE_PARAMS[top], err.pointer, expected(f"{top} in {_range_text(schema_bounds)}", value)
    if top == "stop":
        return ("request.stop-homogeneous", "/stop",
                expected("a string or a homogeneous array of strings, token ids or token-id arrays",
                         _resolve(body, "/stop")))
    if top == "tools":
        if len(parts) == 1 and err.keyword == "minItems":
            return "request.tools-nonempty", err.pointer, expected("a non-empty tools array", value)
        if len(parts) == 4 and parts[2:] == ["function", "name"]:
            return "request.tool-name", err.pointer, expected("a name matching [A-Za-z0-9_-]{1,64}", value)
        if len(parts) == 3 and parts[2] == "function" and err.keyword == "required" \
                and "'name'" in err.message:
            return "request.tool-name", err.pointer + "/name", expected_text("a function name", "no name")
    return "request.schema", err.pointer, err.message


def schema_violations(body: Any, profile: Profile) -> list[Violation]:
    """Request-schema failures, each under its specific rule id (deduplicated by rule + pointer)."""
    validator = schemas_for(profile).request
    if validator.is_valid(body):
        return []
    out: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    for err in validator.errors(body):
        rule_id, pointer, message = _schema_rule(err, body, profile)
        if not applies(rule_id, profile):
            continue  # e.g. the openai profile allows n > 1 with tools; the base schema does not
        if (rule_id, pointer) in seen:
            continue
        seen.add((rule_id, pointer))
        out.append(Violation(rule_id, message, pointer=pointer))
    return out


# -- cross-field rules ----------------------------------------------------------------------------

def request_rule(rule_id: str, title: str, *, cites: str, when: str = "") -> Callable[[RequestCheck], RequestCheck]:
    """Register a cross-field request rule (it only ever sees a dict body)."""
    def wrap(func: RequestCheck) -> RequestCheck:
        register(rule_id, title, kind="request", cites=cites, when=when, func=func)
        return func
    return wrap


def _messages(body: Body) -> list[tuple[int, dict[str, Any]]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return []
    return [(i, m) for i, m in enumerate(msgs) if isinstance(m, dict)]


def _tool_call_ids(msg: dict[str, Any]) -> list[str | None]:
    calls = msg.get("tool_calls")
    if not isinstance(calls, list):
        return []
    return [c.get("id") if isinstance(c, dict) and isinstance(c.get("id"), str) and c.get("id") else None
            for c in calls]


@request_rule("request.system-first", "a system message may only be messages[0]", cites="001:param-messages C30",
              when="system_only_first")
def system_first(body: Body, profile: Profile) -> Iterator[Violation]:
    """DashScope documents system as first-only; OpenAI-style profiles switch this off."""
    for i, msg in _messages(body):
        if i > 0 and msg.get("role") == "system":
            yield Violation("request.system-first",
                            expected_text("role 'system' only at messages[0]", f"'system' at messages[{i}]"),
                            pointer=f"/messages/{i}/role")


@request_rule("request.last-message-role", "the last message has a role the profile allows last",
              cites="001:param-messages C30", when="last_message_roles")
def last_message_role(body: Body, profile: Profile) -> Iterator[Violation]:
    """An assistant prefix with `partial: true` is DashScope's documented continuation (C30)."""
    allowed = profile.rule("last_message_roles")
    msgs = _messages(body)
    if not msgs:
        return
    i, last = msgs[-1]
    role = last.get("role")
    if role == "assistant" and last.get("partial") is True:
        return
    if role not in allowed:
        yield Violation("request.last-message-role", expected(f"last role in {list(allowed)}", role),
                        pointer=f"/messages/{i}/role")


@request_rule("request.tool-after-tool-calls", "a tool message answers a preceding assistant tool call", cites="C26")
def tool_after_tool_calls(body: Body, profile: Profile) -> Iterator[Violation]:
    """Tool results must follow the assistant turn that asked for them (an id, when given, must match)."""
    open_ids: list[str | None] | None = None   # ids of the assistant turn the tool run answers
    for i, msg in _messages(body):
        role = msg.get("role")
        if role == "tool":
            if not open_ids:
                yield Violation("request.tool-after-tool-calls",
                                expected_text("a preceding assistant message with tool_calls", "none"),
                                pointer=f"/messages/{i}")
                continue
            call_id = msg.get("tool_call_id")
            known = [x for x in open_ids if x]
            if isinstance(call_id, str) and call_id and known and call_id not in known:
                yield Violation("request.tool-after-tool-calls",
                                expected(f"tool_call_id in {known}", call_id),
                                pointer=f"/messages/{i}/tool_call_id")
        else:
            open_ids = _tool_call_ids(msg) if role == "assistant" else None


@request_rule("request.tool-calls-answered", "every assistant tool call is answered by a tool message", cites="C26")
def tool_calls_answered(body: Body, profile: Profile) -> Iterator[Violation]:
    """Match answers by tool_call_id; id-less answers (the seed's own loop) count in order when the
    profile does not require ids (rule tool_call_id_required false)."""
    id_less_ok = not profile.rule("tool_call_id_required", False)
    msgs = _messages(body)
    for pos, (i, msg) in enumerate(msgs):
        if msg.get("role") != "assistant":
            continue
        ids = _tool_call_ids(msg)
        if not ids:
            continue
        pending = list(ids)
        for _, answer in msgs[pos + 1:]:
            if answer.get("role") != "tool":
                break
            call_id = answer.get("tool_call_id")
            if isinstance(call_id, str) and call_id in pending:
                pending.remove(call_id)
            elif id_less_ok and not call_id and pending:
                pending.pop(0)
        if pending:
            missing = [x or "<no id>" for x in pending]
            yield Violation("request.tool-calls-answered",
                            expected_text("a tool message for each tool call", f"no answer for {missing}"),
                            pointer=f"/messages/{i}/tool_calls")


def _model(body: Body, profile: Profile) -> Any:
    return profile.model(body.get("model")) if isinstance(body.get("model"), str) else None


@request_rule("request.n-model", "n > 1 only on models that support it", cites="001:param-n")
def n_model(body: Body, profile: Profile) -> Iterator[Violation]:
    """Only judged for models the profile knows; unknown models are someone else's contract."""
    info = _model(body, profile)
    n = body.get("n")
    if info is not None and info.known and not info.n and isinstance(n, int) and n > 1:
        yield Violation("request.n-model", expected(f"n == 1 for model {info.name}", n), pointer="/n")


@request_rule("request.max_tokens-limit", "max_tokens within the model's output limit", cites="C34")
def max_tokens_upper(body: Body, profile: Profile) -> Iterator[Violation]:
    """The upper bound is per model (ModelInfo.max_output_tokens), which the documentation does not list."""
    info = _model(body, profile)
    value = body.get("max_tokens")
    if info is None or not info.known or not info.max_output_tokens:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value > info.max_output_tokens:
        yield Violation("request.max_tokens-limit",
                        expected(f"max_tokens <= {info.max_output_tokens} for {info.name}", value),
                        pointer="/max_tokens")


@request_rule("request.stream-only-model", "stream-only models are called with stream: true", cites="C16")
def stream_only_model(body: Body, profile: Profile) -> Iterator[Violation]:
    """QwQ/QVQ reject non-stream calls outright."""
    info = _model(body, profile)
    if info is not None and info.known and info.stream_only and body.get("stream") is not True:
        yield Violation("request.stream-only-model",
                        expected(f"stream: true for stream-only model {info.name}", body.get("stream")),
                        pointer="/stream")


def _thinking_on(body: Body, info: Any) -> bool:
    flag = body.get("enable_thinking")
    if info.thinking == "always":
        return flag is not False
    if isinstance(flag, bool):
        return flag
    return bool(info.thinking_default)


@request_rule("request.thinking-non-stream", "thinking on a model without non-stream thinking needs stream",
              cites="C16 C17", when="thinking_param")
def thinking_non_stream(body: Body, profile: Profile) -> Iterator[Violation]:
    """Open-source Qwen3 defaults thinking on and refuses it without streaming; qwen-plus allows it."""
    info = _model(body, profile)
    if info is None or not info.known or info.thinking == "none" or info.stream_only:
        return
    if info.thinking_non_stream or body.get("stream") is True or not _thinking_on(body, info):
        return
    pointer = "/enable_thinking" if "enable_thinking" in body else "/stream"
    yield Violation("request.thinking-non-stream",
                    expected_text(f"stream: true or enable_thinking: false for {info.name}",
                                  f"stream={body.get('stream')!r}, "
                                  f"enable_thinking={body.get('enable_thinking')!r}"),
                    pointer=pointer)


@request_rule("request.enable_thinking-supported", "enable_thinking only on models that think", cites="C18",
              when="thinking_param")
def enable_thinking_supported(body: Body, profile: Profile) -> Iterator[Violation]:
    """enable_thinking: true on a model without a thinking mode is rejected."""
    info = _model(body, profile)
    if info is not None and info.known and info.thinking == "none" and body.get("enable_thinking") is True:
        yield Violation("request.enable_thinking-supported",
                        expected(f"no enable_thinking: true for non-thinking model {info.name}", True),
                        pointer="/enable_thinking")


register("request.model-unknown", "the model id is one the profile lists", kind="request", cites="C8")


def model_unknown(body: Body, profile: Profile) -> Iterator[Violation]:
    """Only with check_model=True: a live server knows more models than any profile lists."""
    model = body.get("model")
    if isinstance(model, str) and model and not profile.model(model).known:
        yield Violation("request.model-unknown", expected(f"a model in profile {profile.name!r}", model),
                        pointer="/model")



# -- entry points ---------------------------------------------------------------------------------

def check_request(body: Any, profile: Profile, *, check_model: bool = False) -> list[Violation]:
    """Every request rule that fails for `body` (schema-mapped first, then cross-field rules)."""
    out = schema_violations(body, profile)
    if not isinstance(body, dict):
        return out
    if check_model:
        out.extend(model_unknown(body, profile))
    for rule in rules_of("request", profile):
        out.extend(rule.func(body, profile))  # type: ignore[misc]
    return out


def _rank(v: Violation) -> int:
    if v.rule == "request.schema" and v.pointer == "":
        return _RANK["request.schema-body"]
    return _RANK.get(v.rule, len(PRIORITY))


def first_request_error(body: Any, profile: Profile, check_model: bool = True
                        ) -> tuple[str, Violation] | None:
    """The rejection a real server reports first, as (profile error key, violation).

    The key is the violation's rule id when the profile documents an error for it, else
    "request.schema" (the generic invalid-parameter answer). None: the request is acceptable.
    """
    found = check_request(body, profile, check_model=check_model)
    if not found:
        return None
    first = min(enumerate(found), key=lambda item: (_rank(item[1]), item[0]))[1]
    key = first.rule if profile.error(first.rule) is not None else "request.schema"
    return key, first


def error_values(violation: Violation, body: Any, profile: Profile) -> dict[str, Any]:
    """Values for ErrorSpec.render: detail, value (at the pointer), model, max, role and index."""
    values: dict[str, Any] = {"detail": violation.message, "value": _resolve(body, violation.pointer)}
    if isinstance(body, dict):
        values["model"] = body.get("model")
        info = _model(body, profile)
        if info is not None and info.max_output_tokens:
            values["max"] = info.max_output_tokens
    parts = violation.pointer.split("/")[1:]
    if len(parts) >= 2 and parts[0] == "messages" and parts[1].isdigit():
        values["index"] = int(parts[1])
        msg = _resolve(body, f"/messages/{parts[1]}")
        if isinstance(msg, dict):
            values["role"] = msg.get("role")
    return values

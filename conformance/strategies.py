"""Hypothesis strategies for chat requests, built from a profile.

`valid_requests` draws requests every documented version accepts (boundary values on purpose,
drift points left out, small max_tokens so live runs stay cheap). `invalid_requests(rule_id)`
draws requests that break exactly one documented rule; the request rules themselves confirm it
(`check_request` must report that rule id and nothing else), so generator and checker cannot
drift apart.
"""

from __future__ import annotations

import math
import string
from typing import Any

from hypothesis import strategies as st

from .profiles import ModelInfo, Profile
from .rules import check_request
from .rules.base import applies

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24)
NAME_CHARS = string.ascii_letters + string.digits + "_-"
TOOL_NAMES = st.text(st.sampled_from(NAME_CHARS), min_size=1, max_size=64)
MAX_VALID_TOKENS = 12
_EPS = {"number": 1e-6, "integer": 1}


# -- numeric bounds from the profile ------------------------------------------------------------

def _bounds(profile: Profile, param: str) -> tuple[float | None, bool, float | None, bool]:
    spec = profile.params.get(param) or {}
    lo, lo_open = spec.get("minimum"), False
    if spec.get("exclusiveMinimum") is not None:
        lo, lo_open = spec["exclusiveMinimum"], True
    hi, hi_open = spec.get("maximum"), False
    if spec.get("exclusiveMaximum") is not None:
        hi, hi_open = spec["exclusiveMaximum"], True
    return lo, lo_open, hi, hi_open


def _ambiguous(profile: Profile, param: str, value: float) -> bool:
    """Inside a drift range: some documented version accepts it, another rejects it."""
    for spec in profile.drift.values():
        spec = spec or {}
        rng = spec.get("ambiguous")
        if spec.get("param") == param and isinstance(rng, list) and len(rng) == 2 and rng[0] <= value <= rng[1]:
            return True
    return False


def _inside(value: float, lo: float | None, lo_open: bool, hi: float | None, hi_open: bool) -> bool:
    if lo is not None and (value < lo or (lo_open and value == lo)):
        return False
    return not (hi is not None and (value > hi or (hi_open and value == hi)))


def in_range(profile: Profile, param: str, kind: str = "number", *, cap: float | None = None
             ) -> st.SearchStrategy[Any]:
    """Valid values with the edges on purpose: the bounds, just inside them, and the middle."""
    lo, lo_open, hi, hi_open = _bounds(profile, param)
    if cap is not None:
        hi, hi_open = (cap, False) if hi is None or cap < hi else (hi, hi_open)
    eps = _EPS[kind]
    candidates = []
    for base, step in ((lo, eps), (hi, -eps)):
        if base is None:
            continue
        candidates += [base, base + step, base + 100 * step]
    if lo is not None and hi is not None:
        candidates.append((lo + hi) / 2)
    candidates = [c for c in candidates if _inside(c, lo, lo_open, hi, hi_open) and not _ambiguous(profile, param, c)]
    if kind == "integer":
        candidates = sorted({int(c) for c in candidates if float(c).is_integer()})
        free = st.integers(min_value=None if lo is None else int(lo) + (1 if lo_open else 0),
                           max_value=None if hi is None else int(hi) - (1 if hi_open else 0))
    else:
        free = st.floats(min_value=lo, max_value=hi, exclude_min=lo_open, exclude_max=hi_open,
                         allow_nan=False, allow_infinity=False)
    free = free.filter(lambda v: not _ambiguous(profile, param, v))
    return st.one_of(st.sampled_from(candidates), free) if candidates else free


def out_of_range(profile: Profile, param: str, kind: str = "number", *, upper: float | None = None
                 ) -> st.SearchStrategy[Any] | None:
    """Values outside every documented version of the range (drift ranges excluded)."""
    lo, lo_open, hi, hi_open = _bounds(profile, param)
    if upper is not None:
        hi, hi_open = (upper, False) if hi is None or upper < hi else (hi, hi_open)
    eps = _EPS[kind]
    values: list[float] = []
    if lo is not None:
        values += [lo - eps, lo - 1, lo - 1000] + ([lo] if lo_open else [])
    if hi is not None:
        values += [hi + eps, hi + 1, hi * 10 + 10] + ([hi] if hi_open else [])
    values = [v for v in values if not _inside(v, lo, lo_open, hi, hi_open) and not _ambiguous(profile, param, v)]
    if kind == "integer":
        values = sorted({int(v) for v in values if float(v).is_integer()})
    values = [v for v in values if not (isinstance(v, float) and (math.isinf(v) or math.isnan(v)))]
    return st.sampled_from(values) if values else None


# -- building blocks --------------------------------------------------------------------------

@st.composite
def conversations(draw: st.DrawFn, profile: Profile) -> list[dict[str, Any]]:
    """system? (user assistant)* user: the documented order, with varied text."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(0, 2))):
        messages.append({"role": "user", "content": draw(TEXT)})
        messages.append({"role": "assistant", "content": draw(TEXT)})
    messages.append({"role": "user", "content": draw(TEXT)})
    return messages


def stop_values(*, valid: bool = True, token_ids: bool = True) -> st.SearchStrategy[Any]:
    """Valid stop values (token ids only where the profile's contract has them), or mixed arrays."""
    token = st.integers(min_value=0, max_value=150_000)
    if valid:
        strings = st.one_of(TEXT, st.lists(TEXT, min_size=1, max_size=4))
        if not token_ids:
            return strings
        return st.one_of(strings, st.lists(token, min_size=1, max_size=4),
                         st.lists(st.lists(token, min_size=1, max_size=3), min_size=1, max_size=3))
    kinds = [TEXT, token, st.lists(token, min_size=1, max_size=3)]
    return st.tuples(st.integers(0, 2), st.integers(0, 2)).filter(lambda ab: ab[0] != ab[1]).flatmap(
        lambda ab: st.tuples(kinds[ab[0]], kinds[ab[1]]).flatmap(
            lambda pair: st.permutations(list(pair))))


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": "Look something up.",
                                             "parameters": {"type": "object",
                                                            "properties": {"q": {"type": "string"}}}}}


def _as_parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": text}]


@st.composite
def tool_history(draw: st.DrawFn, profile: Profile, name: str) -> list[dict[str, Any]]:
    """A finished tool round: the assistant's call (content null where the contract allows it, else
    "" as the documented tool loop sends), the tool's answer, and a follow-up question."""
    call_id = "call_" + draw(st.text(st.sampled_from("0123456789abcdef"), min_size=8, max_size=24))
    content = None if profile.rule("assistant_null_content") and draw(st.booleans()) else ""
    return [{"role": "user", "content": draw(TEXT)},
            {"role": "assistant", "content": content,
             "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": call_id, "content": draw(TEXT)},
            {"role": "user", "content": draw(TEXT)}]


@st.composite
def valid_requests(draw: st.DrawFn, profile: Profile, model: str) -> dict[str, Any]:
    """Requests every documented version accepts. Shapes only some contracts document are drawn
    only under those profiles (rules content_parts, tool_choice, assistant_null_content)."""
    info = profile.model(model)
    body: dict[str, Any] = {"model": model, "messages": draw(conversations(profile))}
    if profile.rule("content_parts") and draw(st.booleans()):
        last = body["messages"][-1]
        body["messages"][-1] = {**last, "content": _as_parts(last["content"])}
    cap = min(MAX_VALID_TOKENS, info.max_output_tokens or MAX_VALID_TOKENS)
    body["max_tokens"] = draw(in_range(profile, "max_tokens", "integer", cap=cap))
    optional = {
        "temperature": in_range(profile, "temperature"),
        "top_p": in_range(profile, "top_p"),
        "presence_penalty": in_range(profile, "presence_penalty"),
        "seed": in_range(profile, "seed", "integer"),
        "stop": stop_values(token_ids=bool(profile.rule("stop_token_ids", True))),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    use_tools = info.tools and draw(st.integers(0, 4)) == 0
    if use_tools:
        name = draw(TOOL_NAMES)
        body["tools"] = [tool(name)]
        if profile.rule("tool_choice") and draw(st.booleans()):
            body["tool_choice"] = draw(st.sampled_from(["auto", "none"]))
        if draw(st.booleans()):
            body["messages"] = [*body["messages"][:-1], *draw(tool_history(profile, name))]
    elif info.n and draw(st.booleans()):
        body["n"] = draw(in_range(profile, "n", "integer", cap=3))
    if (draw(st.booleans()) and not info.stream_only) or info.stream_only:
        body["stream"] = True
        if draw(st.booleans()):
            body["stream_options"] = {"include_usage": draw(st.booleans())}
    elif info.thinking_default and not info.thinking_non_stream:
        body["enable_thinking"] = False
    if use_tools and body.get("stream"):  # tools + stream is a drift point: keep valid requests unambiguous
        del body["stream"]
        body.pop("stream_options", None)
    return body


# -- one broken rule at a time ----------------------------------------------------------------

def _model_with(profile: Profile, predicate: Any) -> str | None:
    for name in profile.model_names:
        if predicate(profile.model(name)):
            return name
    return None


def _mutation(profile: Profile, model: str, rule_id: str) -> st.SearchStrategy[Any] | None:
    """A strategy of functions body -> broken body, or None when this target has no clear case."""
    info: ModelInfo = profile.model(model)

    def setter(key: str, values: st.SearchStrategy[Any] | None) -> st.SearchStrategy[Any] | None:
        if values is None:
            return None
        return values.map(lambda v: lambda b: {**b, key: v})

    params = {"request.temperature-range": ("temperature", "number", None),
              "request.top_p-range": ("top_p", "number", None),
              "request.presence_penalty-range": ("presence_penalty", "number", None),
              "request.seed-range": ("seed", "integer", None),
              "request.max_tokens-range": ("max_tokens", "integer", None)}
    if rule_id in params:
        param, kind, upper = params[rule_id]
        return setter(param, out_of_range(profile, param, kind, upper=upper))
    if rule_id == "request.max_tokens-limit":
        limit = info.max_output_tokens if info.known else None
        return None if not limit else setter("max_tokens", st.sampled_from([limit + 1, limit * 2, limit * 10]))
    if rule_id == "request.n-range":
        if not info.n:
            return setter("n", st.sampled_from([0, -1]))
        return setter("n", out_of_range(profile, "n", "integer"))
    if rule_id == "request.n-with-tools":
        if not info.n or not info.tools:
            return None
        return in_range(profile, "n", "integer").filter(lambda n: n > 1).map(
            lambda n: lambda b: {**b, "n": n, "tools": [tool("lookup")]})
    if rule_id == "request.stop-homogeneous":
        return setter("stop", stop_values(valid=False))
    if rule_id == "request.tools-nonempty":
        return st.just(lambda b: {**b, "tools": []})
    if rule_id == "request.tool-name":
        bad = st.one_of(st.text(st.sampled_from(NAME_CHARS), min_size=65, max_size=80),
                        st.sampled_from(["get weather", "get.weather", "天气", "a/b", "x" * 65, ""]))
        return bad.map(lambda name: lambda b: {**b, "tools": [tool(name)]})
    if rule_id == "request.system-first":
        return TEXT.map(lambda t: lambda b: {**b, "messages": [{"role": "user", "content": "Hi"},
                                                              {"role": "system", "content": t},
                                                              {"role": "user", "content": "Who are you?"}]})
    if rule_id == "request.last-message-role":
        return TEXT.map(lambda t: lambda b: {**b, "messages": [*b["messages"], {"role": "assistant", "content": t}]})
    if rule_id == "request.role-allowed":
        roles = [r for r in ["developer", "bot", "model", "Assistant", "human"] if r not in profile.roles]
        return st.sampled_from(roles).map(
            lambda r: lambda b: {**b, "messages": [{"role": r, "content": "Be brief."}, *b["messages"]]})
    if rule_id == "request.content-required":
        return st.just(lambda b: {**b, "messages": [*b["messages"][:-1], {"role": "user"}]})
    if rule_id == "request.messages-nonempty":
        return st.just(lambda b: {**b, "messages": []})
    if rule_id == "request.model-required":
        return st.sampled_from([None, ""]).map(
            lambda m: (lambda b: {k: v for k, v in b.items() if k != "model"}) if m is None
            else (lambda b: {**b, "model": m}))
    if rule_id == "request.model-unknown":
        names = ["chatconf-no-such-model", model.upper(), f"Qwen/{model}"]
        return st.sampled_from([n for n in names if n not in profile.model_names]).map(
            lambda m: lambda b: {**b, "model": m})
    if rule_id == "request.tool-after-tool-calls":
        return TEXT.map(lambda t: lambda b: {**b, "messages": [
            {"role": "user", "content": "What time is it?"},
            {"role": "tool", "tool_call_id": "call_0", "content": t},
            {"role": "user", "content": "Thanks."}]})
    if rule_id == "request.tool-calls-answered":
        call = {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        return TEXT.map(lambda t: lambda b: {**b, "tools": [tool("lookup")], "messages": [
            {"role": "user", "content": "Look it up."},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "user", "content": t}]})
    if rule_id == "request.stream-only-model":
        name = _model_with(profile, lambda m: m.stream_only)
        return None if name is None else st.just(lambda b: _non_stream({**b, "model": name}))
    if rule_id == "request.thinking-non-stream":
        name = _model_with(profile, lambda m: m.thinking == "hybrid" and not m.thinking_non_stream
                           and not m.stream_only)
        return None if name is None else st.just(
            lambda b: _non_stream({**b, "model": name, "enable_thinking": True}))
    if rule_id == "request.enable_thinking-supported":
        name = _model_with(profile, lambda m: m.thinking == "none")
        return None if name is None else st.just(lambda b: {**b, "model": name, "enable_thinking": True})
    return None


def _non_stream(body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return body


_RANGE_RULES = {"request.temperature-range": ("temperature", "number"), "request.top_p-range": ("top_p", "number"),
                "request.presence_penalty-range": ("presence_penalty", "number"),
                "request.seed-range": ("seed", "integer"), "request.max_tokens-range": ("max_tokens", "integer"),
                "request.n-range": ("n", "integer")}


def nearest_outside(profile: Profile, param: str, kind: str) -> list[Any]:
    """The closest unambiguous values just outside each end of a documented range: the cases a server
    that checks `>` instead of `>=` gets wrong, tried first whatever the example budget."""
    lo, lo_open, hi, hi_open = _bounds(profile, param)
    eps = _EPS[kind]
    edges = []
    if lo is not None:
        edges.append(lo if lo_open else lo - eps)
    if hi is not None:
        edges.append(hi if hi_open else hi + eps)
    out = []
    for value in edges:
        if kind == "integer":
            if not float(value).is_integer():
                continue
            value = int(value)
        if not _inside(value, lo, lo_open, hi, hi_open) and not _ambiguous(profile, param, value):
            out.append(value)
    return out


def boundary_requests(profile: Profile, model: str, rule_id: str) -> list[dict[str, Any]]:
    """Explicit examples for a range rule, one per end of the range, each breaking only that rule."""
    spec = _RANGE_RULES.get(rule_id)
    if spec is None or (rule_id == "request.n-range" and not profile.model(model).n):
        return []
    param, kind = spec
    base = _base_body(profile, model, [{"role": "user", "content": "Hi"}])
    found = [{**base, param: value} for value in nearest_outside(profile, param, kind)]
    return [body for body in found if _breaks_only(profile, model, rule_id, body)]


def _base_body(profile: Profile, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": 8}
    info = profile.model(model)
    if info.thinking_default and not info.thinking_non_stream:
        body["enable_thinking"] = False
    if info.stream_only:
        body["stream"] = True
    return body


def _breaks_only(profile: Profile, model: str, rule_id: str, body: dict[str, Any]) -> bool:
    # A target model the profile does not list (every self-hosted server) would make every drawn
    # request also break request.model-unknown: judge model ids only when that is the rule at hand.
    check_model = rule_id == "request.model-unknown" or profile.model(model).known
    return {v.rule for v in check_request(body, profile, check_model=check_model)} == {rule_id}


def invalid_requests(profile: Profile, model: str, rule_id: str) -> st.SearchStrategy[dict[str, Any]] | None:
    """Requests that break `rule_id` and nothing else, or None when no unambiguous case exists (or the
    rule is not part of the profile's contract)."""
    if not applies(rule_id, profile):
        return None
    mutation = _mutation(profile, model, rule_id)
    if mutation is None:
        return None

    @st.composite
    def broken(draw: st.DrawFn) -> dict[str, Any]:
        body = _base_body(profile, model, draw(conversations(profile)))
        if draw(st.booleans()):
            body["stream"] = True
        return draw(mutation)(body)

    return broken().filter(lambda body: _breaks_only(profile, model, rule_id, body))

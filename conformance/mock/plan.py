"""What the mock "model" answers: text, reasoning and tool calls for one valid request, decided
before anything is sent so streamed and non-streamed answers (and their usage) agree exactly.

The behaviour clients rely on is modelled, the language is not: the answer is filler text from a
seeded RNG (same seed + same request -> same text), tools are called when the user's question
names what a tool is for (its name words, e.g. "weather" for get_current_weather) or tool_choice
forces it, one call per turn unless parallel_tool_calls is true (DashScope's default is false,
research C24), and after tool results the answer quotes them (the seed's multi-round loop).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from ..profiles import Profile
from .latency import LatencyProfile
from .schema_example import example
from .tokenizer import WORDS, content_text, count_tokens, token_id, tokenize


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ChoicePlan:
    index: int
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"

    @property
    def completion_tokens(self) -> int:
        tool = sum(count_tokens(c.name) + count_tokens(c.arguments) for c in self.tool_calls)
        return len(self.reasoning) + len(self.content) + tool


@dataclass(slots=True)
class Plan:
    choices: list[ChoicePlan]
    prompt_tokens: int
    thinking: bool

    def usage(self) -> dict[str, Any]:
        completion = sum(c.completion_tokens for c in self.choices)
        usage: dict[str, Any] = {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                                 "total_tokens": self.prompt_tokens + completion,
                                 "prompt_tokens_details": {"cached_tokens": 0}}
        if self.thinking:
            usage["completion_tokens_details"] = {
                "reasoning_tokens": sum(len(c.reasoning) for c in self.choices)}
        return usage


_STOPWORDS = frozenset({"get", "current", "query", "fetch", "the", "for", "tool", "lookup", "find", "info"})
_LOCATION_RE = re.compile(r"\b(?:in|at|for)\s+([A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?)")
_SKIP_CAPS = frozenset({"I", "What", "How", "Who", "Where", "When", "Why", "Is", "Can", "Please", "The"})


def thinking_on(body: dict[str, Any], profile: Profile) -> bool:
    info = profile.model(body.get("model"))
    flag = body.get("enable_thinking")
    if info.thinking == "always":
        return flag is not False
    if info.thinking == "hybrid":
        return flag is True or (flag is None and info.thinking_default)
    return False


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


def prompt_tokens(body: dict[str, Any]) -> int:
    total = 3
    for msg in _messages(body):
        total += 4 + count_tokens(content_text(msg.get("content")))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += count_tokens(json.dumps(tools))
    return total


def _last_user(msgs: list[dict[str, Any]]) -> int:
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].get("role") == "user":
            return i
    return -1


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            out.append(fn)
    return out


def _keywords(name: str) -> list[str]:
    words = re.split(r"[_\-\s]+|(?<=[a-z])(?=[A-Z])", name)
    return [w.lower() for w in words if len(w) >= 3 and w.lower() not in _STOPWORDS]


def _locations(question: str) -> list[str]:
    """The places a question names, in order ("weather in Hangzhou and Beijing" -> both)."""
    found = _LOCATION_RE.search(question)
    if found is None:
        words = [w for w in re.findall(r"\b[A-Z][a-z]+\b", question) if w not in _SKIP_CAPS]
        return words[:1] or ["Beijing"]
    places = [found.group(1)]
    rest = question[found.end():]
    while True:
        more = re.match(r"\s*(?:,\s*and|,|and|&)\s+([A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?)", rest)
        if more is None or more.group(1) in places:
            break
        places.append(more.group(1))
        rest = rest[more.end():]
    return places


def _location(question: str) -> str:
    return _locations(question)[0]


def _is_place(name: str) -> bool:
    return any(k in name.lower() for k in ("location", "city", "place", "region", "country"))


def _question(body: dict[str, Any]) -> str:
    msgs = _messages(body)
    user_at = _last_user(msgs)
    return content_text(msgs[user_at].get("content")) if user_at >= 0 else ""


def _argument(name: str, spec: Any, question: str, place: str | None = None) -> Any:
    spec = spec if isinstance(spec, dict) else {}
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    kind = spec.get("type")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if _is_place(name):
        return place or _location(question)
    return question.strip()[:40] or "example"


def _arguments(fn: dict[str, Any], question: str, place: str | None = None) -> str:
    return json.dumps({k: _argument(k, v, question, place) for k, v in _properties(fn).items()})


def _properties(fn: dict[str, Any]) -> dict[str, Any]:
    params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
    return params.get("properties") if isinstance(params.get("properties"), dict) else {}


def choose_tool_calls(body: dict[str, Any], rng: random.Random) -> list[ToolCall]:
    """The calls this turn makes (empty: answer in text)."""
    tools = _tools(body)
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    msgs = _messages(body)
    user_at = _last_user(msgs)
    question = content_text(msgs[user_at].get("content")) if user_at >= 0 else ""
    called = [c.get("function", {}).get("name") for m in msgs[user_at + 1:] if m.get("role") == "assistant"
              for c in (m.get("tool_calls") or []) if isinstance(c, dict) and isinstance(c.get("function"), dict)]
    by_name = {fn["name"]: fn for fn in tools}
    if isinstance(choice, dict):
        forced = (choice.get("function") or {}).get("name")
        wanted = [by_name[forced]] if forced in by_name else []
    else:
        lowered = question.lower()
        hits = []
        for fn in tools:
            positions = [lowered.find(k) for k in _keywords(fn["name"]) if k in lowered]
            if positions:
                hits.append((min(positions), fn))
        wanted = [fn for _, fn in sorted(hits, key=lambda h: h[0])]
        if not wanted and choice == "required":
            wanted = [tools[0]]
    remaining = [fn for fn in wanted if fn["name"] not in called]
    if not remaining:
        return []
    if body.get("parallel_tool_calls") is not True:
        return [ToolCall(f"call_{rng.getrandbits(96):024x}", remaining[0]["name"], _arguments(remaining[0], question))]
    calls = []
    for fn in remaining:  # parallel: one call per tool, and per place for a tool that takes a place
        places: list[str | None] = list(_locations(question)) if any(map(_is_place, _properties(fn))) else [None]
        for place in places:
            calls.append(ToolCall(f"call_{rng.getrandbits(96):024x}", fn["name"], _arguments(fn, question, place)))
    return calls


def _sentence_pool(size: int = 512) -> tuple[tuple[str, ...], ...]:
    """Pre-tokenized filler sentences: picking whole sentences keeps planning cheap under load."""
    rng = random.Random(0)
    pool = []
    for _ in range(size):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 12))]
        pool.append(tuple(tokenize(" " + " ".join(words).capitalize() + ".")))
    return tuple(pool)


_POOL = _sentence_pool()


def _filler(rng: random.Random, target: int, opener: str) -> list[str]:
    tokens = tokenize(opener)
    while len(tokens) < target:
        tokens.extend(_POOL[rng.randrange(len(_POOL))])
    if len(tokens) > target:
        tokens = [*tokens[: max(target - 1, 1)], "."]
    return tokens


def _opener(body: dict[str, Any]) -> str:
    msgs = _messages(body)
    user_at = _last_user(msgs)
    tool_results = [content_text(m.get("content")).strip() for m in msgs[user_at + 1:] if m.get("role") == "tool"]
    if tool_results:
        return "Based on the tool results: " + " ".join(r for r in tool_results if r)
    question = content_text(msgs[user_at].get("content")).lower() if user_at >= 0 else ""
    if "who are you" in question:
        return "I am a simulated Qwen model served by the chatconf mock."
    return "This is a simulated answer from the chatconf mock."


def _apply_stop(tokens: list[str], stop: Any) -> tuple[list[str], bool]:
    """Cut before the first stop string / token id / id sequence; True when a stop matched."""
    if stop is None or stop == [] or stop == "":
        return tokens, False
    stops = stop if isinstance(stop, list) else [stop]
    if all(isinstance(s, str) for s in stops):
        text = "".join(tokens)
        cuts = [text.find(s) for s in stops if s and s in text]
        if not cuts:
            return tokens, False
        return tokenize(text[: min(cuts)]), True
    ids = [token_id(t) for t in tokens]
    seqs = [[s] if isinstance(s, int) else list(s) for s in stops if isinstance(s, (int, list))]
    best = None
    for seq in seqs:
        if not seq:
            continue
        for pos in range(len(ids) - len(seq) + 1):
            if ids[pos:pos + len(seq)] == seq:
                best = pos if best is None else min(best, pos)
                break
    if best is None:
        return tokens, False
    return tokens[:best], True


_ALTERNATIVES = ("Here is another simulated answer.", "A different simulated reply follows.",
                 "One more way to answer this.", "Put differently, a simulated answer.")


def _content(body: dict[str, Any], rng: random.Random, target: int, index: int = 0) -> list[str]:
    """The answer's text tokens. Choices after the first open differently (n > 1 asks for alternatives);
    structured output answers JSON, matching the request's schema when it sends one."""
    opener = _opener(body) if index == 0 else _ALTERNATIVES[(index - 1) % len(_ALTERNATIVES)]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        if isinstance(spec.get("schema"), dict):
            question = _question(body)
            def text_for(name: str) -> str | None:
                return _location(question) if _is_place(name) else None
            return tokenize(json.dumps(example(spec["schema"], rng, text_for=text_for)))
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        words = " ".join(rng.choice(WORDS) for _ in range(max(target // 2, 3)))
        return tokenize(json.dumps({"answer": opener, "detail": words}))
    return _filler(rng, target, opener)


def build_plan(body: dict[str, Any], profile: Profile, latency: LatencyProfile, rng: random.Random) -> Plan:
    """Decide every choice of the answer (the request is already known to be valid)."""
    thinking = thinking_on(body, profile)
    n = body.get("n") if isinstance(body.get("n"), int) and body.get("n", 1) > 1 else 1
    max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None
    calls = choose_tool_calls(body, rng)
    choices = []
    for index in range(n):
        choice = ChoicePlan(index)
        if thinking:
            lo, hi = latency.reasoning_tokens
            choice.reasoning = _filler(rng, rng.randint(lo, hi), "Let me think about what the user asks.")
        if calls and index == 0:
            choice.tool_calls = calls
            choice.finish_reason = "tool_calls"
        else:
            lo, hi = latency.output_tokens
            tokens, _stopped = _apply_stop(_content(body, rng, rng.randint(lo, hi), index), body.get("stop"))
            if max_tokens is not None and len(tokens) > max_tokens:
                tokens, choice.finish_reason = tokens[:max_tokens], "length"
            choice.content = tokens
        choices.append(choice)
    return Plan(choices, prompt_tokens(body), thinking)

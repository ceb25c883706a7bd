"""The request mix: what a realistic chat workload sends, drawn from a seeded RNG.

Kinds (weights are configurable, `short=50,long=20,tools=15,thinking=15`):
- short: a one-line question, max_tokens 32..128;
- long: a multi-paragraph prompt (about 1.5-4 KB), max_tokens 128..512;
- tools: one function tool offered, the model may answer with a tool call (only when the profile
  says the model supports tools);
- thinking: `enable_thinking: true` (DashScope's switch) when the model can think in a stream.
Every request streams and asks for usage (`stream_options.include_usage`), which TPOT needs.

A `Shape` describes the user's own traffic instead (all deterministic under the seed):
- `prompt_tokens` / `max_tokens`: lengths from a distribution (loadtests/distributions.py). Without a
  tokenizer a prompt of N tokens is N common English words, one token each in Qwen's and OpenAI's
  BPE vocabularies; each sample records the server's `usage.prompt_tokens`, the real length;
- `turns`: conversations of that many turns that grow their history as chat apps do: each request
  carries every earlier question and the answer actually received;
- `dataset`: the user's own prompts (JSONL: `messages` or `prompt`, optional `max_tokens`), drawn in a
  seeded order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from conformance.profiles import ModelInfo

from .distributions import Distribution

DEFAULT_MIX = {"short": 50, "long": 20, "tools": 15, "thinking": 15}

_TOPICS = (
    "the history of tea in Fujian",
    "how a B-tree splits a node",
    "tide pools at low tide",
    "why the sky is blue",
    "a packing list for a rainy hike",
    "the rules of go",
    "how TCP slow start works",
    "a recipe for mapo tofu",
    "the orbit of Mercury",
    "writing a haiku about autumn",
    "the difference between RAM and storage",
)
_SENTENCES = (
    "Please be precise and avoid repeating yourself.",
    "Assume the reader is a curious student with no background in the subject.",
    "Here is some context that came up earlier in our conversation.",
    "The previous answer was too long, so keep this one focused.",
    "We are comparing several explanations to pick the clearest one.",
    "List the main points first, then give one concrete example.",
    "Mention any common misconception and correct it briefly.",
)

_WORDS = ("time", "people", "water", "light", "river", "simple", "number", "market", "garden", "window", "paper",
          "answer", "question", "music", "system", "energy", "city", "history", "morning", "green", "small",
          "table", "story", "travel", "study", "bright", "quiet", "winter", "mountain", "coffee", "island")
"""Common English words, one token each in Qwen's and OpenAI's BPE vocabularies (a space plus the word)."""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@dataclass(frozen=True, slots=True)
class Planned:
    kind: str
    body: dict[str, Any]
    turn: int = 0  # 1, 2, ... within a conversation (0: no conversations)


@dataclass(frozen=True)
class Shape:
    """The user's description of their traffic (None: the built-in mix decides)."""

    prompt_tokens: Distribution | None = None
    max_tokens: Distribution | None = None
    turns: Distribution | None = None
    dataset: tuple[dict[str, Any], ...] = ()


def parse_mix(spec: str | None) -> dict[str, float]:
    """`short=50,long=20` -> weights; unknown kinds or negative weights are a ValueError."""
    if not spec:
        return dict(DEFAULT_MIX)
    mix: dict[str, float] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in DEFAULT_MIX:
            raise ValueError(f"unknown request kind {name!r} in mix (kinds: {', '.join(DEFAULT_MIX)})")
        weight = float(value)
        if weight < 0:
            raise ValueError(f"negative weight for {name!r}")
        mix[name] = weight
    if not any(mix.values()):
        raise ValueError("the request mix has no positive weight")
    return mix


class Workload:
    """Draws request bodies for one model; kinds the model cannot do get no weight."""

    def __init__(self, model: ModelInfo, *, mix: dict[str, float] | None = None, seed: int = 0,
                 shape: Shape | None = None):
        self.model = model
        self.shape = shape or Shape()
        self.history: list[dict[str, Any]] = []  # the conversation so far (with --turns)
        self.turns_left = 0
        self.turn = 0
        weights = dict(mix or DEFAULT_MIX)
        if not model.tools:
            weights["tools"] = 0
        if model.thinking == "none" or not model.known:
            weights["thinking"] = 0
        if model.thinking == "always":  # reasoning is on anyway; no switch to send
            weights["thinking"] = 0
        self.kinds = [k for k, w in weights.items() if w > 0] or ["short"]
        self.weights = [weights[k] for k in self.kinds] if any(weights.values()) else [1.0]
        self.rng = random.Random(seed)
        cap = model.max_output_tokens or 8192
        self._cap = max(1, cap)

    def _max_tokens(self, lo: int, hi: int) -> int:
        return min(self._cap, self.rng.randint(lo, hi))

    def _long_prompt(self) -> str:
        topic = self.rng.choice(_TOPICS)
        paragraphs = []
        for _ in range(self.rng.randint(4, 10)):
            paragraphs.append(" ".join(self.rng.choice(_SENTENCES) for _ in range(self.rng.randint(3, 6))))
        return "Background notes:\n\n" + "\n\n".join(paragraphs) + f"\n\nNow explain {topic} in detail."

    @property
    def sessions(self) -> bool:
        return self.shape.turns is not None

    def answered(self, text: str) -> None:
        """The answer to the last request, kept as the conversation's next assistant turn."""
        if self.sessions and self.history:
            self.history.append({"role": "assistant", "content": text})

    def _words(self, n: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(n))

    def next(self) -> Planned:
        planned = self._fresh()
        if not self.sessions:
            return planned
        if self.turns_left <= 0:  # a new conversation
            assert self.shape.turns is not None
            self.turns_left = self.shape.turns.draw(self.rng)
            self.history, self.turn = [], 0
        self.turns_left -= 1
        self.turn += 1
        asked = planned.body["messages"]
        if not self.history and asked and asked[0].get("role") == "system":
            self.history.append(asked[0])
        self.history.append(next(m for m in reversed(asked) if m.get("role") == "user"))
        body = {**planned.body, "messages": list(self.history)}
        return Planned(planned.kind, body, self.turn)

    def _fresh(self) -> Planned:
        """One request of the mix (or the dataset), before any conversation history."""
        if self.shape.dataset:
            return self._from_dataset()
        planned = self._of_mix()
        body = planned.body
        if self.shape.prompt_tokens is not None and planned.kind != "tools":
            body["messages"] = [m for m in body["messages"] if m["role"] == "system"] + [
                {"role": "user", "content": self._words(self.shape.prompt_tokens.draw(self.rng))}]
        if self.shape.max_tokens is not None:
            body["max_tokens"] = min(self._cap, self.shape.max_tokens.draw(self.rng))
        return planned

    def _from_dataset(self) -> Planned:
        row = self.rng.choice(self.shape.dataset)
        body: dict[str, Any] = {"model": self.model.name, "stream": True, "stream_options": {"include_usage": True},
                                "messages": [dict(m) for m in row["messages"]]}
        if row.get("max_tokens"):
            body["max_tokens"] = min(self._cap, int(row["max_tokens"]))
        elif self.shape.max_tokens is not None:
            body["max_tokens"] = min(self._cap, self.shape.max_tokens.draw(self.rng))
        return Planned("dataset", body)

    def _of_mix(self) -> Planned:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        body: dict[str, Any] = {"model": self.model.name, "stream": True, "stream_options": {"include_usage": True}}
        if kind == "long":
            body["messages"] = [
                {"role": "system", "content": "You are a careful technical writer."},
                {"role": "user", "content": self._long_prompt()},
            ]
            body["max_tokens"] = self._max_tokens(128, 512)
        elif kind == "tools":
            city = self.rng.choice(("Singapore", "Hangzhou", "Ashburn", "Beijing", "Lisbon"))
            body["messages"] = [{"role": "user", "content": f"What is the weather like in {city} right now?"}]
            body["tools"] = [WEATHER_TOOL]
            body["max_tokens"] = self._max_tokens(64, 256)
        elif kind == "thinking":
            body["messages"] = [{"role": "user", "content": f"Think it through: {self.rng.choice(_TOPICS)}?"}]
            body["enable_thinking"] = True
            body["max_tokens"] = self._max_tokens(128, 512)
        else:
            body["messages"] = [{"role": "user", "content": f"In two sentences: {self.rng.choice(_TOPICS)}."}]
            body["max_tokens"] = self._max_tokens(32, 128)
        return Planned(kind, body)


def workload_shape(opts: Any) -> Shape:
    """The Shape the `--chatconf-*` options describe; a bad spec is a ValueError naming the option."""
    from .dataset import load_dataset
    from .distributions import parse_distribution

    def dist(name: str, flag: str) -> Distribution | None:
        spec = str(getattr(opts, name, "") or "").strip()
        return parse_distribution(spec, flag) if spec else None

    dataset = str(getattr(opts, "chatconf_dataset", "") or "").strip()
    return Shape(prompt_tokens=dist("chatconf_prompt_tokens", "--prompt-tokens"),
                 max_tokens=dist("chatconf_max_tokens", "--max-tokens"),
                 turns=dist("chatconf_turns", "--turns"),
                 dataset=load_dataset(dataset) if dataset else ())

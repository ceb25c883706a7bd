"""A JSON value that satisfies a JSON Schema: the mock's answer to `response_format: json_schema`.

OpenAI-style structured output (the SDK's `parse`, LangChain's `with_structured_output`) sends the
schema of the object it will validate the answer against; a mock that answers anything else breaks
the application under test, not the harness. Covers what those clients generate from Pydantic and
zod models: typed properties, enums and consts, nested objects and arrays, `$ref` to `$defs`,
`anyOf`/`oneOf`/`allOf`, nullable type lists, numeric bounds, string lengths and common formats.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from typing import Any

from .tokenizer import WORDS

_FORMATS = {"date": "2026-01-15", "date-time": "2026-01-15T08:30:00Z", "time": "08:30:00",
            "email": "user@example.com", "uri": "https://example.com/", "uuid": "123e4567-e89b-12d3-a456-426614174000"}
_SHRINK_DEPTH = 6  # below this depth only required properties and minimal arrays
_MAX_DEPTH = 40


def example(schema: Any, rng: random.Random, *, text_for: Any = None) -> Any:
    """An instance of `schema`. `text_for(name)` may supply a string for a property name (the mock
    uses it to put the city the user asked about into a `city` field)."""
    return _Maker(schema if isinstance(schema, dict) else {}, rng, text_for).make(schema, "", 0)


class _Maker:
    def __init__(self, root: dict[str, Any], rng: random.Random, text_for: Any) -> None:
        self.root, self.rng, self.text_for = root, rng, text_for

    def make(self, schema: Any, name: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            return None
        if not isinstance(schema, dict):
            return self._string(name, {}, depth)
        if "$ref" in schema:
            return self.make(self._resolve(schema["$ref"]), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            options = [s for s in schema.get(key) or [] if isinstance(s, dict)]
            if options:
                concrete = [s for s in options if s.get("type") != "null"] or options
                return self.make({**_without(schema, key), **concrete[0]}, name, depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged = _without(schema, "allOf")
            for part in schema["allOf"]:
                part = self._resolve(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
                if isinstance(part, dict):
                    merged = _merge(merged, part)
            return self.make(merged, name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        handler = {"object": self._object, "array": self._array, "number": self._number, "integer": self._integer,
                   "boolean": self._boolean, "null": self._null}.get(kind, self._string)
        return handler(name, schema, depth)

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        return node

    def _object(self, name: str, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        if depth >= _SHRINK_DEPTH:
            required = set(schema.get("required") or [])
            props = {k: v for k, v in props.items() if k in required}
        return {key: self.make(sub, key, depth + 1) for key, sub in props.items()}

    def _array(self, name: str, schema: dict[str, Any], depth: int) -> list[Any]:
        items = schema.get("items")
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        low = schema.get("minItems") if isinstance(schema.get("minItems"), int) else None
        wanted = 2 if depth < _SHRINK_DEPTH else 0  # deep (recursive) schemas stop growing
        count = max(low or 0, wanted if high is None else min(high, wanted), len(prefix))
        out = [self.make(sub, name, depth + 1) for sub in prefix]
        while len(out) < count:
            out.append(self.make(items if isinstance(items, dict) else {}, name, depth + 1))
        return out

    def _number(self, name: str, schema: dict[str, Any], depth: int = 0) -> float:
        low, high = _bounds(schema, 0.0, 100.0)
        value = round(low + (high - low) * self.rng.random(), 2)
        return min(max(value, low), high)

    def _integer(self, name: str, schema: dict[str, Any], depth: int = 0) -> int:
        low, high = _bounds(schema, 0, 100)
        low_i, high_i = int(-(-low // 1)), int(high // 1)
        return self.rng.randint(low_i, high_i) if high_i >= low_i else low_i

    def _boolean(self, name: str, schema: dict[str, Any], depth: int = 0) -> bool:
        return self.rng.random() < 0.5

    def _null(self, name: str, schema: dict[str, Any], depth: int = 0) -> None:
        return None

    def _string(self, name: str, schema: dict[str, Any], depth: int = 0) -> str:
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        supplied = self.text_for(name) if self.text_for is not None else None
        text = supplied or " ".join(self.rng.choice(WORDS) for _ in range(3))
        low = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
        high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
        while len(text) < low:
            text += " " + self.rng.choice(WORDS)
        return text[:high] if high is not None else text


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {**a, **b}
    if isinstance(a.get("properties"), dict) and isinstance(b.get("properties"), dict):
        out["properties"] = {**a["properties"], **b["properties"]}
    return out


def _bounds(schema: dict[str, Any], low: float, high: float) -> tuple[float, float]:
    step = 1 if schema.get("type") == "integer" else 0.01
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - step
    return low, max(low, high)

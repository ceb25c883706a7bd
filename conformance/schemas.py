"""The four JSON Schemas (request, completion, chunk, error), specialised for a profile.

The files in schemas/ are the documented DashScope contract. A profile adjusts them in one way
only: its `params` bounds and `roles` are written into the request schema, and `schema_overlay`
is merged into any document. Validation uses jsonschema-rs (fast, for the per-chunk hot path)
and falls back to the reference `jsonschema` package for instances the Rust binding cannot
represent (integers beyond 64 bits). `strict` validators close every object so unknown fields
show up (reported as warnings, never as violations).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .profiles import Profile, deep_merge, load_profile
from .resources import schemas_dir
from .schema_count import Counter, compile_counter

try:
    import jsonschema_rs
except ImportError:  # pragma: no cover - declared dependency
    jsonschema_rs = None

if TYPE_CHECKING:
    import jsonschema

DOCUMENTS = {
    "request": "chat-request.schema.json",
    "completion": "chat-completion.schema.json",
    "chunk": "chat-completion-chunk.schema.json",
    "error": "error.schema.json",
}
_BOUND_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One schema failure: JSON pointer into the instance, and a message saying what was wrong."""

    pointer: str
    message: str
    keyword: str


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


@functools.lru_cache(maxsize=8)
def _raw_document(filename: str) -> dict[str, Any]:
    return json.loads((schemas_dir() / filename).read_text(encoding="utf-8"))


def _bundle(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline refs to sibling files (`file.json#/$defs/x`) as local `$defs`, for both engines."""
    defs = schema.setdefault("$defs", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#") and "#/$defs/" in ref:
                filename, name = ref.split("#/$defs/", 1)
                local = f"{filename.split('.', 1)[0]}__{name}"
                if local not in defs:
                    defs[local] = {}
                    target = copy.deepcopy(_raw_document(filename)["$defs"][name])
                    _rewrite_local_refs(target, filename)
                    defs[local] = target
                    walk(target)
                node["$ref"] = f"#/$defs/{local}"
            for value in list(node.values()):
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _rewrite_local_refs(node: Any, filename: str) -> None:
    """Refs inside a copied definition point into its own file; make that explicit."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = f"{filename}{ref}"
        for value in node.values():
            _rewrite_local_refs(value, filename)
    elif isinstance(node, list):
        for value in node:
            _rewrite_local_refs(value, filename)


def _apply_profile(kind: str, schema: dict[str, Any], profile: Profile) -> dict[str, Any]:
    if kind == "request":
        props = schema["properties"]
        for name, bounds in profile.params.items():
            target = dict(props.get(name) or {"type": ["number", "null"]})
            for keyword in _BOUND_KEYWORDS:
                target.pop(keyword, None)
            target.update(bounds or {})
            props[name] = target
        if profile.roles:
            schema["$defs"]["role"]["enum"] = list(profile.roles)
    overlay = profile.schema_overlay.get(kind)
    if overlay:
        schema = deep_merge(schema, overlay)
    return schema


def _close_objects(node: Any) -> None:
    """Strict variant: every object schema that lists properties rejects unevaluated ones."""
    if isinstance(node, dict):
        if "properties" in node and "unevaluatedProperties" not in node \
                and "additionalProperties" not in node:
            node["unevaluatedProperties"] = False
        for key, value in node.items():
            if key != "const" and key != "enum":
                _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


COUNT_CACHE_TEXT = 1024
"""Events up to this many characters have their error counts cached (tiny events are the flood case)."""
COUNT_CACHE_SIZE = 4096
"""Distinct texts kept; the cache starts again when full, so memory stays bounded."""


class SchemaValidator:
    """A compiled schema. `errors(instance)` yields SchemaError; `is_valid` is the fast path."""

    def __init__(self, kind: str, schema: dict[str, Any]):
        self.kind = kind
        self.schema = schema
        self._counts: dict[str, int] = {}
        self._rs = None
        if jsonschema_rs is not None:
            try:
                self._rs = jsonschema_rs.Draft202012Validator(schema)
            except Exception:  # pragma: no cover - schema features the binding lacks
                self._rs = None

    @functools.cached_property
    def _py(self) -> jsonschema.Draft202012Validator:
        """The reference engine, built (and imported: ~90 ms) only when an instance needs its
        messages or the Rust binding is missing: a capture of valid traffic never pays for it."""
        import jsonschema

        return jsonschema.Draft202012Validator(self.schema)

    def is_valid(self, instance: Any) -> bool:
        if self._rs is not None:
            try:
                return self._rs.is_valid(instance)
            except (ValueError, OverflowError, TypeError):
                pass
        return self._py.is_valid(instance)

    def count_errors(self, instance: Any, text: str | None = None) -> int:
        """How many errors `errors()` would yield, without building their messages: the cheap path
        once a rule's listing is full and findings are only counted.

        `text`, the JSON the instance was parsed from, keys an exact cache: a server that breaks
        the schema usually breaks it the same way in every event (`data: {}` floods, one missing
        field on every chunk), and counting the errors of the same bytes again is most of the cost."""
        if text is not None and len(text) <= COUNT_CACHE_TEXT:
            cache = self._counts
            count = cache.get(text)
            if count is None:
                if len(cache) >= COUNT_CACHE_SIZE:
                    cache.clear()
                count = cache[text] = self._count(instance)
            return count
        return self._count(instance)

    @functools.cached_property
    def _counter(self) -> Counter | None:
        """Built on the first count: a capture without bad chunks never pays for it (~1 ms)."""
        if self._rs is None:
            return None
        return compile_counter(self.schema, jsonschema_rs.Draft202012Validator)

    def _count(self, instance: Any) -> int:
        counter = self._counter
        if counter is not None:  # exact, without an error object per error (schema_count)
            try:
                return counter(instance)
            except (ValueError, OverflowError, TypeError):
                pass
        return self._whole_count(instance)

    def _whole_count(self, instance: Any) -> int:
        """The count from one engine over the whole schema: jsonschema-rs, else the reference."""
        if self._rs is not None:
            try:
                return sum(1 for _ in self._rs.iter_errors(instance))
            except (ValueError, OverflowError, TypeError):
                pass
        return sum(1 for _ in self.errors(instance))

    def errors(self, instance: Any) -> Iterator[SchemaError]:
        if self.is_valid(instance):
            return
        yield from self._python_errors(instance)

    def _python_errors(self, instance: Any) -> Iterator[SchemaError]:
        # The reference engine gives the best_match-style messages for anyOf/oneOf branches.
        for err in sorted(self._py.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            yield from self._flatten(err)

    def _flatten(self, err: jsonschema.ValidationError) -> Iterator[SchemaError]:
        if err.validator in ("anyOf", "oneOf") and err.context:
            from jsonschema.exceptions import best_match

            best = best_match(err.context)
            if best is not None and list(best.absolute_path) != list(err.absolute_path):
                yield from self._flatten(best)
                return
        yield SchemaError(pointer=_pointer(err.absolute_path), message=_short(err), keyword=str(err.validator))


def _short(err: jsonschema.ValidationError) -> str:
    msg = err.message
    if len(msg) > 240:
        msg = msg[:237] + "..."
    return msg


@dataclass(frozen=True)
class SchemaSet:
    request: SchemaValidator
    completion: SchemaValidator
    chunk: SchemaValidator
    error: SchemaValidator

    def for_kind(self, kind: str) -> SchemaValidator:
        return getattr(self, kind)


def build_schema(kind: str, profile: Profile, *, strict: bool = False) -> dict[str, Any]:
    """The specialised, bundled schema document for `kind` under `profile`."""
    schema = copy.deepcopy(_raw_document(DOCUMENTS[kind]))
    schema = _apply_profile(kind, schema, profile)
    schema = _bundle(schema)
    if strict:
        _close_objects(schema)
    return schema


@functools.lru_cache(maxsize=16)
def schema_set(profile_name: str = "dashscope", strict: bool = False) -> SchemaSet:
    profile = load_profile(profile_name)
    return SchemaSet(**{kind: SchemaValidator(kind, build_schema(kind, profile, strict=strict))
                        for kind in DOCUMENTS})

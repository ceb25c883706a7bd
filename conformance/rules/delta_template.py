"""A stream's next chunk, judged by its text: the chunk before it again, maybe with other delta text.

A real stream is thousands of chunks whose JSON differs in one place, the delta's content string
(`{"choices":[{"delta":{"content":"<text>"},...}],"id":...,...}`, or reasoning_content while a model
thinks); a broken one often repeats the same fault on every chunk. Once a chunk's checks changed
nothing but counts that no longer list anything (`StreamChecker._chunk_rules`, a full schema.chunk
listing), the next chunk whose data is the same text around another such string gets the same
verdict without parsing or schema validation: the rest of the JSON is the same characters, so the same
values; the slot's key is the only one of its name in the text, so its value is choices[0].delta[key];
the rules only ask whether that string is empty; and the chunk schema accepts any string there
(`free_slot_keys`, checked once per schema). The new string must be a valid JSON string body (no
unescaped quote or control character, valid escapes), or the full path runs and reports it. A text
without such a slot is a template only for exactly the same text.

Exactness is tested against the full path on generated streams (tests/test_delta_template.py).
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from ..jsonutil import JSONError, loads
from ..schema_count import ANNOTATIONS, ROOT_ONLY, local_refs_ok, ref_target

SLOT_KEYS = ("content", "reasoning_content")
"""Delta strings a template may leave open: the rules only ask whether one is empty (`_answered`)."""
_SIMPLE_BODY = re.compile('[^"\\\\\x00-\x1f\ud800-\udfff]*')
"""A string body with nothing to unescape or refuse: no quote, backslash, control char or surrogate."""
_BODY_END = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
"""Where a string body ends: the first quote not escaped by a backslash."""


class DeltaTemplate:
    """`match(data)`: -1 when `data` is not the template's chunk again (with another content string,
    where it has a slot for one), else 1 when that string is non-empty and 0 when it is empty or
    there is no slot. `errors`: schema errors the chunk adds to a full listing; `answers`: a non-empty
    content string sets the checker's `_answered`."""

    __slots__ = ("answers", "errors", "prefix", "slot", "start", "suffix", "suffix_len")

    def __init__(self, prefix: str, suffix: str | None, *, answers: bool = False, errors: int = 0):
        self.prefix = prefix
        self.start = len(prefix)
        self.slot = suffix is not None
        self.suffix = suffix or ""
        self.suffix_len = len(self.suffix)
        self.answers = answers
        self.errors = errors

    @classmethod
    def of(cls, data: str, obj: Any, *, keys: tuple[str, ...], answers: bool, errors: int) -> DeltaTemplate:
        """The template of a chunk (`obj` parsed from `data`) whose checks changed nothing but counts
        and `_answered`: with a slot for one of its delta strings named in `keys` (content, or reasoning
        while a model thinks) where the text allows one, else exact."""
        slot = _slot(data, obj, keys)
        if slot is None:
            return cls(data, None, errors=errors)
        return cls(data[:slot[0]], data[slot[1]:], answers=answers, errors=errors)

    def match(self, data: str) -> int:
        if not self.slot:
            return 0 if data == self.prefix else -1
        start = self.start
        end = len(data) - self.suffix_len
        if end < start or not data.startswith(self.prefix) or not data.endswith(self.suffix):
            return -1
        if _SIMPLE_BODY.fullmatch(data, start, end) is None and not _string_body(data[start - 1:end + 1]):
            return -1
        return 1 if end > start else 0


def _slot(data: str, obj: Any, keys: tuple[str, ...]) -> tuple[int, int] | None:
    """Where the body of a string choices[0].delta[name] is in `data` (name from `keys`, the non-empty one
    first), when the text around it spells every key out (no backslash) and holds no other key of that
    name; else None."""
    if type(obj) is not dict:
        return None
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    delta = choice.get("delta") if type(choice) is dict else None
    if type(delta) is not dict:
        return None
    names = [name for name in keys if type(delta.get(name)) is str]
    if not names:
        return None
    name = next((name for name in names if delta[name]), names[0])
    quoted = f'"{name}"'
    key = data.find(quoted + ':"')
    if key < 0 or data.count(quoted) != 1:
        return None
    start = key + len(quoted) + 2
    backslash = data.find("\\")
    if backslash < 0:
        return start, data.find('"', start)
    end = _BODY_END.match(data, start).end()  # type: ignore[union-attr]  # matches the empty string
    if backslash < start or data.find("\\", end) >= 0:  # every key spelled out: none is an escaped `quoted`
        return None
    return start, end


def _string_body(quoted: str) -> bool:
    """`quoted` (a slot's body with the quotes around it) is exactly one JSON string."""
    try:
        return type(loads(quoted)) is str
    except JSONError:
        return False


_PATH = ("choices", None, "delta")
"""Where the delta sits: properties.choices, its items, properties.delta."""
_ON_PATH = ANNOTATIONS | {"type", "required", "properties", "items", "$ref", "minItems", "maxItems",
                          "minProperties", "maxProperties"}
"""Keywords a schema on the way to a slot's string may use: none looks at that string's value."""
_AT_SLOT = ANNOTATIONS | {"type", "$ref"}
_free: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def free_slot_keys(validator: Any) -> tuple[str, ...]:
    """The SLOT_KEYS whose string the chunk schema of `validator` (a schemas.SchemaValidator) accepts
    whatever it holds, wherever else the chunk is what it is: templates may leave those open."""
    free = _free.get(validator)
    if free is None:
        free = _free[validator] = tuple(key for key in SLOT_KEYS if _is_free(validator.schema, key))
    return free


def _is_free(schema: Any, key: str) -> bool:
    if not isinstance(schema, dict) or not local_refs_ok(schema):
        return False
    defs = schema.get("$defs", {})
    nodes: list[Any] = [schema]
    for depth, step in enumerate((*_PATH, key)):
        applying = _with_refs(nodes, defs)
        allowed = _ON_PATH | ROOT_ONLY if depth == 0 else _ON_PATH
        if applying is None or any(not node.keys() <= allowed for node in applying):
            return False
        if step is None:
            nodes = [node["items"] for node in applying if "items" in node]
        else:
            nodes = [node["properties"][step] for node in applying
                     if isinstance(node.get("properties"), dict) and step in node["properties"]]
    applying = _with_refs(nodes, defs)
    if applying is None or any(not node.keys() <= _AT_SLOT for node in applying):
        return False
    return all(_allows_strings(node.get("type", "string")) for node in applying)


def _with_refs(nodes: list[Any], defs: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The schemas that apply at one place: `nodes` and what their $refs point to (None: a boolean
    or unknown schema, which this analysis does not follow)."""
    out: list[dict[str, Any]] = []
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if node is True:
            continue
        if not isinstance(node, dict) or len(out) > 64:
            return None
        out.append(node)
        if "$ref" in node:
            target = ref_target(node["$ref"], defs)
            if target is None:
                return None
            todo.append(target)
    return out


def _allows_strings(types: Any) -> bool:
    return types == "string" or (isinstance(types, list) and "string" in types)

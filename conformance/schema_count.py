"""Exact schema error counts without building one error object per error.

Once a stream's schema.chunk listing is full, each further bad chunk only adds its number of errors
to the total the report prints. jsonschema-rs' `iter_errors` builds an error (message, paths, a copy
of the instance) for every error it counts, ~13 µs for the five of a tiny bad chunk, and the cache by
exact text misses when every chunk differs (a counter or a token in each).

The count needs none of that. The reference engine (jsonschema, whose `iter_errors` the listing
flattens one entry per error) yields one error for a failing `type`, one per missing `required` name,
and, unchanged, every error of the sub-schemas it descends into through `properties`, `items` and
`$ref`. Those keywords are summed here in Python; every other sub-schema (anyOf, const, minimum,
minLength...) is a leaf that jsonschema-rs answers with `is_valid` and counts with `iter_errors` only
when it fails. A node that uses anything else becomes a leaf, and a schema whose references or
identifiers could resolve differently once split gets no counter at all, so the count stays the
reference one (tests/test_schema_count.py compares them on generated chunks).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

Counter = Callable[[Any], int]
"""Errors the reference engine would yield for an instance (0 when it is valid)."""

_TYPES: dict[str, type] = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
"""JSON types whose check is a plain isinstance in jsonschema (integer and number are not: True, 1.0)."""
ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
                         "writeOnly"})
_STRUCTURE = frozenset({"type", "required", "properties", "items", "$ref"})
_CHECKS = frozenset({"const", "enum", "anyOf", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"})
_SUMMED = _STRUCTURE | _CHECKS | ANNOTATIONS
ROOT_ONLY = frozenset({"$schema", "$id", "$defs"})
"""Keywords only the root of a schema document holds."""
_SCOPED = ("$id", "$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveAnchor", "$recursiveRef")
"""Keywords that change how references resolve: a schema holding one below its root is not split."""
_LOCAL_REF = "#/$defs/"


class _Unsplittable(Exception):
    """The schema cannot be split with the same meaning: count with the whole-schema engine."""


def compile_counter(schema: Any, leaf_validator: Callable[[Any], Any]) -> Counter | None:
    """A Counter for `schema`, or None when it cannot be split safely. `leaf_validator(subschema)`
    builds the jsonschema-rs validator of a leaf (with `is_valid` and `iter_errors`)."""
    if not isinstance(schema, dict) or not local_refs_ok(schema):
        return None
    try:
        return _Builder(schema.get("$defs", {}), leaf_validator).node(schema, root=True)
    except _Unsplittable:
        return None
    except Exception:  # a leaf the binding cannot compile alone: count the whole schema
        return None


def local_refs_ok(schema: dict[str, Any]) -> bool:
    """Every $ref of `schema` is `#/$defs/name` with name defined, and nothing below its root re-scopes
    them: its sub-schemas mean the same taken apart (the counter here, delta_template's path walk)."""
    try:
        _check_scopes(schema, schema.get("$defs", {}), root=True)
    except _Unsplittable:
        return False
    return True


def ref_target(ref: Any, defs: dict[str, Any]) -> Any:
    """The sub-schema a local `#/$defs/name` reference points to (None for any other reference)."""
    name = _ref_name(ref) if isinstance(ref, str) else None
    return defs.get(name) if name is not None else None


def _check_scopes(node: Any, defs: Any, *, root: bool = False) -> None:
    """Every $ref is `#/$defs/name` with name defined, and nothing below the root re-scopes them."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None and not (isinstance(ref, str) and _ref_name(ref) in defs):
            raise _Unsplittable(ref)
        if not root and any(key in node for key in (*_SCOPED, "$defs", "$schema")):
            raise _Unsplittable("scope")
        for value in node.values():  # const and enum values too: a false alarm only costs speed
            _check_scopes(value, defs)
    elif isinstance(node, list):
        for value in node:
            _check_scopes(value, defs)


def _ref_name(ref: str) -> str | None:
    name = ref[len(_LOCAL_REF):]
    if not ref.startswith(_LOCAL_REF) or not name or any(c in name for c in "/~%"):
        return None
    return name


class _Builder:
    def __init__(self, defs: dict[str, Any], leaf_validator: Callable[[Any], Any]):
        self.defs = defs
        self.leaf_validator = leaf_validator
        self.refs: dict[str, Counter] = {}
        self.building: set[str] = set()
        self.leaf_valid: dict[Counter, Callable[[Any], bool]] = {}

    def node(self, node: Any, *, root: bool = False) -> Counter:
        if isinstance(node, bool):  # a `false` sub-schema is one error, whatever the instance
            return _zero if node else _one
        if not isinstance(node, dict):
            raise _Unsplittable(node)
        allowed = _SUMMED | ROOT_ONLY if root else _SUMMED
        if not node.keys() <= allowed or not _summable(node):
            return self.leaf(node, root)
        if "$ref" in node and node.keys() - ANNOTATIONS == {"$ref"}:
            return self.ref(node["$ref"])  # the target's count: one call fewer per level
        checks = [self.check(key, value) for key, value in node.items() if key in _CHECKS]
        types = node.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else types
            if all(name in _TYPES for name in names):
                types = tuple(_TYPES[name] for name in names)
            else:
                checks.append(_type_check(names))
                types = None
        required = tuple(node.get("required", ()))
        properties = {name: self.node(sub) for name, sub in node.get("properties", {}).items()}
        items = self.node(node["items"]) if "items" in node else None
        ref = self.ref(node["$ref"]) if "$ref" in node else None
        if not (required or properties or items or ref):
            return _scalar(types, tuple(checks))
        children_valid = None
        if properties or items:  # one is_valid in Rust answers "no error below" for a whole subtree
            below = {key: node[key] for key in ("properties", "items") if key in node}
            children_valid = self.leaf_validator({**below, "$defs": self.defs}).is_valid
        return _summed(types, required, properties, items, ref, tuple(checks), children_valid)

    def check(self, keyword: str, value: Any) -> Counter:
        """One error when the keyword fails, as in jsonschema._keywords (types it does not apply to pass)."""
        if keyword == "anyOf":
            return _any_of(tuple(self.valid(sub) for sub in value))
        if keyword == "const":  # a string: jsonschema's equal() is then ==
            return lambda instance: 0 if instance == value else 1
        if keyword == "enum":  # strings only: equal() is then ==, and no other type can match
            names = frozenset(value)
            return lambda instance: 0 if isinstance(instance, str) and instance in names else 1
        if keyword in ("minLength", "maxLength", "minItems", "maxItems"):
            kind = str if keyword.endswith("Length") else list
            if keyword.startswith("min"):
                return lambda instance: 1 if isinstance(instance, kind) and len(instance) < value else 0
            return lambda instance: 1 if isinstance(instance, kind) and len(instance) > value else 0
        if keyword == "minimum":
            return lambda instance: 1 if _is_number(instance) and instance < value else 0
        return lambda instance: 1 if _is_number(instance) and instance > value else 0  # maximum

    def valid(self, node: Any) -> Callable[[Any], bool]:
        """Whether an instance has no error under `node` (anyOf needs no more): a leaf's is_valid,
        never its iter_errors."""
        count = self.node(node)
        return self.leaf_valid.get(count) or (lambda instance: count(instance) == 0)

    def ref(self, ref: str) -> Counter:
        name = _ref_name(ref)
        if name is None or name in self.building:  # recursive schemas are left whole
            raise _Unsplittable(ref)
        if name not in self.refs:
            self.building.add(name)
            self.refs[name] = self.node(self.defs[name])
            self.building.discard(name)
        return self.refs[name]

    def leaf(self, node: dict[str, Any], root: bool) -> Counter:
        validator = self.leaf_validator(node if root else {**node, "$defs": self.defs})
        is_valid, iter_errors = validator.is_valid, validator.iter_errors

        def count(instance: Any) -> int:
            if is_valid(instance):
                return 0
            return sum(1 for _ in iter_errors(instance))

        self.leaf_valid[count] = is_valid
        return count


def _summable(node: dict[str, Any]) -> bool:
    """The summed keywords in the plain forms whose reference semantics are the sums below."""
    types = node.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not isinstance(names, list) or not all(isinstance(t, str) and t in _TYPE_CHECKS for t in names):
            return False
    if "const" in node and not isinstance(node["const"], str):
        return False
    if "enum" in node and not (isinstance(node["enum"], list) and all(isinstance(v, str) for v in node["enum"])):
        return False
    if "anyOf" in node and not (isinstance(node["anyOf"], list) and node["anyOf"]):
        return False
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in node and type(node[key]) is not int:
            return False
    for key in ("minimum", "maximum"):
        if key in node and type(node[key]) not in (int, float):
            return False
    required = node.get("required", [])
    properties = node.get("properties", {})
    return (isinstance(required, list) and all(isinstance(r, str) for r in required)
            and isinstance(properties, dict)
            and isinstance(node.get("items", {}), dict))  # `items: false` is one error, not one per item


def _summed(types: tuple[type, ...] | None, required: tuple[str, ...], properties: dict[str, Counter],
            items: Counter | None, ref: Counter | None, checks: tuple[Counter, ...],
            children_valid: Callable[[Any], bool] | None) -> Counter:
    """type: one error when no type matches; required, properties: objects only; items: arrays only
    (there is no prefixItems here); $ref: every error of the target; checks: their own counts.
    `children_valid` (jsonschema-rs on properties and items alone) skips the walk below when no child
    has an error: the usual case, one bad field in an otherwise good chunk."""

    def count(instance: Any) -> int:
        n = 0 if types is None or isinstance(instance, types) else 1
        if ref is not None:
            n += ref(instance)
        for check in checks:
            n += check(instance)
        if isinstance(instance, dict):
            for name in required:
                if name not in instance:
                    n += 1
            if properties and not children_valid(instance):
                for name, value in instance.items():
                    sub = properties.get(name)
                    if sub is not None:
                        n += sub(value)
        elif items is not None and isinstance(instance, list) and not children_valid(instance):
            for value in instance:
                n += items(value)
        return n

    return count


def _any_of(branches: tuple[Callable[[Any], bool], ...]) -> Counter:
    """One error when no branch is valid (the branches' own errors are only its context); also a
    `type` that names several types, one of them integer or number (`_type_check`)."""
    if len(branches) == 1:
        holds = branches[0]
        return lambda instance: 0 if holds(instance) else 1

    def count(instance: Any) -> int:
        for holds in branches:
            if holds(instance):
                return 0
        return 1

    return count


def _is_number(instance: Any) -> bool:
    """jsonschema's "number": any numbers.Number but bool (int and float first: the ABC check is slow)."""
    kind = type(instance)
    if kind is int or kind is float:
        return True
    return isinstance(instance, numbers.Number) and not isinstance(instance, bool)


def _is_integer(instance: Any) -> bool:
    """Draft 2020-12's "integer": an int (not bool), or a float with no fractional part (1.0)."""
    kind = type(instance)
    if kind is int:
        return True
    if kind is bool:
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


def _is_a(kind: type) -> Callable[[Any], bool]:
    return lambda instance: isinstance(instance, kind)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    **{name: _is_a(kind) for name, kind in _TYPES.items()}, "integer": _is_integer, "number": _is_number}


def _type_check(names: list[str]) -> Counter:
    """A `type` naming integer or number: one error when no named type matches."""
    return _any_of(tuple(_TYPE_CHECKS[name] for name in names))


def _scalar(types: tuple[type, ...] | None, checks: tuple[Counter, ...]) -> Counter:
    """A node with nothing below it (most nodes: `{"type": ["string", "null"]}`), in as few calls as it takes."""
    if not checks:
        return lambda instance: 0 if types is None or isinstance(instance, types) else 1
    if types is None and len(checks) == 1:
        return checks[0]

    def count(instance: Any) -> int:
        n = 0 if types is None or isinstance(instance, types) else 1
        for check in checks:
            n += check(instance)
        return n

    return count


def _zero(instance: Any) -> int:
    return 0


def _one(instance: Any) -> int:
    return 1

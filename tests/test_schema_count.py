"""The count-only path (conformance.schema_count) against the reference: jsonschema's iter_errors.

Past a full schema.chunk listing the report adds up counts, so a count that differs from what the
listing would have said changes the totals users read. Instances are drawn near each schema (its own
property names, consts, enums and shapes, with random departures at every level) so that every
node, deep ones included, is exercised valid and invalid.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.profiles import available_profiles, load_profile
from conformance.schema_count import compile_counter
from conformance.schemas import DOCUMENTS, SchemaValidator, build_schema

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3),
    st.sampled_from([1.0, -1.5, 0.5, 2**63, 2**70, -(2**70)]),  # beyond 64 bits: the binding gives up
    st.sampled_from(["", "x", "chat.completion.chunk", "chat.completion", "assistant", "user", "function",
                     "stop", "length", "tool_calls", "null", "0"]),
)
ANY = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=2)
                   | st.dictionaries(st.sampled_from(["x", "index", "id", "content"]), kids, max_size=2),
                   max_leaves=6)


@st.composite
def near(draw: st.DrawFn, node: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    """An instance shaped by `node`, departing from it at random (the bad chunks servers send)."""
    if depth > 6 or not isinstance(node, dict) or draw(st.integers(0, 9)) == 0:
        return draw(ANY)
    if "$ref" in node:
        return draw(near(defs[node["$ref"].rsplit("/", 1)[1]], defs, depth))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return draw(near(draw(st.sampled_from(node[key])), defs, depth))
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    if "properties" in node:
        required = node.get("required", [])
        out = {name: draw(near(sub, defs, depth + 1)) for name, sub in node["properties"].items()
               if (draw(st.integers(0, 4)) > 0 if name in required else draw(st.booleans()))}
        if draw(st.integers(0, 5)) == 0:
            out["unknown"] = draw(ANY)
        return out
    if "items" in node:
        return draw(st.lists(near(node["items"], defs, depth + 1), max_size=3))
    return draw(SCALARS)


def reference_count(validator: SchemaValidator, instance: Any) -> int:
    return sum(1 for _ in validator._py.iter_errors(instance))


CASES = [(profile, kind, strict) for profile in available_profiles() for kind in DOCUMENTS for strict in (False, True)]


@pytest.mark.parametrize(("profile", "kind", "strict"), CASES)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_counts_are_the_reference_counts(profile: str, kind: str, strict: bool, data: st.DataObject) -> None:
    validator = _validator(profile, kind, strict)
    if not strict:
        assert validator._counter is not None  # else this test would only exercise the old path
    schema = validator.schema
    instance = data.draw(near(schema, schema.get("$defs", {})))
    assert validator.count_errors(instance) == reference_count(validator, instance)


@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_bad_chunks_count_as_the_listing_says(data: st.DataObject) -> None:
    """The hot case, drawn more: non-strict chunks, and the count the listing would have given."""
    validator = _validator("dashscope", "chunk", False)
    instance = data.draw(near(validator.schema, validator.schema["$defs"]))
    assert validator.count_errors(instance) == len(list(validator.errors(instance))) \
        == reference_count(validator, instance)


_VALIDATORS: dict[tuple[str, str, bool], SchemaValidator] = {}


def _validator(profile: str, kind: str, strict: bool) -> SchemaValidator:
    """A fresh SchemaValidator per case (not the process-wide one), so no cached count answers."""
    key = (profile, kind, strict)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = SchemaValidator(kind, build_schema(kind, load_profile(profile), strict=strict))
    return _VALIDATORS[key]


SUMMED_EDGES: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": False, "b": True}, "required": ["a", "a", "c"]},
    {"type": ["array", "null"], "items": {"type": "string"}},
    {"type": "array", "items": {"type": "array", "items": {"type": "null"}}},
    {"items": {"required": ["x"]}, "required": ["x"]},  # keywords without `type` ignore other types
    {"type": "boolean"},
    {"type": "integer", "minimum": 0},  # 1.0 is an integer, True is not
    {"type": ["number", "string"], "maximum": 2, "minLength": 1, "maxLength": 1},
    {"anyOf": [{"enum": ["x", "0"]}, {"type": "null"}, {"additionalProperties": False, "required": ["a"]}]},
    {"type": "array", "minItems": 1, "maxItems": 2, "items": {"const": "x"}},
    {"properties": {"a": {"const": "x", "type": "integer"}, "b": {"enum": ["x", "content"], "minLength": 2}}},
    {"$ref": "#/$defs/a", "type": "object", "required": ["y"], "$defs": {"a": {"required": ["x"]}}},
    {"properties": {"n": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/a"}]}},
     "$defs": {"a": {"type": "object", "properties": {"m": {"const": 1}}}}},
]


@pytest.mark.parametrize("schema", SUMMED_EDGES)
@settings(max_examples=150, deadline=None)
@given(instance=ANY | st.dictionaries(st.sampled_from(["a", "b", "c", "x", "y", "n"]), ANY, max_size=4))
def test_edge_forms_of_the_summed_keywords(schema: dict[str, Any], instance: Any) -> None:
    counter = compile_counter(schema, jsonschema_rs.Draft202012Validator)
    assert counter is not None
    expect = sum(1 for _ in jsonschema.Draft202012Validator(schema).iter_errors(instance))
    try:
        got = counter(instance)
    except (ValueError, OverflowError):
        return  # integers beyond 64 bits: SchemaValidator counts those with the reference engine
    assert got == expect


@pytest.mark.parametrize("schema", [
    {"$ref": "#/$defs/node", "$defs": {"node": {"properties": {"next": {"$ref": "#/$defs/node"}}}}},
    {"properties": {"a": {"$id": "https://x.test/a", "type": "string"}}},
    {"properties": {"a": {"$ref": "#/properties/b"}, "b": {"type": "string"}}},
    {"properties": {"a": {"$ref": "other.json#/$defs/x"}}},
    {"properties": {"a": {"$dynamicRef": "#meta"}}},
    True,
])
def test_schemas_whose_references_could_change_meaning_are_not_split(schema: Any) -> None:
    assert compile_counter(schema, jsonschema_rs.Draft202012Validator) is None

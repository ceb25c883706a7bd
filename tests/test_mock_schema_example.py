"""The mock's structured-output answers satisfy the request's JSON Schema (checked with jsonschema, an
implementation we did not write), for the shapes Pydantic and zod generate."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from conformance.mock.schema_example import example

SCHEMAS: dict[str, dict[str, Any]] = {
    "pydantic-nested": {
        "$defs": {"Step": {"type": "object", "properties": {"explanation": {"type": "string"},
                                                            "output": {"type": "integer", "minimum": 3, "maximum": 9}},
                           "required": ["explanation", "output"], "additionalProperties": False}},
        "type": "object", "additionalProperties": False, "required": ["steps", "final"],
        "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 2},
                       "final": {"enum": ["done", "stuck"], "type": "string"}}},
    "nullable-and-unions": {
        "type": "object", "required": ["a", "b", "c"],
        "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                       "b": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
                       "c": {"oneOf": [{"type": "boolean"}, {"type": "integer"}]}}},
    "strings": {
        "type": "object", "required": ["when", "mail", "code", "id", "kind"],
        "properties": {"when": {"type": "string", "format": "date-time"}, "mail": {"type": "string", "format": "email"},
                       "code": {"type": "string", "minLength": 30, "maxLength": 40},
                       "id": {"type": "string", "format": "uuid"}, "kind": {"const": "forecast"}}},
    "allof-and-tuples": {
        "allOf": [{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                  {"properties": {"y": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}],
                                        "minItems": 2, "maxItems": 2}}, "required": ["y"]}]},
    "recursive": {
        "$defs": {"Node": {"type": "object", "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "maxItems": 0}}}},
        "$ref": "#/$defs/Node"},
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_example_validates_against_its_schema(name: str, seed: int):
    schema = SCHEMAS[name]
    value = example(schema, random.Random(seed))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(value)


def test_the_same_seed_gives_the_same_answer():
    schema = SCHEMAS["pydantic-nested"]
    assert example(schema, random.Random(5)) == example(schema, random.Random(5))


def test_a_place_field_gets_the_place_the_user_named():
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "note": {"type": "string"}}}
    value = example(schema, random.Random(0), text_for=lambda name: "Hangzhou" if name == "city" else None)
    assert value["city"] == "Hangzhou" and value["note"]

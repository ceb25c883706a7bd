"""JSON-Schema checks of response bodies, stream chunks and error envelopes (schema.* ids).

Validation takes the fast `is_valid` path first and only asks for the (slow, precise) error list
when an instance fails, so valid traffic costs one jsonschema-rs call per object. Strict mode adds
the closed variant of each schema; what only it rejects is an unknown field, reported as a warning.
"""

from __future__ import annotations

from typing import Any

from ..profiles import Profile, ProfileError, load_profile
from ..schemas import DOCUMENTS, SchemaSet, SchemaValidator, build_schema, schema_set
from .base import Violation, register, unlisted_summary

register("schema.completion", "a non-stream body matches the chat.completion schema", kind="schema",
         cites="001:response-parameters 001:sample-nonstream N1 C2", needs="nonstream")
register("schema.chunk", "every stream chunk matches the chat.completion.chunk schema", kind="schema",
         cites="001:sample-stream S2 C10 C13", needs="stream")
register("schema.error", "an error body matches the error envelope schema", kind="schema",
         cites="001:error-response E1 C4", needs="error")
register("schema.unknown-field", "strict mode: fields the schema does not list", kind="schema", cites="N1")

MAX_ERRORS_PER_OBJECT = 20


def schema_findings(validator: SchemaValidator, strict: SchemaValidator | None, obj: Any, rule_id: str,
                    *, entry: int = 0, event: int | None = None,
                    seen_unknown: set[str] | None = None) -> list[Violation]:
    """Violations of `validator` (as `rule_id`) plus, with a strict validator, unknown-field warnings.

    `seen_unknown` deduplicates unknown-field warnings across the chunks of one stream (the same
    extra key on every chunk is reported once, at its first occurrence).
    """
    out: list[Violation] = []
    if not validator.is_valid(obj):
        more = 0
        for i, err in enumerate(validator.errors(obj)):
            if i >= MAX_ERRORS_PER_OBJECT:
                more += 1
            else:
                out.append(Violation(rule_id, err.message, entry=entry, event=event, pointer=err.pointer))
        if more:
            out.append(unlisted_summary(rule_id, more, entry=entry, event=event))
        return out
    if strict is not None and not strict.is_valid(obj):
        for err in strict.errors(obj):
            if err.keyword not in ("unevaluatedProperties", "additionalProperties"):
                continue
            key = _shape(err.pointer) + "|" + err.message
            if seen_unknown is not None:
                if key in seen_unknown:
                    continue
                seen_unknown.add(key)
            out.append(Violation("schema.unknown-field", err.message, entry=entry, event=event,
                                 pointer=err.pointer))
    return out


def _shape(pointer: str) -> str:
    """/choices/3/delta -> /choices/*/delta: one warning per place, not per array element."""
    return "/".join("*" if part.isdigit() else part for part in pointer.split("/"))


_BY_PROFILE: dict[tuple[int, bool], tuple[Profile, SchemaSet]] = {}


def schemas_for(profile: Profile, strict: bool = False) -> SchemaSet:
    """The compiled schemas of `profile`: the shared `schema_set` cache for packaged profiles, and
    a per-object cache for a profile loaded from a YAML path (its name may not be a packaged one)."""
    key = (id(profile), strict)
    hit = _BY_PROFILE.get(key)
    if hit is not None and hit[0] is profile:
        return hit[1]
    try:
        packaged = load_profile(profile.name)
    except ProfileError:
        packaged = None
    if packaged is not None and (packaged is profile or packaged.data == profile.data):
        built = schema_set(profile.name, strict)
    else:
        built = SchemaSet(**{kind: SchemaValidator(kind, build_schema(kind, profile, strict=strict))
                             for kind in DOCUMENTS})
    _BY_PROFILE[key] = (profile, built)
    return built

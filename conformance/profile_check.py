"""The shape a profile must have, checked once when it is loaded (schemas/profile.schema.json).

A profile is user input (`--profile path.yaml`): a value of the wrong type (`params: [1]`, a bound
that is a number instead of a JSON Schema fragment, a status of "400") would otherwise surface much
later as a TypeError inside a rule, or as a mock that answers every request with a 500. Checked here,
it is one line naming the file and the place, and `chatconf` exits 2 before any work starts.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from .resources import schemas_dir

if TYPE_CHECKING:
    import jsonschema

FRAGMENT_TABLES = ("params", "schema_overlay")
"""Tables whose values are merged into the JSON Schemas: each must itself be a valid 2020-12 schema."""


@functools.lru_cache(maxsize=1)
def _profile_schema() -> dict[str, Any]:
    return json.loads((schemas_dir() / "profile.schema.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(_profile_schema())


@functools.lru_cache(maxsize=1)
def _fast_validator() -> Any:
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a dependency; the reference engine does the work then
        return None
    return jsonschema_rs.Draft202012Validator(_profile_schema())


def _clearly_valid(data: dict[str, Any]) -> bool:
    """jsonschema-rs agrees the profile and its fragments are valid: every command reads a profile
    at start-up, and a good one then never imports the reference engine (~90 ms). Anything else
    goes to the reference engine, whose messages are the ones reported."""
    validator = _fast_validator()
    if validator is None:
        return False
    import jsonschema_rs

    try:
        if not validator.is_valid(data):
            return False
        return all(
            jsonschema_rs.meta.is_valid(fragment)
            for table in FRAGMENT_TABLES
            for fragment in (data.get(table) or {}).values()
            if fragment is not None
        )
    except Exception:  # values the binding cannot take (huge ints, odd types): ask the reference
        return False


def _where(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _first_line(message: str) -> str:
    line = message.splitlines()[0] if message else "invalid"
    return line if len(line) <= 160 else line[:157] + "..."


def _hint(path: Any) -> str:
    parts = list(path)
    if parts and parts[0] in FRAGMENT_TABLES:
        return " (its values are JSON Schema fragments, e.g. `temperature: {minimum: 0, maximum: 2}`)"
    return ""


def profile_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a merged profile mapping, in one line (None: nothing)."""
    if _clearly_valid(data):
        return None
    import jsonschema

    errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        return f"{_where(err.absolute_path)}: {_first_line(err.message)}{_hint(err.absolute_path)}"
    for table in FRAGMENT_TABLES:
        for name, fragment in (data.get(table) or {}).items():
            if fragment is None:
                continue
            try:
                jsonschema.Draft202012Validator.check_schema(fragment)
            except jsonschema.SchemaError as exc:
                where = _where([table, name, *exc.absolute_path])
                return f"{where}: not valid JSON Schema: {_first_line(exc.message)}"
    return None

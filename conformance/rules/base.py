"""Rule registry and the Violation record.

Every check has a stable id (`stream.done-last`), a title, a kind (which part of an Exchange it
reads), a severity (`must`: documented contract; `should`: observed production behaviour clients
rely on) and a source (the doc or research item that says why it exists). Checks are plain
functions, in the schemathesis style; the registry is how reports, fault modes and the suite
refer to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("request", "response", "stream", "error", "schema")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (entry, SSE event index, JSON pointer) and what (expected vs received).

    `level` is "error" for violations and "warning" for strict-mode findings (unknown fields) and
    should-level advice that must not fail a validation run.
    """

    rule: str
    message: str
    entry: int = 0
    event: int | None = None
    pointer: str = ""
    level: str = "error"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "entry": self.entry, "event": self.event,
                "pointer": self.pointer, "message": self.message, "level": self.level}


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    kind: str
    severity: str = "must"
    source: str = ""
    func: Callable[..., Any] | None = None


REGISTRY: dict[str, Rule] = {}


def register(rule_id: str, title: str, *, kind: str, severity: str = "must", source: str = "",
             func: Callable[..., Any] | None = None) -> Rule:
    """Add a rule to the registry (ids are unique and stable: reports and fault modes use them)."""
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r}")
    if severity not in ("must", "should"):
        raise ValueError(f"unknown severity {severity!r}")
    if rule_id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule_id!r}")
    rule = Rule(rule_id, title, kind, severity, source, func)
    REGISTRY[rule_id] = rule
    return rule


def rule(rule_id: str, title: str, *, kind: str, severity: str = "must",
         source: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of `register` for function rules."""
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        register(rule_id, title, kind=kind, severity=severity, source=source, func=func)
        return func
    return wrap


def expected(what: str, received: Any) -> str:
    """The house style of messages: what the contract says, then what actually came (as repr)."""
    text = repr(received)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"expected {what}, received {text}"


def expected_text(what: str, received: str) -> str:
    """As `expected`, for a received part that is already a description ("no model", "3 chunks")."""
    if len(received) > 120:
        received = received[:117] + "..."
    return f"expected {what}, received {received}"

"""Rule registry and the Violation record.

Every check has a stable id (`stream.done-last`), a title, a kind (which part of an Exchange it
reads) and its provenance: the keys of docs/sources.md it cites. Provenance decides severity, in one
place (`conformance.provenance`): `must` only when a vendor documentation key is cited, `should`
when the rule rests on research alone. Checks are plain functions, in the schemathesis style; the
registry is how reports, fault modes and the suite refer to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..provenance import Cited, parse_cites

KINDS = ("request", "response", "stream", "error", "schema")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (entry, SSE event index, JSON pointer) and what (expected vs received).

    `level` follows the rule's severity: "error" for a `must` rule, "warning" for a `should` rule
    (strict-mode unknown fields, production advice), which never fails a validation run.
    `unlisted` > 0 marks a summary record: that many further violations of `rule` were found but not
    listed (a checker caps what it lists per rule; totals still count every one, see `weight`).
    """

    rule: str
    message: str
    entry: int = 0
    event: int | None = None
    pointer: str = ""
    level: str = ""
    unlisted: int = 0

    def __post_init__(self) -> None:
        if not self.level:
            rule = REGISTRY.get(self.rule)
            object.__setattr__(self, "level", "warning" if rule is not None and rule.severity == "should"
                               else "error")

    @property
    def weight(self) -> int:
        """How many violations this record stands for (a summary: the ones it did not list)."""
        return self.unlisted or 1

    def as_dict(self) -> dict[str, Any]:
        out = {"rule": self.rule, "entry": self.entry, "event": self.event,
               "pointer": self.pointer, "message": self.message, "level": self.level}
        if self.unlisted:
            out["unlisted"] = self.unlisted
        return out


def unlisted_summary(rule_id: str, count: int, *, entry: int = 0, event: int | None = None) -> Violation:
    """The one record that stands for `count` violations of `rule_id` a checker did not list."""
    return Violation(rule_id, f"{count} more {rule_id} violations not listed", entry=entry, event=event,
                     unlisted=count)


@dataclass(frozen=True)
class Rule(Cited):
    """One declaration per rule: what it checks, where it runs, and why it exists.

    `needs`: the scenario tags `chatconf run` evaluates it on (empty: the kind's default traffic).
    `when`: the profile rule that puts it in a profile's contract ("key": truthy; "key=value": equal);
    empty for rules every profile carries. Outside that contract it never reports and `run` skips it.
    """

    id: str
    title: str
    kind: str
    cites: tuple[str, ...]
    func: Callable[..., Any] | None = None
    needs: frozenset[str] = frozenset()
    when: str = ""

    def applies(self, profile: Any) -> bool:
        if not self.when:
            return True
        key, _, value = self.when.partition("=")
        found = profile.rule(key)
        return str(found) == value if value else bool(found)


REGISTRY: dict[str, Rule] = {}


def register(rule_id: str, title: str, *, kind: str, cites: str, needs: str = "", when: str = "",
             func: Callable[..., Any] | None = None) -> Rule:
    """Add a rule to the registry (ids are unique and stable: reports and fault modes use them).

    `cites`: space-separated keys of docs/sources.md; they decide the severity.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown rule kind {kind!r}")
    if rule_id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule_id!r}")
    rule = Rule(rule_id, title, kind, parse_cites(cites), func, frozenset(needs.split()), when)
    REGISTRY[rule_id] = rule
    return rule


def rules_of(kind: str, profile: Any = None) -> list[Rule]:
    """The registered rules of one kind that run as functions, in declaration order (with a profile:
    only those in its contract)."""
    return [r for r in REGISTRY.values() if r.kind == kind and r.func is not None
            and (profile is None or r.applies(profile))]


def applies(rule_id: str, profile: Any) -> bool:
    """Whether `rule_id` is part of `profile`'s contract (see Rule.when)."""
    return REGISTRY[rule_id].applies(profile)


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

"""The catalog of suite checks: every check has a stable id, a title, a severity, an area and a
source. Most are rule checks (a rule of conformance/rules evaluated on scenario traffic); the rest
are rejection checks (a documented request rule the server must enforce), probes (behaviour that
needs a dedicated exchange) and drift observations (never pass/fail)."""

from __future__ import annotations

from dataclasses import dataclass

from ..profiles import Profile
from ..provenance import Cited, parse_cites
from ..rules import REGISTRY

AREAS = {
    "schema": "Shapes (JSON Schema)",
    "response": "Non-stream responses",
    "stream": "Streaming",
    "error": "Errors",
    "request": "Request validation",
    "auth": "Authentication",
    "behaviour": "Behaviour",
    "transport": "Transport",
    "drift": "Doc vs production drift",
}


@dataclass(frozen=True)
class Check(Cited):
    """One suite check. Severity comes from what it cites (conformance.provenance), never set by hand."""

    id: str
    title: str
    kind: str          # rule | reject | probe | drift | property | after (reads what earlier checks saw)
    cites: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()  # scenario tags a rule check runs on

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


def probe(check_id: str, title: str, cites: str, kind: str = "probe") -> Check:
    return Check(check_id, title, kind, parse_cites(cites))


# By default streamed rules run on streams, response rules on non-stream answers, error rules on
# error answers; a rule declares narrower traffic with `needs` (conformance.rules.base.Rule).
_DEFAULT_NEEDS = {"stream": "stream", "response": "nonstream", "error": "error"}
TOOL_RULES = frozenset(r.id for r in REGISTRY.values() if "tools" in r.needs)

# Request rules whose rejection is tested only when the value is unambiguous; n-model is a drift
# point (Qwen3 models accept n too) and request.schema is the generic fallback.
REJECT_EXCLUDED = frozenset({"request.n-model", "request.schema"})

PROBES: list[Check] = [
    probe("auth.invalid-key", "a wrong API key gets 401 with the invalid_api_key envelope",
          "001:error-response 001:error-codes C7"),
    probe("auth.missing-key", "a request without Authorization gets 401 with an envelope", "001:error-codes C7"),
    probe("request.malformed-json", "a body that is not JSON gets 400 with an envelope",
          "001:error-codes 001:http-api C39 R5"),
    probe("request.valid-accepted", "generated valid requests are accepted and answered conformingly",
          "001:param-model 001:param-messages E3", kind="property"),
    probe("response.accepted", "every documented valid scenario request gets a 2xx answer",
          "001:param-model 001:param-messages E3"),
    probe("transport.complete", "every response arrives whole, within the deadlines", "001:http-api S31"),
    probe("behaviour.stop-honoured", "a stop string never appears in the output, streamed or not", "001:param-stop"),
    probe("behaviour.stream-agrees", "stream and non-stream answers agree for the same seeded request", "S13 S14"),
    probe("behaviour.seed-deterministic", "the same seed gives the same answer", "S14"),
    probe("behaviour.thinking-stream", "enable_thinking streams reasoning_content before content", "C15"),
    probe("behaviour.tool-roundtrip", "after the tool result, the model answers without calling again", "F6 N6"),
    probe("error.param-named", "a rejection's error.param names the offending parameter (or is null)",
          "C25 C32 C34 E1", kind="after"),
]

DRIFT_CHECKS: dict[str, str] = {
    "top_p_one": "drift.top_p-one",
    "seed_above_int31": "drift.seed-above-int31",
    "tools_with_stream": "drift.tools-with-stream",
    "n_on_other_models": "drift.n-on-other-models",
    "thinking_non_stream": "drift.thinking-non-stream",
}
DRIFT_CITES = {"top_p_one": "C33", "seed_above_int31": "C35", "tools_with_stream": "C22",
               "n_on_other_models": "C34", "thinking_non_stream": "C16 C17"}


def rule_checks() -> list[Check]:
    out = []
    for rule in REGISTRY.values():
        if rule.kind == "request" or rule.id in ("schema.request", "schema.unknown-field"):
            continue
        needs = rule.needs or frozenset(_DEFAULT_NEEDS.get(rule.id.split(".", 1)[0], "").split())
        out.append(Check(rule.id, rule.title, "rule", rule.cites, needs))
    return sorted(out, key=lambda c: c.id)


def reject_checks(profile: Profile) -> list[Check]:
    out = []
    for rule in REGISTRY.values():
        if rule.kind != "request" or rule.id in REJECT_EXCLUDED:
            continue
        out.append(Check(rule.id, f"rejected when broken: {rule.title}", "reject", rule.cites))
    return sorted(out, key=lambda c: c.id)


def drift_checks(profile: Profile) -> list[Check]:
    out = []
    for key, spec in profile.drift.items():
        check_id = DRIFT_CHECKS.get(key, f"drift.{key.replace('_', '-')}")
        out.append(Check(check_id, str((spec or {}).get("note", key)), "drift",
                         parse_cites(DRIFT_CITES.get(key, "C33"))))
    return out


def all_checks(profile: Profile) -> list[Check]:
    return rule_checks() + reject_checks(profile) + PROBES + drift_checks(profile)


def by_id(profile: Profile) -> dict[str, Check]:
    return {c.id: c for c in all_checks(profile)}

"""The catalog of suite checks: every check has a stable id, a title, a severity, an area and a
source. Most are rule checks (a rule of conformance/rules evaluated on scenario traffic); the rest
are rejection checks (a documented request rule the server must enforce), probes (behaviour that
needs a dedicated exchange) and drift observations (never pass/fail)."""

from __future__ import annotations

from dataclasses import dataclass

from ..profiles import Profile
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
class Check:
    id: str
    title: str
    severity: str
    kind: str          # rule | reject | probe | drift | property
    source: str = ""
    needs: frozenset[str] = frozenset()  # scenario tags a rule check runs on

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


# Scenario tags each rule needs; by default streamed rules run on streams, response rules on
# non-stream answers, error rules on error answers.
RULE_NEEDS: dict[str, str] = {
    "stream.usage-last": "stream usage",
    "stream.usage-arithmetic": "stream usage",
    "stream.choice-indices": "stream n",
    "stream.finish-length": "stream length",
    "stream.finish-tool-calls": "stream tools",
    "stream.tool-call-index": "stream tools",
    "stream.tool-call-first-delta": "stream tools",
    "stream.tool-call-stable": "stream tools",
    "stream.tool-arguments-json": "stream tools",
    "response.choices-count": "nonstream n",
    "response.finish-length": "nonstream length",
    "response.finish-tool-calls": "nonstream tools",
    "response.tool-arguments-json": "nonstream tools",
    "response.tool-name-offered": "nonstream tools",
    "error.stream-body-sse": "stream-error",
    "schema.completion": "nonstream",
    "schema.chunk": "stream",
    "schema.error": "error",
}
_DEFAULT_NEEDS = {"stream": "stream", "response": "nonstream", "error": "error"}
TOOL_RULES = frozenset(k for k, v in RULE_NEEDS.items() if "tools" in v.split())

# Request rules whose rejection is tested only when the value is unambiguous; n-model is a drift
# point (Qwen3 models accept n too) and model-unknown is a probe of its own.
REJECT_EXCLUDED = frozenset({"request.n-model", "request.schema"})

PROBES: list[Check] = [
    Check("auth.invalid-key", "a wrong API key gets 401 with the invalid_api_key envelope", "must", "probe",
          "seed 001 error codes; C7"),
    Check("auth.missing-key", "a request without Authorization gets 401 with an envelope", "must", "probe",
          "seed 001 error codes; C7"),
    Check("request.malformed-json", "a body that is not JSON gets 400 with an envelope", "must", "probe",
          "C39 ('Required body invalid'); R5"),
    Check("request.valid-accepted", "generated valid requests are accepted and answered conformingly",
          "must", "property", "seed 001 request parameters; schemathesis positive_data_acceptance"),
    Check("response.accepted", "every documented valid scenario request gets a 2xx answer", "must", "probe",
          "seed 001; E3"),
    Check("transport.complete", "every response arrives whole, within the deadlines", "must", "probe",
          "research/conformance-anchors.md s3 (hangs, truncation)"),
    Check("behaviour.stop-honoured", "a stop string never appears in the output", "must", "probe",
          "seed 001 stop"),
    Check("behaviour.stream-agrees", "stream and non-stream answers agree for the same seeded request",
          "should", "probe", "S13/S14 (vLLM stream vs non-stream)"),
    Check("behaviour.seed-deterministic", "the same seed gives the same answer", "should", "probe",
          "seed 001 seed"),
    Check("behaviour.thinking-stream", "enable_thinking streams reasoning_content before content", "should",
          "probe", "C15"),
    Check("behaviour.tool-roundtrip", "after the tool result, the model answers without calling again",
          "should", "probe", "seed 001 tool calling example"),
]

DRIFT_CHECKS: dict[str, str] = {
    "top_p_one": "drift.top_p-one",
    "seed_above_int31": "drift.seed-above-int31",
    "tools_with_stream": "drift.tools-with-stream",
    "n_on_other_models": "drift.n-on-other-models",
    "thinking_non_stream": "drift.thinking-non-stream",
}


def rule_checks() -> list[Check]:
    out = []
    for rule in REGISTRY.values():
        if rule.kind == "request" or rule.id in ("schema.request", "schema.unknown-field"):
            continue
        needs = RULE_NEEDS.get(rule.id) or _DEFAULT_NEEDS.get(rule.id.split(".", 1)[0], "")
        out.append(Check(rule.id, rule.title, rule.severity, "rule", rule.source, frozenset(needs.split())))
    return sorted(out, key=lambda c: c.id)


def reject_checks(profile: Profile) -> list[Check]:
    out = []
    for rule in REGISTRY.values():
        if rule.kind != "request" or rule.id in REJECT_EXCLUDED:
            continue
        out.append(Check(rule.id, f"rejected when broken: {rule.title}", rule.severity, "reject", rule.source))
    return sorted(out, key=lambda c: c.id)


def drift_checks(profile: Profile) -> list[Check]:
    out = []
    for key, spec in profile.drift.items():
        check_id = DRIFT_CHECKS.get(key, f"drift.{key.replace('_', '-')}")
        out.append(Check(check_id, str((spec or {}).get("note", key)), "should", "drift",
                         "research/dashscope-realworld.md s4"))
    return out


def all_checks(profile: Profile) -> list[Check]:
    return rule_checks() + reject_checks(profile) + PROBES + drift_checks(profile)


def by_id(profile: Profile) -> dict[str, Check]:
    return {c.id: c for c in all_checks(profile)}

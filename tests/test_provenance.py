"""Severity is provenance (issue 9): a rule is `must` only when it cites the vendor documentation,
and every key a rule or suite check cites is explained in docs/sources.md."""

from __future__ import annotations

import pytest

from conformance.profiles import load_profile
from conformance.provenance import is_doc, severity_of
from conformance.rules import REGISTRY
from conformance.sources import explain, sources
from conformance.suite.catalog import all_checks

DOCUMENTED = set(sources())
CHECKS = {c.id: c for profile in ("dashscope", "openai", "qwen-reference") for c in all_checks(load_profile(profile))}


def test_sources_page_lists_documentation_and_research_keys() -> None:
    assert {"001:param-temperature", "001:response-parameters", "C8", "S4"} <= DOCUMENTED


@pytest.mark.parametrize("rule_id", sorted(REGISTRY))
def test_rule_cites_only_keys_the_sources_page_explains(rule_id: str) -> None:
    rule = REGISTRY[rule_id]
    assert rule.cites, rule_id
    assert set(rule.cites) <= DOCUMENTED, f"{rule_id} cites {set(rule.cites) - DOCUMENTED}"


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_suite_check_cites_only_explained_keys(check_id: str) -> None:
    check = CHECKS[check_id]
    assert check.cites and set(check.cites) <= DOCUMENTED, f"{check_id} cites {check.cites}"


def test_a_must_rule_always_cites_the_documentation() -> None:
    for rule in REGISTRY.values():
        if rule.severity == "must":
            assert any(is_doc(key) for key in rule.cites), rule.id


def test_research_alone_makes_a_should() -> None:
    assert severity_of(("C8",)) == "should"
    assert severity_of(("C8", "001:param-model")) == "must"


@pytest.mark.parametrize("rule_id", [
    # Production behaviour the documentation never states (issue 9: these failed a doc-only server).
    "error.stream-body-sse", "request.enable_thinking-supported", "request.max_tokens-limit",
    "request.model-unknown", "request.stream-only-model", "request.thinking-non-stream",
    "request.tool-after-tool-calls", "request.tool-calls-answered", "request.tools-nonempty",
    "response.finish-tool-calls", "stream.tool-call-first-delta", "error.status-type",
])
def test_production_only_rules_are_should(rule_id: str) -> None:
    assert REGISTRY[rule_id].severity == "should"


def test_thinking_probe_is_should() -> None:
    assert CHECKS["behaviour.thinking-stream"].severity == "should"


def test_every_request_rule_has_a_rank_a_mutation_and_a_fault_mode() -> None:
    """A request rule is declared once, then needs three companions: its place in the order servers
    report problems (PRIORITY), a way to break it (strategies), and a mock fault mode. The registry
    checks itself so none is forgotten."""
    from conformance.mock.faults import FAULTS
    from conformance.rules.request import PRIORITY
    from conformance.strategies import _mutation
    from conformance.suite.catalog import REJECT_EXCLUDED

    profile = load_profile("dashscope")
    for rule in REGISTRY.values():
        if rule.kind != "request":
            continue
        assert rule.id in PRIORITY, f"{rule.id} has no rank in PRIORITY"
        # request.schema is the generic fallback answer, not a rule a server can break on its own
        assert rule.id in FAULTS or rule.id == "request.schema", f"{rule.id} has no mock fault mode"
        if rule.id not in REJECT_EXCLUDED:
            assert any(_mutation(profile, model, rule.id) is not None for model in profile.model_names), \
                f"{rule.id}: no strategy breaks it"


def test_every_source_explains_itself_in_words():
    table = sources()
    assert table["001:param-temperature"].where.startswith("001, request parameters")
    assert "[0, 2)" in table["001:param-temperature"].says
    assert table["S5"].says == table["S4"].says  # a range row explains each key it spans
    assert not table["C32"].where and "temperature 2 is refused" in table["C32"].says
    assert [s.key for s in explain("001:param-n, C34")] == ["001:param-n", "C34"]

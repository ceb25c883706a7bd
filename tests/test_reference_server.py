"""Verdicts proven on a server nobody on the team wrote for chatconf (issue 9): tests/reference/docserver.py
implements only what the vendor documentation says (stdlib HTTP, no code shared with the mock), and
picks the non-production answer wherever the documentation is silent. Against it `chatconf run`
must fail nothing; what production DashScope does differently may only warn. Each single-fault
variant must break a check the clean reference passes (the full table: python -m tests.reference.killtable).
"""

from __future__ import annotations

import pytest

from conformance.rules import REGISTRY
from conformance.suite.catalog import PROBES

from .reference.killtable import RunResult, kills, run_against

# Production habits the documentation never states: the issue saw these fail a doc-only server.
PRODUCTION_ONLY = {
    "error.stream-body-sse", "request.enable_thinking-supported", "request.max_tokens-limit",
    "request.model-unknown", "request.stream-only-model", "request.thinking-non-stream",
    "request.tool-after-tool-calls", "request.tool-calls-answered", "request.tools-nonempty",
    "behaviour.thinking-stream",
}
SEVERITY = {**{rid: r.severity for rid, r in REGISTRY.items()}, **{c.id: c.severity for c in PROBES}}

# One variant per kind of deviation; the full table runs outside CI.
SAMPLE = [
    "missing_usage", "created_milliseconds", "usage_total_mismatch", "model_wrong_echo",
    "accept_temperature_2", "accept_system_not_first", "stop_ignored_stream", "max_tokens_ignored_nonstream",
    "n_ignored_stream", "error_text_plain", "error_no_code", "stream_no_done", "tool_args_not_json",
]


@pytest.fixture(scope="module")
def clean() -> RunResult:
    return run_against()


def test_a_server_that_follows_the_documentation_fails_no_check(clean: RunResult):
    failed = {cid: clean.messages[cid] for cid, s in clean.statuses.items() if s == "failed"}
    assert failed == {}
    assert clean.code == 0


def test_only_should_checks_warn_on_it(clean: RunResult):
    warned = [cid for cid, s in clean.statuses.items() if s == "warned"]
    assert warned, "the reference differs from production DashScope; those differences must show as warnings"
    assert {cid: SEVERITY[cid] for cid in warned} == dict.fromkeys(warned, "should")
    for cid in PRODUCTION_ONLY:
        assert clean.statuses.get(cid) in ("warned", "observed", "passed", "skipped"), cid


def test_no_thinking_support_is_observed_not_failed(clean: RunResult):
    assert clean.statuses["behaviour.thinking-stream"] == "observed"
    assert "no thinking support" in clean.messages["behaviour.thinking-stream"]


def test_fail_on_should_turns_its_warnings_red():
    assert run_against((), "-k", "request.tools-nonempty or error.stream-body-sse", "--fail-on", "should").code == 1


@pytest.mark.parametrize("fault", SAMPLE)
def test_each_documented_deviation_breaks_a_check_the_reference_passes(clean: RunResult, fault: str):
    faulty = run_against([fault])
    assert kills(clean, faulty), f"{fault}: nothing broke that the clean reference passed ({faulty.statuses})"

"""Rule checks: every response, stream and error rule, evaluated on the scenario traffic."""

from __future__ import annotations

import pytest

from ..exchange import Exchange
from ..rules import REGISTRY
from .answers import has_tool_calls
from .catalog import TOOL_RULES, Check
from .context import SuiteContext
from .evidence import exchange_evidence
from .outcome import fail


def _answer_class(ex: Exchange) -> str:
    if ex.transport_error and ex.status is None:
        return "none"
    if ex.is_error:
        return "error"
    return "stream" if ex.is_streamed else "nonstream"


def skip_outside_contract(check: Check, ctx: SuiteContext) -> None:
    """A rule the profile's contract does not carry (DashScope's request-id correlation under openai)
    is skipped, never passed: a pass would claim the target was checked for it."""
    rule = REGISTRY.get(check.id)
    if rule is not None and not rule.applies(ctx.profile):
        pytest.skip(f"not part of the {ctx.profile.name} profile's contract")


@pytest.mark.chatconf_kind("rule")
def test_rule(check: Check, chatconf: SuiteContext) -> None:
    skip_outside_contract(check, chatconf)
    area = check.area
    wanted = {"stream": "stream", "response": "nonstream", "error": "error"}.get(area)
    if check.id == "schema.completion":
        wanted = "nonstream"
    elif check.id == "schema.chunk":
        wanted = "stream"
    elif check.id == "schema.error":
        wanted = "error"
    pairs = [(name, ex) for name, ex in chatconf.traffic.matching(check.needs)
             if wanted is None or _answer_class(ex) == wanted]
    if not pairs:
        needs = " + ".join(sorted(check.needs)) or "any"
        pytest.skip(f"no {wanted or ''} answer to check for model {chatconf.model} ({needs} scenarios)")
    if check.id in TOOL_RULES and not any(has_tool_calls(ex) for _, ex in pairs):
        pytest.skip("the target made no tool call in the tool scenarios")
    for name, ex in pairs:
        # Should-level rules come back as warnings from the rules; here the check is about them.
        found = [v for v in chatconf.traffic.violations(ex) if v.rule == check.id]
        if found:
            first = found[0]
            where = f" (event {first.event})" if first.event is not None else ""
            where += f" at {first.pointer}" if first.pointer else ""
            total = sum(v.weight for v in found)   # a summary record stands for the findings it did not list
            more = f" (+{total - 1} more)" if total > 1 else ""
            fail(f"{name}: {first.message}{where}{more}",
                 exchange_evidence(ex, api_key_env=chatconf.api_key_env, violations=found))
    if all(ex.transport_error for _, ex in pairs):
        # Nothing wrong in what arrived, but nothing arrived whole: no evidence either way.
        pytest.skip(f"no complete {wanted or ''} answer to check (every one was cut short; see transport.complete)")

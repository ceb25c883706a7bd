"""Rejection checks: requests that break exactly one documented rule must be refused with the
documented status and an error envelope (Hypothesis draws them, boundary values on purpose)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis.errors import Unsatisfiable

from ..client import BudgetExhausted
from ..exchange import Exchange
from ..rules.errors import is_envelope, parse_error_body
from ..strategies import boundary_requests, invalid_requests
from .catalog import Check
from .context import SuiteContext
from .evidence import exchange_evidence
from .outcome import fail
from .test_rules import skip_outside_contract

ENVELOPE_RULES = ("error.envelope", "schema.error", "error.status-code")


def error_payload(ex: Exchange) -> dict[str, Any] | None:
    """The `error` object of a JSON or `data:`-framed error body, if any."""
    body, _ = parse_error_body(ex.body, ex.body_text)
    return body["error"] if is_envelope(body) else None


def assert_rejected(ctx: SuiteContext, rule_id: str, ex: Exchange, *, auth: str | None = None) -> None:
    """Refused with the documented status and an error envelope. Which `param` the envelope names is
    production behaviour (the documentation's example has param null): a mismatch is not this check's
    business but the `error.param-named` check's, which only warns."""
    spec = ctx.profile.error(rule_id) or ctx.profile.error("request.schema")
    evidence = exchange_evidence(ex, api_key_env=ctx.api_key_env, auth=auth)
    if ex.transport_error and ex.status is None:
        fail(f"no answer: {ex.transport_error}", evidence)
    status = ex.status or 0
    if status < 400:
        fail(f"accepted a request that breaks {rule_id}: expected HTTP {spec.status if spec else '4xx'}, "
             f"received {status}", evidence)
    if spec is not None and status != spec.status:
        fail(f"expected HTTP {spec.status}, received {status}", evidence)
    bad = [v for v in ctx.traffic.violations(ex) if v.rule in ENVELOPE_RULES and v.level == "error"]
    if bad:
        fail(f"rejected, but {bad[0].rule}: {bad[0].message}", evidence)
    err = error_payload(ex)
    if err is None:
        fail("rejected without an error envelope", evidence)
    if spec is not None and spec.param:
        ctx.params_seen += 1
        if err.get("param") not in (None, spec.param):
            ctx.param_mismatches.append((rule_id, f"{rule_id}: expected error.param {spec.param!r} (or null), "
                                                  f"received {err.get('param')!r}", evidence))


@pytest.mark.chatconf_kind("reject")
def test_rejected(check: Check, chatconf: SuiteContext) -> None:
    skip_outside_contract(check, chatconf)
    strategy = invalid_requests(chatconf.profile, chatconf.model, check.id)
    if strategy is None:
        pytest.skip(f"no unambiguous way to break {check.id} for model {chatconf.model}")
    chatconf.client  # start the target before Hypothesis times anything  # noqa: B018
    chatconf.client.ensure_responsive()  # a target that stopped answering: not run, without Hypothesis

    @chatconf.explore
    @given(body=strategy)
    def property_(body: dict[str, Any]) -> None:
        assume(chatconf.client.remaining != 0)  # budget spent: stop drawing, keep any failure found
        ex = chatconf.client.chat(body, retry=True)
        assert_rejected(chatconf, check.id, ex)

    for edge in boundary_requests(chatconf.profile, chatconf.model, check.id):
        property_ = example(body=edge)(property_)  # each end of the range first, whatever --examples says

    try:
        property_()
    except BudgetExhausted:
        pytest.skip(f"request budget of {chatconf.client.config.max_requests} spent")
    except Unsatisfiable:
        if chatconf.client.remaining == 0:
            pytest.skip(f"request budget of {chatconf.client.config.max_requests} spent")
        pytest.skip(f"could not draw a request that breaks only {check.id} for model {chatconf.model}")


@pytest.mark.chatconf_check("error.param-named")
def test_error_param_named(check: Check, chatconf: SuiteContext) -> None:
    """Runs after the rejection checks and judges the `param` of every rejection they saw."""
    if not chatconf.params_seen:
        pytest.skip("no rejection whose documented error names a parameter was seen")
    if chatconf.param_mismatches:
        _, message, evidence = chatconf.param_mismatches[0]
        more = len({r for r, _, _ in chatconf.param_mismatches}) - 1
        fail(message + (f" (and in {more} other rejection check(s))" if more else ""), evidence)

"""The positive property: documented-valid requests are accepted and answered conformingly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis.errors import Unsatisfiable

from ..client import BudgetExhausted
from ..strategies import valid_requests
from .catalog import Check
from .context import SuiteContext
from .evidence import exchange_evidence
from .outcome import fail


@pytest.mark.chatconf_check("request.valid-accepted")
def test_valid_requests_accepted(check: Check, chatconf: SuiteContext) -> None:
    chatconf.client  # noqa: B018

    @chatconf.explore
    @given(body=valid_requests(chatconf.profile, chatconf.model))
    def property_(body: dict[str, Any]) -> None:
        assume(chatconf.client.remaining != 0)  # budget spent: stop drawing, keep any failure found
        ex = chatconf.client.chat(body)
        evidence = exchange_evidence(ex, api_key_env=chatconf.api_key_env)
        if ex.transport_error:
            fail(f"valid request: {ex.transport_error}", evidence)
        if ex.status is None or not 200 <= ex.status < 300:
            fail(f"valid request refused: expected 2xx, received {ex.status}", evidence)
        found = [v for v in chatconf.traffic.violations(ex)
                 if v.level == "error" and not v.rule.startswith("request.")]
        if found:
            evidence["violations"] = [v.as_dict() for v in found[:10]]
            fail(f"answer breaks {found[0].rule}: {found[0].message}", evidence)

    try:
        property_()
    except BudgetExhausted:
        pytest.skip(f"request budget of {chatconf.client.config.max_requests} spent")
    except Unsatisfiable:
        if chatconf.client.remaining == 0:
            pytest.skip(f"request budget of {chatconf.client.config.max_requests} spent")
        pytest.skip(f"could not draw a valid request for model {chatconf.model}")

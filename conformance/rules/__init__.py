"""Conformance rules: stable ids, small pure checks, one registry (see base.py).

Public surface: `check_request` / `first_request_error` (request rules, used by the mock and the
suite), `check_exchange` (everything that applies to one Exchange) and `StreamChecker` (one
incremental pass over an event stream, for live runs, large captures and load tests).
"""

from __future__ import annotations

from .base import REGISTRY, Rule, Violation, expected, expected_text, register, rules_of
from .dispatch import LiveStreamCheck, check_exchange
from .errors import check_error_response, envelope_violations, parse_error_body
from .request import PRIORITY, check_request, error_values, first_request_error
from .response import check_response_body
from .stream import StreamChecker

__all__ = [
    "PRIORITY",
    "REGISTRY",
    "LiveStreamCheck",
    "Rule",
    "StreamChecker",
    "Violation",
    "check_error_response",
    "check_exchange",
    "check_request",
    "check_response_body",
    "envelope_violations",
    "error_values",
    "expected",
    "expected_text",
    "first_request_error",
    "parse_error_body",
    "register",
    "rules_of",
]

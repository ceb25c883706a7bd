"""How a check ends besides passing: failed (or warned) with evidence, or observed (informational).

Both are exceptions so check code reads straight down; the plugin turns them into statuses.
`observed` is for capabilities and doc-vs-production drift points, which must never fail a server.
"""

from __future__ import annotations

from typing import Any, NoReturn


class CheckFailed(AssertionError):
    """The target broke the check; `evidence` says what was sent and what came back. The check's
    severity (from what it cites) decides whether that is `failed` or `warned`."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.evidence = evidence or {}


class Observed(Exception):
    """Informational outcome: what the target did at a drift point or optional capability."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.evidence = evidence or {}


def fail(message: str, evidence: dict[str, Any] | None = None) -> NoReturn:
    raise CheckFailed(message, evidence)


def observe(message: str, evidence: dict[str, Any] | None = None) -> NoReturn:
    raise Observed(message, evidence)

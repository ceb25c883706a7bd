"""Provenance decides severity, in one place.

Rules and suite checks cite keys of docs/sources.md: vendor documentation (`001:param-temperature`,
`002:errors`) or research items (`C32`, `S4`, ...). A check is `must` only when it cites the
documentation: then the documented contract says it and a target that breaks it fails. Everything
learned from production is `should`: a break is `warned` and fails CI only with `--fail-on should`.
"""

from __future__ import annotations

import functools

DOC_PREFIXES = ("001:", "002:")
SEVERITIES = ("must", "should")


def parse_cites(text: str) -> tuple[str, ...]:
    """'001:param-n C34' -> ('001:param-n', 'C34'); at least one key is required."""
    cites = tuple(text.split())
    if not cites:
        raise ValueError("a rule must cite at least one key of docs/sources.md")
    return cites


def is_doc(key: str) -> bool:
    return key.startswith(DOC_PREFIXES)


@functools.lru_cache(maxsize=1024)
def severity_of(cites: tuple[str, ...]) -> str:
    return "must" if any(is_doc(key) for key in cites) else "should"


class Cited:
    """Severity and a printable source for anything that cites keys (rules and suite checks alike)."""

    cites: tuple[str, ...]

    @property
    def severity(self) -> str:
        return severity_of(self.cites)

    @property
    def source(self) -> str:
        return ", ".join(self.cites)

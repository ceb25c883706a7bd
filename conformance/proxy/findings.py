"""What the proxy found so far: counts by rule, the most recent findings (bounded), the console lines.

A proxy may run for days in front of a busy app, so memory stays flat: counters per rule id and a
ring of the last `keep` findings. Every string that reaches the console, `GET /_proxy/findings` or the
exit code decision has been redacted; console lines additionally go through `console_text`.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..redact import console_text, redact_text
from ..rules.base import Violation
from ..validate import blame

DEFAULT_KEEP = 200
FAIL_LEVELS = {"must": frozenset({"error"}), "should": frozenset({"error", "warning"})}
"""Finding levels that count against `--fail-on` (a `must` rule reports "error", a `should` rule "warning")."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation, with the exchange it came from (the recording's line index is `entry`)."""

    rule: str
    level: str
    message: str
    entry: int
    event: int | None
    pointer: str
    blame: str
    method: str
    path: str
    status: int | None
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "level": self.level, "message": self.message, "entry": self.entry,
                "event": self.event, "pointer": self.pointer, "blame": self.blame, "method": self.method,
                "path": self.path, "status": self.status, "time": round(self.at, 3)}

    def console_line(self, failing: bool) -> str:
        where = f"#{self.entry} {self.method} {console_text(self.path)} -> {self.status or 'no answer'}"
        event = "" if self.event is None else f" event {self.event}"
        at = f" [at {console_text(self.pointer)}]" if self.pointer else ""
        mark = " (fail-on)" if failing else ""
        return f"finding: {self.rule} {self.level}{mark}: {console_text(self.message)}{at} ({where}{event})"


class FindingsStore:
    """Counts and a bounded ring of findings; `echo` receives one console line per finding."""

    def __init__(self, fail_on: str = "must", *, keep: int = DEFAULT_KEEP,
                 echo: Callable[[str], None] | None = None):
        if fail_on not in FAIL_LEVELS:
            raise ValueError(f"fail_on must be one of {sorted(FAIL_LEVELS)}")
        self.fail_on = fail_on
        self._fail_levels = FAIL_LEVELS[fail_on]
        self.by_rule: Counter[str] = Counter()
        self.recent: deque[Finding] = deque(maxlen=keep)
        self.exchanges = 0
        self.total = 0
        self.failing = 0
        self._echo = echo

    def counts_against(self, level: str) -> bool:
        return level in self._fail_levels

    def add(self, violations: Iterable[Violation], *, method: str, path: str, status: int | None,
            entry: int) -> list[Finding]:
        """Record one exchange's findings; returns those that count against --fail-on."""
        self.exchanges += 1
        failing: list[Finding] = []
        now = time.time()
        for v in violations:
            finding = Finding(v.rule, v.level, redact_text(v.message), entry, v.event, redact_text(v.pointer),
                              blame(v), method, redact_text(path), status, now)
            self.by_rule[v.rule] += 1
            self.total += 1
            self.recent.append(finding)
            fails = self.counts_against(v.level)
            if fails:
                self.failing += 1
                failing.append(finding)
            if self._echo is not None:
                self._echo(finding.console_line(fails))
        return failing

    def snapshot(self) -> dict[str, Any]:
        """The body of `GET /_proxy/findings`."""
        return {"exchanges": self.exchanges, "findings": self.total, "fail_on": self.fail_on,
                "failing": self.failing, "by_rule": dict(sorted(self.by_rule.items())),
                "recent": [f.as_dict() for f in self.recent]}


def findings_header(failing: list[Finding]) -> str:
    """`x-chatconf-findings` value: the count, then the distinct rule ids in order of first finding."""
    rules = list(dict.fromkeys(f.rule for f in failing))
    return f"{len(failing)} {' '.join(rules)}"

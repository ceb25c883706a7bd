"""Check results and the run summary (`summary.json`, format fixed by DESIGN.md).

One model for every consumer: the pytest plugin fills it, `chatconf run` prints it, the JUnit and
HTML reports render it, and the compatibility matrix reads several of them back.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .jsonutil import JSONError, dumps, loads

STATUSES = ("passed", "failed", "warned", "skipped", "observed")
"""`failed`: a `must` check broke; `warned`: a `should` check broke (fails only with --fail-on should)."""
FAIL_ON = ("must", "should")


@dataclass
class CheckResult:
    id: str
    title: str
    severity: str = "must"
    area: str = ""
    source: str = ""
    status: str = "passed"
    message: str = ""
    evidence: dict[str, Any] | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status, "severity": self.severity,
                               "title": self.title, "message": self.message,
                               "evidence": self.evidence or {}}
        if self.area:
            out["area"] = self.area
        if self.source:
            out["source"] = self.source
        out["duration_s"] = round(self.duration_s, 3)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(id=str(data.get("id", "")), title=str(data.get("title", "")),
                   severity=str(data.get("severity", "must")), area=str(data.get("area", "")),
                   source=str(data.get("source", "")), status=str(data.get("status", "passed")),
                   message=str(data.get("message", "")), evidence=data.get("evidence") or None,
                   duration_s=float(data.get("duration_s") or 0.0))


@dataclass
class RunSummary:
    target: dict[str, Any]
    started: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    duration_s: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    interrupted: bool = False
    not_run: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for check in self.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        return counts

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "failed"]

    @property
    def warned(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warned"]

    def failing(self, fail_on: str = "must") -> list[CheckResult]:
        """The checks that make the run fail: `failed` ones, plus `warned` ones with --fail-on should."""
        bad = ("failed", "warned") if fail_on == "should" else ("failed",)
        return [c for c in self.checks if c.status in bad]

    def to_dict(self) -> dict[str, Any]:
        out = {"tool": "chatconf", "version": __version__, "target": self.target, "started": self.started,
               "duration_s": round(self.duration_s, 3), "totals": self.totals,
               "interrupted": self.interrupted, "not_run": list(self.not_run),
               "checks": [c.to_dict() for c in self.checks]}
        out.update(self.extra)
        return out

    def write(self, path: str | Path) -> Path:
        """Atomically (conformance.outputs); raises OutputError when the file cannot be written."""
        from .outputs import write_atomic
        return write_atomic(path, dumps(self.to_dict(), indent=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        known = {"tool", "version", "target", "started", "duration_s", "totals", "checks", "interrupted", "not_run"}
        return cls(target=dict(data.get("target") or {}), started=str(data.get("started", "")),
                   duration_s=float(data.get("duration_s") or 0.0), interrupted=bool(data.get("interrupted")),
                   not_run=[str(x) for x in data.get("not_run") or []],
                   checks=[CheckResult.from_dict(c) for c in data.get("checks") or [] if isinstance(c, dict)],
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        try:
            data = loads(Path(path).read_bytes())
        except (OSError, JSONError) as exc:
            raise ValueError(f"cannot read summary {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("tool") != "chatconf" or "checks" not in data:
            raise ValueError(f"{path} is not a chatconf run summary")
        return cls.from_dict(data)

"""Paths in, one verdict per file out: the engine behind `chatconf validate`, reusable elsewhere.

Directories are walked (sorted, hidden entries skipped); each file is read by
`conformance.captures` and every Exchange goes through `conformance.rules.check_exchange`. A file
is `unreadable` when its reader (or a limit) gives up, `invalid` when any error-level violation is
found, `skipped` when it is recognisably not chat traffic (chatconf's own summaries and samples,
HTML and JUnit reports, JSON documents of no capture shape), else `valid`; warning-level findings
(strict mode, should-advice) never make a file invalid, and skipped files never change the exit code.
Every string that leaves this module is redacted, so a key inside a capture is never echoed.

Every captured request is judged by the request rules, whatever the server answered: a capture
holding an invalid request is invalid even when the server rightly refused it with a 4xx. Such
findings are the client's (`blame` "client", and a message prefix that says how the server took
the request); every other finding is the server's.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .captures import NOTE_SINGLE_CHUNK, CaptureError, NotACapture, read_path
from .exchange import Exchange
from .profiles import Profile, load_profile
from .redact import redact_text
from .rules.base import REGISTRY, Violation

VALID, INVALID, UNREADABLE, SKIPPED = "valid", "invalid", "unreadable", "skipped"
STATUSES = (VALID, INVALID, UNREADABLE, SKIPPED)
MAX_LISTED_PER_RULE = 100
"""Per file and rule id, violations beyond this are counted, not listed (a 200k-chunk stream that
breaks one rule on every chunk must not produce a 200k-line report or unbounded memory)."""


@dataclass
class FileResult:
    """The verdict for one file (or one path that could not be expanded into files)."""

    path: str
    status: str = VALID
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    error: str | None = None
    exchanges: int = 0
    notes: list[str] = field(default_factory=list)
    unlisted: Counter[str] = field(default_factory=Counter)
    listed: Counter[str] = field(default_factory=Counter, repr=False)

    @property
    def violation_count(self) -> int:
        return len(self.violations) + sum(n for k, n in self.unlisted.items() if not k.startswith("warning:"))

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + sum(n for k, n in self.unlisted.items() if k.startswith("warning:"))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status,
                               "violations": [_violation_dict(v) for v in self.violations]}
        if self.error is not None:
            out["error"] = self.error
        if self.warnings:
            out["warnings"] = [_violation_dict(v) for v in self.warnings]
        out["exchanges"] = self.exchanges
        if self.status in (VALID, INVALID):
            out["violation_count"] = self.violation_count   # every one found, listed or not
            out["warning_count"] = self.warning_count
        if self.unlisted:
            out["unlisted"] = dict(sorted(self.unlisted.items()))
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def blame(v: Violation) -> str:
    """"client" for a finding about the request the capture holds, "server" for everything else."""
    known = REGISTRY.get(v.rule)
    kind = known.kind if known is not None else v.rule.split(".", 1)[0]
    return "client" if kind == "request" else "server"


def _violation_dict(v: Violation) -> dict[str, Any]:
    return {"rule": v.rule, "entry": v.entry, "event": v.event, "pointer": v.pointer, "message": v.message,
            "blame": blame(v)}


def _clean(v: Violation, entry: int) -> Violation:
    """Redact and pin the entry index (rules see one Exchange; the file may hold many)."""
    message, pointer = redact_text(v.message), redact_text(v.pointer)
    if message == v.message and pointer == v.pointer and v.entry == entry:
        return v
    return dataclasses.replace(v, message=message, pointer=pointer, entry=entry)


# -- path expansion ---------------------------------------------------------------------------------

def iter_paths(paths: Iterable[str | Path]) -> Iterator[tuple[str, str | None]]:
    """(display path, error) for every file named or found under a named directory, in order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = False
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        found = True
                        yield os.path.join(root, name), None
            if not found:
                yield str(raw), "no captures in this directory"
        elif path.exists():
            yield str(raw), None
        else:
            yield str(raw), "no such file or directory"


# -- checking ---------------------------------------------------------------------------------------

def _single_chunk(ex: Exchange, profile: Profile, strict: bool) -> Iterator[Violation]:
    """schema.chunk (+ schema.unknown-field warnings in strict mode), as the stream checker does."""
    from .rules.schema_rules import schema_findings, schemas_for

    event = next(iter(ex.iter_events()))
    strict_validator = schemas_for(profile, True).chunk if strict else None
    yield from schema_findings(schemas_for(profile).chunk, strict_validator, event.json, "schema.chunk",
                               entry=ex.entry, event=0)


def request_verdict(ex: Exchange) -> str:
    """Message prefix of a request finding: who is at fault, and how the server took the request."""
    status = ex.status
    if status is None:
        if ex.events is None and ex.body is None and ex.body_text is None:
            return "invalid request (no response in the capture): "
        return "client sent an invalid request (HTTP status unknown): "
    if 400 <= status < 500:
        return f"client sent an invalid request (the server rightly refused it: HTTP {status}): "
    if status >= 500:
        return f"client sent an invalid request (the server failed on it: HTTP {status}): "
    return f"client sent an invalid request and the server accepted it (HTTP {status}): "


def request_findings(ex: Exchange, profile: Profile) -> list[Violation]:
    """The request rules on the captured request body, whatever the answer (or none). Rules that
    need the live model list (request.model-unknown) stay off: a profile never lists every model."""
    body = ex.request.body if ex.request is not None else None
    if body is None:
        return []
    from .rules import check_request

    found = check_request(body, profile)
    if not found:
        return []
    prefix = request_verdict(ex)
    return [dataclasses.replace(v, message=prefix + v.message, entry=ex.entry) for v in found]


ENVELOPE_MEMBERS = ("type", "param")
"""Members of the seed's example error envelope (message, type, param, code) that real DashScope
sometimes leaves out (C4: no `param`): a missing one is a warning; message and code are required by
the error schema."""


def _envelope(ex: Exchange) -> Any:
    """The error envelope an Exchange answered with, when it is one (else None)."""
    from .rules.errors import is_envelope, parse_error_body

    if ex.events is not None:
        if ex.status is None or ex.status < 400 or not isinstance(ex.events, list):
            return None  # mid-stream error events are the stream rules' business
        obj, _ = parse_error_body(None, "".join(ev.as_text() for ev in ex.events))
    else:
        obj, _ = parse_error_body(ex.body, ex.body_text)
    return obj if is_envelope(obj) else None


def _envelope_members(ex: Exchange) -> Iterator[Violation]:
    envelope = _envelope(ex)
    if envelope is None:
        return
    for name in ENVELOPE_MEMBERS:
        if name not in envelope["error"]:
            yield Violation("schema.error", f"expected the documented error member `{name}` (Model Studio's example "
                            f"envelope has message, type, param, code; null is fine), received no `{name}`",
                            entry=ex.entry, pointer="/error", level="warning")


def check(ex: Exchange, profile: Profile, strict: bool = False) -> Iterator[Violation]:
    """All findings for one Exchange: the request rules on the captured request, then the rules
    engine on the answer (lone chunks: the chunk schema only), then warnings for documented error
    envelope members that are missing."""
    yield from request_findings(ex, profile)
    if NOTE_SINGLE_CHUNK in ex.notes:
        yield from _single_chunk(ex, profile, strict)
        return
    from .rules import check_exchange

    yield from check_exchange(ex, profile, strict=strict, request_rules=False)
    yield from _envelope_members(ex)


def validate_file(path: str | Path, profile: Profile, *, fmt: str = "auto", strict: bool = False,
                  display: str | None = None) -> FileResult:
    """Read and check one file. Never raises for bad input: the reason goes into `error`."""
    result = FileResult(path=display if display is not None else str(path))
    try:
        capture = read_path(path, fmt)
        for ex in capture:
            result.exchanges += 1
            for v in check(ex, profile, strict):
                _add(result, _clean(v, ex.entry))
        result.notes.extend(capture.notes)
    except NotACapture as exc:
        return _skipped(result, str(exc))
    except CaptureError as exc:
        return _unreadable(result, str(exc))
    except RecursionError:
        return _unreadable(result, "capture nested too deeply to check")
    except MemoryError:
        return _unreadable(result, "capture too large to check in memory")
    result.status = INVALID if result.violation_count else VALID
    result.notes = [redact_text(n) for n in result.notes]
    return result


def _add(result: FileResult, v: Violation) -> None:
    warning = v.level == "warning"
    bucket = result.warnings if warning else result.violations
    key = f"warning:{v.rule}" if warning else v.rule
    if v.unlisted:  # a checker's summary of findings it did not list: they count all the same
        result.unlisted[key] += v.unlisted
    elif result.listed[key] >= MAX_LISTED_PER_RULE:
        result.unlisted[key] += 1
    else:
        result.listed[key] += 1
        bucket.append(v)


def _unreadable(result: FileResult, reason: str) -> FileResult:
    result.status = UNREADABLE
    result.error = redact_text(reason)
    result.violations.clear()
    result.warnings.clear()
    result.unlisted.clear()
    return result


def _skipped(result: FileResult, reason: str) -> FileResult:
    result.status = SKIPPED
    result.notes = [redact_text(reason)]
    result.exchanges = 0
    result.violations.clear()
    result.warnings.clear()
    result.unlisted.clear()
    return result


def validate_paths(paths: Iterable[str | Path], profile: Profile | str = "dashscope", *, fmt: str = "auto",
                   strict: bool = False, jobs: int = 1) -> Iterator[FileResult]:
    """One FileResult per file, in order. Raises ProfileError for an unknown profile.

    `jobs` > 1 validates that many files at once in worker processes (conformance/parallel.py); the
    results and their order are those of a serial run."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    found: Iterable[tuple[str, str | None]] = iter_paths(paths)
    results: Iterator[FileResult] | None = None
    if jobs > 1:
        found = list(found)
        files = [display for display, error in found if error is None]
        if len(files) > 1:
            from .parallel import parallel_results

            results = parallel_results(files, prof, fmt=fmt, strict=strict, jobs=jobs)
    for display, error in found:
        if error is not None:
            yield FileResult(path=display, status=UNREADABLE, error=error)
        elif results is not None:
            yield next(results)
        else:
            yield validate_file(display, prof, fmt=fmt, strict=strict, display=display)


def exit_code(results: Iterable[FileResult]) -> int:
    """0 all valid (or skipped), 1 any violation, 2 any unreadable file (DESIGN.md exit codes)."""
    statuses = {r.status for r in results}
    if UNREADABLE in statuses:
        return 2
    return 1 if INVALID in statuses else 0

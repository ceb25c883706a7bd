"""`chatconf validate PATH...`: check captured traffic against a profile (DESIGN.md contract).

Text output is one line per finding, `path:entry:event: rule: message [at pointer]`, so it stays
grep-able; each file gets a verdict line and the run a one-line total. `--json` prints exactly one
JSON object `{"files": [...]}`. Exit 0 all valid, 1 any violation, 2 any unreadable file or bad usage;
files that are not captures at all are SKIPPED with the reason and leave the exit code alone.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..errors import UsageError
from ..heap import settle_heap
from ..jsonutil import dumps
from ..parallel import default_jobs
from ..profiles import ProfileError, load_profile
from ..progress import Progress
from ..redact import console_text
from ..validate import INVALID, SKIPPED, STATUSES, UNREADABLE, FileResult, exit_code, iter_paths, validate_paths


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counted(total: int, listed: int, word: str) -> str:
    """'80000 violations (first 200 listed)': the true total, and how many of them the report shows."""
    text = _plural(total, word)
    return text if listed >= total else f"{text} (first {listed} listed)"


def _where(path: str, v: object) -> str:
    event = getattr(v, "event", None)
    return f"{path}:{getattr(v, 'entry', 0)}:{'-' if event is None else event}"


def print_file(result: FileResult, out: TextIO) -> None:
    """Findings first (one line each), then the file's verdict. Every piece that came from a file or
    a server (its name, messages, notes) goes through `console_text`: one line, no escape sequences."""
    path = console_text(result.path)
    if result.status == SKIPPED:
        out.write(f"{path}: SKIPPED ({console_text('; '.join(result.notes))})\n")
        return
    for v in result.violations:
        at = f" [at {console_text(v.pointer)}]" if v.pointer else ""
        out.write(f"{_where(path, v)}: {v.rule}: {console_text(v.message)}{at}\n")
    for v in result.warnings:
        at = f" [at {console_text(v.pointer)}]" if v.pointer else ""
        out.write(f"{_where(path, v)}: warning: {v.rule}: {console_text(v.message)}{at}\n")
    for key, n in sorted(result.unlisted.items()):
        out.write(f"{path}: ... {n} more {key} finding(s) not listed\n")
    for note in result.notes:
        out.write(f"{path}: note: {console_text(note)}\n")
    if result.status == UNREADABLE:
        out.write(f"{path}: UNREADABLE: {console_text(result.error or '')}\n")
        return
    detail = [_plural(result.exchanges, "exchange")]
    if result.status == INVALID:
        detail.insert(0, _counted(result.violation_count, len(result.violations), "violation"))
    if result.warning_count:
        detail.append(_counted(result.warning_count, len(result.warnings), "warning"))
    out.write(f"{path}: {result.status.upper()} ({', '.join(detail)})\n")


def summary_line(results: list[FileResult]) -> str:
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUSES}
    violations = sum(r.violation_count for r in results)
    warnings = sum(r.warning_count for r in results)
    listed = sum(len(r.violations) for r in results)
    parts = [f"{counts['valid']} valid", f"{counts['invalid']} invalid ({_counted(violations, listed, 'violation')})",
             f"{counts['unreadable']} unreadable"]
    if counts[SKIPPED]:
        parts.append(f"{counts[SKIPPED]} skipped")
    if warnings:
        parts.append(_counted(warnings, sum(len(r.warnings) for r in results), "warning"))
    return f"{_plural(len(results), 'file')}: {', '.join(parts)}"


def main(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise UsageError(str(exc)) from exc
    jobs = default_jobs() if args.jobs is None else args.jobs
    if not 1 <= jobs <= 256:
        raise UsageError("--jobs must be between 1 and 256")
    settle_heap(collect=False)  # a pass over millions of parsed chunks: rare young collections (heap.py)
    results: list[FileResult] = []
    out = sys.stdout
    progress = Progress(sys.stderr, total=sum(1 for _ in iter_paths(args.paths))) if sys.stderr.isatty() else None
    for result in validate_paths(args.paths, profile, fmt=args.format, strict=args.strict, jobs=jobs):
        results.append(result)
        if not args.json:
            if progress is not None:
                progress.clear()
            print_file(result, out)
            out.flush()
        if progress is not None:
            progress.update(len(results), sum(r.exchanges for r in results))
    if progress is not None:
        progress.clear()
    if args.json:
        out.write(dumps({"files": [r.as_dict() for r in results]}) + "\n")
    else:
        out.write(summary_line(results) + "\n")
    return exit_code(results)

"""Mutation testing of the suite itself: run it against the mock in each fault mode and see
whether the check the fault targets notices.

A fault is *detected* (a kill) only when its check breaks (`failed`, or `warned` for a should-level
check) in the faulty run while the same check was clean (passed) in the clean run: a check that
also breaks on the clean mock proves nothing. For a drift point (never pass/fail) a kill is an
observation that differs from the clean mock's. `python -m conformance.selftest` prints the table
and the mutation score (detected / fault modes).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .cli import main as cli_main
from .results import RunSummary

KEY_ENV = "CHATCONF_SELFTEST_KEY"
KEY = "sk-chatconf-selftest"

# Faults whose check has another id: n > 1 on other models is a drift point, observed not failed.
FAULT_CHECK = {"request.n-model": "drift.n-on-other-models"}


def check_for(fault: str) -> str:
    return FAULT_CHECK.get(fault, fault)


@dataclass
class FaultResult:
    fault: str
    check: str
    status: str
    message: str
    detected: bool


@contextlib.contextmanager
def shared_mock() -> Iterator[object]:
    """One mock process for every fault: faults are switched with PUT /_mock/faults."""
    from .mock import MockConfig, MockServer

    server = MockServer(MockConfig(api_key=KEY, seed=0))
    server.start()
    os.environ[KEY_ENV] = KEY
    try:
        yield server
    finally:
        server.stop()


def run_suite(*extra: str, mock: object | None = None, examples: int = 3) -> RunSummary:
    """Run `chatconf run` in-process (against `mock` when given, else an embedded one)."""
    target = ["--base-url", mock.base_url, "--api-key-env", KEY_ENV] if mock is not None else []  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="chatconf-selftest-") as tmp:
        argv = ["run", "-q", "--examples", str(examples), "--report-dir", tmp, *target, *extra]
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
        if code not in (0, 1):
            raise RuntimeError(f"chatconf {' '.join(argv)} exited {code}")
        return RunSummary.read(Path(tmp) / "summary.json")


def _result(summary: RunSummary, check_id: str) -> tuple[str, str]:
    for check in summary.checks:
        if check.id == check_id:
            return check.status, check.message
    return "missing", f"no check {check_id} in the run"


def run_fault(fault: str, mock: object, *, clean: RunSummary | None = None) -> FaultResult:
    check = check_for(fault)
    mock.set_faults([fault])  # type: ignore[attr-defined]
    try:
        status, message = _result(run_suite("-k", check, mock=mock), check)
    finally:
        mock.set_faults([])  # type: ignore[attr-defined]
    clean_status = _result(clean, check)[0] if clean is not None else "passed"
    detected = status in ("failed", "warned") and clean_status not in ("failed", "warned")
    if check.startswith("drift.") and clean is not None:
        _, clean_message = _result(clean, check)
        detected = status in ("observed", "failed") and message.split(":")[-1] != clean_message.split(":")[-1]
    return FaultResult(fault, check, status, message, detected)


def main() -> int:
    from .mock.faults import FAULTS

    with shared_mock() as mock:
        clean = run_suite(mock=mock)
        failed_clean = [c.id for c in clean.failing("should")]
        print(f"clean mock: {clean.totals}" + (f" FAILED: {failed_clean}" if failed_clean else ""))
        results = []
        for fault in FAULTS:
            result = run_fault(fault, mock, clean=clean)
            results.append(result)
            mark = "detected" if result.detected else "MISSED"
            print(f"  {mark:<9} {fault:<34} {result.status:<8} {result.message[:90]}", flush=True)
    detected = sum(r.detected for r in results)
    print(f"mutation score: {detected}/{len(results)} fault modes detected "
          f"({100.0 * detected / max(1, len(results)):.1f}%)")
    return 0 if detected == len(results) and not failed_clean else 1


if __name__ == "__main__":
    sys.exit(main())

"""The chatconf suite's pytest hooks and fixture, active only where the suite is collected.

`conformance/suite/conftest.py` re-exports them, so pytest loads them only when it collects
`conformance.suite` (`chatconf run`, or CI users mixing the suite into their own runs:
`pytest --pyargs conformance.suite --chatconf-base-url URL`); the options come from the thin
`conformance.pytest_options` entry point.
It parametrizes the suite's tests with catalog checks, turns each test outcome into a check status
(`passed`, `failed`, `warned`, `skipped`, `observed`), and at the end writes summary.json, JUnit XML,
the redacted recording and the HTML report. A broken `should` check is `warned` and does not fail
the pytest session unless `--chatconf-fail-on should`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ..client import BudgetExhausted, TargetUnresponsive
from ..redact import console_text
from ..results import CheckResult
from ..signals import interrupt_requested
from .catalog import PROBES, Check, drift_checks, reject_checks, rule_checks
from .context import SuiteContext, SuiteSettings
from .outcome import CheckFailed, Observed

CONTEXT = pytest.StashKey[SuiteContext]()
SETTINGS = pytest.StashKey[SuiteSettings]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chatconf_kind(kind): parametrize with catalog checks of this kind")
    config.addinivalue_line("markers", "chatconf_check(id): this test implements one catalog probe")
    o = config.option
    if not o.chatconf_settled:
        _take_settings(o)
    o.chatconf_profile = o.chatconf_profile or "dashscope"
    o.chatconf_fail_on = o.chatconf_fail_on or "must"
    config.stash[SETTINGS] = SuiteSettings(
        base_url=o.chatconf_base_url, region=o.chatconf_region, api_key_env=o.chatconf_api_key_env,
        model=o.chatconf_model, profile=o.chatconf_profile, max_requests=o.chatconf_max_requests,
        examples=o.chatconf_examples, report_dir=o.chatconf_report_dir, junit=o.chatconf_junit,
        faults=tuple(o.chatconf_faults or ()), console=bool(o.chatconf_console), timeout_s=o.chatconf_timeout,
        fail_on=o.chatconf_fail_on, model_caps=o.chatconf_model_caps, run_timeout_s=o.chatconf_run_timeout,
        hypothesis_seed=o.chatconf_hypothesis_seed)


def _take_settings(option: Any) -> None:
    """Plain `pytest --pyargs conformance.suite`: unset options come from CHATCONF_* variables and the
    config file, as they do for `chatconf run` (a bad value stops the session with one line)."""
    from ..errors import UsageError
    from ..settings import command_defaults
    try:
        found = command_defaults("run", Path.cwd(), os.environ)
    except UsageError as exc:
        raise pytest.UsageError(f"chatconf: {exc}") from None
    for dest, value in found.items():
        name = f"chatconf_{dest}"
        if hasattr(option, name) and getattr(option, name) in (None, [], False):
            setattr(option, name, value)


def _context(config: pytest.Config) -> SuiteContext:
    if CONTEXT not in config.stash:
        config.stash[CONTEXT] = SuiteContext(config.stash[SETTINGS])
    return config.stash[CONTEXT]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "check" not in metafunc.fixturenames:
        return
    ctx = _context(metafunc.config)
    kind = metafunc.definition.get_closest_marker("chatconf_kind")
    single = metafunc.definition.get_closest_marker("chatconf_check")
    checks: list[Check]
    if single is not None:
        checks = [c for c in PROBES if c.id == single.args[0]]
    elif kind is not None:
        checks = {"rule": rule_checks, "reject": lambda: reject_checks(ctx.profile),
                  "drift": lambda: drift_checks(ctx.profile)}[kind.args[0]]()
    else:
        checks = []
    metafunc.parametrize("check", checks, ids=[c.id for c in checks])


_KIND_ORDER = {"rule": 0, "probe": 1, "drift": 2, "reject": 3, "property": 4, "after": 5}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cheap checks first: rule checks share a few scenario requests, properties cost many, so a
    live run's budget covers as much as it can before Hypothesis spends the rest. Only the suite's
    own items move, within the places they hold: a user's tests collected beside it keep their order."""
    slots = [i for i, item in enumerate(items) if isinstance(_check_of(item), Check)]
    ordered = sorted((items[i] for i in slots), key=lambda item: _KIND_ORDER.get(_check_of(item).kind, 9))
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


def _check_of(item: pytest.Item) -> Any:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("check") if callspec is not None else None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which checks this run set out to do, so an interrupted run can list the rest."""
    if CONTEXT not in session.config.stash:
        return
    planned = session.config.stash[CONTEXT].planned
    for item in session.items:
        check = _check_of(item)
        if isinstance(check, Check) and check.id not in planned:
            planned.append(check.id)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The whole-run deadline: once it has passed, every check still to come is skipped, not run."""
    if CONTEXT not in item.config.stash:
        return
    ctx = item.config.stash[CONTEXT]
    reason = ctx.stop_reason()
    if reason is not None:
        pytest.skip(f"not run: {reason}")


@pytest.fixture(scope="session")
def chatconf(request: pytest.FixtureRequest) -> SuiteContext:
    """The suite's shared context: target, client, scenario traffic, results."""
    return _context(request.config)


# -- outcomes -> check statuses ------------------------------------------------------------------

_MERGE_ORDER = {"failed": 4, "warned": 3, "observed": 2, "passed": 1, "skipped": 0}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    check = _check_of(item)
    if not isinstance(check, Check) or CONTEXT not in item.config.stash:
        return
    ctx = item.config.stash[CONTEXT]
    if interrupt_requested():  # cut short by Ctrl-C/SIGTERM, whatever exception it surfaced as: no verdict
        if report.when == "call":
            report.outcome, report.longrepr = "skipped", (str(item.path), 0, "Skipped: not run: interrupted")
        item.session.shouldstop = "interrupted"
        return
    status, message, evidence = None, "", None
    excinfo = call.excinfo
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if excinfo is not None and excinfo.errisinstance(Observed):
            status, message, evidence = "observed", excinfo.value.message, excinfo.value.evidence
            report.outcome = "passed"
            report.longrepr = None
        elif excinfo is not None and excinfo.errisinstance((BudgetExhausted, TargetUnresponsive)):
            status, message = "skipped", f"not run: {excinfo.value}"
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, f"Skipped: {message}")
        elif report.skipped:
            status = "skipped"
            message = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            message = message.removeprefix("Skipped: ")
        elif report.failed:
            status = "failed"
            found = _check_failures(excinfo.value) if excinfo is not None else []
            if found:
                first = found[0]
                message, evidence = first.message, dict(first.evidence)
                flaky = _is_flaky(excinfo.value)  # type: ignore[union-attr]
                if isinstance(excinfo.value, BaseExceptionGroup):  # type: ignore[union-attr]
                    message, evidence = _group_outcome(excinfo.value, found)  # type: ignore[union-attr]
                # A failure that did not reproduce is not a verdict on the server: it warns, with both examples.
                if flaky or check.severity == "should":
                    status = "warned"
                    if ctx.settings.fail_on != "should":  # production advice never fails pytest by default
                        report.outcome = "passed"
                        report.longrepr = None
            elif excinfo is not None:
                text = str(excinfo.value).strip()
                message = f"{excinfo.typename}: {text.splitlines()[0] if text else ''}"
        else:
            status = "passed"
    if status is None:
        return
    result = CheckResult(id=check.id, title=check.title, severity=check.severity, area=check.area,
                         source=check.source, status=status, message=message, evidence=evidence,
                         duration_s=report.duration)
    previous = ctx.results.get(check.id)
    if previous is None or _MERGE_ORDER[status] > _MERGE_ORDER[previous.status]:
        ctx.results[check.id] = result
    if ctx.settings.console and not ctx.settings.quiet:
        _print_progress(result, len(ctx.results))


def _check_failures(exc: BaseException) -> list[CheckFailed]:
    """The CheckFailed a test raised, or every one inside a Hypothesis exception group."""
    if isinstance(exc, CheckFailed):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _check_failures(sub)]
    return []


def _is_flaky(exc: BaseException) -> bool:
    from hypothesis.errors import FlakyFailure
    return isinstance(exc, FlakyFailure)


def _group_outcome(group: BaseExceptionGroup, found: list[CheckFailed]) -> tuple[str, dict[str, Any]]:
    """Hypothesis found several distinct failures, or one that did not reproduce on replay (flaky:
    the target answered the same request differently). Both examples are kept as evidence."""
    if _is_flaky(group):
        head = ("flaky: the target failed this check, then answered the same request differently when "
                f"Hypothesis replayed it: {found[0].message}")
    else:
        head = f"{len(found)} distinct failures; first: {found[0].message}"
    evidence = dict(found[0].evidence)
    if len(found) > 1:
        evidence["other_failures"] = [{"message": f.message, **f.evidence} for f in found[1:4]]
    return head, evidence


_SYMBOLS = {"passed": ("PASS", "32"), "failed": ("FAIL", "31"), "warned": ("WARN", "35"), "skipped": ("SKIP", "33"),
            "observed": ("OBS ", "36")}


def _print_progress(result: CheckResult, done: int) -> None:
    word, color = _SYMBOLS[result.status]
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        word = f"\033[{color}m{word}\033[0m"
    line = f"  {word} {result.id:<34} {console_text(result.title)}"
    if result.status in ("failed", "warned", "observed", "skipped") and result.message:
        line += f"\n        {console_text(result.message.splitlines()[0][:160])}"
    print(line, flush=True)


def _write_reports(ctx: SuiteContext, summary: Any) -> None:
    """Every report that can be written is; the first failure is kept for the command to report."""
    from ..outputs import OutputError
    s = ctx.settings
    try:
        if s.report_dir:
            from ..reports import write_run_reports
            write_run_reports(summary, Path(s.report_dir))
    except OutputError as exc:
        ctx.output_error = ctx.output_error or exc
    try:
        if s.junit:
            from ..reports.junit import write_junit
            write_junit(summary, Path(s.junit), s.fail_on)
    except OutputError as exc:
        ctx.output_error = ctx.output_error or exc


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if CONTEXT not in config.stash or not config.stash[CONTEXT].results:
        if CONTEXT in config.stash:
            config.stash[CONTEXT].close()
        return
    ctx = config.stash[CONTEXT]
    try:
        summary = ctx.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED or interrupt_requested())
        _write_reports(ctx, summary)
    finally:
        ctx.close()
    if ctx.output_error is not None and not ctx.settings.console:  # plain pytest: say it, fail the session
        print(f"chatconf: error: {ctx.output_error}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    # Observed, skipped and (by default) warned checks never fail the pytest session.
    if exitstatus == pytest.ExitCode.OK and summary.failing(ctx.settings.fail_on):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    ctx.finished_at = time.monotonic()  # type: ignore[attr-defined]

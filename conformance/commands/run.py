"""`chatconf run`: the conformance suite against a live endpoint or the embedded mock.

Validates everything up front (profile, URL, key, output paths, the -k expression, and one preflight
request to a non-mock target, conformance/preflight.py: exit 2 with one line), then runs
the packaged pytest suite in-process with the chatconf plugin printing check-by-check progress,
and ends with a summary and exit 0 (no failed check), 1 (a `must` check failed, or with
`--fail-on should` a `should` check warned) or 130 (interrupted: the summary says so and lists the
checks not run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import suite as conformance_suite
from ..errors import UsageError
from ..outputs import OutputError, report_dir_lock
from ..preflight import (
    check_keyword,
    check_output_dir,
    check_output_file,
    keyword_matches,
    preflight,
    preflight_timeout,
)
from ..profiles import ProfileError, load_profile, parse_model_caps, with_model
from ..redact import console_text
from ..results import STATUSES, RunSummary
from ..strategies import invalid_requests
from ..suite.catalog import all_checks, reject_checks
from ..suite.scenarios import SCENARIOS
from ..targets import is_loopback, read_api_key, resolve_target

EXIT_INTERRUPTED = 130
HYPOTHESIS_STORAGE_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"


def user_cache_dir() -> Path:
    """chatconf's cache: $XDG_CACHE_HOME/chatconf, by default ~/.cache/chatconf."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG spec says to ignore it
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory at all
            base = os.path.join(tempfile.gettempdir(), f"chatconf-cache-{os.getuid()}")
    return Path(base) / "chatconf"


@contextlib.contextmanager
def hypothesis_home() -> Iterator[None]:
    """Hypothesis keeps caches (constants it found in the source, Unicode tables) in its home
    directory, `./.hypothesis` unless told otherwise: the user's working directory. The suite's
    examples are never stored (database=None); the caches go to chatconf's cache directory, where the
    next run reuses them, unless $HYPOTHESIS_STORAGE_DIRECTORY names a place."""
    from hypothesis import configuration

    if os.environ.get(HYPOTHESIS_STORAGE_ENV):
        yield
        return
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(user_cache_dir() / "hypothesis")
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)


class _Sink:
    """Receives the finished summary from the suite plugin (same process)."""

    summary: RunSummary | None = None
    output_error: OutputError | None = None
    collected = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from ..suite.plugin import CONTEXT
        if CONTEXT in session.config.stash:
            self.summary = session.config.stash[CONTEXT].summary
            self.output_error = session.config.stash[CONTEXT].output_error


def _pytest_args(args: argparse.Namespace) -> list[str]:
    """The in-process pytest command line: nothing of the working directory applies (its pytest.ini,
    pyproject.toml and conftest.py: `-c` names the null device, the suite is given by path so pytest
    looks for conftests there only, up to the suite itself), no cache, no temporary files."""
    suite = str(Path(conformance_suite.__file__).resolve().parent)
    out = [suite, "-c", os.devnull, "--rootdir", suite, "--confcutdir", suite,
           "-p", "no:terminal", "-p", "no:cacheprovider", "-p", "no:randomly", "--chatconf-console",
           "--chatconf-settled",
           "--chatconf-profile", args.profile]
    for flag, value in (("--chatconf-base-url", args.base_url), ("--chatconf-region", args.region),
                        ("--chatconf-api-key-env", args.api_key_env), ("--chatconf-model", args.model),
                        ("--chatconf-max-requests", args.max_requests), ("--chatconf-examples", args.examples),
                        ("--chatconf-report-dir", args.report_dir), ("--chatconf-junit", args.junit),
                        ("--chatconf-timeout", args.timeout), ("--chatconf-fail-on", args.fail_on),
                        ("--chatconf-model-caps", args.model_caps), ("--chatconf-run-timeout", args.run_timeout),
                        ("--chatconf-hypothesis-seed", args.hypothesis_seed)):
        if value is not None:
            out += [flag, str(value)]
    if args.fault:
        out += ["--chatconf-fault", args.fault]
    if args.keyword:
        out += ["-k", args.keyword]
    return out


def _plan(args: argparse.Namespace, live: bool) -> int:
    """Print the checks and the planned request count; send nothing."""
    profile = load_profile(args.profile)
    model = args.model or profile.default_model
    examples = args.examples or (5 if live else 25)
    checks = all_checks(profile)
    if args.keyword:
        compiled = check_keyword(args.keyword)
        checks = [c for c in checks if keyword_matches(compiled, [c.id, c.kind])]
        if not checks:
            raise UsageError(f"no check matches -k {args.keyword!r}")
    selected = {c.id for c in checks}
    kinds = {c.kind for c in checks}
    info = profile.model(model)
    needs_ok = {"": True, "n": info.n, "tools": info.tools, "thinking": info.thinking != "none",
                "thinking_non_stream": info.thinking != "none" and info.thinking_non_stream}
    scenario_requests = sum(sc.requests for sc in SCENARIOS.values() if needs_ok.get(sc.needs, True))
    if not kinds & {"rule", "probe"}:
        scenario_requests = 0  # scenarios feed rule checks and probes only
    rejects = [c for c in reject_checks(profile)
               if c.id in selected and invalid_requests(profile, model, c.id) is not None]
    properties = len(rejects) + ("property" in kinds)
    probes = sum(1 for c in checks if c.kind == "probe")
    drift = sum(1 for c in checks if c.kind == "drift")
    planned = scenario_requests + examples * properties + min(probes, 5) + drift + (1 if live else 0)
    where = f", -k {args.keyword!r}" if args.keyword else ""
    print(f"chatconf run --dry-run: {len(checks)} checks{where}, profile {profile.name}, model {model}")
    for check in checks:
        print(f"  {check.id:<36} {check.kind:<8} {check.severity:<6} {check.title}")
    budget = args.max_requests if args.max_requests is not None else (60 if live else None)
    print(f"planned requests: about {planned} ({scenario_requests} scenario, {examples} per property x "
          f"{properties} properties, probes and drift points"
          + (", 1 preflight" if live else "") + ")"
          + (f"; budget {budget}, checks beyond it are skipped" if budget else "")
          + "; Hypothesis shrinking of a failure adds requests")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.json:
        args.quiet = True  # stdout carries the JSON summary and nothing else
    with contextlib.ExitStack() as hold:
        return _main(args, hold)


def _main(args: argparse.Namespace, hold: contextlib.ExitStack) -> int:
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise UsageError(str(exc)) from exc
    target = resolve_target(profile, base_url=args.base_url, region=args.region)
    if args.max_requests is not None and args.max_requests < 1:
        raise UsageError("--max-requests must be at least 1")
    if args.examples is not None and args.examples < 1:
        raise UsageError("--examples must be at least 1")
    if args.timeout is not None and not 0 < args.timeout <= 600:
        raise UsageError("--timeout must be between 0 and 600 seconds")
    if args.run_timeout is not None and not 0 < args.run_timeout <= 86_400:
        raise UsageError("--run-timeout must be between 0 and 86400 seconds")
    if args.keyword:
        check_keyword(args.keyword)
    if args.report_dir:
        check_output_dir(args.report_dir, "--report-dir")
    if args.junit:
        check_output_file(args.junit, "--junit")
    live = not target.is_mock and not is_loopback(target.base_url or "")
    model = args.model or profile.default_model
    if target.is_mock and not profile.model(model).known:
        raise UsageError(f"the built-in mock serves only the models of profile {profile.name!r} "
                         f"({', '.join(profile.model_names)}), not {model!r}: pick one with --model, "
                         "or test that model on its server with --base-url")
    if args.model_caps is not None:
        try:
            profile = with_model(profile, model, parse_model_caps(args.model_caps))
        except ProfileError as exc:
            raise UsageError(str(exc)) from exc
    elif not profile.model(model).known and not args.quiet:
        print(f"chatconf run: note: model {model!r} is not in profile {profile.name!r}; assuming it has tools, "
              "no n > 1 and no thinking (declare what it can do with --model-caps)", flush=True)
    if args.dry_run:
        return _plan(args, live)
    if args.report_dir:
        hold.enter_context(report_dir_lock(args.report_dir))  # one run per report dir, before any request
    if not target.is_mock:
        env_name = args.api_key_env or profile.api_key_env
        key = read_api_key(env_name, required=live)
        preflight(target.base_url or "", model=args.model or profile.default_model, api_key=key,
                  api_key_env=env_name, timeout_s=preflight_timeout(live, args.timeout))
    elif args.fault:
        from ..mock.faults import FAULTS
        if args.fault not in FAULTS:
            raise UsageError(f"unknown fault mode {args.fault!r} (see chatconf mock --list-faults)")

    if not args.quiet:
        where = target.base_url or "the built-in mock (simulated DashScope)"
        print(f"chatconf run: {where}, model {args.model or profile.default_model}, profile {profile.name}",
              flush=True)
    sink = _Sink()
    argv = _pytest_args(args)
    if args.quiet:
        argv.remove("--chatconf-console")
    with hypothesis_home():
        code = pytest.main(argv, plugins=[sink])
    if code == pytest.ExitCode.INTERRUPTED and sink.summary is None:
        raise KeyboardInterrupt
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or (sink.collected == 0 and args.keyword):
        raise UsageError(f"no check matches -k {args.keyword!r}")
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) or sink.summary is None:
        raise RuntimeError(f"the suite did not run (pytest exit code {int(code)})")
    code = _print_summary(sink.summary, args, written=sink.output_error is None)
    if sink.output_error is not None and code != EXIT_INTERRUPTED:
        raise sink.output_error  # one line, exit EXIT_OUTPUT (cli.py)
    return code


def _profile_hint(summary: RunSummary) -> str | None:
    """A console hint when a run looks like the wrong profile: against a server that is not DashScope,
    most findings of the dashscope profile are DashScope production habits (research keys C..)."""
    target = summary.target
    if target.get("profile") != "dashscope" or target.get("kind") == "mock":
        return None
    if "aliyuncs.com" in str(target.get("base_url", "")):
        return None
    broken = summary.failed + summary.warned
    dashscope_only = [c for c in broken if c.source and all(k.startswith("C") for k in c.source.split(", "))]
    unknown_model = not load_profile("dashscope").model(str(target.get("model"))).known
    if broken and (unknown_model or (len(dashscope_only) >= 3 and len(dashscope_only) * 2 >= len(broken))):
        why = (f"model {target.get('model')!r} is no DashScope model" if unknown_model else
               f"{len(dashscope_only)} of {len(broken)} findings are DashScope production habits "
               f"({', '.join(c.id for c in dashscope_only[:4])}...)")
        return (f"hint: {why}; if this target is an OpenAI-compatible server rather than DashScope, "
                "--profile openai checks it against the OpenAI contract only")
    return None


def _exit_code(summary: RunSummary, args: Any) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 1 if summary.failing(args.fail_on) else 0


def _print_summary(summary: RunSummary, args: Any, *, written: bool = True) -> int:
    """The console summary; `written` False: a report failed, so no report path is named."""
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return _exit_code(summary, args)
    totals = summary.totals
    out = sys.stdout
    print("", file=out)
    for title, checks in (("Failed checks (must):", summary.failed), ("Warnings (should):", summary.warned)):
        if not checks:
            continue
        print(title, file=out)
        for check in checks:
            message = check.message.splitlines()[0][:200] if check.message else ""
            print(f"  {check.id}: {console_text(message)}", file=out)
            curl = (check.evidence or {}).get("curl")
            if curl:
                print(f"    reproduce: {console_text(curl)}", file=out)
    line = ", ".join(f"{totals[s]} {s}" for s in STATUSES)
    sent = summary.extra.get("requests", {}).get("sent")
    print(f"chatconf run: {line} in {summary.duration_s:.1f} s ({sent} requests)", file=out)
    if summary.warned and args.fail_on != "should":
        print(f"  {len(summary.warned)} should-level warning(s) do not fail the run (--fail-on should makes them fail)",
              file=out)
    if summary.extra.get("stopped"):
        print(f"chatconf run: stopped early: {summary.extra['stopped']}; the checks after that point were skipped",
              file=out)
    hint = _profile_hint(summary)
    if hint:
        print(hint, file=out)
    if summary.interrupted:
        print(f"chatconf run: INTERRUPTED: {len(summary.not_run)} planned check(s) not run; "
              "the reports are partial", file=out)
    if args.report_dir and written:
        print(f"reports: {Path(args.report_dir) / 'summary.json'}, {Path(args.report_dir) / 'report.html'}, "
              f"{Path(args.report_dir) / 'recording.jsonl'}", file=out)
    if args.junit and written:
        print(f"junit: {args.junit}", file=out)
    return _exit_code(summary, args)

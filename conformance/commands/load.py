"""`chatconf load`: run the Locust scenarios (loadtests/locustfile.py) as real Locust processes.

This process never imports Locust or gevent: it resolves targets (starting the embedded mock when
none is given), sends one preflight request to every given target (conformance/preflight.py: a
rejected key, no chat endpoint or no answer is exit 2 before any load), starts one Locust process (or a
master plus N local workers, loadtests/launcher.py), echoes the master's progress lines, and
prints the per-region table from the summary.json the master wrote.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..outputs import EXIT_OUTPUT, report_dir_lock
from ..preflight import check_output_dir, preflight, preflight_timeout
from ..profiles import ProfileError, load_profile
from ..redact import console_text, register_secret
from ..targets import is_loopback, read_api_key

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_run_time(text: str) -> float:
    """Locust's format: 30s, 2m, 1h30m, or plain seconds."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        value = float(text)
    else:
        m = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", text)
        if not m or not any(m.groups()):
            raise UsageError(f"--run-time {text!r}: expected e.g. 30s, 2m, 1h30m")
        h, mi, s = (int(g or 0) for g in m.groups())
        value = h * 3600 + mi * 60 + s
    if value <= 0:
        raise UsageError("--run-time must be positive")
    return value


# -- targets ----------------------------------------------------------------------------------


def resolve_targets(args: Any, profile: Any) -> dict[str, str]:
    """{label: base_url} from --region/--regions/--base-url; empty means the embedded mock."""
    regions: list[str] = list(args.region or [])
    if args.regions:
        regions += [r.strip() for r in args.regions.split(",") if r.strip()]
    targets: dict[str, str] = {}
    for region in regions:
        if region not in profile.regions:
            known = ", ".join(profile.regions) or "none"
            raise UsageError(f"unknown region {region!r} for profile {profile.name} (regions: {known})")
        targets[region] = profile.regions[region]
    if args.base_url:
        parts = urlsplit(args.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--base-url {args.base_url!r} is not an http(s) URL")
        label = args.label or parts.hostname
        if label in targets or "=" in label or "," in label:
            raise UsageError(f"--label {label!r} clashes with a region or contains '=' or ','")
        targets[label] = args.base_url
    elif args.label:
        raise UsageError("--label names a --base-url target; give --base-url too")
    return targets


def custom_args(
    *,
    targets: dict[str, str],
    simulated: bool,
    args: Any,
    report_dir: Path,
    model: str,
    api_key_env: str,
    mix: str | None = None,
) -> list[str]:
    out = [
        "--chatconf-targets",
        ",".join(f"{k}={v}" for k, v in targets.items()),
        "--chatconf-model",
        model,
        "--chatconf-profile",
        args.profile or "dashscope",
        "--chatconf-api-key-env",
        api_key_env,
        "--chatconf-report-dir",
        str(report_dir),
    ]
    if simulated:
        out += ["--chatconf-simulated", "1"]
    if args.rate:
        out += ["--chatconf-rate", f"{args.rate:g}", "--chatconf-arrivals", args.arrivals or "poisson"]
    if args.max_requests:
        out += ["--chatconf-max-requests", str(args.max_requests)]
    mix = mix or getattr(args, "mix", None)
    if mix:
        out += ["--chatconf-mix", mix]
    for flag, value in (("--chatconf-prompt-tokens", getattr(args, "prompt_tokens", None)),
                        ("--chatconf-max-tokens", getattr(args, "max_tokens", None)),
                        ("--chatconf-turns", getattr(args, "turns", None)),
                        ("--chatconf-dataset", str(Path(args.dataset).resolve()) if getattr(args, "dataset", None)
                         else None)):
        if value:
            out += [flag, str(value)]
    if getattr(args, "seed", 0):
        out += ["--chatconf-seed", str(args.seed)]
    if getattr(args, "replay", None):
        out += ["--chatconf-replay", str(Path(args.replay).resolve()), "--chatconf-speed", f"{args.speed:g}"]
        if args.model:
            out += ["--chatconf-replay-model", args.model]
    if args.quiet:
        out += ["--chatconf-quiet", "1"]
    return out


def _tail(path: Path, n: int = 8) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def validate_args(args: Any) -> float:
    if args.users < 1:
        raise UsageError("--users must be at least 1")
    if args.spawn_rate <= 0:
        raise UsageError("--spawn-rate must be positive")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be positive (requests per second)")
    if args.arrivals and args.rate is None:
        raise UsageError(f"--arrivals {args.arrivals} shapes open-loop arrivals: give --rate (requests per second) "
                         "too, or drop it for a closed loop of --users")
    if args.workers < 0 or args.workers > 64:
        raise UsageError("--workers must be between 0 and 64")
    if args.max_requests is not None and args.max_requests < 1:
        raise UsageError("--max-requests must be at least 1")
    _check_workload(args)
    if args.speed is not None and not 0 < args.speed <= 1000:
        raise UsageError("--speed must be between 0 and 1000")
    if args.replay:
        from loadtests.replay import ReplayError, load_replay, span_s

        try:
            entries = load_replay(args.replay)
        except ReplayError as exc:
            raise UsageError(str(exc)) from None
        args.replay_requests = len(entries)
        args.replay_span_s = span_s(entries, args.speed)
    if args.sweep:
        if args.calibrate or args.max_requests:
            raise UsageError("--sweep runs its own steps; drop --calibrate and --max-requests")
        if not 1 <= args.sweep_steps <= 50:
            raise UsageError("--sweep-steps must be between 1 and 50")
        if args.sweep_time <= 0:
            raise UsageError("--sweep-time must be positive (seconds)")
    if args.replay and (args.sweep or args.rate or args.dataset or args.prompt_tokens or args.turns or args.mix):
        raise UsageError("--replay sends the captured requests as captured; drop --sweep, --rate and the "
                         "workload flags")
    return parse_run_time(args.run_time or "10s")


def _check_workload(args: Any) -> None:
    """The workload flags, found bad before anything starts (the Locust processes parse them again)."""
    from loadtests.dataset import DatasetError, load_dataset
    from loadtests.distributions import DistributionError, parse_distribution
    from loadtests.workload import parse_mix

    try:
        for flag, spec in (("--prompt-tokens", args.prompt_tokens), ("--max-tokens", args.max_tokens),
                           ("--turns", args.turns)):
            if spec:
                parse_distribution(spec, flag)
        if args.dataset:
            load_dataset(args.dataset)
        if args.mix:
            parse_mix(args.mix)
    except (DistributionError, DatasetError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(f"--mix {args.mix!r}: {exc}") from None
    if args.dataset and (args.prompt_tokens or args.mix):
        raise UsageError("--dataset brings its own prompts; drop --prompt-tokens and --mix")


def main(args: Any) -> int:
    with contextlib.ExitStack() as hold:
        return _main(args, hold)


def _main(args: Any, hold: contextlib.ExitStack) -> int:
    run_time = validate_args(args)
    if args.replay:
        needed = args.replay_span_s + 30.0
        if args.run_time is None:
            run_time = needed
        elif run_time < args.replay_span_s:
            print(f"chatconf load: note: --run-time {args.run_time} ends before the capture's "
                  f"{args.replay_span_s:.0f} s at --speed {args.speed:g}: the replay is cut there", file=sys.stderr)
        if not args.quiet:
            print(f"chatconf load: replaying {args.replay_requests} requests over {args.replay_span_s:.1f} s "
                  f"(--speed {args.speed:g})", file=sys.stderr)
    if importlib.util.find_spec("locust") is None:
        raise UsageError("chatconf load runs Locust, which is not installed: pip install 'chatconf[load]'")
    try:
        profile = load_profile(args.profile or "dashscope")
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    model = args.model or profile.default_model
    api_key_env = args.api_key_env or profile.api_key_env
    targets = resolve_targets(args, profile)
    if args.replay and len(targets) > 1:
        raise UsageError("--replay sends a capture to one target: give one --region or --base-url")
    try:
        from loadtests import slo

        objectives = slo.parse(args.slo, labels=targets or profile.regions)
    except slo.SLOError as exc:
        raise UsageError(str(exc)) from None
    if not targets and not args.calibrate and not profile.model(model).known:
        raise UsageError(f"the built-in mock serves only the models of profile {profile.name!r} "
                         f"({', '.join(profile.model_names)}), not {model!r}: pick one with --model, "
                         "or load that model's server with --base-url")
    if args.report_dir:
        check_output_dir(args.report_dir, "--report-dir")
        hold.enter_context(report_dir_lock(args.report_dir))  # one chatconf per report dir
    if args.calibrate:
        if targets:
            raise UsageError("--calibrate measures the harness against the embedded mock; drop the target flags")
        from loadtests.calibrate import run_calibration

        return run_calibration(args, profile=profile, model=model, run_time=run_time)
    if targets:
        api_key = read_api_key(api_key_env, required=True)
        register_secret(api_key)
        for url in targets.values():
            preflight(url, model=model, api_key=api_key, api_key_env=api_key_env,
                      timeout_s=preflight_timeout(not is_loopback(url)))

    mock = None
    tmp_dir = None
    report_dir = Path(args.report_dir) if args.report_dir else None
    previous = signal.getsignal(signal.SIGINT)
    try:
        if not targets:
            from ..mock import MockConfig, MockServer, MockStartError

            mock = MockServer(MockConfig(profile=args.profile or "dashscope", seed=0))
            try:
                mock.start()
            except MockStartError as exc:
                raise UsageError(str(exc)) from None
            regions = list(profile.regions) or ["singapore", "virginia", "beijing"]
            if args.replay:
                regions = regions[:1]  # a capture is replayed against one target
            targets = {r: mock.url_for(r) for r in regions}
        if report_dir is None:
            tmp_dir = tempfile.mkdtemp(prefix="chatconf-load-")
            report_dir = Path(tmp_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        simulated = mock is not None
        if simulated and not args.quiet:
            print(
                f"chatconf load: no target given: SIMULATED regions on the embedded mock "
                f"({', '.join(targets)}); numbers measure the harness, not DashScope",
                file=sys.stderr,
            )
        session = Session(args=args, simulated=simulated, model=model, api_key_env=api_key_env,
                          objectives=objectives, run_time=run_time)
        if args.sweep:
            from .load_sweep import sweep_targets

            return sweep_targets(session, targets, report_dir)
        outcome = session.run(targets, report_dir, users=args.users, rate=args.rate)
        if outcome.code is not None:
            return outcome.code
        summary = outcome.summary
        assert summary is not None
        _show(summary, args)
        if outcome.interrupted:
            return EXIT_INTERRUPTED
        if args.report_dir:
            print(f"reports: {report_dir}/summary.json, samples.jsonl, report.html", file=sys.stderr)
        return _exit_code(summary, api_key_env)
    finally:
        if mock is not None:
            mock.stop()
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        signal.signal(signal.SIGINT, previous)


@dataclass
class Outcome:
    """One Locust run: its judged summary, or the exit code that ends the command."""

    summary: dict[str, Any] | None = None
    code: int | None = None
    interrupted: bool = False


@dataclass
class Session:
    """What every Locust run of one `chatconf load` shares (a sweep makes several)."""

    args: Any
    simulated: bool
    model: str
    api_key_env: str
    objectives: list[Any]
    run_time: float

    def run(self, targets: dict[str, str], report_dir: Path, *, users: int, rate: float | None) -> Outcome:
        """One bounded Locust run (local or master + workers) against `targets`, judged and reported."""
        from loadtests.launcher import LocustRun, report_error

        args = copy.copy(self.args)
        args.rate = rate
        report_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            (report_dir / "summary.json").unlink()
        run = LocustRun(
            custom=custom_args(targets=targets, simulated=self.simulated, args=args, report_dir=report_dir,
                               model=self.model, api_key_env=self.api_key_env),
            users=users,
            # a sweep step is at its full load at once: a ramp would measure a lighter load than the step's
            spawn_rate=max(args.spawn_rate, float(users)) if args.sweep else args.spawn_rate,
            run_time=self.run_time,
            workers=args.workers,
            log_path=report_dir / "locust.log",
            quiet=args.quiet,
        )
        try:
            run.start()
            try:
                code = run.wait()
            except KeyboardInterrupt:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up
                print("chatconf load: interrupted, stopping Locust (partial report follows)", file=sys.stderr)
                run.stop()
                summary = finalize(report_dir, self.objectives, interrupted=True)
                return Outcome(summary, None if summary is not None else EXIT_INTERRUPTED, interrupted=True)
            failed_write = report_error(run.progress_lines)
            if failed_write is not None:
                print(f"chatconf load: error: {console_text(failed_write)}", file=sys.stderr)
                return Outcome(code=EXIT_OUTPUT)
            summary = finalize(report_dir, self.objectives)
            if summary is None:
                tail = _tail(report_dir / "locust.log")
                detail = f"; last lines of locust.log:\n{tail}" if tail else ""
                print(f"chatconf load: error: Locust exited with code {code} without a report{detail}",
                      file=sys.stderr)
                return Outcome(code=EXIT_USAGE)
            return Outcome(summary)
        finally:
            run.stop()


def _show(summary: dict[str, Any], args: Any) -> None:
    """The per-region table, or with --json the summary itself (stdout carries nothing else)."""
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
        return
    from loadtests.report_console import format_table

    print(format_table(summary))


def finalize(report_dir: Path, objectives: list[Any], *, interrupted: bool = False) -> dict[str, Any] | None:
    """The summary Locust wrote, judged against the objectives on its raw samples (and marked partial
    after Ctrl-C: the master only knows it was told to stop, not why), every report file rewritten
    with the verdict. None when Locust stopped before writing a summary."""
    from loadtests import slo
    from loadtests.launcher import read_summary
    from loadtests.report_files import read_samples, write_reports

    summary = read_summary(report_dir)
    if summary is None:
        return None
    try:
        samples = read_samples(report_dir)
    except (OSError, ValueError) as exc:
        print(f"chatconf load: cannot read the samples to judge the objectives: {console_text(str(exc))}",
              file=sys.stderr)
        return summary
    if objectives:
        summary["slo"] = slo.evaluate(objectives, samples, float(summary.get("duration_s") or 0.0))
    if interrupted:
        summary["interrupted"] = True
    write_reports(report_dir, summary, samples)  # OutputError: exit 4, one line (cli.py)
    return summary


def _exit_code(summary: dict[str, Any], api_key_env: str) -> int:
    regions = summary.get("regions") or {}
    if summary.get("stopped_early"):  # before any success, so the target is unusable as given
        print(f"chatconf load: stopped early: {summary['stopped_early']}"
              + (f" (check {api_key_env})" if "HTTP 401" in summary["stopped_early"] else ""), file=sys.stderr)
        return EXIT_USAGE
    violations = sum(r.get("conformance_violations", 0) for r in regions.values())
    verdicts = summary.get("verdicts") or []
    codes = {c for r in regions.values() for c in r.get("errors_by_code", {})}
    for verdict in verdicts:  # lost workers, error storm, zero completed (loadtests/verdicts.py)
        hint = f" (check {api_key_env})" if verdict.get("name") == "zero_completed" and "401" in codes else ""
        print(f"chatconf load: {console_text(str(verdict.get('message')))}{hint}", file=sys.stderr)
    from loadtests import slo

    missed = slo.failed(summary.get("slo"))
    for result in missed:
        print(f"chatconf load: objective not met: {console_text(slo.describe(result))}", file=sys.stderr)
    if violations:
        print(f"chatconf load: {violations} conformance violations in the streamed responses", file=sys.stderr)
    return EXIT_FAILED if verdicts or missed or violations else EXIT_OK

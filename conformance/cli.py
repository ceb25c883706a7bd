"""`chatconf` command line: argument parsing and exit codes only; each command lives in
conformance/commands/<name>.py and is imported when used (so `chatconf validate` never pays for
Locust or uvicorn imports).

Exit codes (stable, DESIGN.md): 0 all good; 1 conformance failures / validation violations;
2 usage error, unreadable input or unreachable target; 3 internal error (a bug: please report);
4 a report file could not be written (conformance.outputs); 130 interrupted; 143 terminated (SIGTERM,
handled like Ctrl-C: conformance.signals).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, settings
from .errors import UsageError
from .outputs import EXIT_OUTPUT, OutputError
from .redact import console_text
from .signals import EXIT_TERMINATED, Terminated, sigterm_interrupts

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every option's help names its default; the epilog keeps its own line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default in ([], argparse.SUPPRESS)
        if "default" not in text and not unset and action.option_strings:
            text += " (default: %(default)s)"
        return text


_EXITS = {
    "run": "0 no `must` check failed; 1 a `must` check failed (or, with --fail-on should, one warned); "
           "2 usage error or target unusable (preflight); 3 internal error; 130 interrupted (reports marked partial)",
    "validate": "0 every capture valid; 1 violations; 2 usage error or unreadable input; 3 internal error; "
                "130 interrupted",
    "load": "0 run complete and every objective met; 1 an objective failed (--slo; error_rate<=1% by default), "
            "streams broke the stream rules, or a verdict (lost workers, error storm, zero completed); 2 usage error "
            "or target unusable (preflight, or the first requests all failing the same way); 3 internal error; "
            "4 a report could not be written; 130 interrupted (reports marked partial)",
    "mock": "0 stopped by Ctrl-C; 2 usage error (bad flag, port in use); 3 internal error",
    "report": "0 written; 2 usage error or unreadable summary; 3 internal error",
    "proxy": "on Ctrl-C or SIGTERM: 0 no finding at the --fail-on level was seen, 1 one was; 2 usage error "
             "(bad --upstream, port in use, unwritable --record); 3 internal error",
}
_EXAMPLES = {
    "run": ["chatconf run", "chatconf run --region singapore --model qwen-plus --report-dir reports/sg",
            "chatconf run --base-url http://127.0.0.1:8080/v1 --api-key-env GATEWAY_KEY --junit junit.xml",
            "chatconf run -k 'stream or tool' --dry-run"],
    "validate": ["chatconf validate captures/ session.har stream.sse", "chatconf validate --json --strict prod.har"],
    "load": ["chatconf load --users 20 --run-time 30s",
             "chatconf load --regions singapore,virginia --rate 5 --run-time 2m --report-dir reports/load",
             "chatconf load --workers 2 --users 100 --run-time 1m",
             "chatconf load --base-url http://gw:8080/v1 --slo 'ttft_p99<=800ms,tpot_p50<=40ms,error_rate<=1%'",
             "chatconf load --base-url http://gw:8080/v1 --sweep --users 4 --run-time 20s --slo 'ttft_p99<=800ms'",
             "chatconf load --base-url http://gw:8080/v1 --replay reports/prod/recording.jsonl --speed 2 --users 50"],
    "mock": ["chatconf mock --port 8000", "chatconf mock --api-key sk-test --latency singapore --fault no-done"],
    "proxy": ["chatconf proxy --upstream https://dashscope-intl.aliyuncs.com/compatible-mode/v1 --port 8080",
              "chatconf proxy --upstream http://127.0.0.1:8000/compatible-mode/v1 --record traffic.jsonl "
              "--fail-on should"],
    "report": ["chatconf report reports/sg reports/va --label Singapore --label Virginia -o matrix.html",
               "chatconf report reports/ -o all.html   # every report dir below reports/, runs and load runs"],
}


def _epilog(command: str) -> str:
    import textwrap  # here: only the running command's help is built (build_parser)

    examples = "\n".join(f"  {line}" for line in _EXAMPLES[command])
    exits = textwrap.fill(f"exit codes: {_EXITS[command]}", 100, subsequent_indent="  ")
    order = textwrap.fill(f"settings: {settings.ORDER}", 100, subsequent_indent="  ")
    return f"examples:\n{examples}\n\n{exits}\n\n{order}"


def _add_target(p: argparse.ArgumentParser, *, load: bool = False) -> None:
    p.add_argument("--base-url", help="target base URL (ends in /v1); default: the embedded mock")
    if load:
        p.add_argument("--label", help="name for --base-url in reports (default: host name)")
        p.add_argument("--region", action="append", choices=["singapore", "virginia", "beijing"],
                       help="documented region base URL (repeatable)")
        p.add_argument("--regions", help="comma-separated regions, e.g. singapore,virginia")
    else:
        p.add_argument("--region", choices=["singapore", "virginia", "beijing"],
                       help="use the documented base URL of this region")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the API key (default: DASHSCOPE_API_KEY)")
    p.add_argument("--model", help="model id (default: the profile's default model)")
    p.add_argument("--profile", default="dashscope", help="profile name or YAML path (default: dashscope)")


def _run_args(p: argparse.ArgumentParser) -> None:
    _add_target(p)
    p.add_argument("--report-dir", help="write summary.json, recording.jsonl and report.html here")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--max-requests", type=int, help="hard request budget (default: 60 for remote targets)")
    p.add_argument("--examples", type=int, help="Hypothesis examples per property (default: 25 mock, 5 live)")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="only run checks matching this pytest -k expression")
    p.add_argument("--dry-run", action="store_true", help="list the checks and planned request count, send nothing")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds without data before a response counts as hung (default: 20 live, 5 loopback)")
    p.add_argument("--run-timeout", type=float, metavar="S",
                   help="whole-run deadline in seconds (default 900): checks still to come are skipped and "
                        "the run ends within it plus one --timeout-derived exchange deadline")
    p.add_argument("--model-caps", metavar="CAPS",
                   help="what --model can do when the profile does not list it: comma-separated from n, tools, "
                        "no-tools, thinking, thinking-stream-only, thinking-always, stream-only, max-output=N "
                        "(default: tools only)")
    p.add_argument("--fail-on", choices=["must", "should"], default="must",
                   help="exit 1 on failed `must` checks only (default), or on warned `should` checks too")
    p.add_argument("--hypothesis-seed", type=int, metavar="N",
                   help="draw another reproducible set of edge cases (default: the same set every run; "
                        "a run with N is replayed exactly by the same N)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (and nothing else)")
    p.add_argument("--fault", help=argparse.SUPPRESS)  # embedded mock fault mode (self-test)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked)")
    p.add_argument("--profile", default="dashscope", help="profile name or YAML path (default: dashscope)")
    p.add_argument("--format", default="auto", choices=["auto", "har", "sse", "json", "jsonl"],
                   help="capture format (auto: detected per file)")
    p.add_argument("--strict", action="store_true", help="also report unknown fields (as warnings)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="validate N files at once in worker processes (default: the number of cores); the "
                        "output is the same as with -j 1")


def _mock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback exposes the mock)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.add_argument("--profile", default="dashscope", help="profile name or YAML path")
    p.add_argument("--api-key", help="accept only this Bearer token (default: any non-empty token); "
                   "PUT /_mock/faults and POST /_mock/stats/reset then need it too")
    p.add_argument("--control-token", metavar="TOKEN",
                   help="Bearer token for PUT /_mock/faults and POST /_mock/stats/reset instead of the API "
                        "key (set CHATCONF_CONTROL_TOKEN to keep it out of ps); without either, they answer "
                        "only on a loopback --host")
    p.add_argument("--latency", metavar="FILE|NAME", help="latency profile: singapore|virginia|beijing|none or YAML")
    p.add_argument("--fault", action="append", metavar="NAME", help="conformance fault mode (repeatable)")
    p.add_argument("--list-faults", action="store_true", help="list fault modes and exit")
    p.add_argument("--inject", metavar="SPEC", help="fault injection rates, e.g. 429=0.05,500=0.01,drop=0.01")
    p.add_argument("--replay", metavar="CAPTURE",
                   help="serve recorded responses (HAR or JSONL) for matching requests")
    p.add_argument("--seed", type=int, default=0, help="seed for text, jitter and injected faults")
    p.add_argument("--log-requests", action="store_true",
                   help="print one line per chat request received (GET /_mock/requests lists the last 100)")


def _proxy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--upstream", metavar="URL", help="base URL requests are forwarded to (its path prefixes "
                   "every forwarded path), e.g. https://dashscope-intl.aliyuncs.com/compatible-mode/v1")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback exposes the proxy)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port)")
    p.add_argument("--profile", default="dashscope", help="profile name or YAML path (default: dashscope)")
    p.add_argument("--record", metavar="FILE", help="append every chat exchange to this JSONL recording "
                   "(redacted; `chatconf validate` reads it)")
    p.add_argument("--fail-on", choices=["must", "should"], default="must",
                   help="findings that count: `must` rule violations only, or `should` warnings too; they are "
                        "named in an x-chatconf-findings header (non-stream answers) or a log line (streams), "
                        "and make the exit code 1")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to connect and get the first byte of an answer before the client gets a 502")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                   help="seconds of upstream silence in the middle of an answer before the proxy ends it")


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("summaries", nargs="+", metavar="SUMMARY",
                   help="summary.json of `chatconf run` or `chatconf load`, or report directories")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="name of each input in the report, in order (repeatable; default: URL or built-in mock)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")


def _load_args(p: argparse.ArgumentParser) -> None:
    _add_target(p, load=True)
    p.add_argument("--users", type=int, default=10, help="concurrent users (closed loop)")
    p.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    p.add_argument("--run-time", help="bounded run time, e.g. 30s, 2m (default: 10s; with --replay, the "
                                       "capture's span at --speed plus 30 s)")
    p.add_argument("--rate", type=float, help="open loop: target requests per second (all users)")
    p.add_argument("--arrivals", choices=["constant", "poisson"],
                   help="open-loop arrival process, with --rate (default: poisson)")
    p.add_argument("--max-requests", type=int, help="stop after this many requests")
    p.add_argument("--report-dir", help="write summary.json, samples.jsonl and report.html here")
    p.add_argument("--workers", type=int, default=0,
                   help="run N local Locust worker processes under a master (0: one process, no master)")
    p.add_argument("--calibrate", action="store_true",
                   help="measure the harness's own bias against the mock's known latencies")
    p.add_argument("--slo", metavar="SPEC",
                   help="objectives, e.g. 'ttft_p99<=800ms,tpot_p50<=40ms,error_rate<=1%%' (per target: "
                        "'singapore:ttft_p99<=1s'); a failed one is exit 1 (default: error_rate<=1%%; 'none': off)")
    p.add_argument("--prompt-tokens", metavar="DIST",
                   help="prompt length in tokens: N, uniform:LO,HI, normal:MEAN,SD, lognormal:MEDIAN,SIGMA or "
                        "hist:FILE (default: the built-in mix of short and long prompts)")
    p.add_argument("--max-tokens", metavar="DIST", help="max_tokens of each request, a distribution as above")
    p.add_argument("--mix", metavar="WEIGHTS",
                   help="request kinds, e.g. short=50,long=20,tools=15,thinking=15 (the default)")
    p.add_argument("--turns", metavar="DIST",
                   help="multi-turn conversations of this many turns that grow their history")
    p.add_argument("--dataset", metavar="FILE",
                   help="your prompts: JSONL of {\"messages\": [...]} or {\"prompt\": \"...\"}, optional max_tokens")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (prompts, lengths, kinds)")
    p.add_argument("--replay", metavar="CAPTURE",
                   help="send the chat requests of a recording or HAR with their captured timing (open loop); "
                        "the run ends with the capture")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (2: twice as fast)")
    p.add_argument("--sweep", action="store_true",
                   help="capacity search: from --users (or --rate) double the load until an objective is missed, "
                        "then bisect; each target on its own, --run-time per step")
    p.add_argument("--sweep-steps", type=int, default=8, metavar="N", help="at most N steps per target")
    p.add_argument("--sweep-time", type=float, default=900.0, metavar="S",
                   help="whole-sweep time budget in seconds; no step starts that would pass it")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (instead of the table)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run the conformance suite against an endpoint (default: the mock)", _run_args),
    "validate": ("validate captured traffic (HAR, SSE, JSON, JSONL recordings)", _validate_args),
    "mock": ("serve the built-in DashScope-like mock server", _mock_args),
    "proxy": ("validating, recording reverse proxy: point an app's base_url at it", _proxy_args),
    "report": ("render run summaries as HTML (several: a compatibility matrix)", _report_args),
    "load": ("measure streaming latency under load with Locust", _load_args),
}
"""Each subcommand: its one-line help and what adds its arguments (in `chatconf --help` order)."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` the arguments of that one subcommand (the others are
    listed by name and help): building every subcommand's ~100 arguments was ~5 ms of each start-up."""
    parser = _Parser(prog="chatconf", description="Conformance and load testing for OpenAI-compatible "
                     "(DashScope compatible-mode) Chat Completions APIs.")
    parser.add_argument("--version", action="version", version=f"chatconf {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config file (default: chatconf.toml or [tool.chatconf] "
                        "in pyproject.toml, searched upwards; $CHATCONF_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add_arguments) in _COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        command = sub.add_parser(name, help=help_text, formatter_class=_Help, epilog=_epilog(name))
        add_arguments(command)
        command.add_argument("--config", metavar="FILE", help=argparse.SUPPRESS)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names, told without parsing; None when unsure (then every one is built)."""
    value_next = False
    for arg in argv:
        if value_next:
            value_next = False
        elif arg == "--config":
            value_next = True
        elif not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _explicit_config(argv: Sequence[str]) -> str | None:
    """--config FILE wherever it stands (it decides the defaults the parser needs before parsing)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return os.environ.get(settings.CONFIG_ENV) or None


def _parser_and_sources(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, settings.Sources]:
    """The parser, with environment and config-file values as defaults; --help shows where each came
    from. A config file is checked against every command's settings, so then every command is built."""
    config = settings.find_config(Path.cwd(), _explicit_config(argv))
    parser = build_parser(None if config is not None else command_named(argv))
    commands = commands_of(parser)
    sources = settings.apply(commands, os.environ, config)
    for name, origin in sources.origin.items():
        for action in commands[name]._actions:
            if action.dest in origin and action.help not in (None, argparse.SUPPRESS):
                shown = commands[name].get_default(action.dest)
                action.help = f"{action.help} {settings.describe(shown, action.dest, origin[action.dest])}"
    return parser, sources


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser, sources = _parser_and_sources(argv)
    except UsageError as exc:
        print(f"chatconf: error: {console_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command in sources.errors:
        print(f"chatconf {args.command}: error: {sources.errors[args.command]}", file=sys.stderr)
        return EXIT_USAGE
    with sigterm_interrupts() as term:
        code = _run(args)
    return EXIT_TERMINATED if term.received else code


def _run(args: argparse.Namespace) -> int:
    """One command, every way it can end mapped to its exit code (DESIGN.md)."""
    try:
        module = importlib.import_module(f"conformance.commands.{args.command}")
        return int(module.main(args) or 0)
    except UsageError as exc:  # may quote a file, a profile key or a server's text: one safe line
        print(f"chatconf {args.command}: error: {console_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as exc:
        print(f"chatconf {args.command}: error: {console_text(str(exc))}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt as exc:
        print(f"chatconf {args.command}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug in chatconf, never the user's input: keep it to one line
        if os.environ.get("CHATCONF_DEBUG"):
            raise
        print(f"chatconf {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set CHATCONF_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`chatconf proxy --upstream URL`: serve the validating, recording reverse proxy until Ctrl-C.

Flags are checked before anything listens (bad --upstream, port in use, unwritable --record: exit 2,
one line). On Ctrl-C or SIGTERM (a service manager, `docker stop`) the proxy lets the answers in
flight finish, writes the rest of its recording and closes it; the exit code says whether findings at
the --fail-on level were seen (1) or not (0), so a CI job can run an app's tests through the proxy
and fail on what it saw.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from ..errors import UsageError


def main(args: argparse.Namespace) -> int:
    from ..mock.server import MockStartError, bind_socket, prepare_process
    from ..profiles import ProfileError, load_profile
    from ..proxy import ProxyApp, ProxyConfig, UpstreamError
    from ..proxy.server import serve

    if not args.upstream:
        raise UsageError("--upstream URL is required (the API the proxy forwards to)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port")
    for flag, value in (("--timeout", args.timeout), ("--idle-timeout", args.idle_timeout)):
        if not value > 0:
            raise UsageError(f"{flag} must be a positive number of seconds")
    try:
        profile = load_profile(args.profile)
        config = ProxyConfig(upstream=args.upstream, profile=profile, fail_on=args.fail_on,
                             timeout_s=args.timeout, idle_timeout_s=args.idle_timeout, record=args.record)
        app = ProxyApp(config, echo=_echo)
    except (ProfileError, UpstreamError) as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write --record {args.record}: {exc.strerror or exc}") from None
    try:
        sock = bind_socket(args.host, args.port)
    except MockStartError as exc:
        if app.recording is not None:
            app.recording.close()
        raise UsageError(str(exc)) from None
    port = sock.getsockname()[1]
    host = args.host if ":" not in args.host else f"[{args.host}]"
    record = f"; recording to {args.record}" if args.record else ""
    target = app.upstream.origin + app.upstream.base_path
    print(f"chatconf proxy: listening on http://{host}:{port} -> {target} (profile {profile.name}, "
          f"--fail-on {args.fail_on}{record}); point your app's base_url at http://{host}:{port} - Ctrl-C to stop",
          flush=True)
    prepare_process()
    # While it serves, the front server shuts down gracefully on SIGINT and SIGTERM; before and after,
    # SIGTERM is a Ctrl-C too: the default handler would kill the process before the recording is
    # written out and closed.
    signal.signal(signal.SIGTERM, _interrupt)
    # The recording thread holds the GIL while it redacts a line; the loop gets it back within 50 µs
    # instead of the default 5 ms, which would show as 5 ms added to events while exchanges are written
    # (0.2 ms still showed in the tail; see recorder.py for the thread's side of it).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        serve(app.handle, sock)
    finally:
        app.close()
    store = app.findings
    rec = app.recording
    recorded = "" if rec is None else f"; {rec.written} line(s) recorded" + (
        f" (exchanges waited {rec.waits} time(s), {rec.wait_s:.3f} s in all, for the recording to catch up)"
        if rec.waits else "")
    print(f"chatconf proxy: stopped after {store.exchanges} checked exchange(s): {store.total} finding(s), "
          f"{store.failing} at the --fail-on {store.fail_on} level{recorded}", file=sys.stderr, flush=True)
    return 1 if store.failing else 0


SWITCH_INTERVAL_S = 0.00005


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _echo(line: str) -> None:
    print(f"chatconf proxy: {line}", flush=True)

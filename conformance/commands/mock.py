"""`chatconf mock`: serve the built-in DashScope-like mock in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError
from ..redact import console_text


def main(args: argparse.Namespace) -> int:
    from ..mock import faults as fault_registry

    if args.list_faults:
        print("\n".join(fault_registry.describe()))
        return 0
    from ..mock.app import MockApp
    from ..mock.config import ConfigError, MockConfig, parse_inject
    from ..mock.exposure import exposure_warning
    from ..mock.latency import LatencyError
    from ..mock.replay import ReplayError
    from ..mock.server import API_PREFIX, MockStartError, bind_socket, prepare_process, serve, uvicorn_server
    from ..profiles import ProfileError

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port")
    try:
        config = MockConfig(profile=args.profile, api_key=args.api_key, control_token=args.control_token or None,
                            latency=args.latency,
                            faults=fault_registry.check_names(args.fault), inject=parse_inject(args.inject),
                            seed=args.seed, replay=args.replay, host=args.host, port=args.port,
                            log_requests=bool(args.log_requests))
        app = MockApp(config)
    except (ConfigError, LatencyError, ReplayError, ProfileError, fault_registry.FaultError) as exc:
        raise UsageError(str(exc)) from None
    try:
        sock = bind_socket(args.host, args.port)
    except MockStartError as exc:
        raise UsageError(str(exc)) from None
    port = sock.getsockname()[1]
    warning = exposure_warning(config)
    if warning:
        print(console_text(warning), file=sys.stderr, flush=True)
    host = args.host if ":" not in args.host else f"[{args.host}]"
    extras = []
    if config.faults:
        extras.append(f"faults: {', '.join(config.faults)}")
    if config.inject:
        extras.append("inject: " + ",".join(f"{k}={v:g}" for k, v in config.inject.items()))
    if config.replay:
        extras.append(f"replay: {config.replay}")
    tail = f"; {'; '.join(extras)}" if extras else ""
    print(f"chatconf mock: serving http://{host}:{port}{API_PREFIX} (profile {app.profile.name}, "
          f"{app.latency.label()}; /_sim/<preset>{API_PREFIX} for other presets{tail}) - Ctrl-C to stop",
          flush=True)
    if not config.api_key:
        print("chatconf mock: accepting any non-empty API key (start with --api-key KEY to test authentication; "
              "until then `chatconf run` reports the auth checks as skipped)", flush=True)
    server = uvicorn_server(app)
    prepare_process()
    serve(server, sock)
    print("chatconf mock: stopped", file=sys.stderr)
    return 0

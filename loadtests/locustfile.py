"""chatconf streaming load test for Locust: `locust -f loadtests/locustfile.py` (web UI or --headless).

One user class per region of the profile (SingaporeUser, VirginiaUser, BeijingUser) plus
CustomUser for a base URL with a label. Configure with the `--chatconf-*` arguments or their
CHATCONF_* environment variables (listed by `python -m loadtests.locustfile --help`); with no target
the master starts the embedded mock and loads its simulated regions. Every request streams with
`stream_options.include_usage`; timings come from loadtests.client (bytes timestamped on arrival),
metrics from loadtests.metrics, and the exact report from the master's raw samples.

Examples:
    locust -f loadtests/locustfile.py --headless -u 20 -r 20 -t 30s --chatconf-report-dir reports/load
    CHATCONF_REGIONS=singapore,virginia locust -f loadtests/locustfile.py        # web UI
    locust -f loadtests/locustfile.py --master --expect-workers 2 ...  +  locust -f ... --worker
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a file by `locust -f`: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent
from locust import User, constant, events, task
from locust.runners import WorkerRunner

from loadtests import options as _opt
from loadtests import slo
from loadtests.backoff import Backoff
from loadtests.client import StreamClient
from loadtests.runtime import LoadRuntime
from loadtests.webui import install as install_web_ui
from loadtests.workload import Workload, workload_shape

RUNTIME: LoadRuntime | None = None


class ChatStreamUser(User):
    """One simulated client: a keep-alive connection, a seeded request mix, one stream at a time."""

    abstract = True
    region = ""
    wait_time = constant(0)

    def on_start(self) -> None:
        rt = _runtime()
        self.label, url = rt.target_for(self.region)
        self.client = StreamClient(url, rt.api_key(), timeout=float(rt.opts.chatconf_timeout or 60.0))
        seed = rt.user_seed()
        self.workload = Workload(rt.model, mix=rt.mix, seed=seed, shape=rt.shape)
        self.backoff = Backoff(seed)  # waits after 429/503 and refused connections

    def on_stop(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()

    @task
    def chat(self) -> None:
        _runtime().run_one(self)


class SingaporeUser(ChatStreamUser):
    region = "singapore"


class VirginiaUser(ChatStreamUser):
    region = "virginia"


class BeijingUser(ChatStreamUser):
    region = "beijing"


class CustomUser(ChatStreamUser):
    """The target given by --chatconf-base-url / --chatconf-label (or a non-region label)."""

    region = "*"


def _runtime() -> LoadRuntime:
    if RUNTIME is None:  # pragma: no cover - Locust always fires init first
        raise RuntimeError("chatconf runtime not initialised")
    return RUNTIME


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kw) -> None:
    _opt.add_arguments(parser)


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    global RUNTIME
    try:
        _init(environment)
    finally:
        # gevent caches the loop's clock; after a slow start-up (imports, the mock) it is stale and
        # Locust's --run-time timer would fire early. Refresh it before Locust arms the timer.
        gevent.get_hub().loop.update_now()


def _init(environment) -> None:
    global RUNTIME
    RUNTIME = LoadRuntime(environment)
    RUNTIME.register_messages()
    install_web_ui(environment, RUNTIME)
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return  # workers learn their targets from the master's spawn message
    try:
        RUNTIME.setup_targets()
        workload_shape(environment.parsed_options)  # a bad --chatconf-prompt-tokens etc.: exit 2 now
        RUNTIME.objectives = slo.parse(environment.parsed_options.chatconf_slo or None,
                                       labels=RUNTIME.targets.by_label if RUNTIME.targets else ())
    except (ValueError, LookupError) as exc:
        message = str(exc).replace("--slo ", "--chatconf-slo ", 1) if isinstance(exc, slo.SLOError) else exc
        sys.stderr.write(f"chatconf: error: {message}\n")
        raise SystemExit(2) from None
    labels = set(RUNTIME.targets.by_label) if RUNTIME.targets else set()
    custom = any(label not in _opt.REGION_NAMES for label in labels)
    keep = [cls for cls in environment.user_classes if (cls.region in labels) or (cls.region == "*" and custom)]
    if keep:
        environment.user_classes[:] = keep


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    _runtime().on_test_start()


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kw) -> None:
    _runtime().on_test_stopping()


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw) -> None:
    _runtime().on_test_stop()


@events.quitting.add_listener
def _on_quitting(environment, **_kw) -> None:
    if RUNTIME is not None:
        RUNTIME.on_quitting()


if __name__ == "__main__":  # `python -m loadtests.locustfile --help`: the --chatconf-* options
    raise SystemExit(_opt.main())

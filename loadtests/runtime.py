"""Per-process state of a chatconf Locust run: targets, the request loop, sample shipping, reports.

Roles: a local runner does everything itself; in distributed mode workers send users' raw samples
(plus event-loop lag and CPU readings) to the master every second with Locust custom messages,
and when the test stops the master asks every worker for its last samples and waits for all of
them before it writes the report. So the merged report is exact: it holds every request every
worker finished before the stop, computed from raw values.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import deque
from typing import Any

import gevent
from gevent.event import Event
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from conformance import __version__
from conformance.descriptors import reserve_descriptors
from conformance.outputs import OutputError
from conformance.profiles import ProfileError, load_profile
from conformance.redact import console_text, redact_obj, redact_text, register_secret

from . import options as opt
from .aggregate import Collector, make_sample
from .checking import check_stream
from .client import arrival_clock
from .gcpace import pace_collections, settle_heap
from .metrics import StreamMetrics, stream_metrics
from .report_console import format_progress, format_table
from .report_files import REPORT_ERROR, write_reports
from .shapes import Budget, LagMonitor, OpenLoop, ReplayLoop, share
from .verdicts import failure_signature
from .workload import Planned, parse_mix, workload_shape

log = logging.getLogger("chatconf.load")
SEND_INTERVAL = 1.0
FLUSH_TIMEOUT = 15.0
PROGRESS_INTERVAL = 2.0
CHAT_PATH = "/chat/completions"
# Events of finished streams waiting to be scored (metrics, conformance check, Locust events), about
# 100 MB. Scoring waits for idle moments of the loop, between reads; past this budget the generator is
# saturated and `run_one` scores one stream itself before its next request (back-pressure, bounded
# memory). A count of streams was too small: answers of one length end together in a closed loop, and
# hundreds of users each scoring inline in the same loop turn held every read back for 100+ ms.
SCORE_BACKLOG_EVENTS = 200_000
# A run whose first FAIL_FAST_N finished requests all failed the same way (same HTTP status and
# error code, or same transport error) stops there instead of running its whole duration.
FAIL_FAST_N = 20



def answer_text(ex: Any) -> str:
    """The content a stream delivered (for a conversation's history); empty when it broke."""
    parts = []
    for ev in ex.events or ():
        if ev.is_done:
            continue
        try:
            chunk = ev.json
        except ValueError:
            continue
        for choice in (chunk.get("choices") or []) if isinstance(chunk, dict) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                parts.append(delta["content"])
    return "".join(parts)

class FailFast:
    """Watches the first finished requests of a run: `add` returns the reason to stop once the first
    `n` all failed the same way; a success or a different failure settles it for the whole run."""

    def __init__(self, n: int = FAIL_FAST_N):
        self.n = n
        self.count = 0
        self.signature: str | None = None
        self.settled = False

    def add(self, samples: Any) -> str | None:
        for sample in samples:
            if self.settled:
                return None
            sig = failure_signature(sample)
            if sig is None or (self.signature is not None and sig != self.signature):
                self.settled = True
                return None
            self.signature = sig
            self.count += 1
            if self.count >= self.n:
                self.settled = True
                return f"the first {self.n} requests all failed the same way ({sig})"
        return None


class LoadFailure(Exception):
    """What Locust's failure table shows for a failed stream (status / error code)."""


def _progress_stream() -> Any:
    fd = os.environ.get("CHATCONF_PROGRESS_FD")
    if fd and fd.isdigit():
        try:
            return os.fdopen(int(fd), "w", buffering=1, closefd=False)
        except OSError:
            pass
    return sys.stderr


class LoadRuntime:
    def __init__(self, environment: Any):
        self.env = environment
        self.runner = environment.runner
        self.is_master = isinstance(self.runner, MasterRunner)
        self.is_worker = isinstance(self.runner, WorkerRunner)
        self.collector = Collector()
        self.pending: list[dict[str, Any]] = []
        self.plan = (0, 1)
        self.open_loop: OpenLoop | None = None
        self.replay: ReplayLoop | None = None
        self.budget: Budget | None = None
        self.monitor = LagMonitor()
        self.stopping = False
        self.cancelled = 0
        self.mock: Any = None
        self.targets: opt.Targets | None = None
        self.resolved: opt.Targets | None = None  # master/local: the targets named at init
        self.idle_host = ""  # what Locust's Host showed before the run (the resolved targets)
        self.finals: set[int] = set()
        self.budget_done: set[int] = set()
        self.fail_fast = FailFast()
        self.stopped_early: str | None = None
        self._greenlets: list[gevent.Greenlet] = []
        self._user_seq = 0
        self.objectives: list[Any] = []  # plain Locust's --chatconf-slo (`chatconf load` judges its own)
        self._entry = 0
        self.sent = 0
        self.in_flight = 0
        self.backoffs = 0
        self.backoff_s = 0.0
        self.ends_at: float | None = None  # time.monotonic() of the run's end, when it has one
        self.worker_index: dict[str, int] = {}  # master: Locust client id -> plan index, at test start
        self.expected_workers = 0
        self.users_running: int | None = None
        self.out = _progress_stream()
        # Finished streams are scored by one greenlet when the event loop is idle, so the ~1 ms of
        # JSON parsing and rule checks per stream never runs while other streams' bytes wait.
        self._to_score: deque[tuple[Any, ...]] = deque()
        self._backlog_events = 0
        self._score_wake = Event()

    # -- configuration --------------------------------------------------------------------

    @property
    def opts(self) -> Any:
        return self.env.parsed_options

    def setup_targets(self) -> None:
        """Master/local, at init: name the targets (starting the embedded mock when none was given)
        and show them as Locust's Host, so the web UI has one while idle."""
        profile = load_profile(self.opts.chatconf_profile or "dashscope")
        targets = opt.resolve_static(self.opts, profile.regions)
        host = (self.env.host or "").strip()
        if host and targets is not None:
            raise ValueError("give the target either as Locust's --host or as --chatconf-* options, not both")
        if host:
            targets = opt.Targets(opt.targets_from_host(host), opt.truthy(self.opts.chatconf_simulated))
        if targets is None:
            from conformance.mock import MockConfig, MockServer

            self.mock = MockServer(MockConfig(profile=self.opts.chatconf_profile or "dashscope"), own_session=True)
            self.mock.start()
            regions = list(profile.regions) or list(opt.REGION_NAMES)
            targets = opt.Targets({r: self.mock.url_for(r) for r in regions}, simulated=True)
        self.resolved = self.targets = targets
        self.idle_host = self.env.host = opt.host_text(targets)
        self._announce_targets(targets)

    def _announce_targets(self, targets: opt.Targets) -> None:
        # workers receive these in the spawn message (custom arguments travel master -> worker)
        self.opts.chatconf_targets = targets.encode()
        self.opts.chatconf_simulated = "1" if targets.simulated else ""

    def _targets_for_run(self) -> opt.Targets:
        """Master/local, at test start: the targets named at init, unless the Host was changed (in
        the web UI) to another base URL: then that one, as a custom target for every user class."""
        host = (self.env.host or "").strip()
        assert self.resolved is not None
        if not host or host == self.idle_host:
            return self.resolved
        simulated = self.mock is not None and host.startswith(self.mock.root_url + "/")
        return opt.Targets(opt.targets_from_host(host), simulated)

    def _configure(self) -> None:
        """Every role, at test start: profile, model, mix (options may have changed in the web UI)."""
        o = self.opts
        self.profile = load_profile(o.chatconf_profile or "dashscope")
        self.model = self.profile.model(o.chatconf_model or self.profile.default_model)
        self.mix = parse_mix(o.chatconf_mix)
        self.shape = workload_shape(o)
        self.targets = opt.Targets(opt.parse_targets(o.chatconf_targets), opt.truthy(o.chatconf_simulated))
        env_name = o.chatconf_api_key_env or self.profile.api_key_env
        self._api_key = os.environ.get(env_name) or (opt.MOCK_TOKEN if self.targets.simulated else None)
        # in this process too: error bodies, codes and headers a server echoes it in are redacted
        register_secret(os.environ.get(env_name))
        self.check = not opt.truthy(o.chatconf_no_check)

    def api_key(self) -> str | None:
        return self._api_key

    def target_for(self, region: str) -> tuple[str, str]:
        assert self.targets is not None
        by_label = self.targets.by_label
        if region in by_label:
            return region, by_label[region]
        # a region with no target of its own (the Host changed in the web UI) and CustomUser
        custom = [label for label in by_label if label not in opt.REGION_NAMES]
        if custom:
            return custom[0], by_label[custom[0]]
        raise LookupError(f"no target for {region!r}")

    def user_seed(self) -> int:
        self._user_seq += 1
        return int(self.opts.chatconf_seed or 0) * 1_000_003 + self.plan[0] * 10_007 + self._user_seq

    def meta(self) -> dict[str, Any]:
        o = self.opts
        targets = self.targets.by_label if self.targets else {}
        simulated = bool(self.targets and self.targets.simulated)
        target: dict[str, Any] = {
            "base_url": next(iter(targets.values()), None),
            "base_urls": dict(targets),
            "model": o.chatconf_model or load_profile(o.chatconf_profile or "dashscope").default_model,
            "profile": o.chatconf_profile or "dashscope",
            "simulated": simulated,
        }
        if simulated:
            target["label"] = "simulated"
            target["note"] = "SIMULATED: the embedded mock with region latency presets, not real DashScope"
        users = getattr(self.runner, "target_user_count", None) or getattr(o, "num_users", None)
        return {
            "version": __version__,
            "target": target,
            "users": users,
            "labels": list(targets),
            "arrival_clock": {label: arrival_clock(url) for label, url in targets.items()},
            "simulated": simulated,
            "mode": "open" if o.chatconf_rate else "closed",
            "rate": o.chatconf_rate or None,
            "arrivals": o.chatconf_arrivals if o.chatconf_rate else None,
            "workers": len(self.runner.clients.all) if self.is_master else 0,
            "max_requests": o.chatconf_max_requests or None,
            **({"replay": {"capture": o.chatconf_replay, "speed": float(o.chatconf_speed or 1.0)}}
               if o.chatconf_replay else {}),
        }

    # -- lifecycle ------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Pay one-time costs (schema compilation, first JSON parse) before the first stream is timed."""
        from conformance.exchange import Exchange, HTTPRequest
        from conformance.sse import decode_bytes

        body = (
            b'data: {"id":"chatcmpl-w","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
            b'"usage":null}\n\ndata: [DONE]\n\n'
        )
        ex = Exchange(
            request=HTTPRequest(body={"model": "m", "stream": True}),
            status=200,
            headers={"content-type": "text/event-stream"},
            events=decode_bytes(body),
            t_send_ns=0,
        )
        stream_metrics(ex)
        if self.check:
            with contextlib.suppress(Exception):
                check_stream(ex, self.profile)

    def on_test_start(self) -> None:
        if not self.is_worker:
            self._announce_targets(self._targets_for_run())
        self._configure()
        self._warm_up()
        if not self.is_master:
            settle_heap()  # collections of a big heap stall every socket read behind them (gcpace.py)
            reserve_descriptors()   # one socket per user: growing the table later stalls every read
        self.stopping = False
        self.cancelled = 0
        self.sent = 0
        self.in_flight = 0
        self.pending = []
        self.finals = set()
        self.budget_done = set()
        self.fail_fast = FailFast()
        self.stopped_early = None
        self.backoffs = 0
        self.backoff_s = 0.0
        self.users_running = None
        run_time = getattr(self.opts, "run_time", None)
        if not self.is_worker:
            self.ends_at = time.monotonic() + run_time if run_time else None
        self.collector.reset()
        if self.is_master:
            clients = sorted(c.id for c in self.runner.clients.all)
            self.worker_index = {cid: i for i, cid in enumerate(clients)}
            self.expected_workers = max(len(clients), int(getattr(self.opts, "expect_workers", 0) or 0))
            for i, cid in enumerate(clients):
                plan = {"index": i, "count": len(clients), "remaining_s": run_time}
                self.runner.send_message("chatconf_plan", plan, client_id=cid)
            self.plan = (0, max(1, len(clients)))
            self._spawn(self._progress_loop)
            return
        index, count = self.plan if self.is_worker else (0, 1)
        o = self.opts
        labels = list(self.targets.by_label) if self.targets else []
        if o.chatconf_rate and labels:
            rate = o.chatconf_rate / len(labels) / count
            self.open_loop = OpenLoop(
                labels,
                rate,
                o.chatconf_arrivals,
                seed=int(o.chatconf_seed or 0) + index,
                phase=index / count if o.chatconf_arrivals == "constant" else 0.0,
            )
            self.open_loop.start()
        limit = share(int(o.chatconf_max_requests), index, count) if o.chatconf_max_requests else None
        if o.chatconf_replay:
            from .replay import load_replay

            mine = load_replay(o.chatconf_replay, model=o.chatconf_replay_model or None)[index::count]
            self.replay = ReplayLoop(mine, float(o.chatconf_speed or 1.0))
            self.replay.start()
            limit = len(mine) if limit is None else min(limit, len(mine))  # the run ends with the capture
        self.budget = Budget(limit, self._budget_exhausted)
        if limit == 0:
            self._budget_exhausted()
        self.monitor.start()
        self._to_score.clear()
        self._backlog_events = 0
        self._spawn(self._score_loop)
        self._spawn(pace_collections)
        if self.is_worker:
            self._spawn(self._send_loop)
        else:
            self._spawn(self._progress_loop)

    def on_test_stopping(self) -> None:
        self.score_all()  # streams that finished before the stop are samples, not cancellations
        if self.stopping:
            return
        self.stopping = True
        self.collector.stopped = time.time()
        if self.open_loop is not None:
            self.open_loop.stop()
            self.open_loop = None
        if self.replay is not None:
            self.replay.stop()
            self.replay = None
        if self.is_master:
            self._collect_finals()
        elif not self.is_worker:
            lag, cpu = self.monitor.drain()
            self.collector.add_health(0, lag, cpu)
            self.users_running = self.runner.user_count
            self.collector.add_worker(0, **self._counters(), in_flight_at_stop=self.in_flight)
        self.monitor.stop()

    def on_test_stop(self) -> None:
        if self.is_worker:
            self._kill_greenlets()
            self.score_all()
            return
        self.on_test_stopping()  # idempotent; covers runners that skip test_stopping
        self._kill_greenlets()
        self.score_all()
        meta = self.meta()
        if self.is_master:
            check = self._worker_check()
            meta.update(workers=self.expected_workers, workers_reporting=len(check["reporting"]), lost_workers=check)
        meta["users_running"] = self.users_running
        summary = self.collector.build_summary(meta)
        if summary["verdicts"]:
            self.env.process_exit_code = 1  # plain `locust -f` exits 1 too
        if self.objectives and not os.environ.get("CHATCONF_EMBEDDED"):
            self._judge(summary)
        if self.stopped_early:
            summary["stopped_early"] = self.stopped_early
        report_dir = self.opts.chatconf_report_dir
        if report_dir:
            try:
                write_reports(report_dir, summary, self.collector.samples)
            except OutputError as exc:  # the parent (`chatconf load`) reads this line on the progress pipe
                log.error("chatconf: %s", exc)
                print(f"{REPORT_ERROR}{exc}", file=self.out, flush=True)
        if not os.environ.get("CHATCONF_EMBEDDED"):
            print(format_table(summary), file=self.out, flush=True)

    def _judge(self, summary: dict[str, Any]) -> None:
        """Plain `locust -f`: the objectives on the exact samples, as `chatconf load` judges them
        (loadtests/slo.py): in the summary and reports, a log line per miss, and exit code 1."""
        from . import slo

        summary["slo"] = slo.evaluate(self.objectives, self.collector.samples, float(summary.get("duration_s") or 0.0))
        missed = slo.failed(summary["slo"])
        for result in missed:
            log.error("chatconf: objective not met: %s", console_text(slo.describe(result)))
        if missed:
            self.env.process_exit_code = 1

    def on_quitting(self) -> None:
        """Locust is shutting down (SIGINT, SIGTERM, the end of a headless run): stop the users
        first, then the embedded mock, so no request in flight sees the mock vanish and counts
        as a connect_error. Locust's own shutdown fires this before it stops the runner."""
        if self.runner is not None and not self.is_worker:
            self.runner.stop()
        if self.mock is not None:
            try:
                self.mock.stop()
            finally:
                self.mock = None

    def _spawn(self, fn: Any) -> None:
        self._greenlets.append(gevent.spawn(fn))

    def _kill_greenlets(self) -> None:
        for g in self._greenlets:
            g.kill(block=False)
        self._greenlets.clear()

    # -- requests -------------------------------------------------------------------------

    def run_one(self, user: Any) -> None:
        if self.stopping:
            gevent.sleep(0.2)
            return
        t_sched = None
        replayed = None
        if self.replay is not None:
            ticket = self.replay.take(timeout=0.5)
            if ticket is None:
                return
            t_sched, replayed = ticket
        elif self.open_loop is not None:
            t_sched = self.open_loop.take(user.label, timeout=0.5)
            if t_sched is None:
                return
        if self.budget is not None and not self.budget.take():
            gevent.sleep(0.5)
            return
        queued = False
        try:
            plan = Planned("replay", replayed) if replayed is not None else user.workload.next()
            self._entry += 1
            self.sent += 1
            self.in_flight += 1
            t_wall = time.time()
            try:
                ex, raw = user.client.post_stream_raw(CHAT_PATH, plan.body, entry=self._entry)
            finally:
                self.in_flight -= 1
            if user.workload.sessions:  # the next turn carries this answer
                if raw is not None:
                    ex.events, raw = raw.events(), None
                user.workload.answered(answer_text(ex))
            item = (ex, raw, t_sched, user, plan.kind, t_wall)
            self._to_score.append(item)
            self._backlog_events += _weight(item)
            queued = True
            self._score_wake.set()
            if self._backlog_events > SCORE_BACKLOG_EVENTS:
                self._score(self._to_score.popleft())
        finally:
            if not queued and self.budget is not None:
                self.budget.release()
        self._back_off(user.backoff.delay_after(ex))

    def _back_off(self, delay: float) -> None:
        """Wait before this user's next request (outside any timed section), never past the run's end."""
        if delay <= 0:
            return
        if self.ends_at is not None:
            delay = min(delay, max(0.0, self.ends_at - time.monotonic()))
        self.backoffs += 1
        start = time.monotonic()
        try:
            gevent.sleep(delay)
        finally:  # the time really waited (a stop cuts the wait short)
            self.backoff_s += time.monotonic() - start

    def _counters(self) -> dict[str, Any]:
        """This process's running totals, sent to the master with every batch of samples."""
        return {"sent": self.sent, "backoffs": self.backoffs, "backoff_s": round(self.backoff_s, 3)}

    def _score_loop(self) -> None:
        """Score finished streams one at a time, each when the event loop has nothing else to do."""
        queue, wake = self._to_score, self._score_wake
        while True:
            if not queue:
                wake.clear()
                wake.wait()
                continue
            gevent.idle()
            if queue:
                self._score(queue.popleft())

    def score_all(self) -> None:
        """Score every finished stream still waiting (at the stop, before reports and flushes)."""
        while self._to_score:
            self._score(self._to_score.popleft())

    def _score(self, item: tuple[Any, ...]) -> None:
        """Metrics, conformance check, sample and Locust events of one finished stream."""
        ex, raw, t_sched, user, kind, t_wall = item
        self._backlog_events -= _weight(item)
        try:
            if raw is not None:  # kept raw while in flight (conformance/rawstream.py)
                ex.events = raw.events()
            m = stream_metrics(ex, t_sched)
            violations = check_stream(ex, self.profile) if self.check else []
            # what a server wrote (error codes, transport errors quoting its bytes, rule evidence)
            # may echo the API key: redact before it becomes a sample, a Locust failure or a log line
            if m.error_code:
                m.error_code = redact_text(m.error_code)
            if ex.transport_error:
                ex.transport_error = redact_text(ex.transport_error)
            if violations:
                violations = redact_obj(violations)
            request_id = ex.headers.get("x-request-id") or ex.headers.get("x-dashscope-request-id")
            sample = make_sample(
                m,
                region=user.label,
                kind=kind,
                t_wall=t_wall,
                worker=self.plan[0],
                violations=violations,
                request_id=request_id,
            )
            if ex.transport_error and m.error in ("connect_error", "timeout", "dropped"):
                sample["transport_error"] = ex.transport_error[:200]
            self._record(sample)
            self._fire(user, m, ex.transport_error)
        finally:
            if self.budget is not None:
                self.budget.release()

    def _record(self, sample: dict[str, Any]) -> None:
        if self.stopping:
            self.cancelled += 1
            return
        if self.is_worker:
            self.pending.append(sample)
            if self.fail_fast.add((sample,)):
                self._flush_pending()  # the master decides; don't make it wait for the next send
        else:
            self.collector.add((sample,))
            self._check_fail_fast((sample,))

    def _check_fail_fast(self, samples: Any) -> None:
        reason = self.fail_fast.add(samples)
        if reason and not self.stopped_early:
            self.stopped_early = reason
            log.warning("chatconf: %s, stopping early", reason)
            gevent.spawn(self._stop_run, f"{reason}, stopping early")

    def _fire(self, user: Any, m: StreamMetrics, transport_error: str | None) -> None:
        """One Locust request event per stream, so Locust's request count and RPS are the real ones.
        The latency metrics (TTFT, ITL, TPOT...) are not Locust rows: they come from the exact
        samples (console table, reports, the web UI's chatconf tab, loadtests.webui)."""
        exception = None
        if not m.ok:
            what = m.error or "failed"
            if m.error_code:
                what = f"{what} {m.error_code}"
            elif transport_error and m.error in ("connect_error", "timeout", "dropped"):
                what = f"{what}: {transport_error[:80]}"
            exception = LoadFailure(what)
        user.environment.events.request.fire(
            request_type="STREAM",
            name=user.label,
            response_time=(m.e2e_stream_ms if m.ok else m.e2e_stream_ms or m.headers_ms) or 0.0,
            response_length=(m.completion_tokens or 0) if m.ok else 0,
            exception=exception,
            context={},
        )

    # -- budget ---------------------------------------------------------------------------

    def _budget_exhausted(self) -> None:
        if self.is_worker:
            self._flush_pending()
            self.runner.send_message("chatconf_budget_done", {"worker": self.plan[0]})
        else:
            gevent.spawn(self._stop_run, "--max-requests reached")

    def _stop_run(self, reason: str) -> None:
        log.info("chatconf: %s, stopping", reason)
        if getattr(self.opts, "headless", False):
            self.runner.quit()
        else:
            self.runner.stop()

    # -- messages (distributed mode) ------------------------------------------------------

    def register_messages(self) -> None:
        if self.is_worker:
            self.runner.register_message("chatconf_plan", self._on_plan)
            self.runner.register_message("chatconf_flush", self._on_flush)
        elif self.is_master:
            self.runner.register_message("chatconf_samples", self._on_samples)
            self.runner.register_message("chatconf_final", self._on_final)
            self.runner.register_message("chatconf_budget_done", self._on_budget_done)

    def _on_plan(self, environment: Any, msg: Any) -> None:
        self.plan = (int(msg.data["index"]), int(msg.data["count"]))
        remaining = msg.data.get("remaining_s")
        self.ends_at = time.monotonic() + float(remaining) if remaining else None

    def _drain(self) -> dict[str, Any]:
        samples, self.pending = self.pending, []
        lag, cpu = self.monitor.drain()
        return {"worker": self.plan[0], "samples": samples, "lag": lag, "cpu": cpu, **self._counters()}

    def _flush_pending(self) -> None:
        if self.pending:
            self.runner.send_message("chatconf_samples", self._drain())

    def _send_loop(self) -> None:
        while True:
            gevent.sleep(SEND_INTERVAL)
            self.runner.send_message("chatconf_samples", self._drain())

    def _on_flush(self, environment: Any, msg: Any) -> None:
        self.score_all()
        self.stopping = True
        if self.open_loop is not None:
            self.open_loop.stop()
            self.open_loop = None
        self._kill_greenlets()
        data = self._drain()
        self.monitor.stop()
        data["in_flight"] = self.in_flight
        data["users"] = self.runner.user_count
        self.runner.send_message("chatconf_final", data)

    def _on_samples(self, environment: Any, msg: Any) -> None:
        data = msg.data
        if self.stopping and int(data["worker"]) in self.finals:
            return
        self.collector.add(data["samples"])
        self.collector.add_health(int(data["worker"]), data.get("lag", ()), data.get("cpu", ()))
        self._record_counters(data)
        self._check_fail_fast(data["samples"])

    def _record_counters(self, data: dict[str, Any], **final: Any) -> None:
        counters = {k: data[k] for k in ("sent", "backoffs", "backoff_s") if k in data}
        self.collector.add_worker(int(data["worker"]), **counters, **final)

    def _on_final(self, environment: Any, msg: Any) -> None:
        data = msg.data
        self.collector.add(data["samples"])
        self.collector.add_health(int(data["worker"]), data.get("lag", ()), data.get("cpu", ()))
        self._record_counters(data, in_flight_at_stop=int(data.get("in_flight", 0)), users=int(data.get("users", 0)))
        self.finals.add(int(data["worker"]))

    def _on_budget_done(self, environment: Any, msg: Any) -> None:
        self.budget_done.add(int(msg.data["worker"]))
        if len(self.budget_done) >= self.plan[1]:
            gevent.spawn(self._stop_run, "--max-requests reached on every worker")

    def _collect_finals(self) -> None:
        """Ask every worker for its last samples; wait for all but the ones Locust already lost
        (no heartbeat: killed or cut off), up to FLUSH_TIMEOUT."""
        clients = list(self.runner.clients.all)
        for client in clients:
            if client.state != STATE_MISSING:
                self.runner.send_message("chatconf_flush", {}, client_id=client.id)
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while time.monotonic() < deadline and any(
            c.state != STATE_MISSING and self.worker_index.get(c.id) not in self.finals for c in clients
        ):
            gevent.sleep(0.05)
        missing = len(clients) - len(self.finals)
        if missing > 0:
            log.warning("chatconf: %d of %d workers did not send their final samples", missing, len(clients))

    def _worker_check(self) -> dict[str, Any]:
        """Workers expected vs. reporting at the end, and the users that were really running."""
        lost = sorted(i for i in self.worker_index.values() if i not in self.finals)
        for index in lost:
            self.collector.add_worker(index, lost=True)
        users = sum(self.collector.workers.get(i, {}).get("users", 0) for i in self.finals)
        self.users_running = users
        return {
            "expected": self.expected_workers,
            "reporting": sorted(self.finals),
            "lost": lost,
            "users": getattr(self.runner, "target_user_count", None),
            "users_running": users,
        }

    # -- progress -------------------------------------------------------------------------

    def _progress_loop(self) -> None:
        if opt.truthy(self.opts.chatconf_quiet):
            return
        seen = 0
        while True:
            gevent.sleep(PROGRESS_INTERVAL)
            samples = self.collector.samples
            recent = samples[seen:]
            seen = len(samples)
            users = getattr(self.runner, "user_count", 0)
            line = format_progress(
                time.time() - self.collector.started,
                users,
                samples,
                recent,
                backlog=self.open_loop.backlog() if self.open_loop else None,
            )
            print(line, file=self.out, flush=True)


def _weight(item: tuple[Any, ...]) -> int:
    """What a finished stream costs in the scoring backlog: its events or raw pieces (at least one)."""
    ex, raw = item[0], item[1]
    return (raw.pieces if raw is not None else len(ex.events or ())) + 1


def check_profile(name: str) -> None:
    try:
        load_profile(name)
    except ProfileError as exc:
        raise SystemExit(f"chatconf: {exc}") from None

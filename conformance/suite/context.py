"""Everything a suite run shares: settings, the target (started mock or remote), the client with
its budget, the scenario traffic, the recording and the collected results."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import ChatClient, ClientConfig
from ..exchange import Exchange
from ..outputs import OutputError
from ..profiles import ModelInfo, Profile, load_profile, parse_model_caps, with_model
from ..recording import RecordingWriter
from ..redact import register_secret, scrub_summary
from ..results import CheckResult, RunSummary
from ..rules import LiveStreamCheck
from ..targets import MOCK_KEY, Target, is_loopback, read_api_key, resolve_target
from .scenarios import Traffic

LIVE_MAX_REQUESTS = 60
LIVE_EXAMPLES = 5
MOCK_EXAMPLES = 25
LIVE_RATE_PER_S = 2.0
RUN_TIMEOUT_S = 900.0
"""Default whole-run deadline: a run ends within it plus one exchange deadline, whatever the target does."""


@dataclass
class SuiteSettings:
    base_url: str | None = None
    region: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    profile: str = "dashscope"
    max_requests: int | None = None
    examples: int | None = None
    report_dir: str | None = None
    junit: str | None = None
    faults: tuple[str, ...] = ()
    console: bool = False
    quiet: bool = False
    timeout_s: float | None = None
    fail_on: str = "must"
    model_caps: str | None = None
    run_timeout_s: float | None = None
    hypothesis_seed: int | None = None


@dataclass
class SuiteContext:
    settings: SuiteSettings
    profile: Profile = field(init=False)
    target: Target = field(init=False)
    model: str = field(init=False)
    api_key_env: str = field(init=False)
    results: dict[str, CheckResult] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)
    stopped: str | None = None     # why the run stopped starting checks (deadline, unresponsive target)
    params_seen: int = 0           # rejections whose documented error names a param (error.param-named)
    param_mismatches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    summary: RunSummary | None = None
    _client: ChatClient | None = None
    _mock: Any = None
    _traffic: Traffic | None = None
    _recording: RecordingWriter | None = None
    output_error: OutputError | None = None  # the first report file that could not be written
    _exchanges: int = 0

    def __post_init__(self) -> None:
        s = self.settings
        self.profile = load_profile(s.profile)
        self.target = resolve_target(self.profile, base_url=s.base_url, region=s.region)
        self.model = s.model or self.profile.default_model
        if s.model_caps is not None:
            self.profile = with_model(self.profile, self.model, parse_model_caps(s.model_caps))
        self.api_key_env = s.api_key_env or self.profile.api_key_env

    # -- target and client, started on first use -------------------------------------------------

    @property
    def is_live(self) -> bool:
        return not self.target.is_mock and not is_loopback(self.target.base_url or "")

    @property
    def examples(self) -> int:
        if self.settings.examples is not None:
            return max(1, self.settings.examples)
        return LIVE_EXAMPLES if self.is_live else MOCK_EXAMPLES

    def explore(self, test: Any) -> Any:
        """Hypothesis settings of every property. By default the draw is derandomized, the same on
        every run (a CI gate must not change its mind); --hypothesis-seed N draws another set,
        the same for the same N, so a failure found with it replays exactly."""
        from hypothesis import HealthCheck, seed, settings
        seeded = self.settings.hypothesis_seed
        test = settings(max_examples=self.examples, deadline=None, database=None, derandomize=seeded is None,
                        suppress_health_check=list(HealthCheck), print_blob=False)(test)
        return test if seeded is None else seed(seeded)(test)

    @property
    def base_url(self) -> str:
        self._ensure_started()
        assert self.target.base_url is not None
        return self.target.base_url

    @property
    def client(self) -> ChatClient:
        self._ensure_started()
        assert self._client is not None
        return self._client

    @property
    def traffic(self) -> Traffic:
        if self._traffic is None:
            self._traffic = Traffic(self)
        return self._traffic

    def model_info(self, name: str | None = None) -> ModelInfo:
        return self.profile.model(name or self.model)

    def supports(self, capability: str) -> bool:
        info = self.model_info()
        if capability == "n":
            return info.n
        if capability == "tools":
            return info.tools
        if capability == "thinking":
            return info.thinking != "none"
        if capability == "thinking_non_stream":
            return info.thinking != "none" and info.thinking_non_stream
        return True

    def _ensure_started(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        if self.target.is_mock:
            from ..mock import MockConfig, MockServer
            # The mock accepts only its own key, so the wrong-key probes mean something.
            self._mock = MockServer(MockConfig(profile=s.profile, api_key=MOCK_KEY, faults=tuple(s.faults), seed=0))
            url = self._mock.start()
            self.target = Target(url, "mock", "mock")
            key: str | None = MOCK_KEY
        else:
            key = read_api_key(self.api_key_env, required=not is_loopback(self.target.base_url or ""))
            register_secret(key)  # redacted from every recording, report and console line from now on
        live = self.is_live
        max_requests = s.max_requests if s.max_requests is not None else (LIVE_MAX_REQUESTS if live else None)
        read_timeout = s.timeout_s or (20.0 if live else 5.0)
        config = ClientConfig(base_url=self.target.base_url or "", api_key=key, max_requests=max_requests,
                              rate_per_s=LIVE_RATE_PER_S if live else None, connect_timeout_s=min(5.0, read_timeout),
                              read_timeout_s=read_timeout,
                              deadline_s=read_timeout * 3 if s.timeout_s else (60.0 if live else 15.0))
        if s.report_dir:
            try:
                self._recording = RecordingWriter(Path(s.report_dir) / "recording.jsonl")
            except OutputError as exc:
                self.output_error = self.output_error or exc
        self._client = ChatClient(config, on_exchange=self._record, stream_rules=self._stream_rules)

    def _stream_rules(self, ex: Exchange) -> LiveStreamCheck:
        """Every event of a live stream goes through the rules on arrival: the Exchange keeps only
        a bounded part of a long one (conformance.limits)."""
        return LiveStreamCheck(ex, self.profile)

    def _record(self, ex: Exchange) -> None:
        self._exchanges += 1
        if self._recording is not None:
            self._recording.write(ex)

    @property
    def run_timeout_s(self) -> float:
        return self.settings.run_timeout_s or RUN_TIMEOUT_S

    def stop_reason(self) -> str | None:
        """Why no further check may start (the whole-run deadline passed), or None."""
        elapsed = time.monotonic() - self.started_at
        if elapsed > self.run_timeout_s:
            self.stopped = f"the run deadline of {self.run_timeout_s:g} s passed"
        return self.stopped

    # -- results --------------------------------------------------------------------------------

    def target_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"base_url": self.target.base_url or "(embedded mock, not started)",
                                "model": self.model, "profile": self.profile.name, "kind": self.target.kind}
        if self.target.is_mock:
            info["simulated"] = True
            if self.settings.faults:
                info["faults"] = list(self.settings.faults)
        return info

    def finish(self, *, interrupted: bool = False) -> RunSummary:
        """The run's summary; an interrupted run lists the checks it set out to do and did not."""
        summary = RunSummary(target=self.target_info(), duration_s=time.monotonic() - self.started_at,
                             checks=sorted(self.results.values(), key=lambda c: (c.area, c.id)),
                             interrupted=interrupted,
                             not_run=[cid for cid in self.planned if cid not in self.results])
        if self.stopped:
            summary.extra["stopped"] = self.stopped
        if self.settings.hypothesis_seed is not None:
            summary.extra["hypothesis_seed"] = self.settings.hypothesis_seed
        summary.extra["requests"] = {"sent": self._client.sent if self._client else 0,
                                     "retried": self._client.retried if self._client else 0,
                                     "budget": self._client.config.max_requests if self._client else None}
        self.summary = scrub_summary(summary)  # secrets out, unsafe characters escaped, for every report
        return self.summary

    def close(self) -> None:
        if self._recording is not None:
            try:
                self._recording.close()
            except OutputError as exc:
                self.output_error = self.output_error or exc
            self._recording = None
        if self._client is not None:
            self._client.close()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

"""`chatconf load` and plain `locust -f loadtests/locustfile.py` end to end: real Locust processes
against the real mock (uvicorn on a loopback port). Each run is bounded to a few seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conformance.mock import MockConfig, MockServer
from conformance.mock.config import parse_inject
from loadtests.launcher import locustfile_path

from .hostile_server import HostileServer
from .test_run_cli import one_line_exit_2

REQUIRED_REGION_KEYS = {
    "requests",
    "failures",
    "errors_by_code",
    "output_tokens_per_s",
    "requests_per_s",
    "conformance_violations",
    "ttft_ms",
    "first_event_ms",
    "first_content_ms",
    "itl_ms",
    "tpot_ms",
    "e2e_ms",
    "e2e_stream_ms",
}
DIST_KEYS = {"p50", "p90", "p95", "p99", "mean", "min", "max", "count"}
KNOWN = {
    "name": "known",
    "network_rtt_ms": 0,
    "role_chunk_ms": 30,
    "ttft_ms": 120,
    "itl_ms": 10,
    "jitter": 0.0,
    "tokens_per_event": 1,
    "usage_lag_ms": 5,
    "output_tokens": [8, 16],
}


def chatconf(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", "load", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def samples_of(report_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (report_dir / "samples.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def known_mock():
    with MockServer(MockConfig(latency=KNOWN)) as base_url:
        yield base_url


def test_no_target_runs_simulated_regions_and_writes_the_design_summary(tmp_path):
    proc = chatconf("--run-time", "3s", "--users", "6", "--spawn-rate", "6", "--report-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SIMULATED" in out
    for region in ("singapore", "virginia", "beijing"):
        assert f"{region} (sim)" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"tool", "target", "duration_s", "users", "regions"} <= set(summary)
    assert summary["tool"] == "chatconf" and summary["users"] == 6
    assert summary["target"]["simulated"] is True and summary["target"]["label"] == "simulated"
    assert set(summary["regions"]) == {"singapore", "virginia", "beijing"}
    clock = "kernel" if sys.platform.startswith("linux") else "read"  # the mock is plain http://
    assert summary["generator"]["arrival_clock"] == dict.fromkeys(("singapore", "virginia", "beijing"), clock)
    total = 0
    for region in summary["regions"].values():
        assert set(region) >= REQUIRED_REGION_KEYS
        assert region["simulated"] is True
        for key in ("ttft_ms", "first_event_ms", "first_content_ms", "itl_ms", "tpot_ms", "e2e_ms", "e2e_stream_ms"):
            assert set(region[key]) >= DIST_KEYS
        assert region["requests"] > 0 and region["failures"] == 0
        assert region["ttft_ms"]["count"] == region["requests"]
        total += region["requests"]
    assert len(samples_of(tmp_path)) == total
    html = (tmp_path / "report.html").read_text()
    assert "SIMULATED" in html and "<svg" in html and "http://" not in html.split("<body>")[0]
    for name in ("singapore first content", "virginia first content"):  # legends are never cut off
        svg = html.split(f'class="legend">{name}<', 1)[0].rsplit("<svg", 1)[1]
        width = int(svg.split('width="', 1)[1].split('"', 1)[0])
        x = float(html.split(f'class="legend">{name}<', 1)[0].rsplit('<text x="', 1)[1].split('"', 1)[0])
        assert x + 6.2 * len(name) <= width


def test_json_prints_the_summary_on_stdout(tmp_path):
    proc = chatconf("--run-time", "2s", "--users", "2", "--json", "--report-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((tmp_path / "summary.json").read_text())


@pytest.mark.parametrize(("args", "words"), [
    (["--arrivals", "poisson"], "--arrivals poisson shapes open-loop arrivals: give --rate"),
    (["--model", "nope-model"], "built-in mock serves only the models of profile 'dashscope'"),
])
def test_load_usage_errors_are_one_line_before_any_load(args, words):
    start = time.monotonic()
    proc = chatconf(*args, "--run-time", "30s")
    assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert time.monotonic() - start < 15


def test_load_without_locust_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    from conformance.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "locust" else real(name, *a))
    assert main(["load", "--run-time", "1s"]) == 2
    assert "pip install 'chatconf[load]'" in capsys.readouterr().err


def test_master_and_two_workers_merge_exactly(tmp_path, known_mock):
    """Merged count == what each worker sent == what the server received (one budget, split)."""
    mock_stats_before = _requests(known_mock)
    proc = chatconf(
        "--base-url",
        known_mock,
        "--label",
        "mock",
        "--workers",
        "2",
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--max-requests",
        "24",
        "--run-time",
        "30s",
        "--report-dir",
        str(tmp_path),
        "-q",
        env={"DASHSCOPE_API_KEY": "test-key"},
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers"] == 2
    by_worker = summary["generator"]["by_worker"]
    assert set(by_worker) == {"0", "1"}
    sent = sum(w["sent"] for w in by_worker.values())
    region = summary["regions"]["mock"]
    assert region["requests"] == sent - sum(w["in_flight_at_stop"] for w in by_worker.values())
    assert region["requests"] == sum(w["samples"] for w in by_worker.values()) == 24
    assert all(w["sent"] == 12 for w in by_worker.values())
    assert _requests(known_mock) - mock_stats_before == sent + 1  # + the preflight request
    assert len(samples_of(tmp_path)) == 24


def _requests(base_url: str) -> int:
    import httpx

    root = base_url.split("/compatible-mode")[0]
    return httpx.get(root + "/_mock/stats", timeout=5).json()["requests"]


def test_metric_ordering_against_known_injected_latency(tmp_path, known_mock):
    proc = chatconf(
        "--base-url",
        known_mock,
        "--label",
        "known",
        "--users",
        "4",
        "--spawn-rate",
        "4",
        "--run-time",
        "3s",
        "--report-dir",
        str(tmp_path),
        "-q",
        env={"DASHSCOPE_API_KEY": "k"},
    )
    assert proc.returncode == 0, proc.stderr
    ok = [s for s in samples_of(tmp_path) if s["ok"]]
    assert ok
    for s in ok:
        assert s["first_event_ms"] <= s["ttft_ms"] <= s["e2e_ms"] <= s["e2e_stream_ms"]
        assert s["first_event_ms"] >= KNOWN["role_chunk_ms"]
        assert s["ttft_ms"] >= KNOWN["ttft_ms"]
        assert s["first_content_ms"] >= s["ttft_ms"]
        assert all(gap >= 0 for gap in s["itl_ms"])
    region = json.loads((tmp_path / "summary.json").read_text())["regions"]["known"]
    assert KNOWN["ttft_ms"] <= region["ttft_ms"]["p50"] < KNOWN["ttft_ms"] + 40
    assert KNOWN["itl_ms"] - 3 <= region["itl_ms"]["p50"] < KNOWN["itl_ms"] + 5


def test_plain_locust_open_loop_from_env_vars(tmp_path, known_mock):
    """`locust -f loadtests/locustfile.py` configured by CHATCONF_* env vars; constant 20 req/s."""
    env = dict(
        os.environ,
        CHATCONF_BASE_URL=known_mock,
        CHATCONF_LABEL="open",
        CHATCONF_RATE="20",
        CHATCONF_ARRIVALS="constant",
        CHATCONF_REPORT_DIR=str(tmp_path),
        CHATCONF_QUIET="1",
        DASHSCOPE_API_KEY="k",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile_path()),
            "--headless",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "3s",
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "open" in proc.stderr  # the per-region table
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "open" and summary["rate"] == 20
    region = summary["regions"]["open"]
    expected = 20 * summary["duration_s"]
    assert 0.6 * expected <= region["requests"] <= expected + 2
    assert region["queue_ttft_ms"]["count"] == region["requests"] - region["failures"]
    assert region["queue_ttft_ms"]["p50"] >= region["ttft_ms"]["p50"]


def test_conformance_violations_are_counted_in_the_same_pass(tmp_path):
    with MockServer(MockConfig(faults=("stream.same-id",))) as base_url:
        proc = chatconf(
            "--base-url",
            base_url,
            "--label",
            "faulty",
            "--users",
            "2",
            "--max-requests",
            "6",
            "--run-time",
            "20s",
            "--report-dir",
            str(tmp_path),
            "-q",
            env={"DASHSCOPE_API_KEY": "k"},
        )
    assert proc.returncode == 1, proc.stderr
    region = json.loads((tmp_path / "summary.json").read_text())["regions"]["faulty"]
    assert region["requests"] == 6
    assert region["conformance_violations"] >= 6
    assert "stream.same-id" in region["violations_by_rule"]
    sample = region["violation_samples"][0]
    assert sample["rule"] == "stream.same-id" and sample["message"]


def test_unreachable_target_is_one_line_and_exit_2():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = chatconf("--base-url", f"http://127.0.0.1:{port}/v1", "--run-time", "2s", env={"DASHSCOPE_API_KEY": "k"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "Traceback" not in proc.stderr


def test_missing_api_key_for_a_real_target_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_KEY_VAR"}
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "load", "--region", "singapore", "--api-key-env", "NO_SUCH_KEY_VAR"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 2 and "NO_SUCH_KEY_VAR" in proc.stderr


def test_sigint_stops_everything_and_leaves_no_children(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "load",
            "--run-time",
            "60s",
            "--users",
            "4",
            "--report-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while time.monotonic() < deadline:
            children = parent.children(recursive=True)
            names = " ".join(" ".join(c.cmdline()) for c in children if c.is_running())
            if "locust" in names and "conformance.mock" in names:
                break
            time.sleep(0.2)
        assert children, "chatconf load started no child processes"
        time.sleep(2.5)  # let requests flow
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    summary = json.loads((tmp_path / "summary.json").read_text())  # a partial report of what ran, marked so
    assert summary["tool"] == "chatconf" and summary["interrupted"] is True
    assert "INTERRUPTED" in (tmp_path / "report.html").read_text()


# -- the preflight, early stop and usage errors ----------------------------------------------------

SECRET = "sk-chatconf-load-secret-77"


@pytest.fixture(scope="module")
def keyed_mock():
    with MockServer(MockConfig(api_key=SECRET)) as base_url:
        yield base_url


def _one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    return one_line_exit_2(proc, SECRET)


def test_base_url_without_v1_is_exit_2_before_any_load(keyed_mock):
    root = keyed_mock.split("/compatible-mode")[0]
    before = _requests(keyed_mock)
    start = time.monotonic()
    proc = chatconf("--base-url", root, "--run-time", "30s", env={"DASHSCOPE_API_KEY": SECRET})
    line = _one_line_exit_2(proc)
    assert time.monotonic() - start < 20
    assert "no chat completions endpoint" in line and f"did you mean {root}/v1?" in line
    assert _requests(keyed_mock) == before  # the 404 path is not even a chat request


def test_wrong_key_is_exit_2_after_one_request(keyed_mock):
    before = _requests(keyed_mock)
    proc = chatconf("--base-url", keyed_mock, "--run-time", "30s", env={"DASHSCOPE_API_KEY": "sk-wrong-1"})
    line = _one_line_exit_2(proc)
    assert "API key was rejected (HTTP 401" in line and "$DASHSCOPE_API_KEY" in line
    assert "sk-wrong-1" not in proc.stderr
    assert _requests(keyed_mock) - before <= 2


def test_report_dir_on_a_file_is_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    line = _one_line_exit_2(chatconf("--report-dir", str(tmp_path / "file"), "--run-time", "2s"))
    assert "--report-dir" in line and "not a directory" in line


def test_every_request_failing_the_same_way_stops_early(tmp_path):
    """A target that refuses every request with the same 500 passes the preflight (a 5xx is the run's
    business), then every request gets the same 500: the run stops after the first 20 instead of 60 s."""
    with MockServer(MockConfig(api_key=SECRET, inject=parse_inject("500=1"))) as failing:
        before = _requests(failing)
        start = time.monotonic()
        proc = chatconf("--base-url", failing, "--run-time", "60s", "--users", "4",
                        "--report-dir", str(tmp_path), "-q", env={"DASHSCOPE_API_KEY": SECRET})
        elapsed = time.monotonic() - start
        sent = _requests(failing) - before
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr + proc.stdout
    assert "stopped early: the first 20 requests all failed the same way (HTTP 500" in proc.stderr
    assert elapsed < 40
    assert sent < 200
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "HTTP 500" in summary["stopped_early"]


def test_a_model_the_target_does_not_serve_is_exit_2_before_any_load(keyed_mock):
    before = _requests(keyed_mock)
    line = _one_line_exit_2(chatconf("--base-url", keyed_mock, "--model", "no-such-model", "--run-time", "30s",
                                     env={"DASHSCOPE_API_KEY": SECRET}))
    assert "did not recognise model 'no-such-model'" in line
    assert _requests(keyed_mock) - before <= 1  # the preflight only


# -- verdicts and backoff: workers lost, a target that dies, rate limits, silence ----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the load to start"
        time.sleep(0.1)


def _verdicts(report_dir: Path) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads((report_dir / "summary.json").read_text())["verdicts"]}


def test_a_worker_killed_mid_run_is_a_verdict(tmp_path, known_mock):
    """kill -9 of one of two workers: exit 1, and the summary says 1 of 2 workers reported and
    which one was lost, with the users that were really running."""
    before = _requests(known_mock)
    load = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "load", "--base-url", known_mock, "--label", "mock",
         "--workers", "2", "--users", "4", "--spawn-rate", "4", "--run-time", "6s",
         "--report-dir", str(tmp_path), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, DASHSCOPE_API_KEY="k"),
    )
    try:
        _wait_for(lambda: _requests(known_mock) - before > 20)  # both workers are sending
        worker = next(c for c in psutil.Process(load.pid).children(recursive=True) if "--worker" in c.cmdline())
        worker.kill()
        out, err = load.communicate(timeout=90)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.returncode == 1, err
    assert "lost workers: 1 of 2 workers reported" in err and "VERDICT lost workers" in out
    assert "1 of 2 workers reporting" in out and "(2 running at the end)" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    lost = _verdicts(tmp_path)["lost_workers"]
    assert (lost["expected"], lost["reporting"], lost["users"], lost["users_running"]) == (2, 1, 4, 2)
    assert summary["workers"] == 2 and summary["workers_reporting"] == 1 and summary["users_running"] == 2
    assert [summary["generator"]["by_worker"][str(i)].get("lost") for i in (0, 1)].count(True) == 1
    assert "lost workers" in (tmp_path / "report.html").read_text()


def test_a_target_killed_mid_run_is_backed_off_and_an_error_storm(tmp_path):
    """`chatconf mock` in its own process, killed -9 while loaded: connect errors stay few (each user
    backs off), the run still ends on time, and the storm is a verdict (exit 1)."""
    port = _free_port()
    mock = subprocess.Popen([sys.executable, "-m", "conformance.cli", "mock", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base_url = f"http://127.0.0.1:{port}/compatible-mode/v1"
    try:
        assert "serving" in (mock.stdout.readline() if mock.stdout else "")
        start = time.monotonic()
        load = subprocess.Popen(
            [sys.executable, "-m", "conformance.cli", "load", "--base-url", base_url, "--label", "m", "--users", "4",
             "--spawn-rate", "4", "--run-time", "5s", "--report-dir", str(tmp_path), "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, DASHSCOPE_API_KEY="k"),
        )
        _wait_for(lambda: _requests(base_url) > 50)
        mock.kill()
        mock.wait()
        out, err = load.communicate(timeout=90)
    finally:
        for proc in (mock, locals().get("load")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert load.returncode == 1, err
    assert time.monotonic() - start < 40
    assert "error storm:" in err and "connect_error" in err and "VERDICT error storm" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    region = summary["regions"]["m"]
    assert region["requests"] - region["failures"] > 0
    assert 0 < region["errors_by_code"]["connect_error"] <= 4 * 12  # not thousands: 4 users backing off
    backoff = summary["generator"]["backoff"]
    assert backoff["count"] >= region["errors_by_code"]["connect_error"] - 4 and backoff["seconds"] > 1
    assert _verdicts(tmp_path)["error_storm"]["worst_window"]["failures"] >= 10


def test_a_rate_limited_target_gets_the_retry_after_it_asks_for(tmp_path):
    """Every answer after the first is 429 with `Retry-After: 1`: each user sends about once a second
    (before: thousands of requests a second), the waits are counted, and the storm is a verdict."""
    with HostileServer("ratelimit", preflight_ok=True, ok_first=1) as server:
        proc = chatconf("--base-url", server.base_url, "--label", "limited", "--users", "3", "--spawn-rate", "3",
                        "--run-time", "4s", "--report-dir", str(tmp_path), "-q", env={"DASHSCOPE_API_KEY": "k"})
        sent = server.requests - 1  # the preflight
    assert proc.returncode == 1, proc.stderr
    assert "error storm:" in proc.stderr and "HTTP 429" in proc.stderr
    assert 3 <= sent <= 3 * (4 + 2)
    summary = json.loads((tmp_path / "summary.json").read_text())
    backoff = summary["generator"]["backoff"]
    assert backoff["count"] >= sent - 4 and backoff["seconds"] >= 0.9 * (sent - 7)
    ok = [s for s in samples_of(tmp_path) if s["ok"]]
    assert all(s["e2e_stream_ms"] < 500 for s in ok)  # the 1 s waits are never part of a latency


def test_a_target_that_never_answers_is_zero_completed(tmp_path):
    with HostileServer("hang", preflight_ok=True) as server:
        proc = chatconf("--base-url", server.base_url, "--label", "silent", "--users", "2", "--spawn-rate", "2",
                        "--run-time", "2s", "--report-dir", str(tmp_path), "-q", env={"DASHSCOPE_API_KEY": "k"})
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("chatconf load:")]
    assert lines == ["chatconf load: zero completed requests in 2.0 s: no request finished; "
                     "2 were in flight at the stop",
                     "chatconf load: objective not met: error_rate<=1%: no samples (FAIL)"]
    assert set(_verdicts(tmp_path)) == {"zero_completed"}


def test_a_key_echoed_in_error_bodies_and_headers_is_redacted_in_worker_samples(tmp_path):
    """A server that answers 500 quoting the Authorization header in its error code, message and
    request id: the worker process redacts it before it becomes a sample, a log line or a report."""
    secret = "lv-echo-secret-7f3k9q"
    with HostileServer("echo-key-500", preflight_ok=True) as server:
        proc = chatconf("--base-url", server.base_url, "--label", "echo", "--workers", "1", "--users", "2",
                        "--spawn-rate", "2", "--run-time", "10s", "--report-dir", str(tmp_path),
                        env={"DASHSCOPE_API_KEY": secret})
    assert proc.returncode == 2, proc.stderr  # the first 20 requests all failed the same way
    samples = samples_of(tmp_path)
    assert samples and all(s["error_code"] == "auth=[REDACTED]" for s in samples)
    assert all(s["request_id"] == "[REDACTED]" for s in samples)
    for name in ("summary.json", "samples.jsonl", "report.html", "locust.log"):
        assert secret not in (tmp_path / name).read_text(), name
    assert secret not in proc.stdout + proc.stderr

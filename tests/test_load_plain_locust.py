"""Plain `locust -f loadtests/locustfile.py` as Locust users use it: the web UI driven through its
HTTP API (Host field, request counts, the chatconf metrics), Ctrl-C / SIGTERM in headless runs,
and where the --chatconf-* options are listed. Real Locust processes, a few seconds of load each."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conformance.mock import MockConfig, MockServer
from loadtests.launcher import locustfile_path

from .test_load_cli import KNOWN, _free_port, _requests, _wait_for

USERS = 4


def _locust(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile_path()), "--loglevel", "WARNING", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, CHATCONF_QUIET="1", DASHSCOPE_API_KEY="k", **(env or {})),
        **kw,
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def two_mocks():
    """The target named on the command line and the one typed into the web UI's Host field."""
    with MockServer(MockConfig(latency=KNOWN)) as named, MockServer(MockConfig(latency=KNOWN)) as typed:
        yield named, typed


def test_web_ui_host_field_counts_each_request_once_and_shows_the_metrics(two_mocks):
    named, typed = two_mocks
    port = _free_port()
    ui = f"http://127.0.0.1:{port}"
    proc = _locust("--web-host", "127.0.0.1", "--web-port", str(port), "--chatconf-base-url", named,
                   "--chatconf-label", "named")
    try:
        _wait_for(lambda: _up(ui + "/"))
        page = httpx.get(ui + "/").text
        # idle: the resolved target is the Host, and no "no host attribute set" warning
        assert re.search(r'"host": ?"named=' + re.escape(named) + '"', page), page[-3000:]
        assert re.search(r'"missing_host_warning": ?false', page)
        named_before, typed_before = _requests(named), _requests(typed)

        started = httpx.post(ui + "/swarm", data={"user_count": USERS, "spawn_rate": USERS, "host": typed}).json()
        assert started["success"], started
        time.sleep(3)
        httpx.post(ui + "/stop")
        _wait_for(lambda: httpx.get(ui + "/stats/requests").json()["state"] == "stopped", timeout=15)
        stats = httpx.get(ui + "/stats/requests").json()
        metrics = httpx.get(ui + "/chatconf/metrics").json()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)

    received = _requests(typed) - typed_before
    assert _requests(named) == named_before  # the typed Host replaced the named target
    rows = [r for r in stats["stats"] if r["name"] != "Aggregated"]
    assert [(r["method"], r["name"]) for r in rows] == [("STREAM", "127.0.0.1")]  # one row, no metric rows
    counted = rows[0]["num_requests"]
    assert rows[0]["num_failures"] == 0
    # each request counts once; the streams cut by the stop reached the mock but never finished
    assert counted > 4 and counted <= received <= counted + USERS
    region = metrics["regions"]["127.0.0.1"]
    # the same requests, but a stream that ends while the stop begins is counted by Locust and
    # cancelled by chatconf (not a sample): at most one per user
    assert counted - USERS <= region["requests"] <= counted
    assert KNOWN["ttft_ms"] <= region["ttft_ms"]["p50"] <= region["ttft_ms"]["p99"]
    assert region["itl_ms"]["count"] > 0 and region["itl_ms"]["p50"] >= KNOWN["itl_ms"] - 3
    tab = {t["key"]: t["data"] for t in stats["extendedStats"]}["chatconf"]
    assert tab[0]["name"] == "127.0.0.1" and tab[0]["ttft_ms_p50"] == region["ttft_ms"]["p50"]


def test_web_ui_refuses_a_host_that_is_not_a_url(two_mocks):
    port = _free_port()
    ui = f"http://127.0.0.1:{port}"
    proc = _locust("--web-host", "127.0.0.1", "--web-port", str(port), "--chatconf-base-url", two_mocks[0])
    try:
        _wait_for(lambda: _up(ui + "/"))
        answer = httpx.post(ui + "/swarm", data={"user_count": 1, "spawn_rate": 1, "host": "gateway:8080"}).json()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert answer["success"] is False and "not an http(s) base URL" in answer["message"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_users_before_the_embedded_mock(tmp_path, sig):
    prefix = tmp_path / "run"
    proc = _locust("--headless", "-u", "20", "-r", "20", "-t", "60s", "--only-summary", "--csv", str(prefix))
    stats_csv = Path(f"{prefix}_stats.csv")

    def requests_done() -> int:
        if not stats_csv.exists():
            return 0
        return sum(int(r["Request Count"]) for r in _csv_rows(stats_csv) if r["Name"] != "Aggregated")

    try:
        _wait_for(lambda: requests_done() >= 10)  # the load runs; many streams are in flight
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    failures = _csv_rows(Path(f"{prefix}_failures.csv"))
    assert failures == [], failures
    assert "connect_error" not in err


def test_python_m_locustfile_help_lists_every_chatconf_option_and_its_env_var():
    out = subprocess.run([sys.executable, "-m", "loadtests.locustfile", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    options = re.findall(r"--(chatconf-[a-z-]+)", (Path(__file__).parents[1] / "loadtests" / "options.py").read_text())
    assert len(set(options)) >= 15
    for name in set(options):
        env_var = name.upper().replace("-", "_")
        assert f"--{name}" in text and f"env var: {env_var}" in text, name


def test_locust_host_flag_alone_is_the_target(tmp_path, two_mocks):
    typed = two_mocks[1]
    before = _requests(typed)
    proc = _locust("--headless", "-u", "2", "-r", "2", "-t", "2s", "--only-summary", "--host", typed,
                   "--csv", str(tmp_path / "run"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    rows = [r for r in _csv_rows(tmp_path / "run_stats.csv") if r["Name"] != "Aggregated"]
    assert [(r["Type"], r["Name"]) for r in rows] == [("STREAM", "127.0.0.1")]
    assert 0 < int(rows[0]["Request Count"]) <= _requests(typed) - before


def test_locust_host_flag_with_chatconf_targets_is_a_usage_error(two_mocks):
    proc = _locust("--headless", "-u", "1", "-t", "2s", "--host", two_mocks[1], "--chatconf-base-url", two_mocks[0])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "chatconf: error: give the target either as Locust's --host or as --chatconf-* options" in err
    assert "Traceback" not in err


def test_plain_locust_judges_the_objectives_and_exits_1_on_a_miss(tmp_path, two_mocks):
    """`--chatconf-slo` in plain Locust: the mock's TTFT is 120 ms, so ttft_p50<=50ms is missed and
    ttft_p50<=5s is met; both verdicts land in summary.json with the measured value."""
    import json

    named = two_mocks[0]
    runs = {}
    for name, objective in (("missed", "ttft_p50<=50ms"), ("met", "ttft_p50<=5s")):
        out = tmp_path / name
        proc = _locust("--headless", "-u", "2", "-r", "2", "-t", "2s", "--only-summary", "--chatconf-base-url", named,
                       "--chatconf-slo", objective, "--chatconf-report-dir", str(out))
        _, err = proc.communicate(timeout=60)
        runs[name] = (proc.returncode, err, json.loads((out / "summary.json").read_text())["slo"])
    code, err, slo = runs["missed"]
    assert code == 1, err[-2000:]
    assert "objective not met: ttft_p50<=50ms" in err
    assert not slo["passed"] and slo["objectives"][0]["measured"] > 100
    code, err, slo = runs["met"]
    assert code == 0, err[-2000:]
    assert slo["passed"] and [o["objective"] for o in slo["objectives"]] == ["ttft_p50<=5s", "error_rate<=1%"]


def test_plain_locust_refuses_a_malformed_objective_before_any_request(two_mocks):
    before = _requests(two_mocks[0])
    proc = _locust("--headless", "-u", "1", "-t", "2s", "--chatconf-base-url", two_mocks[0], "--chatconf-slo", "fast")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "chatconf: error: --chatconf-slo 'fast': expected" in err and "Traceback" not in err
    assert _requests(two_mocks[0]) == before

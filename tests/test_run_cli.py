"""`chatconf run` end to end: the real console script against the real mock, hostile servers,
bad usage, reports and redaction (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.mock import MockConfig, MockServer
from conformance.recording import iter_recording

from .hostile_server import HostileServer

CHATCONF = [sys.executable, "-m", "conformance.cli"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("DASHSCOPE_API_KEY", None)
    return subprocess.run([*CHATCONF, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, float]:
    out = tmp_path_factory.mktemp("run")
    start = time.monotonic()
    proc = run("run", "--report-dir", str(out), "--junit", str(out / "junit.xml"))
    return proc, out, time.monotonic() - start


def test_clean_mock_passes_every_check(clean_run):
    proc, out, _ = clean_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["failed"] == 0
    for check in summary["checks"]:
        if check["status"] in ("skipped", "observed"):
            assert check["message"], f"{check['id']} is {check['status']} without a stated reason"
    assert "Traceback" not in proc.stderr


def test_summary_json_has_the_documented_shape(clean_run):
    _, out, _ = clean_run
    summary = json.loads((out / "summary.json").read_text())
    assert {"tool", "version", "target", "started", "duration_s", "totals", "checks"} <= summary.keys()
    assert summary["tool"] == "chatconf"
    assert {"base_url", "model", "profile"} <= summary["target"].keys()
    assert set(summary["totals"]) == {"passed", "failed", "warned", "skipped", "observed"}
    assert summary["interrupted"] is False and summary["not_run"] == []
    assert sum(summary["totals"].values()) == len(summary["checks"])
    ids = [c["id"] for c in summary["checks"]]
    assert len(ids) == len(set(ids))
    for check in summary["checks"]:
        assert {"id", "status", "severity", "title", "message", "evidence"} <= check.keys()
        assert check["severity"] in ("must", "should")
    # The catalog covers the areas the issue lists.
    for needed in ("stream.done-last", "stream.usage-last", "stream.usage-only-when-asked", "response.choices-count",
                   "behaviour.stop-honoured", "response.finish-length", "stream.tool-call-first-delta",
                   "behaviour.thinking-stream", "auth.invalid-key", "request.malformed-json",
                   "request.temperature-range", "behaviour.stream-agrees", "response.request-id"):
        assert needed in ids
    assert any(c["status"] == "observed" and c["id"].startswith("drift.") for c in summary["checks"])


def test_junit_html_and_recording_are_written(clean_run):
    _, out, _ = clean_run
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.tag == "testsuite" and int(suite.get("tests")) > 50 and suite.get("failures") == "0"
    page = (out / "report.html").read_text()
    assert "chatconf conformance report" in page and "stream.done-last" in page and "<script" in page
    exchanges = list(iter_recording((out / "recording.jsonl").read_text().splitlines()))
    assert len(exchanges) > 100
    assert all(ex.request is not None and ex.request.headers.get("authorization") in (None, "Bearer [REDACTED]")
               for ex in exchanges)


def test_recording_validates(clean_run):
    _, out, _ = clean_run
    proc = run("validate", str(out / "recording.jsonl"), "--json")
    report = json.loads(proc.stdout)
    # Error answers and invalid requests are recorded too; what must hold is that no answer breaks a rule.
    answer_rules = [v for f in report["files"] for v in f["violations"] if not v["rule"].startswith("request.")]
    assert answer_rules == []
    assert proc.returncode in (0, 1)


def test_dry_run_lists_checks_and_sends_nothing():
    proc = run("run", "--dry-run", "--base-url", "http://127.0.0.1:9/v1")
    assert proc.returncode == 0, proc.stderr
    assert "stream.done-last" in proc.stdout and "planned requests" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--base-url", "http://127.0.0.1:9/v1"], "target unreachable"),
    (["--region", "singapore", "--api-key-env", "CHATCONF_TEST_NO_SUCH_KEY"], "no API key"),
    (["--profile", "no-such-profile"], "unknown profile"),
    (["--examples", "0"], "--examples"),
    (["--max-requests", "x"], "invalid int"),
    (["--base-url", "ftp://example"], "http(s) URL"),
])
def test_bad_usage_is_one_line_and_exit_2(args, message):
    proc = run("run", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_no_check_matching_k_is_a_usage_error():
    proc = run("run", "-k", "no_such_check_anywhere", "-q")
    assert proc.returncode == 2 and "no check matches" in proc.stderr


@pytest.mark.parametrize("mode, expected", [
    ("garbage", "not JSON"),
    ("hang", "timed out"),
    ("close", "closed"),
    ("huge", "exceeded"),
])
def test_hostile_server_gives_failed_checks_not_a_crash(mode, expected, tmp_path):
    with HostileServer(mode) as server:
        start = time.monotonic()
        proc = run("run", "--base-url", server.base_url, "--max-requests", "24", "--examples", "1",
                   "--timeout", "0.5", "--report-dir", str(tmp_path), timeout=120)
        elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    failed = [c for c in summary["checks"] if c["status"] == "failed"]
    assert failed
    assert any(expected in c["message"] for c in failed), [c["message"] for c in failed][:5]
    assert elapsed < 90


def test_api_key_never_appears_in_output_or_reports(tmp_path):
    secret = "sk-chatconf-test-secret-0123456789"
    with MockServer(MockConfig(api_key=secret)) as base_url:
        proc = run("run", "--base-url", base_url, "--api-key-env", "CHATCONF_TEST_KEY", "-k",
                   "auth or stream.done-last or request.temperature", "--report-dir", str(tmp_path),
                   "--junit", str(tmp_path / "j.xml"), env={"CHATCONF_TEST_KEY": secret})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert secret not in proc.stdout + proc.stderr
    for path in tmp_path.iterdir():
        assert secret not in path.read_text(errors="replace"), path.name


def test_suite_runs_under_plain_pytest_with_plugin_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-q", "-p",
                           "no:cacheprovider", "--chatconf-fault", "stream.done-last", "-k", "stream.done-last",
                           "--chatconf-report-dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "test_rule[stream.done-last]" in proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["status"] for c in summary["checks"] if c["id"] == "stream.done-last"] == ["failed"]


def test_report_command_builds_a_matrix(clean_run, tmp_path):
    _, out, _ = clean_run
    proc = run("report", str(out / "summary.json"), str(out / "summary.json"), "-o", str(tmp_path / "m.html"))
    assert proc.returncode == 0, proc.stderr
    assert "Compatibility matrix" in (tmp_path / "m.html").read_text()
    bad = run("report", str(out / "junit.xml"))
    assert bad.returncode == 2 and "cannot read summary" in bad.stderr

"""Verdicts a CI pipeline can trust (issue 9): `should` findings warn and fail only with
--fail-on should; an interrupted run exits 130 and every report says it is partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CHATCONF = [sys.executable, "-m", "conformance.cli"]


def _env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("DASHSCOPE_API_KEY", None)
    return env


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHATCONF, *args], capture_output=True, text=True, timeout=180, env=_env())


@pytest.fixture(scope="module")
def should_fault(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The mock breaking one production-only (should) rule: chunk ids unrelated to x-request-id."""
    out = tmp_path_factory.mktemp("warned")
    proc = run("run", "-k", "stream", "--fault", "stream.request-id", "--report-dir", str(out),
               "--junit", str(out / "junit.xml"))
    return proc, out


def test_a_broken_should_rule_warns_and_exits_zero(should_fault):
    proc, out = should_fault
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-1000:]
    summary = json.loads((out / "summary.json").read_text())
    statuses = {c["id"]: c["status"] for c in summary["checks"]}
    assert statuses["stream.request-id"] == "warned"
    assert summary["totals"]["warned"] >= 1 and summary["totals"]["failed"] == 0
    assert "WARN stream.request-id" in proc.stdout
    assert "Warnings (should):" in proc.stdout and "--fail-on should" in proc.stdout


def test_warned_checks_are_not_junit_failures(should_fault):
    _, out = should_fault
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("failures") == "0"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "stream.request-id")
    assert case.find("failure") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["chatconf.status"] == "warned"
    assert "warned" in (case.findtext("system-out") or "")


def test_warned_checks_show_in_the_html_report(should_fault):
    _, out = should_fault
    page = (out / "report.html").read_text()
    assert 'class="badge b-warned">warned' in page


def test_fail_on_should_makes_a_warning_fail(tmp_path: Path):
    proc = run("run", "-k", "stream", "--fault", "stream.request-id", "--fail-on", "should",
               "--junit", str(tmp_path / "junit.xml"))
    assert proc.returncode == 1, proc.stdout[-2000:]
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    case = next(c for c in suite.iter("testcase") if c.get("name") == "stream.request-id")
    assert case.find("failure") is not None


def test_a_broken_must_rule_still_fails(tmp_path: Path):
    proc = run("run", "-k", "stream", "--fault", "stream.done-last")
    assert proc.returncode == 1
    assert "Failed checks (must):" in proc.stdout and "stream.done-last" in proc.stdout


def test_sigint_exits_130_with_a_partial_report_that_says_so(tmp_path: Path):
    """Issue 9 item 4: SIGINT used to exit 0 with '68 passed' and 9 checks silently missing."""
    proc = subprocess.Popen([*CHATCONF, "run", "--examples", "200", "--report-dir", str(tmp_path),
                             "--junit", str(tmp_path / "junit.xml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:  # wait until checks are running, then interrupt
        if line.lstrip().startswith(("PASS", "FAIL", "OBS")) or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest[-2000:] + err[-1000:]
    assert "INTERRUPTED" in rest and "Traceback" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["not_run"], "an interrupted run lists the checks it did not run"
    done = {c["id"] for c in summary["checks"]}
    assert not done & set(summary["not_run"])
    assert "INTERRUPTED" in (tmp_path / "report.html").read_text()
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["interrupted"] == "true"
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert set(summary["not_run"]) <= set(skipped)


def test_first_try_against_chatconf_mock_is_green_and_says_why_auth_is_skipped():
    """Issue 9 item 7: `chatconf mock` (any key accepted) then `chatconf run --base-url` used to fail
    auth.invalid-key; a loopback target without authentication is skipped with the reason."""
    from conformance.mock import MockConfig, MockServer

    with MockServer(MockConfig()) as base_url:
        proc = subprocess.run([*CHATCONF, "run", "--base-url", base_url, "-k", "auth or stream.done-last"],
                              capture_output=True, text=True, timeout=120,
                              env={**_env(), "DASHSCOPE_API_KEY": "any-key-at-all"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-1000:]
    assert "SKIP auth.invalid-key" in proc.stdout
    assert "does not check API keys" in proc.stdout and "--api-key" in proc.stdout


def test_auth_reproducers_send_what_the_probe_sent(tmp_path: Path):
    """The wrong-key reproducer carries the made-up key (pasting `$DASHSCOPE_API_KEY` would send a
    valid key and reproduce nothing); the missing-key reproducer sends no Authorization at all."""
    from conformance.mock import MockConfig, MockServer
    from conformance.redact import PUBLIC_WRONG_KEY

    with MockServer(MockConfig(api_key="sk-chatconf-verdict-key", faults=("auth.invalid-key",))) as base_url:
        proc = subprocess.run([*CHATCONF, "run", "--base-url", base_url, "--api-key-env", "VERDICT_KEY", "-k", "auth",
                               "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
                              env={**_env(), "VERDICT_KEY": "sk-chatconf-verdict-key"})
    assert proc.returncode == 1, proc.stdout[-2000:]
    checks = {c["id"]: c for c in json.loads((tmp_path / "summary.json").read_text())["checks"]}
    wrong = checks["auth.invalid-key"]["evidence"]["curl"]
    missing = checks["auth.missing-key"]["evidence"]["curl"]
    assert f"Authorization: Bearer {PUBLIC_WRONG_KEY}" in wrong and "$VERDICT_KEY" not in wrong
    assert "Authorization" not in missing
    assert "sk-chatconf-verdict-key" not in proc.stdout + (tmp_path / "summary.json").read_text()


def test_run_deadline_skips_the_rest_and_says_so(tmp_path: Path):
    proc = run("run", "--run-timeout", "1", "--report-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "stopped early: the run deadline of 1 s passed" in proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped"] == "the run deadline of 1 s passed"
    skipped = [c for c in summary["checks"] if c["status"] == "skipped"]
    assert skipped and all(c["message"].startswith("not run: the run deadline") for c in skipped)
    assert summary["duration_s"] < 30


def test_openai_profile_carries_none_of_dashscopes_habits():
    """Third-party servers (fakellm, mockllm, llm-mock-api, mock-myna) were warned for DashScope-only
    rules under --profile openai, and request-id rules showed PASS without being checked."""
    proc = run("run", "--profile", "openai", "-k", "request-id or thinking or id-prefix or snake or stream-body-sse")
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.lstrip().startswith(("PASS", "FAIL", "WARN", "SKIP"))]
    assert lines and all(line.lstrip().startswith("SKIP") for line in lines), lines
    assert "not part of the openai profile's contract" in proc.stdout


def test_a_model_dashscope_does_not_serve_gets_the_profile_hint():
    """A server that serves a model DashScope does not (the reference server accepting any model) and
    answers with another model's name: the finding comes with the hint."""
    from .reference.docserver import DocServer

    with DocServer(api_key="any-key", faults=["accept_unknown_model", "model_wrong_echo"]) as server:
        proc = subprocess.run([*CHATCONF, "run", "--base-url", server.base_url, "--model", "chatconf-fake-model",
                               "-k", "response.accepted or model-matches"], capture_output=True, text=True,
                              timeout=120, env={**_env(), "DASHSCOPE_API_KEY": "any-key"})
    assert "is not in profile 'dashscope'" in proc.stdout
    assert "hint: model 'chatconf-fake-model' is no DashScope model" in proc.stdout
    assert "--profile openai" in proc.stdout

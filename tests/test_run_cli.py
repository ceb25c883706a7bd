"""`chatconf run` end to end: the real console script against the real mock, hostile servers,
bad usage, reports and redaction (issue 4)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.mock import MockConfig, MockServer
from conformance.recording import iter_recording
from tests.certs import self_signed

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
    # The first request (the preflight) is answered, so the misbehaviour reaches the checks.
    with HostileServer(mode, preflight_ok=True) as server:
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


# -- the preflight and usage errors found before the first request ---------------------------------

SECRET = "sk-chatconf-preflight-secret-42"


def mock_requests(base_url: str) -> int:
    import httpx

    root = base_url.split("/compatible-mode")[0]
    return httpx.get(root + "/_mock/stats", timeout=5).json()["requests"]


def one_line_exit_2(proc: subprocess.CompletedProcess[str], secret: str | None = None) -> str:
    """Exit 2 with exactly one line on stderr, no traceback, and the key nowhere (shared with load's tests)."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert (secret or SECRET) not in proc.stderr + proc.stdout
    return lines[0]


@pytest.fixture(scope="module")
def keyed_mock():
    with MockServer(MockConfig(api_key=SECRET)) as base_url:
        yield base_url


def test_preflight_wrong_key_is_exit_2_after_one_request(keyed_mock):
    before = mock_requests(keyed_mock)
    start = time.monotonic()
    proc = run("run", "--base-url", keyed_mock, "--api-key-env", "CHATCONF_TEST_KEY",
               env={"CHATCONF_TEST_KEY": "sk-wrong-key-0000"})
    line = one_line_exit_2(proc)
    assert "API key was rejected (HTTP 401" in line and "$CHATCONF_TEST_KEY" in line
    assert "sk-wrong-key-0000" not in proc.stderr
    assert mock_requests(keyed_mock) - before <= 2
    assert time.monotonic() - start < 30


def test_preflight_missing_key_on_a_loopback_target_that_requires_one(keyed_mock):
    before = mock_requests(keyed_mock)
    line = one_line_exit_2(run("run", "--base-url", keyed_mock))
    assert "requires an API key" in line and "$DASHSCOPE_API_KEY" in line
    assert mock_requests(keyed_mock) - before <= 2


@pytest.mark.parametrize("suffix, hint", [
    ("", "did you mean http://127.0.0.1:{port}/v1?"),
    ("/compatible-mode/v1/chat/completions", "pass the base URL without /chat/completions"),
    ("/nowhere/v1", "no chat completions endpoint at http://127.0.0.1:{port}/nowhere/v1/chat/completions"),
])
def test_preflight_no_chat_endpoint_is_exit_2_with_a_hint(keyed_mock, suffix, hint):
    root = keyed_mock.split("/compatible-mode")[0]
    port = root.rsplit(":", 1)[1]
    before = mock_requests(keyed_mock)
    proc = run("run", "--base-url", root + suffix, "--api-key-env", "CHATCONF_TEST_KEY",
               env={"CHATCONF_TEST_KEY": SECRET})
    line = one_line_exit_2(proc)
    assert "no chat completions endpoint" in line and "(HTTP 404)" in line
    assert hint.format(port=port) in line
    assert mock_requests(keyed_mock) - before <= 1  # a path the mock does not serve is not a chat request


def test_preflight_https_to_a_plain_http_port_is_exit_2(keyed_mock):
    line = one_line_exit_2(run("run", "--base-url", keyed_mock.replace("http://", "https://")))
    assert "TLS handshake failed" in line and "really https?" in line


def test_preflight_unknown_model_is_exit_2_before_the_suite(keyed_mock):
    before = mock_requests(keyed_mock)
    line = one_line_exit_2(run("run", "--base-url", keyed_mock, "--api-key-env", "CHATCONF_TEST_KEY",
                               "--model", "no-such-model", env={"CHATCONF_TEST_KEY": SECRET}), SECRET)
    assert "did not recognise model 'no-such-model'" in line and "--model" in line
    assert mock_requests(keyed_mock) - before <= 1


def test_a_model_the_built_in_mock_does_not_serve_is_exit_2_at_once():
    start = time.monotonic()
    line = one_line_exit_2(run("run", "--model", "nope-model"))
    assert time.monotonic() - start < 15
    assert "built-in mock serves only the models of profile 'dashscope'" in line and "qwen-plus" in line


def test_preflight_silent_server_is_exit_2_within_the_timeout():
    with HostileServer("hang") as server:
        start = time.monotonic()
        proc = run("run", "--base-url", server.base_url, "--timeout", "0.5", timeout=60)
        elapsed = time.monotonic() - start
        sent = server.requests
    line = one_line_exit_2(proc)
    assert "did not answer the preflight request within 0.5 s" in line
    assert sent == 1 and elapsed < 20


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory):
    """A loopback TLS server (self-signed certificate made with the openssl command) that completes
    handshakes and then closes: enough to show http:// to a TLS port and an untrusted certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*self_signed(tmp_path_factory.mktemp("tls"), ip_san=False))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1024)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_preflight_http_to_a_tls_port_is_exit_2(tls_port):
    line = one_line_exit_2(run("run", "--base-url", f"http://127.0.0.1:{tls_port}/v1", "--timeout", "3"))
    assert "speaks TLS" in line and f"https://127.0.0.1:{tls_port}/v1" in line


def test_preflight_untrusted_certificate_is_exit_2(tls_port):
    line = one_line_exit_2(run("run", "--base-url", f"https://127.0.0.1:{tls_port}/v1", "--timeout", "3"))
    assert "TLS certificate" in line and "not trusted" in line


def test_preflight_unresolvable_host_is_exit_2():
    line = one_line_exit_2(run("run", "--base-url", "http://chatconf-no-such-host.invalid/v1",
                               "--api-key-env", "CHATCONF_TEST_KEY", env={"CHATCONF_TEST_KEY": "k"}))
    assert "cannot resolve host" in line


@pytest.mark.parametrize("make_args, message", [
    (lambda t: ["-k", "stream and ("], "invalid -k expression"),
    (lambda t: ["-k", "a b"], "invalid -k expression"),
    (lambda t: ["--report-dir", str(t / "a-file")], "--report-dir"),
    (lambda t: ["--report-dir", str(t / "a-file" / "sub")], "is not a directory"),
    (lambda t: ["--junit", str(t)], "is a directory"),
    (lambda t: ["--junit", str(t / "a-file" / "j.xml")], "is not a directory"),
])
def test_late_usage_errors_are_exit_2_before_any_request(keyed_mock, tmp_path, make_args, message):
    (tmp_path / "a-file").write_text("x")
    before = mock_requests(keyed_mock)
    proc = run("run", "--base-url", keyed_mock, *make_args(tmp_path), "--api-key-env", "CHATCONF_TEST_KEY",
               env={"CHATCONF_TEST_KEY": SECRET}, timeout=60)
    assert message in one_line_exit_2(proc)
    assert mock_requests(keyed_mock) == before


def test_bad_k_on_the_embedded_mock_is_exit_2():
    line = one_line_exit_2(run("run", "-k", "stream and ("))
    assert line.startswith("chatconf run: error: invalid -k expression")


def test_dry_run_honours_k():
    proc = run("run", "--dry-run", "-k", "stream.done or auth")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert sorted(listed) == ["auth.invalid-key", "auth.missing-key", "stream.done-last"]
    assert "3 checks" in proc.stdout
    everything = run("run", "--dry-run")
    planned = [int(line.split("about ")[1].split()[0]) for line in (proc.stdout, everything.stdout)
               for line in line.splitlines() if line.startswith("planned requests")]
    assert planned[0] < planned[1]
    assert one_line_exit_2(run("run", "--dry-run", "-k", "no_such_check_anywhere")).endswith(
        "no check matches -k 'no_such_check_anywhere'")


def test_a_conformance_folder_in_the_working_directory_never_shadows_the_installed_mock(tmp_path):
    """The embedded mock runs as a child process; `python -m` would put the working directory first on
    sys.path, so an older checkout (or a user's own package named `conformance`) there was imported instead."""
    (tmp_path / "conformance").mkdir()
    (tmp_path / "conformance" / "__init__.py").write_text('raise SystemExit("the wrong conformance")\n')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "chatconf"), "run", "-q", "-k",
                           "stream.done-last"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout

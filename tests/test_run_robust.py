"""`chatconf run` end to end against servers that break the harness rather than the API: strings no
encoder likes, invalid UTF-8 in a stream, an echoed key, silence and trickled headers."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.recording import iter_recording

from .hostile_server import HostileServer
from .test_run_cli import CHATCONF, run

CANARY = "canary-7f3a9c2e1b"
FAST = "not test_rejected or temperature"  # one property check, not twenty (each costs seconds)
SILENCE_BOUND_S = 60  # documented bound for a silent or trickling target with --timeout 2


def _summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))


def test_strings_no_encoder_likes_are_recorded_and_reported(tmp_path: Path):
    with HostileServer("bad-strings") as server:
        proc = run("run", "--base-url", server.base_url, "--max-requests", "40", "--examples", "1", "--timeout", "2",
                   "-k", FAST, "--report-dir", str(tmp_path), "--junit", str(tmp_path / "junit.xml"), timeout=180)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    summary = _summary(tmp_path)
    assert not [c for c in summary["checks"] if "ExceptionGroup" in c["message"] or "Unicode" in c["message"]]
    lines = (tmp_path / "recording.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == summary["requests"]["sent"] > 0
    exchanges = list(iter_recording(lines))
    # JSON with a lone surrogate is kept as parsed (written as an escape); bytes that are not UTF-8 as text.
    assert any("\ud800" in ex.body["error"]["message"] and "\x00" in ex.body["error"]["message"]
               for ex in exchanges if isinstance(ex.body, dict))
    assert any("\ufffd" in (ex.body_text or "") and any("not valid UTF-8" in n for n in ex.notes)
               for ex in exchanges)
    ET.parse(tmp_path / "junit.xml")
    assert "chatconf conformance report" in (tmp_path / "report.html").read_text(encoding="utf-8")
    check = run("validate", str(tmp_path / "recording.jsonl"), "--json")
    assert check.returncode in (0, 1), check.stderr
    assert json.loads(check.stdout)["files"][0]["exchanges"] == len(lines)


def test_invalid_utf8_in_a_live_stream_is_the_rule_validate_reports(tmp_path: Path):
    """Issue 13 item 7: one rule for the same bytes on both paths. The live stream used to be a transport
    error (stream.terminated, transport.complete) while validate called a transcript of it unreadable;
    now the run, its recording and the raw transcript all report stream.json at event 1."""
    with HostileServer("sse-bad-utf8") as server:
        proc = run("run", "--base-url", server.base_url, "--max-requests", "30", "--examples", "1", "--timeout", "2",
                   "-k", "transport.complete or stream.json or stream.terminated", "--report-dir", str(tmp_path),
                   timeout=180)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    checks = {c["id"]: (c["status"], c["message"]) for c in _summary(tmp_path)["checks"]}
    assert checks["stream.json"][0] == "failed" and "not UTF-8" in checks["stream.json"][1], checks
    assert "(event 1)" in checks["stream.json"][1], checks
    assert checks["transport.complete"][0] == "passed" and checks["stream.terminated"][0] == "passed", checks
    recorded = run("validate", "--json", str(tmp_path / "recording.jsonl"))
    streams = [v for v in json.loads(recorded.stdout)["files"][0]["violations"] if v["rule"] == "stream.json"]
    assert streams and all(v["event"] == 1 for v in streams), recorded.stdout
    transcript = tmp_path / "stream.sse"
    transcript.write_bytes(HostileServer.SSE_BAD_UTF8)
    raw = run("validate", "--json", str(transcript))
    (f,) = json.loads(raw.stdout)["files"]
    assert f["status"] == "invalid" and [(v["rule"], v["event"]) for v in f["violations"]
                                         if v["rule"] == "stream.json"] == [("stream.json", 1)]


def test_a_key_the_server_echoes_appears_nowhere(tmp_path: Path):
    with HostileServer("echo-key", preflight_ok=True) as server:
        proc = run("run", "--base-url", server.base_url, "--api-key-env", "CHATCONF_TEST_KEY", "--max-requests", "40",
                   "--examples", "1", "--timeout", "2", "-k", FAST, "--report-dir", str(tmp_path),
                   "--junit", str(tmp_path / "junit.xml"), env={"CHATCONF_TEST_KEY": CANARY}, timeout=180)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[REDACTED]" in (tmp_path / "recording.jsonl").read_text()  # the server did echo it
    raw = CANARY.encode()
    needles = [CANARY, base64.b64encode(raw).decode().rstrip("="),
               base64.b64encode(b"Bearer " + raw).decode().rstrip("=")]
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    outputs.update({p.name: p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.iterdir()})
    assert {"summary.json", "report.html", "junit.xml", "recording.jsonl"} <= outputs.keys()
    hits = [(name, needle) for name, text in outputs.items() for needle in needles if needle in text]
    assert hits == []


@pytest.mark.parametrize("mode, expected", [
    ("hang", "timed out (ReadTimeout: no data for 2 s)"),
    ("trickle-headers", "timed out: no response headers within the 6 s deadline"),
])
def test_a_silent_or_trickling_target_ends_the_run_quickly(mode, expected, tmp_path: Path):
    with HostileServer(mode, preflight_ok=True) as server:
        start = time.monotonic()
        proc = run("run", "--base-url", server.base_url, "--timeout", "2", "--report-dir", str(tmp_path),
                   timeout=SILENCE_BOUND_S * 3)
        elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert elapsed < SILENCE_BOUND_S
    summary = _summary(tmp_path)
    checks = {c["id"]: c for c in summary["checks"]}
    assert checks["transport.complete"]["status"] == "failed"
    assert expected in checks["transport.complete"]["message"]
    assert summary["requests"]["sent"] == 3
    assert any(c["message"] == "not run: target stopped answering: 3 requests in a row got no response"
               for c in summary["checks"] if c["status"] == "skipped")


def test_flooding_server_is_judged_on_every_event_and_the_cut_is_said(tmp_path: Path):
    """Issue 13 item 4: a flood costs bounded memory and recording; the verdict still covers it."""
    from .hostile_server import FLOOD_ODD_ID
    with HostileServer("flood", preflight_ok=True, flood_bytes=1024 * 1024) as server:
        proc = run("run", "--base-url", server.base_url, "--profile", "openai", "--max-requests", "6",
                   "--timeout", "5", "-k", "stream.same-id", "--report-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    [check] = [c for c in _summary(tmp_path)["checks"] if c["id"] == "stream.same-id"]
    assert check["status"] == "failed" and FLOOD_ODD_ID in check["message"], check
    assert "events not kept" in check["evidence"]["events_not_kept"]
    lines = (tmp_path / "recording.jsonl").read_text(encoding="utf-8").splitlines()
    streamed = [ex for ex in iter_recording(lines) if ex.events]
    assert streamed and all(ex.dropped_events and len(ex.events) <= 1050 for ex in streamed)
    assert max(len(line) for line in lines) < 400 * 1024  # of a 1 MiB stream (16 MB ones: the same)


# -- issue 13 item 7: nothing left in the user's working directory or /tmp, however the run ends ------

@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_leaves_no_files_behind_and_writes_its_partial_report(tmp_path: Path, sig: int,
                                                                           code: int) -> None:
    """Before: every run wrote .hypothesis/ into the working directory, and SIGTERM (Python's default
    handler) killed the run without its `finally`: no report, /tmp/chatconf-run-* left behind."""
    work, tmp, cache, reports = (tmp_path / name for name in ("work", "tmp", "cache", "reports"))
    for directory in (work, tmp, cache):
        directory.mkdir()
    env = {**os.environ, "NO_COLOR": "1", "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache)}
    for name in ("DASHSCOPE_API_KEY", "HYPOTHESIS_STORAGE_DIRECTORY"):
        env.pop(name, None)
    proc = subprocess.Popen([*CHATCONF, "run", "--examples", "200", "--report-dir", str(reports)], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:  # wait until a Hypothesis property has run (its caches exist), then stop it
        if "rejected when broken" in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == code, rest[-2000:] + err[-1000:]
    assert "INTERRUPTED" in rest and "Traceback" not in err
    assert json.loads((reports / "summary.json").read_text())["interrupted"] is True
    assert sorted(p.name for p in work.iterdir()) == []                  # no .hypothesis/, nothing
    assert sorted(p.name for p in tmp.iterdir()) == []                   # no chatconf-run-*
    assert (cache / "chatconf" / "hypothesis").is_dir()                  # the caches went here instead

"""Report files on a hostile disk (issue 13, item 5): every write is atomic and checked, a failed one
is one line and exit 4 (never a report path that was not written, never a clobbered good file), and
a report dir in use by another chatconf is refused before any request."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conformance import cli, outputs
from conformance.outputs import EXIT_OUTPUT, LOCK_NAME, OutputError, write_atomic
from conformance.recording import RecordingWriter
from conformance.results import RunSummary
from loadtests.launcher import report_error
from loadtests.report_files import REPORT_ERROR, write_reports

from .hostile_server import HostileServer
from .test_run_cli import CHATCONF

GOOD = '{"tool": "chatconf", "good": true}\n'


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every report write fails the way a full disk fails: on flushing the data (ENOSPC)."""
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(outputs.os, "fsync", no_space)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path: Path, full_disk: None):
    target = tmp_path / "summary.json"
    target.write_text(GOOD)
    with pytest.raises(OutputError) as info:
        write_atomic(target, "x" * 100_000)
    assert str(info.value) == f"cannot write {target}: No space left on device"
    assert target.read_text() == GOOD
    assert _leftovers(tmp_path) == []


def test_write_atomic_replaces_whole_file(tmp_path: Path):
    target = tmp_path / "a.json"
    target.write_text(GOOD)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and _leftovers(tmp_path) == []
    fresh = write_atomic(tmp_path / "b.json", b"{}")
    assert fresh.stat().st_mode & 0o777 == outputs._file_mode()  # as open() would make it, not 0600


def test_recording_on_a_full_disk_raises_on_close_and_keeps_the_old_one(tmp_path: Path, monkeypatch):
    old = tmp_path / "recording.jsonl"
    old.write_text(GOOD)
    writer = RecordingWriter(old)
    real_write = outputs.AtomicFile.write

    def fail_write(self: outputs.AtomicFile, data: str | bytes, *, flush: bool = False) -> None:
        self.abort()
        raise OutputError(self.path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    monkeypatch.setattr(outputs.AtomicFile, "write", fail_write)
    from conformance.exchange import Exchange
    writer.write(Exchange(status=200))  # must not raise: the exchange being recorded goes on
    monkeypatch.setattr(outputs.AtomicFile, "write", real_write)
    with pytest.raises(OutputError, match="No space left on device"):
        writer.close()
    assert old.read_text() == GOOD and _leftovers(tmp_path) == []


def test_load_reports_on_a_full_disk_leave_no_summary_and_no_temp(tmp_path: Path, full_disk: None):
    with pytest.raises(OutputError, match=r"samples\.jsonl"):
        write_reports(tmp_path, {"tool": "chatconf", "regions": {}}, [{"t": 1.0}])
    assert list(tmp_path.iterdir()) == []  # summary.json (the parent's proof of a report) is written last
    assert report_error(["progress 1", f"{REPORT_ERROR}cannot write x: No space left on device"]) == \
        "cannot write x: No space left on device"
    assert report_error(["progress 1"]) is None


def test_report_command_on_a_full_disk_is_one_line_and_exit_4(tmp_path: Path, full_disk: None, capsys):
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(RunSummary(target={"base_url": "x", "model": "m", "profile": "p"}).to_dict()))
    out = tmp_path / "report.html"
    out.write_text(GOOD)
    code = cli.main(["report", str(summary), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_OUTPUT == 4
    assert captured.err.strip() == f"chatconf report: error: cannot write {out}: No space left on device"
    assert str(out) not in captured.out
    assert out.read_text() == GOOD and _leftovers(tmp_path) == []


def test_run_on_a_full_disk_exits_4_and_names_no_report(tmp_path: Path, full_disk: None, capsys):
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    (report_dir / "summary.json").write_text(GOOD)
    code = cli.main(["run", "-k", "stream.done-last", "--report-dir", str(report_dir),
                     "--junit", str(tmp_path / "junit.xml")])
    captured = capsys.readouterr()
    assert code == EXIT_OUTPUT, captured.out[-2000:] + captured.err[-2000:]
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert errors == [f"chatconf run: error: cannot write {report_dir / 'summary.json'}: No space left on device"]
    assert "reports:" not in captured.out and "junit:" not in captured.out
    assert (report_dir / "summary.json").read_text() == GOOD
    assert not (report_dir / "recording.jsonl").exists() and not (tmp_path / "junit.xml").exists()
    assert _leftovers(report_dir) == [] and _leftovers(tmp_path) == []


def _held(lock: Path) -> bool:
    if not lock.exists():
        return False
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def test_second_run_on_the_same_report_dir_is_refused_before_any_request(tmp_path: Path):
    env = {**os.environ, "NO_COLOR": "1"}
    with HostileServer("hang", preflight_ok=True) as server:
        # The first run holds the dir for one hung exchange (3 s deadline) plus start-up.
        first = subprocess.Popen([*CHATCONF, "run", "--base-url", server.base_url, "--timeout", "1", "-q",
                                  "--max-requests", "2", "-k", "transport.complete", "--report-dir", str(tmp_path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 30
            while not _held(tmp_path / LOCK_NAME) and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert first.poll() is None, first.communicate()
            start = time.monotonic()
            second = subprocess.run([*CHATCONF, "run", "--base-url", server.base_url, "--report-dir", str(tmp_path)],
                                    capture_output=True, text=True, env=env, timeout=60)
            elapsed = time.monotonic() - start
        finally:
            out, err = first.communicate(timeout=90)
    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stderr.strip().count("\n") == 0 and "in use by another running chatconf" in second.stderr
    assert elapsed < 10
    assert first.returncode in (0, 1), out[-2000:] + err[-2000:]
    assert json.loads((tmp_path / "summary.json").read_text())["tool"] == "chatconf"


def test_load_that_cannot_write_its_reports_exits_4_and_names_none(tmp_path: Path):
    """The Locust process hits the file-size limit (EFBIG, as a full disk would give ENOSPC) while
    writing the reports; `chatconf load` says so in one line instead of exiting 0."""
    import resource

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.RLIM_INFINITY))
    proc = subprocess.run([*CHATCONF, "load", "--run-time", "3s", "--users", "4", "-q", "--report-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, preexec_fn=small_files,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == EXIT_OUTPUT, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().startswith("chatconf load: error: cannot write ")
    assert "File too large" in proc.stderr and "reports:" not in proc.stderr + proc.stdout
    assert not (tmp_path / "summary.json").exists() and _leftovers(tmp_path) == []

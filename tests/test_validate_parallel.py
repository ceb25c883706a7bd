"""`chatconf validate -j N`: many files on every core, with exactly the output of a serial run; a
progress line on terminals only."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from conformance.progress import Progress
from conformance.resources import fixtures_dir


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", "validate", *args], capture_output=True,
                          text=True, timeout=120)


def test_two_jobs_print_byte_for_byte_what_one_job_prints():
    fixtures = str(fixtures_dir())
    for extra in ([], ["--json"], ["--strict"]):
        serial, parallel = validate("-j", "1", *extra, fixtures), validate("-j", "2", *extra, fixtures)
        assert serial.returncode == parallel.returncode == 2  # the fixtures hold unreadable files on purpose
        assert serial.stdout == parallel.stdout and len(serial.stdout) > 10_000
        assert parallel.stderr == ""  # not a terminal: no progress line


def test_jobs_must_be_sensible():
    proc = validate("-j", "0", str(fixtures_dir()))
    assert proc.returncode == 2 and "--jobs must be between 1 and 256" in proc.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_after_a_second_and_clears_itself():
    now = [0.0]
    stream = _Terminal()
    progress = Progress(stream, total=10, clock=lambda: now[0])
    progress.update(1, 100)
    assert stream.getvalue() == ""  # the first second stays quiet
    now[0] = 2.0
    progress.update(4, 8000)
    assert "validate: 4/10 files, 8,000 exchanges (4,000/s), 2 s, ETA 3 s" in stream.getvalue()
    progress.clear()
    assert stream.getvalue().endswith("\r\033[K")
    quiet = io.StringIO()
    Progress(quiet, total=10, clock=lambda: 5.0).update(5, 5)
    assert quiet.getvalue() == ""


def test_the_python_api_runs_parallel_too(tmp_path: Path):
    from conformance.validate import validate_paths

    files = sorted((fixtures_dir() / "good").rglob("*.jsonl"))[:6]
    serial = [r.as_dict() for r in validate_paths(files, jobs=1)]
    parallel = [r.as_dict() for r in validate_paths(files, jobs=2)]
    assert serial == parallel and len(serial) == 6

"""The pytest11 entry point lives in every pytest session of every environment chatconf is installed
in: it must coexist with pytest-base-url (installed by the test extras, as pytest-playwright and
pytest-selenium install it), stay inert in projects that never collect the suite, and still drive
the suite when `pytest --pyargs conformance.suite` collects it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

USER_TESTS = '''
import sys

def test_a_users_base_url(base_url):
    assert base_url == "http://app.test"

def test_chatconf_stays_out_of_the_way():
    loaded = [m for m in ("conformance.suite.plugin", "conformance.client", "conformance.suite") if m in sys.modules]
    assert loaded == []

def test_runs_second():
    pass
'''


def pytest_in(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=directory, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


@pytest.fixture()
def user_project(tmp_path: Path) -> Path:
    (tmp_path / "test_app.py").write_text(USER_TESTS, encoding="utf-8")
    return tmp_path


def test_pytest_base_url_owns_base_url_beside_chatconf(user_project: Path):
    proc = pytest_in(user_project, "-v", "--base-url", "http://app.test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    order = [line.split("::")[1].split()[0] for line in proc.stdout.splitlines() if "::test_" in line]
    assert order == ["test_a_users_base_url", "test_chatconf_stays_out_of_the_way", "test_runs_second"]


def test_every_chatconf_option_is_namespaced(user_project: Path):
    proc = pytest_in(user_project, "--help")
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("chatconf conformance suite", 1)[1].split("\n\n", 1)[0]
    options = re.findall(r"^\s+(--[\w-]+)", section, flags=re.MULTILINE)
    assert "--chatconf-base-url" in options
    assert len(options) >= 15
    assert all(o.startswith("--chatconf-") for o in options), options


def test_the_entry_point_repeats_the_fail_on_choices_of_the_results_model():
    from conformance.pytest_options import FAIL_ON
    from conformance.results import FAIL_ON as RESULTS_FAIL_ON
    assert tuple(FAIL_ON) == tuple(RESULTS_FAIL_ON)


def test_the_suite_runs_under_plain_pytest_with_namespaced_options_and_chatconf_settings(tmp_path: Path):
    reports = tmp_path / "reports"
    (tmp_path / "chatconf.toml").write_text('[run]\nexamples = 2\n', encoding="utf-8")
    proc = pytest_in(tmp_path, "--pyargs", "conformance.suite", "-q", "-k", "stream.done-last or schema.chunk",
                     "--base-url", "http://unrelated.test", CHATCONF_REPORT_DIR=str(reports))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["passed"] == 2
    assert summary["target"]["kind"] == "mock"  # --base-url belongs to pytest-base-url, not to chatconf

"""docs/ci/chatconf-gate.sh, the CI example, run as a CI job would run it, against a local mock standing
in for the gateway: green on a good gateway, red on one that breaks a documented rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance.mock import MockConfig, MockServer

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "ci" / "chatconf-gate.sh"
KEY = "sk-ci-gateway-key-31"


def gate(tmp_path: Path, gateway: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCONF_")}
    env.update(GATEWAY_URL=gateway, GATEWAY_KEY=KEY, REPORTS=str(tmp_path / "reports"), LOAD_TIME="2s",
               LOAD_USERS="2", CHATCONF_EXAMPLES="2", PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_the_gate_passes_a_good_gateway_and_writes_every_report(tmp_path: Path):
    with MockServer(MockConfig(api_key=KEY)) as gateway:
        proc = gate(tmp_path, gateway)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = tmp_path / "reports"
    for name in ("junit-mock.xml", "junit-gateway.xml", "gateway/summary.json", "load/summary.json", "index.html"):
        assert (reports / name).is_file(), name
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert "Compatibility matrix" in page and '<td class="id">gateway</td>' in page
    assert KEY not in proc.stdout + proc.stderr + page


def test_the_gate_fails_a_gateway_that_breaks_a_must_rule(tmp_path: Path):
    with MockServer(MockConfig(api_key=KEY, faults=("stream.done-last",))) as gateway:
        proc = gate(tmp_path, gateway)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "stream.done-last" in proc.stdout
    assert not (tmp_path / "reports" / "load").exists()  # the gate stopped at the failing step

"""`chatconf run` for scripts: `--json` puts the summary, and only it, on stdout; `--hypothesis-seed N`
draws another set of edge cases that the same N replays exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHATCONF = [sys.executable, "-m", "conformance.cli"]
CHECK = "request.temperature-range"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCONF_")}
    return subprocess.run([*CHATCONF, "run", *args], capture_output=True, text=True, timeout=180, env=env)


def temperatures_sent(report_dir: Path) -> list[object]:
    sent = []
    for line in (report_dir / "recording.jsonl").read_text(encoding="utf-8").splitlines():
        body = json.loads(line).get("request", {}).get("body")
        if isinstance(body, dict) and "temperature" in body:
            sent.append(body["temperature"])
    return sent


def test_json_puts_the_summary_and_nothing_else_on_stdout(tmp_path: Path):
    proc = run("--json", "-k", "stream.done-last or request.n-range", "--examples", "2")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["totals"]["passed"] == 2
    assert summary["target"]["kind"] == "mock"


def test_a_hypothesis_seed_replays_exactly_and_draws_another_set(tmp_path: Path):
    drawn = {}
    runs = {"default": [], "seed7": ["--hypothesis-seed", "7"], "seed7-again": ["--hypothesis-seed", "7"],
            "seed8": ["--hypothesis-seed", "8"]}
    for name, extra in runs.items():
        out = tmp_path / name
        proc = run("-q", "-k", CHECK, "--examples", "6", "--report-dir", str(out), *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        drawn[name] = temperatures_sent(out)
        if extra:
            assert json.loads((out / "summary.json").read_text())["hypothesis_seed"] == int(extra[1])
    assert drawn["seed7"] == drawn["seed7-again"]
    assert drawn["seed7"] != drawn["seed8"]
    assert drawn["seed7"] != drawn["default"]

"""`chatconf load --replay`: captured requests sent again with their captured timing (scaled by --speed),
against another target, checked by the same stream rules; captured keys are never replayed."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from conformance.mock import MockConfig, MockServer
from loadtests.replay import ReplayError, load_replay

from .test_load_cli import chatconf, samples_of

KEY = "sk-replay-run-key-88"


def recording(path: Path, gaps_s: list[float]) -> Path:
    lines, t = [], 1_767_225_600.0
    for i, gap in enumerate([0.0, *gaps_s]):
        t += gap
        lines.append(json.dumps({
            "chatconf": "recording/1", "entry": i,
            "request": {"method": "POST", "url": "https://old.example/v1/chat/completions",
                        "headers": {"authorization": "Bearer [REDACTED]"},
                        "body": {"model": "qwen-max", "messages": [{"role": "user", "content": f"question {i}"}],
                                 "max_tokens": 8}},
            "response": {"status": 200, "body": {}}, "timing": {"sent_at": t}}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_capture_becomes_a_schedule_of_streamed_requests(tmp_path: Path):
    entries = load_replay(recording(tmp_path / "r.jsonl", [1.5, 0.5]))
    assert [e.offset_s for e in entries] == [0.0, 1.5, 2.0]
    assert all(e.body["stream"] is True and e.body["stream_options"] == {"include_usage": True} for e in entries)
    assert entries[1].body["model"] == "qwen-max"
    assert load_replay(tmp_path / "r.jsonl", model="qwen-plus")[0].body["model"] == "qwen-plus"
    (tmp_path / "answer.json").write_text('{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}',
                                          encoding="utf-8")
    with pytest.raises(ReplayError, match="no chat request"):
        load_replay(tmp_path / "answer.json")


def test_replay_keeps_the_captured_timing_at_the_given_speed_and_uses_the_runs_key(tmp_path: Path):
    capture = recording(tmp_path / "r.jsonl", [1.0, 1.0, 1.0])
    with MockServer(MockConfig(api_key=KEY)) as target:
        proc = chatconf("--base-url", target, "--label", "gw", "--replay", str(capture), "--speed", "2",
                        "--users", "4", "--report-dir", str(tmp_path / "out"), "-q", env={"DASHSCOPE_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    samples = sorted(samples_of(tmp_path / "out"), key=lambda s: s["t"])
    assert len(samples) == 4 and all(s["ok"] for s in samples)  # the captured, redacted key was not sent
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(samples)]
    assert all(0.35 < gap < 0.75 for gap in gaps), gaps  # 1 s apart in the capture, at --speed 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["replay"]["speed"] == 2.0 and summary["regions"]["gw"]["requests"] == 4
    assert summary["duration_s"] < 20  # the run ends with the capture, not after the default 30 s margin


def test_replay_flags_are_checked_first(tmp_path: Path):
    capture = recording(tmp_path / "r.jsonl", [1.0])
    for args, words in ((["--replay", str(tmp_path / "none.jsonl")], "--replay"),
                        (["--replay", str(capture), "--rate", "3"], "drop --sweep, --rate"),
                        (["--replay", str(capture), "--speed", "0"], "--speed must be between")):
        proc = chatconf(*args, "--run-time", "30s")
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr

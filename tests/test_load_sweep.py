"""Capacity search: bracketed (doubling, then bisection), bounded in steps and time, honest about a
saturated generator; end to end against a server whose latency grows with the load it carries."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.sweep import Step, search

from .hostile_server import HostileServer
from .test_load_cli import chatconf


def server_with_capacity(capacity: float, saturate_at: float | None = None):
    def run_step(load: float) -> Step:
        warnings = ["worker 0 used 97% of a core"] if saturate_at is not None and load >= saturate_at else []
        return Step(load=load, passed=load <= capacity, saturated=warnings)
    return run_step


def test_doubling_then_bisection_finds_the_capacity():
    result = search(server_with_capacity(11), start=2, integer=True, max_steps=20, time_budget_s=1e9,
                    step_cost_s=1)
    assert [s.load for s in result.steps] == [2, 4, 8, 16, 12, 10, 11]
    assert (result.capacity, result.first_failure) == (11, 12)
    assert result.stopped == "bracketed between 11 (met) and 12 users (missed)"


def test_a_rate_search_stops_within_its_resolution():
    result = search(server_with_capacity(7.3), start=1.0, integer=False, max_steps=20, time_budget_s=1e9,
                    step_cost_s=1, resolution=0.1)
    assert result.capacity is not None and 6.6 < result.capacity <= 7.3 < result.first_failure
    assert result.first_failure - result.capacity <= 0.1 * result.capacity


def test_when_even_the_first_load_fails_the_search_halves_down_to_one():
    result = search(server_with_capacity(0.5), start=4, integer=True, max_steps=20, time_budget_s=1e9,
                    step_cost_s=1)
    assert [s.load for s in result.steps] == [4, 2, 1] and result.capacity is None
    assert result.stopped == "even 1 users missed an objective"


def test_steps_and_time_are_bounded():
    result = search(server_with_capacity(1000), start=1, integer=True, max_steps=3, time_budget_s=1e9,
                    step_cost_s=1)
    assert len(result.steps) == 3 and result.stopped == "step budget of 3 spent" and result.capacity == 4
    now = [0.0]

    def step(load: float) -> Step:
        now[0] += 30
        return Step(load=load, passed=True)

    result = search(step, start=1, integer=True, max_steps=50, time_budget_s=100, step_cost_s=30,
                    clock=lambda: now[0])
    assert len(result.steps) == 3 and "time budget of 100 s" in result.stopped


def test_a_saturated_generator_ends_the_search_and_says_so():
    result = search(server_with_capacity(1000, saturate_at=8), start=2, integer=True, max_steps=20,
                    time_budget_s=1e9, step_cost_s=1)
    assert [s.load for s in result.steps] == [2, 4, 8] and result.capacity == 4
    assert result.stopped.startswith("the load generator saturated at 8 users")


def test_the_sweep_finds_where_a_real_server_stops_meeting_its_objective(tmp_path: Path):
    """TTFT is 30 ms plus 40 ms per request in flight beyond 3: ttft_p50<=120ms holds up to about 5 users
    (the base wait keeps the generator far from saturation, so the server's capacity is what is found)."""
    with HostileServer("saturating", preflight_ok=True, free_slots=3, slot_ms=40, base_ms=30) as server:
        proc = chatconf("--base-url", server.base_url, "--label", "gw", "--sweep", "--users", "4", "--run-time", "2s",
                        "--slo", "ttft_p50<=120ms", "--sweep-steps", "6", "--report-dir", str(tmp_path), "-q",
                        env={"DASHSCOPE_API_KEY": "k"}, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads((tmp_path / "sweep.json").read_text())
    result = doc["targets"]["gw"]
    capacity, failure = result["capacity"], result["first_failure"]
    assert 4 <= capacity < 8 and failure == capacity + 1, result  # a bracket one user wide
    steps = {s["load"]: s for s in result["steps"]}
    assert [s["load"] for s in result["steps"]][:2] == [4, 8]
    assert steps[capacity]["ttft_p50_ms"] <= 120 < steps[failure]["ttft_p50_ms"]
    assert not any(s["saturated"] for s in result["steps"])
    assert f"gw: capacity {capacity:g} users" in proc.stdout
    assert f"capacity {capacity:g}" in (tmp_path / "sweep.html").read_text()
    assert (tmp_path / "sweep-gw" / "step-01-4" / "summary.json").is_file()

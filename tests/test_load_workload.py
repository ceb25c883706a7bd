"""Workloads users can describe: length distributions, shares of tools and thinking, conversations that
grow their history, their own prompts; all reproducible under the seed."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from conformance.profiles import load_profile
from loadtests.dataset import DatasetError, load_dataset
from loadtests.distributions import DistributionError, parse_distribution
from loadtests.workload import Shape, Workload

from .test_load_cli import chatconf, samples_of

MODEL = load_profile("dashscope").model("qwen-plus")


@pytest.mark.parametrize(("spec", "check"), [
    ("512", lambda xs: set(xs) == {512}),
    ("uniform:100,200", lambda xs: min(xs) >= 100 and max(xs) <= 200 and len(set(xs)) > 50),
    ("normal:512,64", lambda xs: 490 < statistics.mean(xs) < 535 and 50 < statistics.stdev(xs) < 80),
    ("lognormal:300,0.5", lambda xs: 270 < statistics.median(xs) < 330 and max(xs) > 700),
])
def test_distributions_draw_what_they_say(spec, check):
    rng = random.Random(1)
    dist = parse_distribution(spec, "--prompt-tokens")
    assert check([dist.draw(rng) for _ in range(2000)])


def test_a_histogram_file(tmp_path: Path):
    path = tmp_path / "h.txt"
    path.write_text("# lengths seen in production\n100 3\n1000 1\n", encoding="utf-8")
    rng = random.Random(2)
    draws = [parse_distribution(f"hist:{path}", "--max-tokens").draw(rng) for _ in range(4000)]
    assert set(draws) == {100, 1000} and 0.7 < draws.count(100) / len(draws) < 0.8


@pytest.mark.parametrize(("spec", "words"), [
    ("normal:abc", "expected N, uniform"), ("uniform:9,3", "1 <= LO <= HI"), ("0", "between 1 and"),
    ("hist:/nonexistent", "cannot read"), ("gamma:1,2", "expected N, uniform"),
])
def test_bad_distributions_are_one_line(spec, words):
    with pytest.raises(DistributionError, match=words):
        parse_distribution(spec, "--prompt-tokens")


def test_prompts_and_max_tokens_follow_the_shape_and_the_seed():
    shape = Shape(prompt_tokens=parse_distribution("uniform:50,60", "p"), max_tokens=parse_distribution("77", "m"))
    first = [Workload(MODEL, seed=9, shape=shape).next().body for _ in range(1)]
    plans = [w.next() for w in [Workload(MODEL, seed=9, shape=shape)] for _ in range(50)]
    assert plans[0].body == first[0]  # same seed, same requests
    for plan in plans:
        assert plan.body["max_tokens"] == 77
        if plan.kind != "tools":
            assert 50 <= len(plan.body["messages"][-1]["content"].split()) <= 60


def test_conversations_grow_their_history_with_the_answers_received():
    workload = Workload(MODEL, seed=3, shape=Shape(turns=parse_distribution("3", "--turns")), mix={"short": 1})
    turns = []
    for i in range(4):
        plan = workload.next()
        turns.append(plan)
        workload.answered(f"answer {i}")
    assert [t.turn for t in turns] == [1, 2, 3, 1]
    third = turns[2].body["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in third if m["role"] == "assistant"] == ["answer 0", "answer 1"]
    assert len(turns[3].body["messages"]) == 1  # a new conversation starts fresh


def test_a_dataset_supplies_the_prompts(tmp_path: Path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "Capital of France?"}\n# a comment\n'
                    '{"messages": [{"role": "user", "content": "Three rivers?"}], "max_tokens": 20}\n',
                    encoding="utf-8")
    rows = load_dataset(path)
    workload = Workload(MODEL, seed=1, shape=Shape(dataset=rows))
    bodies = [workload.next().body for _ in range(30)]
    assert {b["messages"][-1]["content"] for b in bodies} == {"Capital of France?", "Three rivers?"}
    assert all(b.get("max_tokens") == 20 for b in bodies if b["messages"][-1]["content"] == "Three rivers?")
    path.write_text('{"prompt": "ok"}\n{"messages": [{"content": "no role"}]}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2: every message needs a role"):
        load_dataset(path)


def test_a_described_workload_runs_and_the_server_counts_its_tokens(tmp_path: Path):
    proc = chatconf("--run-time", "3s", "--users", "2", "--prompt-tokens", "normal:200,20", "--max-tokens", "24",
                    "--turns", "3", "--mix", "short=1", "--seed", "5", "--report-dir", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stderr
    samples = samples_of(tmp_path)
    assert samples and all(s["completion_tokens"] <= 24 for s in samples if s["ok"])
    first_turns = [s["prompt_tokens"] for s in samples if s["ok"] and s["prompt_tokens"] < 300]
    assert first_turns and all(150 < p < 300 for p in first_turns)  # about 200 words: the mock's usage says so
    assert max(s["prompt_tokens"] for s in samples) > 400  # later turns carry the history


def test_workload_flags_are_checked_before_anything_starts(tmp_path: Path):
    for args, words in ((["--max-tokens", "uniform:5"], "--max-tokens 'uniform:5'"),
                        (["--dataset", str(tmp_path / "none.jsonl")], "--dataset"),
                        (["--mix", "short=x"], "--mix 'short=x'")):
        proc = chatconf(*args, "--run-time", "30s")
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

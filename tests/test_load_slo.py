"""SLO gate: objectives judged on exact merged samples, goodput as DistServe defines it, an error-rate
objective on by default so a run with a fifth of its requests failing is never green."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.mock import MockConfig, MockServer
from conformance.mock.config import parse_inject
from conformance.stats import percentile
from loadtests import slo

from .test_load_cli import chatconf


def sample(region: str, ttft: float, tpot: float, ok: bool = True, gaps: tuple[float, ...] = (10.0,)) -> dict:
    return {"region": region, "ok": ok, "ttft_ms": ttft if ok else None, "tpot_ms": tpot if ok else None,
            "itl_ms": list(gaps) if ok else [], "e2e_ms": ttft + 100 if ok else None, "completion_tokens": 10}


SAMPLES = [sample("sg", t, 20.0) for t in (100, 200, 300, 400, 900)] + \
          [sample("va", t, 50.0) for t in (500, 600)] + [sample("va", 0, 0, ok=False)]


def test_the_default_objective_is_an_error_rate_and_none_turns_it_off():
    assert [o.text for o in slo.parse(None)] == ["error_rate<=1%"]
    assert [o.text for o in slo.parse("ttft_p99<=800ms")] == ["ttft_p99<=800ms", "error_rate<=1%"]
    assert [o.text for o in slo.parse("error_rate<=5%")] == ["error_rate<=5%"]
    assert slo.parse("none") == []


@pytest.mark.parametrize(("spec", "words"), [
    ("ttft_p99<=8x", "expected [TARGET:]NAME OP VALUE"),
    ("latency_p99<=800ms", "unknown objective 'latency_p99'"),
    ("ttft_p100<=800ms", "between p0 and p100"),
    ("error_rate<=5", "a percentage (1%) or a fraction"),
    ("ttft_p99<=5%", "is a time"),
    ("mars:ttft_p99<=1s", "no target 'mars'"),
])
def test_bad_objectives_are_one_line(spec: str, words: str):
    with pytest.raises(slo.SLOError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        slo.parse(spec, labels=["sg", "va"])


def test_objectives_are_judged_on_exact_pooled_and_scoped_samples():
    objectives = slo.parse("ttft_p90<=700ms,sg:ttft_p50<=300ms,va:tpot_mean<40ms,error_rate<=10%,itl_max<=10ms")
    result = slo.evaluate(objectives, SAMPLES, duration_s=2.0)
    by = {r["objective"]: r for r in result["objectives"]}
    pooled = sorted([100, 200, 300, 400, 900, 500, 600])
    assert by["ttft_p90<=700ms"]["measured"] == round(percentile(pooled, 90), 3) and not by["ttft_p90<=700ms"]["passed"]
    assert by["sg:ttft_p50<=300ms"]["measured"] == 300 and by["sg:ttft_p50<=300ms"]["passed"]
    assert by["va:tpot_mean<40ms"]["measured"] == 50 and not by["va:tpot_mean<40ms"]["passed"]
    assert by["error_rate<=10%"]["measured"] == 12.5 and not by["error_rate<=10%"]["passed"]
    assert by["itl_max<=10ms"]["passed"]
    assert result["passed"] is False


def test_goodput_counts_requests_meeting_every_latency_objective():
    objectives = slo.parse("ttft_p99<=450ms,tpot_p50<=30ms")
    result = slo.evaluate(objectives, SAMPLES, duration_s=2.0)
    assert result["goodput_per_s"] == 2.0  # sg's 100..400 ms requests: 4 in 2 s; va's tpot 50 ms never meets
    assert result["goodput_by_target"] == {"sg": 2.0, "va": 0.0}


def test_no_samples_is_no_pass():
    result = slo.evaluate(slo.parse("ttft_p50<=1s"), [sample("sg", 0, 0, ok=False)], duration_s=1.0)
    ttft = result["objectives"][0]
    assert ttft["measured"] is None and ttft["passed"] is False


def test_a_run_with_a_fifth_of_its_requests_failing_is_never_green(tmp_path: Path):
    with MockServer(MockConfig(api_key="k", inject=parse_inject("500=0.2"), seed=3)) as target:
        proc = chatconf("--base-url", target, "--label", "gw", "--users", "4", "--run-time", "3s",
                        "--slo", "ttft_p99<=5s", "--report-dir", str(tmp_path), env={"DASHSCOPE_API_KEY": "k"})
    assert proc.returncode == 1, proc.stderr
    assert "objective not met: error_rate<=1%" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    rate = next(r for r in summary["slo"]["objectives"] if r["name"] == "error_rate")
    assert 5 < rate["measured"] < 40 and rate["passed"] is False
    assert summary["slo"]["goodput_per_s"] > 0
    assert "Service-level objectives: NOT MET" in (tmp_path / "report.html").read_text()

"""Reports that tell the truth at a glance: what a drift point saw without expanding anything, evidence
bodies as readable JSON (not escaped strings), sources explained in words, targets named as the user
named them, and load summaries side by side with `chatconf report`."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.reports.html import render_html
from conformance.reports.junit import junit_xml
from conformance.results import CheckResult, RunSummary

BODY = '{"error":{"message":"temperature must be in [0.0, 2.0)","code":"invalid_parameter"}}'


def summary(base_url: str, *, kind: str = "live", drift: str = "top_p = 1.0: accepted (HTTP 200)") -> RunSummary:
    checks = [
        CheckResult(id="request.temperature-range", title="temperature out of range is refused", severity="must",
                    area="request", source="001:param-temperature, C32", status="failed",
                    message="expected HTTP 400, received 200",
                    evidence={"request": {"model": "m", "temperature": 2}, "status": 200, "body": BODY,
                              "events": [{"index": 0, "data": '{"choices":[],"id":"x"}'}]}),
        CheckResult(id="drift.top_p-one", title="top_p = 1.0", severity="should", area="drift", source="C33",
                    status="observed", message=drift),
    ]
    target = {"base_url": base_url, "model": "m", "profile": "dashscope", "kind": kind}
    if kind == "mock":
        target["simulated"] = True
    return RunSummary(target=target, checks=checks)


def test_evidence_bodies_are_pretty_json_in_html_and_junit():
    page = render_html([summary("https://gw.example/v1")])
    assert "&quot;error&quot;: {" in page and '\\"error\\"' not in page
    assert "[0] data: {&quot;choices&quot;:[],&quot;id&quot;:&quot;x&quot;}" in page
    failure = ET.fromstring(junit_xml(summary("https://gw.example/v1"))).find(".//failure")
    assert failure is not None and failure.text is not None
    assert '"message": "temperature must be in [0.0, 2.0)"' in failure.text and '\\"' not in failure.text


def test_sources_are_explained_in_words():
    page = render_html([summary("https://gw.example/v1")])
    assert "001:param-temperature (documentation) 001, request parameters" in page
    assert "Float in [0, 2)." in page and "temperature 2 is refused" in page
    failure = ET.fromstring(junit_xml(summary("https://gw.example/v1"))).find(".//failure")
    assert "Float in [0, 2)." in (failure.text or "")


def test_what_a_drift_point_saw_shows_without_expanding():
    page = render_html([summary("https://gw.example/v1")])
    collapsed = page.split('<details class="check" data-s="observed">', 1)[1].split("</summary>", 1)[0]
    assert "top_p = 1.0: accepted (HTTP 200)" in collapsed
    matrix = render_html([summary("https://a.example/v1"), summary("https://b.example/v1", drift="top_p = 1.0: "
                                                                    "rejected (HTTP 400, code 'invalid_value')")])
    cells = matrix.split("Compatibility matrix", 1)[1].split("drift.top_p-one", 1)[1].split("</tr>", 1)[0]
    assert 'accepted (HTTP 200)' in cells and "rejected (HTTP 400, code &#x27;invalid_value&#x27;)" in cells


def test_external_targets_are_never_called_the_built_in_mock():
    page = render_html([summary("https://a.example/v1"), summary("http://127.0.0.1:1/v1", kind="mock")])
    header = page.split("</header>", 1)[0]
    assert "built-in mock" not in header
    heads = page.split("<tr><th>check</th>", 1)[1].split("</tr>", 1)[0]
    assert "https://a.example/v1 (m, dashscope)" in heads and "built-in mock (m, dashscope)" in heads


LOAD = {"tool": "chatconf", "target": {"label": "simulated"}, "simulated": True, "regions": {
    "singapore": {"requests": 40, "failures": 2, "requests_per_s": 4.0, "ttft_ms": {"p50": 300.0, "p99": 420.5},
                  "itl_ms": {"p50": 20.0, "p99": 31.0}, "e2e_ms": {"p50": 900.0, "p99": 1200.0}},
    "virginia": {"requests": 40, "failures": 0, "requests_per_s": 4.0, "ttft_ms": {"p50": 520.0, "p99": 610.0},
                 "itl_ms": {"p50": 22.0, "p99": 35.0}, "e2e_ms": {"p50": 1100.0, "p99": 1500.0}}}}


def chatconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_report_takes_directories_labels_and_load_summaries(tmp_path: Path):
    for name, data in (("sg", summary("https://sg.example/v1").to_dict()),
                       ("va", summary("https://va.example/v1").to_dict()), ("load", LOAD)):
        (tmp_path / "reports" / name).mkdir(parents=True)
        (tmp_path / "reports" / name / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "all.html"
    proc = chatconf("report", str(tmp_path / "reports"), "--label", "<b>Load</b>", "--label", "Singapore",
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "2 run(s) and 1 load run(s)" in proc.stdout
    page = out.read_text(encoding="utf-8")
    table = page.split("Latency by target and region", 1)[1].split("</table>", 1)[0]
    assert "&lt;b&gt;Load&lt;/b&gt; / singapore" in table and "<b>Load</b>" not in page
    assert '<td class="c passed">300.0</td>' in table  # the best TTFT p50 is marked
    assert "2 (5.0%)" in table
    assert "Singapore (m, dashscope)" in page and "https://va.example/v1 (m, dashscope)" in page


def test_report_input_errors_are_one_line_exit_2(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, words in (([str(empty)], "no summary.json"), ([str(tmp_path / "nope.json")], "no such file"),
                        ([str(empty), "--label", "a"], "no summary.json")):
        proc = chatconf("report", *args, "-o", str(tmp_path / "x.html"))
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "s.json").write_text(json.dumps(LOAD), encoding="utf-8")
    proc = chatconf("report", str(tmp_path / "s.json"), "--label", "a", "--label", "b", "-o", str(tmp_path / "x.html"))
    assert proc.returncode == 2 and "2 --label values for 1 summaries" in proc.stderr

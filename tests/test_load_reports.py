"""The load report tells the truth at a glance: a saturated generator is said loudly (console, HTML,
summary), open-loop queue-inclusive figures are in the HTML as in the console, every failure kind is
listed (dropped connections carry no error code), and a partial run says it is partial."""

from __future__ import annotations

from typing import Any

from loadtests.report_console import format_table
from loadtests.report_html import render_html
from loadtests.saturation import generator_warnings

DIST = {"p50": 10.0, "p90": 12.0, "p95": 13.0, "p99": 15.0, "mean": 10.0, "min": 1.0, "max": 20.0, "count": 5}


def summary(**overrides: Any) -> dict[str, Any]:
    region = {"requests": 5, "failures": 3, "errors_by_code": {"429": 1, "dropped": 2},
              "errors_by_detail": {"429:limit_requests": 1}, "requests_per_s": 1.0, "output_tokens_per_s": 9.0,
              "conformance_violations": 0, **{k: dict(DIST) for k in (
                  "ttft_ms", "first_event_ms", "first_content_ms", "itl_ms", "tpot_ms", "e2e_ms", "e2e_stream_ms")}}
    out = {"tool": "chatconf", "target": {"model": "qwen-plus"}, "users": 4, "duration_s": 5.0, "regions":
           {"gw": region}, "generator": {"cpu_percent_by_worker": {"0": {"mean": 97.8}},
                                         "loop_lag_ms": dict(DIST, p99=3.0)}}
    out.update(overrides)
    out["generator"]["warnings"] = generator_warnings(out)
    return out


def test_a_saturated_worker_is_warned_everywhere():
    data = summary()
    assert any("worker 0 used 98% of a core" in w for w in data["generator"]["warnings"])
    assert "WARNING generator saturated: worker 0 used 98%" in format_table(data)
    assert "Load generator saturated" in render_html(data, [])
    calm = summary(generator={"cpu_percent_by_worker": {"0": {"mean": 40.0}}, "loop_lag_ms": dict(DIST, p99=2.0)})
    assert calm["generator"]["warnings"] == [] and "saturated" not in format_table(calm)


def test_loop_lag_and_send_lag_warn_too():
    data = summary(generator={"cpu_percent_by_worker": {}, "loop_lag_ms": dict(DIST, p99=25.0)})
    data["regions"]["gw"]["queue_ms"] = dict(DIST, p99=180.0)
    data["generator"]["warnings"] = generator_warnings(data)
    text = " ".join(data["generator"]["warnings"])
    assert "event-loop lag p99 25.0 ms" in text and "gw: open-loop sends left up to 180 ms late" in text


def test_open_loop_queue_figures_are_in_the_html():
    data = summary()
    data["regions"]["gw"]["queue_ttft_ms"] = dict(DIST, p50=410.0, p99=950.0)
    data["regions"]["gw"]["queue_ms"] = dict(DIST, p99=33.0)
    page = render_html(data, [])
    assert "queue-inclusive ttft p50" in page and "<td>410.0</td>" in page and "<td>950.0</td>" in page
    assert "send lag p99" in page and "<td>33.0</td>" in page
    assert "queue-inclusive" not in render_html(summary(), [])  # closed loop: no such columns


def test_every_failure_kind_is_listed_with_its_count():
    page = render_html(summary(), [])
    errors = page.split("<h3>Errors</h3>", 1)[1].split("</ul>", 1)[0]
    assert "429:limit_requests x1" in errors and "dropped x2" in errors


def test_an_interrupted_run_is_marked_partial():
    data = summary(interrupted=True)
    assert "INTERRUPTED" in format_table(data) and "INTERRUPTED" in render_html(data, [])

"""Metric definitions (DESIGN.md, research/loadtest-anchors.md s6) as pure functions of timestamps."""

from __future__ import annotations

import random

import pytest

from conformance.exchange import Exchange, HTTPRequest
from conformance.jsonutil import dumps
from conformance.sse import SSEEvent
from conformance.stats import percentile, summarize
from loadtests.aggregate import Collector, make_sample
from loadtests.metrics import classify_chunk, stream_metrics

MS = 1_000_000
T0 = 5_000 * MS  # any perf_counter_ns origin


def chunk(delta=None, *, usage=None, choices=True, finish=None):
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "qwen-plus"}
    body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    body["usage"] = usage
    return body


def stream(*items, status=200, t_end_ms=None):
    """items: (ms after send, payload dict or "[DONE]")."""
    events = []
    for i, (ms, payload) in enumerate(items):
        data = payload if isinstance(payload, str) else dumps(payload)
        events.append(SSEEvent(data, t_ns=T0 + int(ms * MS), index=i))
    end = T0 + int((t_end_ms if t_end_ms is not None else items[-1][0]) * MS)
    req = HTTPRequest(
        url="http://x/v1/chat/completions",
        body={"model": "qwen-plus", "stream": True, "stream_options": {"include_usage": True}},
    )
    return Exchange(
        request=req,
        status=status,
        headers={"content-type": "text/event-stream"},
        events=events,
        t_send_ns=T0,
        t_headers_ns=T0 + MS,
        t_end_ns=end,
    )


USAGE = {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19}


def test_role_only_and_usage_only_chunks_do_not_count_for_ttft():
    """vllm-project/vllm #3759 / #15106: the empty role chunk must not be TTFT."""
    ex = stream(
        (5, chunk({"role": "assistant", "content": ""})),
        (300, chunk({"content": "Hel"})),
        (320, chunk({"content": "lo"})),
        (400, chunk(choices=False, usage=USAGE)),
        (401, "[DONE]"),
    )
    m = stream_metrics(ex)
    assert m.ok
    assert m.first_event_ms == pytest.approx(5)
    assert m.ttft_ms == pytest.approx(300)
    assert m.first_content_ms == pytest.approx(300)
    assert m.e2e_ms == pytest.approx(320)  # last token event, not the usage chunk
    assert m.e2e_stream_ms == pytest.approx(401)  # [DONE]
    assert m.usage_lag_ms == pytest.approx(80)


def test_usage_only_stream_has_no_ttft():
    ex = stream(
        (5, chunk({"role": "assistant", "content": ""})), (10, chunk(choices=False, usage=USAGE)), (11, "[DONE]")
    )
    m = stream_metrics(ex)
    assert m.ttft_ms is None and m.e2e_ms is None and m.itl_ms == []
    assert m.tpot_ms is None


def test_reasoning_counts_for_ttft_but_not_first_content():
    """guidellm #737 / PR #742: thinking models; TTFC (first visible content) is separate."""
    ex = stream(
        (2, chunk({"role": "assistant", "content": None, "reasoning_content": ""})),
        (100, chunk({"reasoning_content": "Let me think"})),
        (150, chunk({"reasoning_content": "..."})),
        (900, chunk({"content": "Answer"})),
        (950, chunk(choices=False, usage=USAGE)),
        (951, "[DONE]"),
    )
    m = stream_metrics(ex)
    assert m.ttft_ms == pytest.approx(100)
    assert m.first_content_ms == pytest.approx(900)
    assert m.itl_ms == pytest.approx([50, 750])


def test_tool_call_deltas_count_for_ttft_and_first_content():
    """can1357/oh-my-pi PR #12213: tool-call-only turns must get a TTFT."""
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    ex = stream(
        (3, chunk({"role": "assistant", "content": None})),
        (250, chunk({"tool_calls": [call]})),
        (270, chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
        (290, chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})),
        (300, chunk({}, finish="tool_calls")),
        (310, chunk(choices=False, usage=USAGE)),
        (311, "[DONE]"),
    )
    m = stream_metrics(ex)
    assert m.ttft_ms == pytest.approx(250)
    assert m.first_content_ms == pytest.approx(250)
    assert m.e2e_ms == pytest.approx(290)  # the finish-only chunk carries no token
    assert m.token_events == 3


def test_tpot_uses_usage_completion_tokens_not_chunks():
    """Chunks are not tokens (llmperf PR #99): 3 events carrying 9 tokens."""
    ex = stream(
        (1, chunk({"role": "assistant", "content": ""})),
        (100, chunk({"content": "a b c"})),
        (140, chunk({"content": "d e f"})),
        (180, chunk({"content": "g h i"})),
        (200, chunk(choices=False, usage=USAGE)),
        (201, "[DONE]"),
    )
    m = stream_metrics(ex)
    assert m.completion_tokens == 9
    assert m.tpot_ms == pytest.approx((180 - 100) / (9 - 1))
    assert m.tokens_per_event == pytest.approx(4.0)


def test_tpot_needs_two_tokens_and_usage():
    no_usage = stream((100, chunk({"content": "a"})), (140, chunk({"content": "b"})), (141, "[DONE]"))
    assert stream_metrics(no_usage).tpot_ms is None
    one = stream(
        (100, chunk({"content": "a"})),
        (120, chunk(choices=False, usage={**USAGE, "completion_tokens": 1})),
        (121, "[DONE]"),
    )
    assert stream_metrics(one).tpot_ms is None


def test_itl_is_per_event_and_pooled_across_requests():
    a = stream_metrics(
        stream(
            (100, chunk({"content": "x"})),
            (110, chunk({"content": "y"})),
            (130, chunk({"content": "z"})),
            (131, "[DONE]"),
        )
    )
    b = stream_metrics(stream((50, chunk({"content": "x"})), (90, chunk({"content": "y"})), (91, "[DONE]")))
    assert a.itl_ms == pytest.approx([10, 20]) and b.itl_ms == pytest.approx([40])
    col = Collector()
    col.add(make_sample(m, region="r", kind="short", t_wall=1.0, worker=0, violations=[]) for m in (a, b))
    itl = col.build_summary({"labels": ["r"]})["regions"]["r"]["itl_ms"]
    assert itl["count"] == 3  # three gaps, not two per-request means
    assert itl["p50"] == pytest.approx(20)
    assert itl["mean"] == pytest.approx(70 / 3, abs=1e-3)


def test_errors_are_classified_by_status_code_and_stream_shape():
    err = Exchange(
        status=429,
        body={"error": {"code": "limit_requests", "message": "slow down"}},
        t_send_ns=T0,
        t_headers_ns=T0 + MS,
        t_end_ns=T0 + 2 * MS,
    )
    m = stream_metrics(err)
    assert (m.ok, m.error, m.error_code) == (False, "429", "limit_requests")
    mid = stream((100, chunk({"content": "x"})), (120, {"error": {"code": "internal_error", "message": "boom"}}))
    m = stream_metrics(mid)
    assert (m.ok, m.error, m.error_code) == (False, "stream_error", "internal_error")
    dropped = stream((100, chunk({"content": "x"})), (120, chunk({"content": "y"})), t_end_ms=500)
    m = stream_metrics(dropped)
    assert (m.ok, m.error) == (False, "dropped")
    assert m.e2e_stream_ms == pytest.approx(500)
    refused = Exchange(transport_error="ConnectionRefusedError: [Errno 111] Connection refused", t_send_ns=T0)
    assert stream_metrics(refused).error == "connect_error"


def test_queue_inclusive_latency_counts_from_the_intended_send_time():
    ex = stream((100, chunk({"content": "x"})), (150, chunk({"content": "y"})), (151, "[DONE]"))
    m = stream_metrics(ex, t_sched_ns=T0 - 40 * MS)
    assert m.queue_ms == pytest.approx(40)
    assert m.queue_ttft_ms == pytest.approx(140)
    assert m.queue_e2e_ms == pytest.approx(190)
    assert m.ttft_ms == pytest.approx(100)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        ({"role": "assistant", "content": ""}, (False, False)),
        ({"content": None, "reasoning_content": ""}, (False, False)),
        ({"reasoning": "hm"}, (True, False)),
        ({"tool_calls": [{"index": 0}]}, (False, False)),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}, (True, True)),
    ],
)
def test_classify_chunk(delta, expected):
    assert classify_chunk(chunk(delta)) == expected


def test_percentiles_are_exact_linear_interpolation():
    """Unlike Locust's 2-significant-digit buckets (locust #255, #2005): 1234 stays 1234."""
    assert percentile([1234.0], 50) == 1234.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    rng = random.Random(1)
    data = [rng.uniform(0, 1000) for _ in range(1001)]
    s = summarize(data)
    assert s["p50"] == pytest.approx(sorted(data)[500], abs=1e-3)
    assert s["count"] == 1001 and s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    empty = summarize([])
    assert empty["count"] == 0 and empty["p50"] is None


def test_a_stream_breaking_a_rule_on_every_chunk_counts_every_violation():
    """Issue 13 item 7: the checker lists 50 per rule and summarises the rest; the load sample counted
    that summary as one violation (a 200-chunk stream with another id on each chunk: 51, not 199)."""
    from conformance.profiles import load_profile
    from loadtests.checking import check_stream

    role = chunk({"role": "assistant", "content": ""})
    items = [(1, role)] + [(2 + i, {**chunk({"content": "x"}), "id": f"chatcmpl-{i}"}) for i in range(2, 201)]
    items += [(300, chunk({"content": ""}, finish="stop")), (301, chunk(usage=USAGE, choices=False)),
              (302, "[DONE]")]
    ex = stream(*items)
    found = check_stream(ex, load_profile("dashscope"))
    sample = make_sample(stream_metrics(ex), region="r", kind="short", t_wall=1.0, worker=0, violations=found)
    same = [v for v in found if v["rule"] == "stream.same-id"]
    assert len(same) == 51 and same[-1]["count"] == 149 and all("count" not in v for v in same[:-1])
    assert sample["violations"] == 199 + len(found) - len(same)   # 199 same-id, plus the others listed

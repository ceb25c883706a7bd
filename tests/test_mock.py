"""The mock answers like production DashScope (research F1-F7, C5, C10-C24), simulates latency on
absolute deadlines, injects load faults deterministically, replays captures, survives abuse, and
its processes never outlive their parent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from conformance.cli import main as cli_main
from conformance.client import ChatClient, ClientConfig
from conformance.exchange import Exchange
from conformance.mock import ConfigError, MockConfig, MockServer, load_latency, parse_inject
from conformance.mock.latency import LatencyError
from conformance.mock.tokenizer import count_tokens, token_id, tokenize
from conformance.profiles import load_profile
from conformance.recording import write_recording
from conformance.rules import check_exchange

PROFILE = load_profile("dashscope")
AUTH = {"Authorization": "Bearer sk-test"}
USER = [{"role": "user", "content": "Who are you?"}]


@pytest.fixture(scope="module")
def mock() -> Any:
    srv = MockServer(MockConfig(seed=3), in_process=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def chat(mock: MockServer):
    client = ChatClient(ClientConfig(base_url=mock.base_url, api_key="sk-test", retries=0))
    yield client
    client.close()


def clean(ex: Exchange) -> Exchange:
    assert ex.transport_error is None
    assert [v.message for v in check_exchange(ex, PROFILE)] == []
    return ex


def chunks(ex: Exchange) -> list[dict[str, Any]]:
    return [ev.json for ev in ex.events if not ev.is_done]


def content(ex: Exchange, index: int = 0) -> str:
    return "".join(ch["delta"].get("content") or "" for c in chunks(ex) for ch in c["choices"]
                   if ch["index"] == index)


# -- answers ------------------------------------------------------------------------------------

def test_seed_makes_text_deterministic_and_its_absence_varies_it(chat: ChatClient) -> None:
    a = chat.chat({"model": "qwen-plus", "messages": USER, "seed": 42})
    b = chat.chat({"model": "qwen-plus", "messages": USER, "seed": 42})
    c = chat.chat({"model": "qwen-plus", "messages": USER})
    d = chat.chat({"model": "qwen-plus", "messages": USER})
    text = [x.body["choices"][0]["message"]["content"] for x in (a, b, c, d)]
    assert text[0] == text[1] and text[2] != text[3]
    assert a.body["id"] != b.body["id"]


def test_usage_counts_the_tokens_of_the_text(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen-plus", "messages": USER}))
    assert ex.body["usage"]["completion_tokens"] == count_tokens(ex.body["choices"][0]["message"]["content"])
    st = clean(chat.chat({"model": "qwen-plus", "messages": USER, "seed": 1, "stream": True,
                          "stream_options": {"include_usage": True}}))
    assert chunks(st)[-1]["usage"]["completion_tokens"] == count_tokens(content(st))


def test_max_tokens_cuts_with_finish_length(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen-plus", "messages": USER, "max_tokens": 4}))
    assert ex.body["choices"][0]["finish_reason"] == "length"
    assert ex.body["usage"]["completion_tokens"] == 4


def test_stop_string_and_stop_token_ids(chat: ChatClient) -> None:
    base = {"model": "qwen-plus", "messages": USER, "seed": 5}
    full = chat.chat(base).body["choices"][0]["message"]["content"]
    cut = clean(chat.chat({**base, "stop": "simulated"})).body["choices"][0]
    assert cut["message"]["content"] == full[: full.index("simulated")] and cut["finish_reason"] == "stop"
    third = tokenize(full)[2]
    by_id = clean(chat.chat({**base, "stop": [token_id(third)]})).body["choices"][0]["message"]["content"]
    assert by_id == "".join(tokenize(full)[:2])


def test_n_choices_stream_interleaved_each_with_role_and_finish(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen-plus", "messages": USER, "n": 2, "stream": True,
                          "stream_options": {"include_usage": True}}))
    seq = [c["choices"][0]["index"] for c in chunks(ex) if c["choices"]]
    assert seq[:2] == [0, 1] and seq[2:4] == [0, 1]
    for i in (0, 1):
        mine = [c["choices"][0] for c in chunks(ex) if c["choices"] and c["choices"][0]["index"] == i]
        assert mine[0]["delta"] == {"content": "", "role": "assistant"}
        assert [m["finish_reason"] for m in mine if m["finish_reason"]] == ["stop"]
    non_stream = clean(chat.chat({"model": "qwen-plus", "messages": USER, "n": 3}))
    assert [c["index"] for c in non_stream.body["choices"]] == [0, 1, 2]


def test_usage_chunk_only_when_asked(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen-plus", "messages": USER, "stream": True}))
    assert all(c["usage"] is None and c["choices"] for c in chunks(ex))
    assert ex.events[-1].is_done


def test_thinking_stream_reasoning_first_then_content(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen3-32b", "messages": USER, "stream": True,
                          "stream_options": {"include_usage": True}}))
    deltas = [c["choices"][0]["delta"] for c in chunks(ex) if c["choices"]]
    assert deltas[0] == {"content": None, "role": "assistant", "reasoning_content": ""}
    assert deltas[1]["content"] is None and deltas[1]["reasoning_content"]
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all(d.get("content") is None for d in deltas[1:first_content])
    assert deltas[-1] == {"content": "", "reasoning_content": None}
    assert chunks(ex)[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_thinking_non_stream_depends_on_the_model(chat: ChatClient) -> None:
    plus = clean(chat.chat({"model": "qwen-plus", "messages": USER, "enable_thinking": True}))
    assert plus.body["choices"][0]["message"]["reasoning_content"]
    refused = clean(chat.chat({"model": "qwen3-max", "messages": USER, "enable_thinking": True}))
    assert refused.status == 400
    assert refused.body["error"]["message"] == PROFILE.error("request.thinking-non-stream").message
    qwq = clean(chat.chat({"model": "qwq-plus", "messages": USER}))
    assert qwq.status == 400 and "only support stream mode" in qwq.body["error"]["message"]


def test_tool_choice_forces_a_call_and_none_prevents_it(chat: ChatClient) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}}}}}]
    forced = clean(chat.chat({"model": "qwen-plus", "messages": USER, "tools": tools,
                              "tool_choice": {"type": "function", "function": {"name": "lookup"}}}))
    message = forced.body["choices"][0]["message"]
    assert message["content"] == "" and forced.body["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"n": 1}
    plain = clean(chat.chat({"model": "qwen-plus", "messages": USER, "tools": tools, "tool_choice": "none"}))
    assert "tool_calls" not in plain.body["choices"][0]["message"]


# -- errors and routes --------------------------------------------------------------------------

def test_error_envelope_ids_match_the_header(chat: ChatClient) -> None:
    ex = clean(chat.chat({"model": "qwen-plus", "messages": USER, "temperature": 2}))
    assert ex.status == 400 and ex.body["error"]["param"] == "temperature"
    assert ex.body["request_id"] == ex.header("x-request-id")
    assert ex.body["id"] == "chatcmpl-" + ex.header("x-request-id")


def test_missing_key_is_401(mock: MockServer) -> None:
    r = httpx.post(mock.base_url + "/chat/completions", json={"model": "qwen-plus", "messages": USER})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(("content", "ctype"), [(b"\xff\xfe garbage", "application/json"),
                                                (b'{"model": "qwen-plus"', "application/json"),
                                                (b"model=qwen-plus", "application/x-www-form-urlencoded")])
def test_unparsable_or_non_json_bodies_get_the_documented_400(mock: MockServer, content: bytes,
                                                               ctype: str) -> None:
    r = httpx.post(mock.base_url + "/chat/completions", content=content,
                   headers={**AUTH, "content-type": ctype})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == PROFILE.error("request.malformed-json").message


def test_huge_bodies_get_413_without_being_read(mock: MockServer) -> None:
    big = b'{"model": "qwen-plus", "messages": [], "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = httpx.post(mock.base_url + "/chat/completions", content=big,
                   headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "invalid_parameter_error"

    def chunked():
        yield b'{"pad": "'
        for _ in range(40):
            yield b"y" * (256 * 1024)
    r = httpx.post(mock.base_url + "/chat/completions", content=chunked(),
                   headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413


def test_get_on_the_chat_route_is_405_and_models_lists_the_profile(mock: MockServer) -> None:
    r = httpx.get(mock.base_url + "/chat/completions", headers=AUTH)
    assert r.status_code == 405 and "GET" in r.json()["error"]["message"]
    models = httpx.get(mock.base_url + "/models", headers=AUTH).json()
    assert {m["id"] for m in models["data"]} == set(PROFILE.model_names)
    assert httpx.get(mock.root_url + "/nowhere").status_code == 404
    sim = httpx.post(mock.url_for("none") + "/chat/completions", headers=AUTH,
                     json={"model": "qwen-plus", "messages": USER})
    assert sim.status_code == 200
    assert httpx.post(mock.url_for("mars") + "/chat/completions", headers=AUTH, json={}).status_code == 404


# -- latency and stats --------------------------------------------------------------------------

def test_latency_presets_are_labelled_simulated() -> None:
    for name in ("singapore", "virginia", "beijing"):
        lat = load_latency(name)
        assert lat.simulated and lat.ttft_ms > 0 and "SIMULATED" in lat.label()
    assert load_latency("none").is_zero
    with pytest.raises(LatencyError):
        load_latency("mars")
    with pytest.raises(LatencyError):
        load_latency({"ttft_ms": -1})


def test_server_side_ttft_and_gaps_follow_the_configured_profile() -> None:
    lat = {"name": "t", "ttft_ms": 80, "itl_ms": 15, "role_chunk_ms": 20, "tokens_per_event": 2,
           "output_tokens": [20, 20]}
    with MockServer(MockConfig(latency=lat), in_process=True) as base_url:
        with ChatClient(ClientConfig(base_url=base_url, api_key="k")) as client:
            exs = [client.chat({"model": "qwen-plus", "messages": USER, "stream": True}) for _ in range(3)]
        stats = httpx.get(base_url.replace("/compatible-mode/v1", "/_mock/stats")).json()
    assert stats["simulated"] and stats["configured"]["ttft_ms"] == 80
    assert stats["streams"] == 3
    # lower bounds are exact (never early); upper bounds leave room for a busy machine (timing
    # accuracy itself is measured in benchmarks/bench_mock.py)
    assert 79.9 <= stats["server_ttft_ms"]["p50"] < 110
    assert abs(stats["server_itl_ms"]["mean"] - 15) < 3   # absolute deadlines: lateness does not add up
    assert stats["schedule_late_ms"]["count"] == 3 * 10
    ex = exs[0]
    first_token = next(ev for ev in ex.events if not ev.is_done and ev.json["choices"][0]["delta"].get("content"))
    assert (first_token.t_ns - ex.t_send_ns) / 1e6 >= 80
    assert (ex.events[0].t_ns - ex.t_send_ns) / 1e6 < 75   # the role chunk comes early


def test_sim_routes_use_their_preset_and_stats_reset(mock: MockServer) -> None:
    httpx.post(mock.root_url + "/_mock/stats/reset")
    with ChatClient(ClientConfig(base_url=mock.url_for("none"), api_key="k")) as client:
        clean(client.chat({"model": "qwen-plus", "messages": USER, "stream": True}))
    stats = mock.stats()
    assert stats["by_preset"]["none"]["streams"] == 1 and stats["requests"] == 1


# -- injected load faults -----------------------------------------------------------------------

def _statuses(base_url: str, n: int) -> list[Any]:
    out = []
    with ChatClient(ClientConfig(base_url=base_url, api_key="k", retries=0)) as client:
        for _ in range(n):
            ex = client.chat({"model": "qwen-plus", "messages": USER, "stream": True})
            out.append(ex.status if ex.status != 200 else ("done" if ex.events and ex.events[-1].is_done
                                                            else ex.transport_error or "cut"))
    return out


def test_injected_faults_are_deterministic_under_seed() -> None:
    cfg = MockConfig(seed=11, inject={"429": 0.3, "503": 0.2, "midstream_error": 0.3})
    runs = []
    for _ in range(2):
        with MockServer(cfg, in_process=True) as base_url:
            runs.append(_statuses(base_url, 30))
    assert runs[0] == runs[1]
    assert {429, 503, "done", "cut"} <= set(runs[0])


def test_injected_rate_limits_and_drops_look_real() -> None:
    with MockServer(MockConfig(inject={"429_burst": 1.0}), in_process=True) as base_url:
        r = httpx.post(base_url + "/chat/completions", headers=AUTH, json={"model": "qwen-plus", "messages": USER})
        assert r.status_code == 429 and r.json()["error"]["code"] == "limit_burst_rate"
    with MockServer(MockConfig(inject={"drop": 1.0}), in_process=True) as base_url, \
            ChatClient(ClientConfig(base_url=base_url, api_key="k", retries=0)) as client:
        ex = client.chat({"model": "qwen-plus", "messages": USER, "stream": True})
        assert ex.transport_error and "closed" in ex.transport_error
        assert {v.rule for v in check_exchange(ex, PROFILE)} >= {"stream.terminated"}
    with MockServer(MockConfig(inject={"midstream_error": 1.0}), in_process=True) as base_url, \
            ChatClient(ClientConfig(base_url=base_url, api_key="k", retries=0)) as client:
        ex = client.chat({"model": "qwen-plus", "messages": USER, "stream": True})
        assert ex.events[-1].json["error"]["code"] == "data_inspection_failed"
        assert not any(ev.is_done for ev in ex.events)


def test_inject_spec_parsing() -> None:
    assert parse_inject("429=0.05, drop=0.01,stall_s=1") == {"429": 0.05, "drop": 0.01, "stall_s": 1.0}
    for bad in ("429", "429=x", "teapot=0.1", "500=1.5", "429=0.6,500=0.6"):
        with pytest.raises(ConfigError):
            parse_inject(bad)


# -- replay -------------------------------------------------------------------------------------

def test_replay_serves_recorded_answers_with_their_timing(tmp_path) -> None:
    lat = {"name": "r", "ttft_ms": 60, "itl_ms": 5, "output_tokens": [12, 12]}
    body = {"model": "qwen-plus", "messages": USER, "stream": True}
    with MockServer(MockConfig(latency=lat), in_process=True) as base_url, \
            ChatClient(ClientConfig(base_url=base_url, api_key="k")) as client:
        recorded = client.chat(body)
        plain = client.chat({"model": "qwen-plus", "messages": USER})
    path = tmp_path / "rec.jsonl"
    write_recording(path, [recorded, plain])
    with MockServer(MockConfig(replay=str(path)), in_process=True) as base_url, \
            ChatClient(ClientConfig(base_url=base_url, api_key="k")) as client:
        again = client.chat(body)
        same = client.chat({"model": "qwen-plus", "messages": USER})
        miss = client.chat({"model": "qwen-plus", "messages": [{"role": "user", "content": "other"}]})
    assert [e.data for e in again.events] == [e.data for e in recorded.events]
    first_content = again.events[1]
    assert (first_content.t_ns - again.t_send_ns) / 1e6 >= 55
    assert same.body == plain.body
    assert miss.status == 404 and miss.body["error"]["code"] == "replay_not_found"


# -- abuse --------------------------------------------------------------------------------------

def test_abuse_leaves_the_server_answering() -> None:
    lat = {"name": "slow", "ttft_ms": 5, "itl_ms": 20, "output_tokens": [100, 100]}
    with MockServer(MockConfig(latency=lat), in_process=True) as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as s:   # not HTTP at all
            s.sendall(b"\x00\x01garbage\r\n\r\n")
            s.settimeout(2)
            assert s.recv(100).startswith(b"HTTP/1.1 400")

        async def abuse() -> None:
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            payload = json.dumps({"model": "qwen-plus", "messages": USER, "stream": True}).encode()
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                         b"Content-Type: application/json\r\nContent-Length: " + str(len(payload)).encode()
                         + b"\r\n\r\n" + payload)
            await writer.drain()
            await reader.read(2000)   # headers and the first events, then vanish mid-stream
            writer.close()
            for _, w in idle:
                w.close()

        asyncio.run(abuse())
        with ChatClient(ClientConfig(base_url=base_url, api_key="k")) as client:
            ex = client.chat({"model": "qwen-plus", "messages": USER})
        assert ex.status == 200


# -- processes and the command ------------------------------------------------------------------

def test_child_exits_when_its_parent_dies() -> None:
    code = ("import sys,time; from conformance.mock import MockServer, MockConfig; "
            "s=MockServer(MockConfig()); s.start(); print(s._proc.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("mock child outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()


def test_port_in_use_is_a_start_error() -> None:
    from conformance.mock import MockStartError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(MockStartError, match="in use"):
            MockServer(MockConfig(port=s.getsockname()[1]), in_process=True).start()


def test_command_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["mock", "--fault", "stream.nope"]) == 2
    assert cli_main(["mock", "--latency", "mars"]) == 2
    assert cli_main(["mock", "--inject", "429=7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("chatconf mock: error:") for line in err)
    assert cli_main(["mock", "--list-faults"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 25 and lines[0].split()[0].count(".") == 1


@pytest.mark.parametrize("thinking", [False, True])
@pytest.mark.parametrize("per_event", [1, 3])
def test_pre_encoded_stream_steps_send_the_same_bytes(thinking: bool, per_event: int) -> None:
    from conformance.mock.plan import ChoicePlan, Plan
    from conformance.mock.render import Meta, stream_steps

    choice = ChoicePlan(0, reasoning=["a", ' "b"', "\u00e9"] if thinking else [],
                        content=["Hi", " there", "\n", "\U0001f600", "\\"], finish_reason="length")
    plan = Plan([choice], 12, thinking)
    meta = Meta("chatcmpl-x", 1_700_000_000, "qwen-plus")
    for usage in (False, True):
        plain = stream_steps(plan, meta, include_usage=usage, per_event=per_event)
        fast = stream_steps(plan, meta, include_usage=usage, per_event=per_event, encoded=True)
        assert [(s.kind, s.encode()) for s in fast] == [(s.kind, s.encode()) for s in plain]

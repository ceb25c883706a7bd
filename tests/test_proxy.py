"""`chatconf proxy` as a user runs it: a real subprocess between the official openai SDK and the real
mock (or a deliberately broken upstream). The SDK's examples must work unchanged through it, every
SSE event must reach the client before the upstream sends the next one, its recording must pass
`chatconf validate`, a mock fault mode must show up as a finding, the key must appear nowhere, and
broken upstreams must give the client a 502 envelope while the proxy keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conformance.exchange import Exchange
from conformance.mock import MockConfig, MockServer
from conformance.proxy.recorder import BackgroundRecorder
from tests.hostile_server import HostileServer
from tests.test_mock_clients import SEED_TOOLS

KEY = "sk-proxytest-0123456789abcdef"
TOOLS = SEED_TOOLS  # the documentation's tool definitions, as the SDK tests send them
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class ProxyProcess:
    """`chatconf proxy ...` in a child process; `url` is where it listens, `stop()` sends Ctrl-C."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "proxy", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        match = LISTENING.search(first)
        assert match, first + (self.proc.stderr.read() if self.proc.stderr else "")
        self.url = match.group(1)
        self.lines: list[str] = [first]
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)  # type: ignore[arg-type]
        self._reader.start()

    def findings(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_proxy/findings", timeout=5).json()

    def recorded(self, lines: int) -> int:
        """Lines in the recording once its writer thread has caught up with `lines` (5 s at most)."""
        deadline = time.monotonic() + 5
        while True:
            written = httpx.get(self.url + "/_proxy/health", timeout=5).json()["recording"]["written"]
            if written >= lines or time.monotonic() > deadline:
                return written
            time.sleep(0.02)

    def stop(self, *, interrupt: bool = True) -> tuple[int, str, str]:
        """Ctrl-C (or, with interrupt=False, wait for an exit it was already told to make); (exit code,
        everything it printed on stdout, stderr)."""
        if interrupt and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=15)
        self._reader.join(5)
        return rc, "".join(self.lines), self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture(scope="module")
def mock() -> Any:
    server = MockServer(MockConfig(seed=7, api_key=KEY))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recorded(mock: MockServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One proxy in front of the mock, recording; the module's SDK tests all go through it."""
    record = tmp_path_factory.mktemp("proxy") / "traffic.jsonl"
    proxy = ProxyProcess("--upstream", mock.base_url, "--record", str(record))
    yield proxy, record
    proxy.stop()


def sdk(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=proxy.url, max_retries=0)


def tool_loop(client: openai.OpenAI) -> list[str]:
    """The seed's tool loop: one call per round, tool answers appended, until a final answer."""
    messages: list[dict[str, Any]] = [{"role": "user",
                                       "content": "How is the weather in Singapore? What time is it now?"}]
    names = []
    for _ in range(5):
        message = client.chat.completions.create(model="qwen-plus", messages=messages,
                                                 tools=TOOLS).choices[0].message.model_dump()
        message["content"] = message["content"] or ""
        messages.append(message)
        if not message["tool_calls"]:
            return names
        call = message["tool_calls"][0]["function"]
        names.append(call["name"])
        content = "Current time: 12:00:00." if call["name"] == "get_current_time" else "It is rainy today."
        messages.append({"name": call["name"], "role": "tool", "content": content})
    return names


def test_sdk_examples_work_unchanged_and_the_recording_validates(recorded: Any, mock: MockServer) -> None:
    proxy, record = recorded
    with sdk(proxy) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="qwen-plus", messages=[{"role": "user", "content": "Who are you?"}])
        completion = raw.parse()
        chunks = list(client.chat.completions.create(model="qwen-plus", stream=True,
                                                     messages=[{"role": "user", "content": "Who are you?"}],
                                                     stream_options={"include_usage": True}))
        names = tool_loop(client)
    assert completion.id.startswith("chatcmpl-") and completion.choices[0].message.content
    assert raw.headers["x-request-id"] == completion.id.removeprefix("chatcmpl-")   # answer headers pass through
    assert "x-chatconf-findings" not in raw.headers
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("I am a simulated")
    assert names == ["get_current_weather", "get_current_time"]
    found = proxy.findings()
    assert found["exchanges"] == 5 and found["findings"] == 0, found
    assert proxy.recorded(5) == 5
    assert len(record.read_text().splitlines()) == 5   # live: readable while the proxy runs
    check = subprocess.run([sys.executable, "-m", "conformance.cli", "validate", str(record)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "VALID (5 exchanges)" in check.stdout


def test_a_wrong_key_is_forwarded_as_sent_and_refused_upstream(recorded: Any) -> None:
    proxy, _ = recorded
    with openai.OpenAI(api_key="sk-not-the-right-key-42", base_url=proxy.url, max_retries=0) as client, \
            pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])


def test_fault_mode_is_a_finding_then_exit_1_and_the_key_appears_nowhere(mock: MockServer, tmp_path: Path) -> None:
    record = tmp_path / "faulty.jsonl"
    proxy = ProxyProcess("--upstream", mock.base_url, "--record", str(record))
    try:
        mock.set_faults(["stream.done-last", "response.usage-arithmetic"])
        with sdk(proxy) as client:
            list(client.chat.completions.create(model="qwen-plus", stream=True,
                                                messages=[{"role": "user", "content": "Who are you?"}]))
            raw = client.chat.completions.with_raw_response.create(
                model="qwen-plus", messages=[{"role": "user", "content": "Who are you?"}])
        found = proxy.findings()
    finally:
        mock.set_faults([])
        rc, out, err = proxy.stop()
    assert raw.headers["x-chatconf-findings"] == "1 response.usage-arithmetic"
    assert found["by_rule"] == {"response.usage-arithmetic": 1, "stream.done-last": 1}, found
    assert [f["entry"] for f in found["recent"]] == [0, 1] and found["failing"] == 2
    assert re.search(r"finding: stream\.done-last error \(fail-on\): expected data: \[DONE\]", out), out
    assert rc == 1, err                                  # --fail-on must findings were seen
    check = subprocess.run([sys.executable, "-m", "conformance.cli", "validate", str(record)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "stream.done-last" in check.stdout and "response.usage-arithmetic" in check.stdout
    everything = out + err + json.dumps(found) + record.read_text() + check.stdout
    assert KEY not in everything and KEY[3:] not in everything
    assert "Bearer [REDACTED]" in record.read_text()


def test_each_event_reaches_the_client_before_the_upstream_sends_the_next() -> None:
    with HostileServer("paced") as upstream:
        proxy = ProxyProcess("--upstream", upstream.base_url)
        try:
            arrivals = []
            body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            with httpx.stream("POST", proxy.url + "/chat/completions", json=body, timeout=10) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        arrivals.append(time.monotonic())
            found = proxy.findings()
        finally:
            proxy.stop()
    assert len(arrivals) == 4 and len(upstream.sent_at) == 4
    assert upstream.sent_at[1] - upstream.sent_at[0] >= 0.29
    assert arrivals[0] < upstream.sent_at[1] - 0.2, (arrivals, upstream.sent_at)   # no buffering in the proxy
    assert found["exchanges"] == 1 and found["findings"] == 0, found["recent"]


def test_broken_upstreams_get_a_502_envelope_and_the_proxy_keeps_serving() -> None:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    with HostileServer("hang") as upstream:
        proxy = ProxyProcess("--upstream", upstream.base_url, "--timeout", "1")
        try:
            answers = {}
            for mode in ("hang", "reset", "not-http"):
                upstream.mode = mode
                t0 = time.monotonic()
                resp = httpx.post(proxy.url + "/chat/completions", json=body, timeout=10,
                                  headers={"authorization": f"Bearer {KEY}"})
                answers[mode] = (resp.status_code, resp.json()["error"], time.monotonic() - t0)
            upstream.mode = "close"   # headers and one event, then the connection drops
            with httpx.stream("POST", proxy.url + "/chat/completions", json={**body, "stream": True},
                              timeout=10) as resp:
                cut = (resp.status_code, resp.read())
            upstream.mode = "ok"
            good = httpx.post(proxy.url + "/chat/completions", json=body, timeout=10)
            found = proxy.findings()
        finally:
            rc, out, err = proxy.stop()
    codes = {mode: (status, error["code"]) for mode, (status, error, _) in answers.items()}
    assert codes == {"hang": (502, "upstream_timeout"), "reset": (502, "upstream_protocol_error"),
                     "not-http": (502, "upstream_protocol_error")}, answers
    for _, error, _ in answers.values():
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert 0.9 < answers["hang"][2] < 5
    assert cut[0] == 200 and cut[1].startswith(b"data: ")
    assert good.status_code == 200 and good.json()["object"] == "chat.completion"
    assert found["by_rule"]["transport.complete"] == 4, found
    assert rc == 1
    assert KEY not in out + err + json.dumps(found)


def test_refused_upstream_is_a_502_and_bad_flags_are_exit_2() -> None:
    with HostileServer("ok") as upstream:
        port = upstream.port
    proxy = ProxyProcess("--upstream", f"http://127.0.0.1:{port}/v1")
    try:
        resp = httpx.post(proxy.url + "/chat/completions", json={"model": "qwen-plus"}, timeout=10)
        health = httpx.get(proxy.url + "/_proxy/health", timeout=5).json()
        busy = proxy.url.rsplit(":", 1)[1]
        clash = subprocess.run([sys.executable, "-m", "conformance.cli", "proxy", "--upstream", "http://127.0.0.1:1",
                                "--port", busy], capture_output=True, text=True, timeout=30)
    finally:
        proxy.stop()
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_unreachable"
    assert health["status"] == "ok" and health["exchanges"] == 1
    assert clash.returncode == 2 and "address already in use" in clash.stderr and len(clash.stderr.splitlines()) == 1
    for bad in (["--upstream", "ftp://example.com"], ["--upstream", "http://"], []):
        run = subprocess.run([sys.executable, "-m", "conformance.cli", "proxy", *bad],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr, run.stderr


async def _streams(url: str, count: int, key: str) -> list[str]:
    """`count` concurrent streamed chat requests; the text of each answer."""
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Who are you?"}], "stream": True}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits,
                                 headers={"authorization": f"Bearer {key}"}) as client:
        async def one() -> str:
            async with client.stream("POST", "/chat/completions", json=body) as resp:
                return (await resp.aread()).decode()
        return await asyncio.gather(*(one() for _ in range(count)))


def _lines(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_a_burst_of_streams_then_sigterm_leaves_a_complete_ordered_recording(mock: MockServer,
                                                                            tmp_path: Path) -> None:
    record = tmp_path / "burst.jsonl"
    proxy = ProxyProcess("--upstream", mock.base_url, "--record", str(record))
    try:
        answers = asyncio.run(_streams(proxy.url, 100, KEY))
        found = proxy.findings()
    finally:
        proxy.proc.send_signal(signal.SIGTERM)   # the recording thread may still hold lines
        rc, out, err = proxy.stop(interrupt=False)   # SIGTERM alone ends it (a Ctrl-C now would race)
    assert all(a.rstrip().endswith("data: [DONE]") for a in answers)
    assert found["exchanges"] == 100 and found["findings"] == 0, found
    assert rc == 0, err
    assert "100 checked exchange(s)" in err and "100 line(s) recorded" in err, err
    lines = _lines(record)
    assert [line["entry"] for line in lines] == list(range(100))
    assert all(line["response"]["events"][-1]["data"] == "[DONE]" for line in lines)
    assert all(line["request"]["headers"]["authorization"] == "Bearer [REDACTED]" for line in lines)
    text = record.read_text() + out + err
    assert KEY not in text and KEY[3:] not in text


def test_sigterm_lets_streams_in_flight_finish_and_records_them(mock: MockServer, tmp_path: Path) -> None:
    record = tmp_path / "term.jsonl"
    proxy = ProxyProcess("--upstream", mock.url_for("singapore"), "--record", str(record))   # ~1 s per stream

    def terminate_when_busy() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(proxy.url + "/_proxy/health", timeout=5).json()["in_flight"] == 20:
                break
            time.sleep(0.01)
        proxy.proc.send_signal(signal.SIGTERM)

    killer = threading.Thread(target=terminate_when_busy)
    killer.start()
    try:
        answers = asyncio.run(_streams(proxy.url, 20, KEY))
    finally:
        killer.join()
        # SIGTERM alone must end it once the recording is written; a Ctrl-C now would race that
        rc, out, err = proxy.stop(interrupt=False)
    assert all(a.rstrip().endswith("data: [DONE]") for a in answers)   # the shutdown waited for them
    assert rc == 0 and "20 line(s) recorded" in err, err
    lines = _lines(record)
    assert [line["entry"] for line in lines] == list(range(20))
    assert all(line["response"]["events"][-1]["data"] == "[DONE]" for line in lines)
    assert KEY not in record.read_text() + out + err


def test_a_full_recording_queue_waits_instead_of_dropping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = BackgroundRecorder(tmp_path / "slow.jsonl", max_pending=2)
    write = recorder._writer.write

    def slow_write(ex: Exchange) -> None:
        time.sleep(0.005)   # a disk that cannot keep up
        write(ex)

    monkeypatch.setattr(recorder._writer, "write", slow_write)
    for entry in range(40):
        recorder.put(Exchange(status=200, entry=entry, body={"n": entry}))
    recorder.close()
    assert recorder.waits > 0 and recorder.wait_s > 0
    assert recorder.queued == recorder.written == 40
    assert [line["entry"] for line in _lines(tmp_path / "slow.jsonl")] == list(range(40))
    with pytest.raises(ValueError):
        recorder.put(Exchange(status=200))


def _idle_class_allowed() -> bool:
    """Whether a thread here may enter SCHED_IDLE (Linux allows it unprivileged; a sandbox may not)."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result == [True]


@pytest.mark.skipif(not _idle_class_allowed(), reason="no idle scheduling class for threads here")
def test_the_recording_thread_runs_in_the_idle_scheduling_class_and_the_loop_does_not(tmp_path: Path) -> None:
    """Only the writer thread yields the CPU to anything else; the thread that serves keeps its class."""
    recorder = BackgroundRecorder(tmp_path / "idle.jsonl")
    before = os.sched_getscheduler(0)
    recorder.put(Exchange(status=200, entry=0))
    deadline = time.monotonic() + 5
    while recorder.written < 1 and time.monotonic() < deadline:   # the thread is past its start
        time.sleep(0.001)
    try:
        assert os.sched_getscheduler(recorder._active.native_id) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) == before != os.SCHED_IDLE
    finally:
        recorder.close()


def test_a_starved_recording_thread_is_relieved_at_normal_priority_and_the_lines_stay_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle-class writer gets almost no CPU while other processes keep every core busy; the proxy must
    not be throttled to its pace: a quarter of the queue waiting starts a normal-priority writer, which
    continues from the next line (the idle one finishes the line it is on and stops)."""
    recorder = BackgroundRecorder(tmp_path / "starved.jsonl", max_pending=8)
    first = recorder._active
    write = recorder._writer.write
    lines_by_first = []

    def write_starved_in_the_first_thread(ex: Exchange) -> None:
        if threading.current_thread() is first:
            lines_by_first.append(ex.entry)
            time.sleep(0.5)   # what a line costs a thread that gets no CPU
        write(ex)

    monkeypatch.setattr(recorder._writer, "write", write_starved_in_the_first_thread)
    started = time.monotonic()
    for entry in range(40):
        recorder.put(Exchange(status=200, entry=entry, body={"n": entry}))
    recorder.close()
    assert time.monotonic() - started < 5            # 40 lines at the starved pace would take 20 s
    assert recorder.catch_ups >= 1 and lines_by_first == [0]
    assert recorder.written == 40
    assert [line["entry"] for line in _lines(tmp_path / "starved.jsonl")] == list(range(40))


def test_upstream_silence_beyond_the_idle_timeout_ends_the_stream_and_is_a_finding() -> None:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    results = {}
    with HostileServer("paced") as upstream:   # one event, 300 ms of silence, three more
        for idle in ("0.1", "0.5"):
            proxy = ProxyProcess("--upstream", upstream.base_url, "--idle-timeout", idle)
            try:
                t0 = time.monotonic()
                with httpx.stream("POST", proxy.url + "/chat/completions", json=body, timeout=10) as resp:
                    events = [line for line in resp.iter_lines() if line.startswith("data:")]
                results[idle] = (events, time.monotonic() - t0, proxy.findings())
            finally:
                proxy.stop()
    events, took, found = results["0.1"]
    assert len(events) == 1 and took < 0.29, (events, took)
    assert found["by_rule"]["transport.complete"] == 1, found
    assert any("nothing for 0.1 s" in f["message"] for f in found["recent"]), found
    events, took, found = results["0.5"]   # pauses shorter than the idle timeout are not cut
    assert len(events) == 4 and events[-1] == "data: [DONE]", events
    assert found["exchanges"] == 1 and found["findings"] == 0, found



def _bare_proxy() -> Any:
    """A ProxyApp whose work queues are driven by hand (its upstream is never called)."""
    from conformance.profiles import load_profile
    from conformance.proxy import app as proxy_app

    return proxy_app.ProxyApp(proxy_app.ProxyConfig(upstream="http://127.0.0.1:9", profile=load_profile("dashscope")))


def _slow_check(order: list[str], i: int) -> None:
    time.sleep(0.0002)
    order.append(f"check {i}")

def test_deferred_checks_run_in_slices_with_the_loop_between_and_survive_a_failing_item():
    """Checks wait for the loop's writes: a burst of slow checks is cut into slices, so a callback
    queued behind the burst (another stream's next event) runs before the burst is over; an item
    that raises does not stop the ones after it."""
    proxy, order = _bare_proxy(), []

    def slow(i: int) -> None:
        _slow_check(order, i)

    def broken() -> None:
        raise RuntimeError("a check that fails")

    async def burst() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, _context: order.append("error logged"))
        for i in range(40):
            proxy._soon(lambda i=i: slow(i))
        proxy._soon(broken)
        for i in range(40, 45):
            proxy._soon(lambda i=i: slow(i))
        loop.call_soon(order.append, "next event")

        async def drained() -> None:
            while proxy._work:
                await asyncio.sleep(0)

        await asyncio.wait_for(drained(), 5)  # a queue stopped by the failing item would never drain

    try:
        asyncio.run(burst())
    finally:
        proxy.close()
    checks = [item for item in order if item.startswith("check")]
    assert checks == [f"check {i}" for i in range(45)]  # every check ran, in order, the failing one's followers too
    assert "error logged" in order
    assert order.index("next event") < order.index("check 39")  # the loop ran in between


def test_idle_work_waits_until_no_checks_are_queued_and_survives_a_failing_item():
    """Idle work (the early request checks) only saves later work: it must not take turns from the
    checks of forwarded chunks, and one that raises must not stop the others."""
    proxy, order = _bare_proxy(), []

    def slow(i: int) -> None:
        _slow_check(order, i)

    def broken() -> None:
        raise RuntimeError("idle work that fails")

    async def burst() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, _context: order.append("error logged"))
        for i in range(20):
            proxy._soon(lambda i=i: slow(i))
        proxy._when_idle(lambda: order.append("idle 0"))
        proxy._when_idle(broken)
        proxy._when_idle(lambda: order.append("idle 1"))

        async def drained() -> None:
            while proxy._idle_asked:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(drained(), 5)

    try:
        asyncio.run(burst())
    finally:
        proxy.close()
    assert order == [*(f"check {i}" for i in range(20)), "idle 0", "error logged", "idle 1"]


def test_checks_queued_before_a_poll_wait_for_the_readers_it_woke_but_not_forever():
    """The readers a poll woke (answers read whole) run before the checks queued ahead of them. A reader
    counted as woken that never runs only delays the checks by MAX_DEFERRALS turns."""
    from conformance.profiles import load_profile
    from conformance.proxy import app as proxy_app

    proxy = proxy_app.ProxyApp(proxy_app.ProxyConfig(upstream="http://127.0.0.1:9", profile=load_profile("dashscope")))
    wakeups = proxy._pool.wakeups
    order: list[str] = []

    def relay(name: str) -> None:
        wakeups.pending -= 1
        order.append(name)

    async def turns() -> None:
        loop = asyncio.get_running_loop()
        proxy._soon(lambda: order.append("check"))   # queued first, as a check is before the loop polls
        wakeups.pending = 2                          # the poll woke two relays, queued behind it
        loop.call_soon(relay, "relay 1")
        loop.call_soon(relay, "relay 2")
        loop.call_soon(order.append, "same turn")    # the check comes back after the woken readers
        for _ in range(3):
            await asyncio.sleep(0)
        order.append("next turns")
        proxy._soon(lambda: order.append("late check"))
        wakeups.pending = 1                          # a woken reader that never runs
        for _ in range(proxy_app.MAX_DEFERRALS + 2):
            await asyncio.sleep(0)
        order.append("end")

    try:
        asyncio.run(turns())
    finally:
        proxy.close()
    assert order == ["relay 1", "relay 2", "same turn", "check", "next turns", "late check", "end"]


def test_checks_wait_for_a_burst_of_relayed_chunks_to_end_but_not_forever(monkeypatch: pytest.MonkeyPatch):
    """Chunks relayed less than RELAY_QUIET_NS ago hold the checks back (the rest of the burst goes
    first); a relay that never stops holds them back MAX_QUIET_NS at most."""
    from conformance.proxy import app as proxy_app

    monkeypatch.setattr(proxy_app, "RELAY_QUIET_NS", 50_000_000)   # wide margins for a busy machine
    monkeypatch.setattr(proxy_app, "MAX_QUIET_NS", 100_000_000)
    proxy, order = _bare_proxy(), []

    async def turns() -> None:
        proxy._relayed_ns = time.perf_counter_ns()   # a chunk was just relayed
        proxy._soon(lambda: order.append("check"))
        await asyncio.sleep(0)
        order.append("burst goes on")
        deadline = time.perf_counter_ns() + 5_000_000_000
        while "check" not in order and time.perf_counter_ns() < deadline:
            proxy._relayed_ns = time.perf_counter_ns()   # a flood of relays that never pauses
            await asyncio.sleep(0)
        order.append("end")

    started = time.perf_counter_ns()
    try:
        asyncio.run(turns())
    finally:
        proxy.close()
    assert order == ["burst goes on", "check", "end"]
    assert 100_000_000 <= time.perf_counter_ns() - started < 4_000_000_000

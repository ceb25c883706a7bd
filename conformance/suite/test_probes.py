"""Probes: behaviour that needs a dedicated exchange or a comparison between exchanges."""

from __future__ import annotations

from typing import Any

import pytest

from ..exchange import Exchange
from .answers import answer_text, deltas
from .catalog import Check
from .context import SuiteContext
from .evidence import exchange_evidence
from .outcome import fail, observe
from .scenarios import LONG_ANSWER, SCENARIOS, WRONG_KEY, base
from .test_rejections import assert_rejected, error_payload


def _ev(ctx: SuiteContext, ex: Exchange) -> dict[str, Any]:
    return exchange_evidence(ex, api_key_env=ctx.api_key_env)


def _skip_if_open(ctx: SuiteContext, ex: Exchange, what: str) -> None:
    """A loopback target that answers without checking keys (`chatconf mock` without --api-key, a
    gateway in CI) runs without authentication by design: say so instead of failing. A remote target
    that does the same is a real hole and fails."""
    if ex.status is not None and 200 <= ex.status < 300 and not ctx.is_live:
        pytest.skip(f"the target accepted {what}: it does not check API keys (for chatconf mock, start it "
                    "with --api-key KEY to test authentication)")


@pytest.mark.chatconf_check("auth.invalid-key")
def test_invalid_key(check: Check, chatconf: SuiteContext) -> None:
    ex = chatconf.traffic.run("error-auth")[0]
    auth = f"Bearer {WRONG_KEY}"
    _skip_if_open(chatconf, ex, "a made-up key")
    assert_rejected(chatconf, "auth.invalid-key", ex, auth=auth)
    spec = chatconf.profile.error("auth.invalid-key")
    err = error_payload(ex) or {}
    if spec is not None and spec.code and err.get("code") != spec.code:
        fail(f"expected error.code {spec.code!r}, received {err.get('code')!r}",
             exchange_evidence(ex, api_key_env=chatconf.api_key_env, auth=auth))


@pytest.mark.chatconf_check("auth.missing-key")
def test_missing_key(check: Check, chatconf: SuiteContext) -> None:
    ex = chatconf.client.chat(base(chatconf), api_key=None, retry=False)
    _skip_if_open(chatconf, ex, "a request without Authorization")
    assert_rejected(chatconf, "auth.invalid-key", ex, auth="")


@pytest.mark.chatconf_check("request.malformed-json")
def test_malformed_json(check: Check, chatconf: SuiteContext) -> None:
    ex = chatconf.traffic.run("error-malformed")[0]
    assert_rejected(chatconf, "request.malformed-json", ex)


def _valid_scenarios(ctx: SuiteContext) -> list[tuple[str, Exchange]]:
    out = []
    for name, sc in SCENARIOS.items():
        if "error" in sc.tags or "drift" in sc.tags or not ctx.traffic.applicable(name):
            continue
        out.extend((name, ex) for ex in ctx.traffic.run(name))
    return out


@pytest.mark.chatconf_check("response.accepted")
def test_valid_scenarios_accepted(check: Check, chatconf: SuiteContext) -> None:
    answered = 0
    for name, ex in _valid_scenarios(chatconf):
        if ex.status is not None and not 200 <= ex.status < 300:
            fail(f"{name}: expected 2xx for a documented valid request, received {ex.status}", _ev(chatconf, ex))
        answered += ex.status is not None
    if not answered:
        pytest.skip("no valid scenario got an answer at all (see transport.complete)")


@pytest.mark.chatconf_check("transport.complete")
def test_transport_complete(check: Check, chatconf: SuiteContext) -> None:
    # Lazily, scenario by scenario, those already run first: a failure already seen is reported
    # before a target that stopped answering makes the next scenario raise TargetUnresponsive.
    names = [n for n, sc in SCENARIOS.items() if not {"error", "drift"} & sc.tags and chatconf.traffic.applicable(n)]
    names += [n for n, sc in SCENARIOS.items() if "error" in sc.tags]
    names.sort(key=lambda n: n not in chatconf.traffic.exchanges)  # what already ran first (stable)
    for name, ex in ((n, ex) for n in names for ex in chatconf.traffic.run(n)):
        if ex.transport_error:
            fail(f"{name}: {ex.transport_error}", _ev(chatconf, ex))
        if ex.status is not None and ex.status < 400 and not ex.is_streamed and ex.body is None:
            fail(f"{name}: 2xx answer whose body is not JSON", _ev(chatconf, ex))


def _stop_word(text: str) -> str | None:
    """A word from the middle of the model's own unstopped answer: a stop string it will write."""
    words = [w.strip(".,;:!?\"'()") for w in text.split()]
    middle = [w for w in words[2:-1] if len(w) >= 4 and w.isalpha()]
    return middle[len(middle) // 2] if middle else None


@pytest.mark.chatconf_check("behaviour.stop-honoured")
def test_stop_honoured(check: Check, chatconf: SuiteContext) -> None:
    """`stop` must work on both paths. A fixed stop string proves little when the model never writes
    it, so the string is taken from the model's own answer to the same seeded request."""
    unstopped = chatconf.client.chat(_seeded(chatconf, LONG_ANSWER, max_tokens=32))
    if unstopped.status != 200:
        pytest.skip(f"the unstopped request was not answered (HTTP {unstopped.status}); see response.accepted")
    word = _stop_word(answer_text(unstopped)[0])
    if word is None:
        pytest.skip("the model's answer is too short to take a stop string from")
    for path, extra in (("non-stream", {}), ("stream", {"stream": True})):
        ex = chatconf.client.chat(_seeded(chatconf, LONG_ANSWER, max_tokens=32, stop=[word], **extra))
        if ex.status != 200:
            fail(f"{path}: a request with stop [{word!r}] was refused (HTTP {ex.status})", _ev(chatconf, ex))
        if ex.transport_error:
            pytest.skip(f"{path}: the stopped answer was cut short (see transport.complete)")
        content = answer_text(ex)[0]
        if word in content:
            fail(f"{path}: stop string {word!r} (taken from the unstopped answer) appears in the output at offset "
                 f"{content.index(word)}", {"unstopped": _ev(chatconf, unstopped), "stopped": _ev(chatconf, ex)})


def _skip_unless_whole(*answers: Exchange) -> None:
    """Two cut-short or empty answers are equal without proving anything: no data is no pass."""
    if any(ex.transport_error for ex in answers):
        pytest.skip("an answer was cut short, so there is nothing to compare (see transport.complete)")
    if not any(answer_text(ex)[0] for ex in answers):
        pytest.skip("both answers are empty, so there is nothing to compare")


def _seeded(ctx: SuiteContext, *messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A seeded request, greedy where the profile's contract allows temperature 0 (seed 001 says not
    to set it to 0, so DashScope answers are compared by seed alone)."""
    extra.setdefault("max_tokens", 24)
    greedy = ctx.profile.rule("greedy_temperature")
    if greedy is not None:
        extra.setdefault("temperature", greedy)
    return base(ctx, *(messages or ({"role": "user", "content": "Name three colours of the rainbow."},)),
                seed=1234, **extra)


@pytest.mark.chatconf_check("behaviour.seed-deterministic")
def test_seed_deterministic(check: Check, chatconf: SuiteContext) -> None:
    first = chatconf.client.chat(_seeded(chatconf))
    second = chatconf.client.chat(_seeded(chatconf))
    if first.status != 200 or second.status != 200:
        pytest.skip(f"seeded requests not answered (HTTP {first.status}/{second.status})")
    _skip_unless_whole(first, second)
    if answer_text(first)[0] != answer_text(second)[0]:
        fail("the same seed gave different answers", {"first": _ev(chatconf, first), "second": _ev(chatconf, second)})


@pytest.mark.chatconf_check("behaviour.stream-agrees")
def test_stream_agrees(check: Check, chatconf: SuiteContext) -> None:
    plain = chatconf.client.chat(_seeded(chatconf))
    streamed = chatconf.client.chat(_seeded(chatconf, stream=True, stream_options={"include_usage": True}))
    if plain.status != 200 or streamed.status != 200:
        pytest.skip(f"seeded requests not answered (HTTP {plain.status}/{streamed.status})")
    _skip_unless_whole(plain, streamed)
    a, b = answer_text(plain), answer_text(streamed)
    if a[1] != b[1]:
        fail(f"finish_reason differs: non-stream {a[1]!r}, stream {b[1]!r}",
             {"non_stream": _ev(chatconf, plain), "stream": _ev(chatconf, streamed)})
    if a[0] != b[0]:
        fail(f"content differs: non-stream {a[0][:60]!r}, stream {b[0][:60]!r}",
             {"non_stream": _ev(chatconf, plain), "stream": _ev(chatconf, streamed)})


@pytest.mark.chatconf_check("behaviour.thinking-stream")
def test_thinking_stream(check: Check, chatconf: SuiteContext) -> None:
    if not chatconf.supports("thinking"):
        pytest.skip(f"profile says {chatconf.model} has no thinking mode")
    ex = chatconf.traffic.run("stream-thinking")[0]
    if ex.status != 200 or not isinstance(ex.events, list):
        pytest.skip(f"thinking stream not answered (HTTP {ex.status}); see response.accepted")
    first_reasoning = first_content = None
    for event, _, delta, _ in deltas(ex):
        if delta.get("reasoning_content") and first_reasoning is None:
            first_reasoning = event
        if delta.get("content") and first_content is None:
            first_content = event
    if first_reasoning is None:  # thinking is not in the documented contract: no support is a capability note
        observe("no thinking support: the enable_thinking stream carried no reasoning_content", _ev(chatconf, ex))
    if first_content is not None and first_content < first_reasoning:
        fail(f"content (event {first_content}) came before reasoning_content (event {first_reasoning})",
             _ev(chatconf, ex))


@pytest.mark.chatconf_check("behaviour.tool-roundtrip")
def test_tool_roundtrip(check: Check, chatconf: SuiteContext) -> None:
    if not chatconf.supports("tools"):
        pytest.skip(f"profile says {chatconf.model} has no tools")
    answers = chatconf.traffic.run("tool-roundtrip")
    if not answers:
        pytest.skip("the target made no tool call to answer")
    ex = answers[0]
    if ex.status != 200:
        fail(f"the tool result was refused: HTTP {ex.status}", _ev(chatconf, ex))
    content, finish, _ = answer_text(ex)
    if finish not in ("stop", "length") or not content:
        fail(f"expected a final answer (content, finish_reason 'stop' or 'length'), received finish_reason "
             f"{finish!r} and {len(content)} characters of content", _ev(chatconf, ex))


def observed_outcome(ctx: SuiteContext, ex: Exchange, what: str) -> None:
    evidence = _ev(ctx, ex)
    if ex.transport_error:
        fail(f"{what}: {ex.transport_error}", evidence)
    if ex.status is not None and 200 <= ex.status < 300:
        observe(f"{what}: accepted (HTTP {ex.status})", evidence)
    if ex.status is not None and 400 <= ex.status < 500:
        err = error_payload(ex) or {}
        observe(f"{what}: rejected (HTTP {ex.status}, code {err.get('code')!r}: "
                f"{str(err.get('message', ''))[:100]})", evidence)
    fail(f"{what}: neither accepted nor cleanly rejected (HTTP {ex.status})", evidence)

"""Delta templates (conformance/rules/delta_template.py): a chunk judged by its text must get exactly the
verdict the full path (parse, schema, rules) gives it, and the shortcut must actually be taken."""

from __future__ import annotations

from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.profiles import load_profile
from conformance.rules import StreamChecker, Violation
from conformance.rules import stream as stream_module
from conformance.rules.delta_template import SLOT_KEYS, DeltaTemplate, _is_free, free_slot_keys
from conformance.rules.schema_rules import schemas_for
from conformance.sse import SSEEvent

DASH = load_profile("dashscope")
REQ = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "stream": True,
       "stream_options": {"include_usage": True}}
TAIL = ',"object":"chat.completion.chunk","usage":null,"created":1715931028,"model":"qwen-plus","id":"chatcmpl-1"}'


def shape(delta: str, finish: str = "null", index: int = 0, tail: str = TAIL, extra: str = "") -> str:
    """A chunk's text with `{C}` where the content string's body goes."""
    return f'{{"choices":[{{"finish_reason":{finish},"delta":{delta},"index":{index},"logprobs":null{extra}}}]' + tail


PLAIN = shape('{"content":"{C}"}')
USAGE_0 = ('{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":0,"total_tokens":5}'
           + TAIL.replace(',"usage":null', ""))
"""Zero completion tokens: a finding only when some content was seen (`_answered` shows)."""
DECOYS = [   # a "content" string that is not the one the rules read (which stays "")
    shape('{"content":"{C}","content":""}'),
    shape('{"content":"{C}","cont\\u0065nt":""}'),
    '{"x":{"content":"{C}"},"choices":[{"finish_reason":null,"delta":{"content":""},"index":0}]' + TAIL,
    '{"choices":[{"delta":{"content":"{C}"},"index":"0"}]' + TAIL,
    shape('{"content":null,"reasoning_content":"{C}","reasoning_content":""}'),
    shape('{"content":null,"reasoning_content":"","x":{"reasoning_content":"{C}"}}'),
]
SHAPES = [
    PLAIN,
    PLAIN,
    PLAIN,
    shape('{"role":"assistant","content":"{C}"}'),                        # role first, then role-once
    shape('{"content":"{C}"}', finish='"stop"'),                          # finish, then content after it
    shape('{"content":"{C}"}', tail=TAIL.replace("chatcmpl-1", "chatcmpl-2")),   # same-id
    shape('{"content":"{C}"}', tail=TAIL.replace(',"model":"qwen-plus"', "")),   # schema: no model
    shape('{"content":"{C}"}', index=1),                                  # a choice never opened
    shape('{"content":"{C}","content":null}'),                            # duplicate key: the last wins
    shape('{"content":null,"content":"{C}"}'),
    shape('{"cont\\u0065nt":"{C}"}'),                                     # the key spelled with an escape
    shape('{"content":"{C}","cont\\u0065nt":"x"}'),
    shape('{"content": "{C}"}'),                                          # spaced: no template
    shape('{"content":null,"reasoning_content":"{C}"}'),                  # thinking
    shape('{"content":null,"reasoning_content":"{C}"}'),
    shape('{"content":"","reasoning_content":"{C}"}'),
    shape('{"reasoning_content":"{C}","content":"{C}"}'),
    shape('{"content":"{C}"}', extra=',"x":{"content":"y"}'),             # a second "content" key elsewhere
    shape('{"content":"{C}","tool_calls":[{"index":0,"id":"c1","type":"function",'
          '"function":{"name":"f","arguments":"{}"}}]}'),
    shape('{"content":"{C}","role":null}'),
    '{"choices":[{"finish_reason":null,"delta":{"content":"{C}"},"index":0},'
    '{"finish_reason":null,"delta":{"content":"b"},"index":1}]' + TAIL,   # two choices
    '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}'
    + TAIL.replace(',"usage":null', ""),
    '{"error":{"message":"boom","type":"internal_error","code":"x"}}',
    USAGE_0,
    USAGE_0,
    "[DONE]",
    "{}",
    "not json {C}",
    '{"choices":[{"delta":{"content":"{C}"}}]}',                           # no index, no id...: schema only
    '{"choices":[{"delta":{"content":"{C}"}}]}',
    '{"choices":[{"delta":{"content":"{C}"},"index":"0"}]' + TAIL,        # an index rules cannot use
    '{"choices":[{"delta":{"content":"{C}"}}],"usage":{"prompt_tokens":1}}',
    '{"choices":{"content":"{C}"}}',
    '{"choices":["{C}"]}',
    *DECOYS,
]
PIECES = ["a", "Qwen", " ", "", "通义", "é", "\x7f", "\u2028", "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud83d\\ude00",
          "\\ud800", "\\x", "\\", '"', '","x":"', "\x01", "\n", "\ud800", "}", "{", "\\/", "\\t"]


def contents() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(PIECES), max_size=4).map("".join)


def events(texts: list[str]) -> list[SSEEvent]:
    return [SSEEvent(text, index=i) for i, text in enumerate(texts)]


def check(texts: list[str], request: Any, *, templates: bool, cap: int = stream_module.MAX_PER_RULE) -> list[Violation]:
    with mock.patch.object(stream_module, "free_slot_keys", lambda validator: SLOT_KEYS if templates else ()), \
            mock.patch.object(stream_module, "MAX_PER_RULE", cap):
        checker = StreamChecker(DASH, request)
        out: list[Violation] = []
        for ev in events(texts):
            out += checker.feed(ev)
        return out + checker.finish()


def role_chunk() -> str:
    return shape('{"content":"","role":"assistant"}')


@settings(max_examples=400, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(SHAPES), contents()), min_size=1, max_size=40),
       request=st.sampled_from([REQ, None]), opened=st.booleans(), cap=st.sampled_from([1, 3, 50]))
def test_same_verdict_as_the_full_path(steps: list[tuple[str, str]], request: Any, opened: bool, cap: int) -> None:
    """Small listing caps: most streams reach the counted-only part, where bad chunks get templates."""
    texts = ([role_chunk()] if opened else []) + [s.replace("{C}", c) for s, c in steps]
    assert check(texts, request, templates=True, cap=cap) == check(texts, request, templates=False, cap=cap)


def test_a_realistic_stream_is_judged_by_its_text_after_two_chunks() -> None:
    texts = [role_chunk()] + [PLAIN.replace("{C}", f"word {i}") for i in range(50)] + [
        shape('{"content":""}', finish='"stop"'), "[DONE]"]
    matched = []
    real_match = DeltaTemplate.match

    def counting(self: DeltaTemplate, data: str) -> int:
        found = real_match(self, data)
        matched.append(found)
        return found

    with mock.patch.object(DeltaTemplate, "match", counting):
        found = check(texts, REQ, templates=True)
    assert [v.rule for v in found] == ["stream.usage-last"]   # include_usage asked, no usage chunk
    assert matched.count(1) == 49 and matched.count(-1) == 1   # all but the first content chunk; not the finish


@pytest.mark.parametrize("decoy", DECOYS)
def test_a_string_the_rules_do_not_read_never_counts_as_an_answer(decoy: str) -> None:
    texts = [role_chunk(), decoy.replace("{C}", ""), decoy.replace("{C}", "a"), decoy.replace("{C}", "b"),
             shape('{"content":""}', finish='"stop"'), USAGE_0, "[DONE]"]
    for cap in (1, 50):
        found = check(texts, REQ, templates=True, cap=cap)
        assert found == check(texts, REQ, templates=False, cap=cap)
        assert "stream.usage-arithmetic" not in [v.rule for v in found]


@pytest.mark.parametrize("bad", ['{"choices":[{"delta":{"content":"%d"}}]}', "{}"])
def test_bad_chunks_past_a_full_listing_are_counted_by_their_text(bad: str) -> None:
    texts = [bad.replace("%d", str(i)) for i in range(200)]
    with_templates, without = check(texts, None, templates=True), check(texts, None, templates=False)
    assert with_templates == without
    summary = with_templates[-1]
    assert summary.rule == "schema.chunk" and "950 more" in summary.message, summary   # 5 errors x 190 chunks


@pytest.mark.parametrize("body", ["a\x01", "a\n", '","x":"', "\\x", "\\", 'a"b', "\\u12"])
def test_a_content_that_is_not_a_json_string_body_never_matches(body: str) -> None:
    template = DeltaTemplate.of(PLAIN.replace("{C}", "a"), orjson.loads(PLAIN.replace("{C}", "a")), keys=SLOT_KEYS,
                                answers=True, errors=0)
    assert template.slot
    assert template.match(PLAIN.replace("{C}", body)) == -1
    # lone surrogates: orjson refuses them, the stdlib parser every chunk falls back to takes them
    assert [template.match(PLAIN.replace("{C}", ok)) for ok in ("", "b", "\\n", "\\ud83d\\ude00", "é\\\"",
                                                                 "\\ud800", "\ud800")] == [0, 1, 1, 1, 1, 1, 1]


def test_a_bad_content_string_is_still_reported() -> None:
    texts = [role_chunk(), PLAIN.replace("{C}", "a"), PLAIN.replace("{C}", "b"), PLAIN.replace("{C}", "c\x01"),
             PLAIN.replace("{C}", "d"), shape('{"content":""}', finish='"stop"'), "[DONE]"]
    assert [(v.rule, v.event) for v in check(texts, None, templates=True)] == [("stream.json", 3)]


def _chunk_schema(content: dict[str, Any], delta_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    delta = {"type": "object", "properties": {"content": content}, **(delta_extra or {})}
    return {"type": "object", "properties": {"choices": {"type": "array", "items": {"$ref": "#/$defs/choice"}}},
            "$defs": {"choice": {"type": "object", "properties": {"delta": {"$ref": "#/$defs/delta"}}},
                      "delta": delta}}


def test_templates_only_where_the_schema_accepts_any_content_string() -> None:
    assert free_slot_keys(schemas_for(DASH).chunk) == ("content", "reasoning_content")
    assert free_slot_keys(schemas_for(DASH, True).chunk) == ()   # strict closes objects
    assert _is_free(_chunk_schema({"type": ["string", "null"], "description": "text"}), "content")
    assert _is_free(_chunk_schema({"type": "string"}), "reasoning_content")   # not named: any value
    for content in ({"type": "string", "maxLength": 5}, {"type": "string", "pattern": "^a"}, {"enum": ["a"]},
                    {"const": "a"}, {"type": "null"}, {"anyOf": [{"type": "string"}]}, {"$ref": "#/$defs/nowhere"}):
        assert not _is_free(_chunk_schema(content), "content"), content
    for extra in ({"additionalProperties": False}, {"patternProperties": {"c": {"maxLength": 1}}},
                  {"anyOf": [{"type": "object"}]}, {"const": {"content": "a"}}, {"not": {"required": ["x"]}}):
        assert not _is_free(_chunk_schema({"type": "string"}, extra), "content"), extra


def test_templates_back_off_while_a_field_changes_on_every_chunk() -> None:
    """OpenAI's `obfuscation` differs on every chunk: each template would miss the next chunk, so they
    are taken ever more rarely; once chunks repeat again, templates match again."""
    varying = [PLAIN.replace("{C}", "w").replace('"id"', f'"obfuscation":"{i:x}","id"') for i in range(300)]
    steady = [PLAIN.replace("{C}", f"w{i}") for i in range(100)]
    texts = [role_chunk(), *varying, *steady]
    taken: list[int] = []
    real_of = DeltaTemplate.of

    def counting(data: str, obj: Any, **kw: Any) -> DeltaTemplate:
        taken.append(len(taken))
        return real_of(data, obj, **kw)

    with mock.patch.object(DeltaTemplate, "of", counting):
        assert check(texts, None, templates=True) == check(texts, None, templates=False)
    assert 8 <= len(taken) <= 14   # a few for the 300 varying chunks, then one for the 100 steady ones

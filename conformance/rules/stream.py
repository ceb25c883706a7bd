"""Stream rules (stream.*) as one incremental pass: `StreamChecker`.

Live runs, 200k-chunk capture files and load tests all feed events one at a time, so the checker
keeps constant state per stream (ids of the first chunk, one small record per choice index and
per tool call; only tool-call argument text is accumulated) and never a list of events. Each chunk
is parsed once, schema-checked through the fast `is_valid` path, and digested in one loop over its
choices; the rules are the few lines inside that loop that look at what they need. A chunk that is
the one before it with another content string (most of any stream) is judged by its text alone
(delta_template.py), with exactly the verdict the full path gives.

DashScope shapes that are valid (research s2, F3-F5): a role chunk with content "" first; a finish
chunk with content "" or with text (C12); `delta: {}` with finish_reason tool_calls; tool-call
continuations with id "" and no name or name "", arguments null or ""; a thinking stream with
content null next to reasoning_content (C15); keys in any order, finish_reason/logprobs keys
missing (C13); a `choices: []` usage chunk after the finish chunk, only when include_usage (S16).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..jsonutil import JSONError, loads
from ..profiles import Profile
from ..sse import SSEEvent
from .base import Violation, applies, expected, expected_text, register, unlisted_summary
from .delta_template import DeltaTemplate, free_slot_keys
from .errors import envelope_violations
from .response import (
    answer_tokens,
    arguments_problem,
    completion_token_cap,
    content_type_violation,
    created_problem,
    forced_tool_choice,
    model_problem,
    usage_plausibility,
    usage_problem,
)
from .schema_rules import schema_findings, schemas_for

_S = "stream."
_RULES = [
    # id, title, cites (docs/sources.md), scenario tags `chatconf run` evaluates it on
    ("content-type", "a stream is text/event-stream", "001:http-api S1", ""),
    ("json", "every data frame but [DONE] is a JSON object, in UTF-8", "001:sample-stream S2", ""),
    ("same-id", "id is the same on every chunk", "001:sample-stream S4 C10", ""),
    ("same-created", "created is the same on every chunk", "001:sample-stream S5 C10", ""),
    ("same-model", "model is the same on every chunk", "001:sample-stream S6 C10", ""),
    ("role-first", "the first chunk of each choice carries role assistant", "001:sample-stream S7 C10 C15 C22", ""),
    ("role-once", "role does not reappear after the first chunk", "001:sample-stream S8", ""),
    ("one-finish", "exactly one non-null finish_reason per choice", "001:response-parameters S10 S11", ""),
    ("no-content-after-finish", "no content for a choice after its finish chunk", "001:response-parameters S12 C12",
     ""),
    ("choice-indices", "choice indices are 0..n-1", "001:param-n S21 N2", "stream n"),
    ("usage-last", "with include_usage, one choices:[] usage chunk after the finish chunks",
     "001:param-stream_options 001:sample-stream S16 C10", "stream usage"),
    ("usage-null-elsewhere", "chunks with choices carry usage null", "001:sample-stream S17 C10", ""),
    ("usage-only-when-asked", "no usage without stream_options.include_usage", "001:param-stream_options S18 C11", ""),
    ("usage-arithmetic", "usage totals add up", "001:response-parameters S19", "stream usage"),
    ("finish-tool-calls", "streamed tool calls finish with tool_calls", "S27 C22", "stream tools"),
    ("finish-length", "completion tokens respect max_tokens", "001:param-max_tokens S20 C34", "stream length"),
    ("tool-call-index", "a new tool call takes the next index (0, 1, ...)", "S22 C22", "stream tools"),
    ("tool-call-first-delta", "a tool call's first delta has id, type function and a name", "S23 C22", "stream tools"),
    ("tool-call-stable", "continuation deltas do not repeat or change id/name", "S24 C22", "stream tools"),
    ("tool-arguments-json", "each call's joined arguments parse as a JSON object", "S25 C23", "stream tools"),
    ("error-event", "nothing but [DONE] follows an in-stream error event", "S30 C6", ""),
    ("done-last", "the stream ends with data: [DONE] and nothing follows it", "001:sample-stream S3", ""),
    ("terminated", "the stream ends cleanly (no cut event, no transport error)", "S31", ""),
    ("request-id", "chunk id is chatcmpl- + x-request-id", "C3", "", "request_id_in_id"),
    ("created-plausible", "created is a UNIX time in seconds, near the request time",
     "001:response-parameters 001:sample-stream", ""),
    ("model-matches", "the chunks' model is the requested one (or a snapshot of it)", "S6 C10", ""),
]
for _name, _title, _cites, _needs, *_when in _RULES:
    register(_S + _name, _title, kind="stream", cites=_cites, needs=_needs, when="".join(_when))

MAX_TEMPLATE_PAUSE = 64
"""Most chunks a stream goes without a delta template after templates that kept missing the next chunk."""
MAX_PER_RULE = 50
"""A broken 200k-chunk stream reports the first 50 of each rule, then one summary line."""

_UNSET: Any = object()
_EMPTY: dict[str, Any] = {}


class _Call:
    __slots__ = ("args", "id", "name")

    def __init__(self, call_id: Any, name: Any):
        self.id = call_id
        self.name = name
        self.args: list[str] = []


class _Choice:
    __slots__ = ("calls", "finish", "finish_event", "role_seen")

    def __init__(self, role_seen: bool):
        self.role_seen = role_seen
        self.finish: Any = None
        self.finish_event: int | None = None
        self.calls: dict[int, _Call] = {}


_TOUCHED, _IGNORED, _ANSWERS = object(), object(), object()
"""What `_chunk_rules` did with a chunk (see there)."""


class StreamChecker:
    """Feed SSE events in order; get violations as they become certain; `finish()` at the end.

    `request_body` (when known) enables the rules that depend on it: include_usage, n, max_tokens,
    tool_choice. `headers` (response headers, when known) enables content-type and request-id.
    Deterministic: the same events give the same violations however they were read.
    """

    def __init__(self, profile: Profile, request_body: Any = None, *, entry: int = 0, strict: bool = False,
                 headers: Mapping[str, str] | None = None, sent_at: float | None = None):
        self.profile = profile
        self.entry = entry
        schemas = schemas_for(profile)
        self._chunk_valid = schemas.chunk.is_valid
        self._chunk = schemas.chunk
        self._strict = schemas_for(profile, True).chunk if strict else None
        self._strict_flag = strict
        self._templates = () if strict else free_slot_keys(schemas.chunk)   # none: no templates
        self._template: DeltaTemplate | None = None   # the last chunk, if valid and plain (delta_template)
        self._template_at = -1      # the event count when the last one was taken (-1: none since a rest)
        self._template_rest_until = 0   # no template is taken before this event count
        self._template_pause = 1    # the next rest, doubled each time a template misses the next chunk
        self._seen_unknown: set[str] = set()
        req = request_body if isinstance(request_body, dict) else None
        self._request = req
        self._sent_at = sent_at
        self._answered = False   # any content, reasoning or tool-call delta (usage plausibility)
        self._known = req is not None
        stream_opts = req.get("stream_options") if req else None
        self._include_usage: bool | None = None if req is None else (
            req.get("stream") is True and isinstance(stream_opts, dict)
            and stream_opts.get("include_usage") is True)
        n = req.get("n") if req else None
        self._n: int | None = (n if type(n) is int and n > 0 else 1) if req else None
        self._token_cap = completion_token_cap(req)
        self._forced = forced_tool_choice(req)
        self._done_required = profile.rule("done_marker", "required") == "required"
        self._headers = headers
        self._id_has_request_id = applies("stream.request-id", profile)
        self._pending: list[Violation] = []
        self._counts: dict[str, int] = {}
        self._unlisted: dict[str, int] = {}   # summaries of findings other checkers did not list
        self._events = 0
        self._done_at: int | None = None
        self._error_at: int | None = None
        self._usage_at: int | None = None
        self._id: Any = _UNSET
        self._created: Any = None
        self._model: Any = None
        self._choices: dict[int, _Choice] = {}
        self._finished = 0
        if headers is not None:
            v = content_type_violation(headers, str(profile.rule("stream_content_type", "text/event-stream")),
                                       "stream.content-type", entry)
            if v is not None:
                self._pending.append(v)

    # -- reporting --------------------------------------------------------------------------------

    def _v(self, rule_id: str, message: str, event: int | None, pointer: str = "") -> None:
        count = self._counts.get(rule_id, 0) + 1
        self._counts[rule_id] = count
        if count <= MAX_PER_RULE:
            self._pending.append(Violation(rule_id, message, entry=self.entry, event=event, pointer=pointer))

    def _extend(self, found: list[Violation]) -> None:
        """Findings built elsewhere (schema, error envelope) go through the same per-rule cap; their own
        summaries of unlisted findings join the one this checker writes at the end."""
        for v in found:
            if v.unlisted:
                self._unlisted[v.rule] = self._unlisted.get(v.rule, 0) + v.unlisted
                continue
            count = self._counts.get(v.rule, 0) + 1
            self._counts[v.rule] = count
            if count <= MAX_PER_RULE:
                self._pending.append(v)

    def _take(self) -> list[Violation]:
        out = self._pending
        if out:
            self._pending = []
        else:
            out = []
        return out

    # -- input ------------------------------------------------------------------------------------

    def feed(self, ev: SSEEvent) -> list[Violation]:
        """Check one event (its `index` is the event position used in reports)."""
        if not ev.terminated or ev.not_utf8:
            self._event_faults(ev)
        data = ev.data
        template = self._template
        if template is not None:
            content = template.match(data)
            if content >= 0:  # the last chunk again, maybe with other text: its verdict (delta_template)
                self._events += 1
                if template.errors:
                    self._counts["schema.chunk"] += template.errors
                if content and template.answers and not self._answered:
                    self._answered = True
                return self._take() if self._pending else []
        if data[:6] == "[DONE]" or self._done_at is not None:
            self._feed_obj(data, None, ev.index)
        else:
            obj = ev.json
            # The common case, inline (one call less per chunk): a chunk that is not an error event, before
            # any error event. Anything else takes `_feed_obj`'s full sequence of checks.
            if type(obj) is dict and ("choices" in obj or "error" not in obj) and self._error_at is None \
                    and not self._strict_flag:
                self._events += 1
                counted = 0 if self._chunk_valid(obj) else self._schema_chunk(obj, data, ev.index)
                outcome = self._chunk_rules(obj, ev.index)
                if outcome is not _TOUCHED and counted >= 0 and self._templates \
                        and self._events > self._template_rest_until:
                    self._take_template(data, obj, outcome is _ANSWERS, counted)
                else:
                    self._template = None
            else:
                self._feed_obj(data, obj, ev.index)
        if self._pending:
            return self._take()
        return []

    def _take_template(self, data: str, obj: dict[str, Any], answers: bool, errors: int) -> None:
        """This chunk as the template of the next ones (delta_template), unless templates keep missing
        the very next chunk (a field that changes on every chunk, as OpenAI's `obfuscation`): then one is
        taken only after 1, 2, 4 ... 64 chunks, until one matches again."""
        self._template = None
        taken_at = self._template_at
        if taken_at == self._events - 1:  # the last one missed the chunk right after it
            self._template_rest_until = self._events + self._template_pause
            self._template_pause = min(self._template_pause * 2, MAX_TEMPLATE_PAUSE)
            self._template_at = -1
            return
        if taken_at >= 0:  # it matched at least once, or another kind of chunk came in between
            self._template_pause = 1
        self._template = DeltaTemplate.of(data, obj, keys=self._templates, answers=answers, errors=errors)
        self._template_at = self._events

    def _event_faults(self, ev: SSEEvent) -> None:
        if not ev.terminated:
            self._v("stream.terminated", expected_text("an event ended by a blank line",
                                                      "a trailing event without one"), ev.index)
        if ev.not_utf8:  # JSON text is UTF-8 (RFC 8259 8.1); what a client decoded is not what was sent
            self._v("stream.json", expected_text("UTF-8 JSON in the data field",
                                                 "bytes that are not UTF-8 (decoded as U+FFFD)"), ev.index)

    def feed_data(self, data: str, index: int, parsed: Any = _UNSET) -> list[Violation]:
        """Fast path for readers that split events themselves: the data text (and JSON, if parsed)."""
        if parsed is _UNSET:
            try:
                parsed = None if data.startswith("[DONE]") or self._done_at is not None else loads(data)
            except JSONError:
                parsed = None
        self._feed_obj(data, parsed, index)
        if self._pending:
            return self._take()
        return []

    def _feed_obj(self, data: str, obj: Any, index: int) -> None:
        self._events += 1
        self._template = None
        if self._done_at is not None:
            self._v("stream.done-last", expected_text("nothing after data: [DONE]", f"event {index}"), index)
            return
        if data[:6] == "[DONE]":
            self._done_at = index
            return
        if type(obj) is not dict:
            self._v("stream.json", expected("a JSON object in the data field", data), index)
            return
        if "error" in obj and "choices" not in obj:
            self._error_event(obj, index)
            return
        if self._error_at is not None:
            if not self._counts.get("stream.error-event"):
                self._v("stream.error-event", expected_text("nothing but [DONE] after an error event",
                                                            f"a chunk at event {index}"), index)
            return
        if self._strict_flag or not self._chunk_valid(obj):
            self._schema_chunk(obj, data, index)
        self._chunk_rules(obj, index)

    def _schema_chunk(self, obj: dict[str, Any], data: str, index: int) -> int:
        """schema.chunk findings of a chunk the schema refused (or any chunk, with --strict). Returns how
        many errors were only counted (the listing was full), or -1 when they were listed."""
        if not self._strict_flag and self._counts.get("schema.chunk", 0) >= MAX_PER_RULE:
            errors = self._chunk.count_errors(obj, data)  # listing full: count only
            self._counts["schema.chunk"] += errors
            return errors
        self._extend(schema_findings(self._chunk, self._strict, obj, "schema.chunk", entry=self.entry,
                                     event=index, seen_unknown=self._seen_unknown))
        return -1

    def _error_event(self, obj: dict[str, Any], index: int) -> None:
        """C6: an error after the 200 is committed arrives as an event; it ends the stream."""
        if self._error_at is None:
            self._error_at = index
        self._extend(envelope_violations(obj, self.profile, status=None, entry=self.entry, event=index,
                                         strict=self._strict_flag, seen_unknown=self._seen_unknown))

    # -- the per-chunk digest ---------------------------------------------------------------------

    def _chunk_rules(self, obj: dict[str, Any], index: int) -> object:
        """The rules on one chunk. Says what they did: `_TOUCHED` (checked or changed something), else
        `_ANSWERS` (a plain content delta, `_plain`: only `_answered` may have changed) or `_IGNORED`
        (nothing read the content). Then the next chunk like it may be judged by its text
        (delta_template)."""
        get = obj.get
        outcome = _IGNORED
        if get("id") != self._id or get("created") != self._created or get("model") != self._model:
            self._identity(obj, index)
            outcome = _TOUCHED
        choices = get("choices")
        usage = get("usage")
        if usage is not None:
            self._usage(usage, bool(choices), index)
            outcome = _TOUCHED
        elif self._usage_at is not None:
            outcome = _TOUCHED
            if choices and not self._counts.get("stream.usage-last"):
                self._v("stream.usage-last", expected_text("the usage chunk last (before [DONE])",
                                                           f"a chunk with choices at event {index}"), index)
        if type(choices) is not list:
            return outcome
        if len(choices) == 1:
            ch = choices[0]
            if type(ch) is not dict:
                return outcome
            if self._plain(ch):
                return outcome if outcome is _TOUCHED else _ANSWERS
            return _TOUCHED if self._choice(ch, 0, index) else outcome
        for pos, ch in enumerate(choices):
            if type(ch) is dict and not self._plain(ch):
                self._choice(ch, pos, index)
        return _TOUCHED

    def _plain(self, ch: dict[str, Any]) -> bool:
        """The common case: a content delta of an open choice, with nothing for any rule to check."""
        idx = ch.get("index")
        if type(idx) is not int:  # a list or dict would not even be a key; the chunk schema reports it
            return False
        state = self._choices.get(idx)
        if state is None or state.finish is not None or ch.get("finish_reason") is not None:
            return False
        delta = ch.get("delta")
        if type(delta) is not dict or delta.get("role") is not None or delta.get("tool_calls"):
            return False
        if not self._answered and (delta.get("content") or delta.get("reasoning_content")):
            self._answered = True
        return True

    def _identity(self, obj: dict[str, Any], index: int) -> None:
        """S4-S6: the first chunk fixes id, created and model for the whole stream."""
        if self._id is _UNSET:
            self._first_chunk(obj, index)
            return
        get = obj.get
        if get("id") != self._id:
            self._v("stream.same-id", expected(f"id {self._id!r} as on the first chunk", get("id")),
                    index, "/id")
        if get("created") != self._created:
            self._v("stream.same-created", expected(f"created {self._created!r}", get("created")),
                    index, "/created")
        if get("model") != self._model:
            self._v("stream.same-model", expected(f"model {self._model!r}", get("model")), index, "/model")

    def _first_chunk(self, obj: dict[str, Any], index: int) -> None:
        self._id = obj.get("id")
        self._created = obj.get("created")
        self._model = obj.get("model")
        header = self._headers.get("x-request-id") if self._headers and self._id_has_request_id else None
        if header and isinstance(self._id, str) and self._id != f"chatcmpl-{header}":
            self._v("stream.request-id", expected(f"id 'chatcmpl-{header}'", self._id), index, "/id")
        problem = created_problem(self._created, self._sent_at)
        if problem:
            self._v("stream.created-plausible", problem, index, "/created")
        problem = model_problem(self._request, self._model)
        if problem:
            self._v("stream.model-matches", problem, index, "/model")

    def _usage(self, usage: Any, with_choices: bool, index: int) -> None:
        if self._include_usage is False:
            self._v("stream.usage-only-when-asked",
                    expected_text("usage null without stream_options.include_usage", "a usage object"),
                    index, "/usage")
            return
        if with_choices:
            self._v("stream.usage-null-elsewhere",
                    expected_text("usage null on chunks with choices", "a usage object"), index, "/usage")
            return
        if self._usage_at is not None:
            self._v("stream.usage-last", expected_text("exactly one usage chunk",
                                                       f"another at event {index}"), index, "/usage")
        else:
            self._usage_at = index
            if self._finished < len(self._choices) or not self._choices:
                self._v("stream.usage-last", expected_text("the usage chunk after every finish chunk",
                                                           "it before a finish_reason"), index, "/usage")
        problem = usage_problem(usage) or usage_plausibility(usage, self._request, self._answered)
        if problem:
            self._v("stream.usage-arithmetic", problem[1], index, "/usage" + problem[0])
        if self._token_cap is not None:
            used = answer_tokens(usage)
            if used is not None and used > self._token_cap[0]:
                self._v("stream.finish-length", expected(f"completion_tokens <= {self._token_cap[1]}", used),
                        index, "/usage/completion_tokens")

    def _choice(self, ch: dict[str, Any], pos: int, index: int) -> bool:
        """The rules on one choice; False when it had no index to check them by."""
        idx = ch.get("index")
        if type(idx) is not int:
            return False  # the chunk schema reports it
        delta = ch.get("delta")
        if type(delta) is not dict:
            delta = _EMPTY
        role = delta.get("role")
        reason = ch.get("finish_reason")
        if reason == "":
            reason = None  # D5: schema.chunk reports "" once; the sequence rules read it as null
        state = self._choices.get(idx)
        if state is None:
            state = self._new_choice(idx, role, pos, index)
        elif state.finish is not None:
            self._after_finish(delta, reason, idx, pos, index)
            return True
        elif role is not None and state.role_seen:
            self._v("stream.role-once", expected("no role after the first chunk", role), index,
                    f"/choices/{pos}/delta/role")
        calls = delta.get("tool_calls")
        if calls:
            self._answered = True
            self._tool_calls(state, calls, pos, index)
        elif not self._answered and (delta.get("content") or delta.get("reasoning_content")):
            self._answered = True
        if reason is not None:
            self._finish_choice(state, reason, pos, index)
        return True

    def _new_choice(self, idx: int, role: Any, pos: int, index: int) -> _Choice:
        if role != "assistant":
            self._v("stream.role-first",
                    expected(f"role 'assistant' on the first chunk of choice {idx}", role),
                    index, f"/choices/{pos}/delta/role")
        if self._n is not None and idx >= self._n:
            self._v("stream.choice-indices", expected(f"a choice index below n={self._n}", idx), index,
                    f"/choices/{pos}/index")
        state = _Choice(role == "assistant")
        self._choices[idx] = state
        return state

    def _after_finish(self, delta: dict[str, Any], reason: Any, idx: int, pos: int, index: int) -> None:
        if reason is not None:
            self._v("stream.one-finish", expected(f"one finish_reason for choice {idx}", reason), index,
                    f"/choices/{pos}/finish_reason")
        elif delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
            self._v("stream.no-content-after-finish",
                    expected_text(f"no content for choice {idx} after its finish chunk", "a content delta"),
                    index, f"/choices/{pos}/delta")

    def _finish_choice(self, state: _Choice, reason: Any, pos: int, index: int) -> None:
        state.finish = reason
        state.finish_event = index
        self._finished += 1
        pointer = f"/choices/{pos}/finish_reason"
        if state.calls and reason != "tool_calls" and not (self._forced and reason == "stop"):
            self._v("stream.finish-tool-calls", expected("finish_reason 'tool_calls' after tool-call deltas",
                                                         reason), index, pointer)
        elif reason == "tool_calls" and not state.calls:
            self._v("stream.finish-tool-calls", expected_text("tool-call deltas before finish_reason "
                                                              "'tool_calls'", "none"), index, pointer)
        for k, call in state.calls.items():
            problem = arguments_problem("".join(call.args), f"tool call {k} arguments")
            if problem:
                self._v("stream.tool-arguments-json", problem, index, pointer)
            call.args = []

    def _tool_calls(self, state: _Choice, deltas: Any, pos: int, index: int) -> None:
        if type(deltas) is not list:
            return
        for j, d in enumerate(deltas):
            if type(d) is not dict:
                continue
            k = d.get("index")
            if type(k) is not int:
                continue  # the chunk schema reports it
            fn = d.get("function")
            if type(fn) is not dict:
                fn = _EMPTY
            base = f"/choices/{pos}/delta/tool_calls/{j}"
            call = state.calls.get(k)
            if call is None:
                call = self._new_call(state, d, fn, k, base, index)
            else:
                self._continuation(call, d, fn, base, index)
            args = fn.get("arguments")
            if type(args) is str and args:
                call.args.append(args)

    def _new_call(self, state: _Choice, d: dict[str, Any], fn: dict[str, Any], k: int, base: str,
                  index: int) -> _Call:
        if k != len(state.calls):
            self._v("stream.tool-call-index", expected(f"index {len(state.calls)} for a new tool call", k),
                    index, base + "/index")
        call_id, name = d.get("id"), fn.get("name")
        if not (type(call_id) is str and call_id):
            self._v("stream.tool-call-first-delta", expected("a non-empty id on the first delta", call_id),
                    index, base + "/id")
        elif d.get("type") != "function":
            self._v("stream.tool-call-first-delta", expected("type 'function' on the first delta",
                                                             d.get("type")), index, base + "/type")
        elif not (type(name) is str and name):
            self._v("stream.tool-call-first-delta", expected("a function name on the first delta", name),
                    index, base + "/function/name")
        call = _Call(call_id, name)
        state.calls[k] = call
        return call

    def _continuation(self, call: _Call, d: dict[str, Any], fn: dict[str, Any], base: str,
                      index: int) -> None:
        """Accumulating clients concatenate strings, so only "", null or absent are safe here."""
        call_id = d.get("id")
        if call_id:
            what = "changed" if call_id != call.id else "repeated"
            self._v("stream.tool-call-stable",
                    expected(f"id '' or absent on a continuation ({what})", call_id), index, base + "/id")
        name = fn.get("name")
        if name:
            what = "changed" if name != call.name else "repeated"
            self._v("stream.tool-call-stable",
                    expected(f"name '' or absent on a continuation ({what})", name),
                    index, base + "/function/name")

    # -- end of stream ----------------------------------------------------------------------------

    def finish(self, transport_error: str | None = None) -> list[Violation]:
        """Whole-stream findings (missing finish, usage, [DONE]); event None means 'the stream'."""
        if transport_error:
            self._v("stream.terminated", expected_text("a stream that ends cleanly",
                                                       f"transport error: {transport_error}"), None)
        if self._error_at is None and not transport_error:
            self._completeness()
        for rule_id in sorted(self._counts.keys() | self._unlisted.keys()):
            more = max(0, self._counts.get(rule_id, 0) - MAX_PER_RULE) + self._unlisted.get(rule_id, 0)
            if more:
                self._pending.append(unlisted_summary(rule_id, more, entry=self.entry))
        return self._take()

    def _completeness(self) -> None:
        for idx, state in sorted(self._choices.items()):
            if state.finish is None:
                self._v("stream.one-finish", expected_text(f"a finish_reason for choice {idx}", "none"), None)
        want = self._n if self._n is not None else (max(self._choices) + 1 if self._choices else 1)
        missing = [i for i in range(want) if i not in self._choices]
        if missing and (self._events or self._known):
            self._v("stream.choice-indices", expected_text(f"chunks for choice indices 0..{want - 1}",
                                                           f"none for {missing}"), None)
        if self._include_usage and self._usage_at is None:
            self._v("stream.usage-last", expected_text("a choices:[] usage chunk (include_usage is true)",
                                                       "none"), None)
        if self._done_at is None and self._done_required:
            self._v("stream.done-last", expected_text("data: [DONE] as the last event", "none"), None)

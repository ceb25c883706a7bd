"""A reference server for the DashScope compatible-mode Chat Completions API, written from seed 001 only.

Why it exists
-------------
The conformance harness has its own mock server. A harness that is only ever run against its own mock can
share that mock's mistakes: if both read the documentation the same wrong way, every check passes. This
module is an *independent oracle*: it was written from the vendor page "OpenAI compatible - Chat"
(``/work/shared/seeds/001_a2c40d0fe87a953b.txt``) and nothing else. It imports nothing from ``conformance``,
``schemas`` or ``fixtures`` and uses only the Python standard library.

* The clean server (no faults) implements what seed 001 says, literally. The harness must report zero
  failures against it.
* Where seed 001 is silent, it deliberately does what a production DashScope server does *not* do
  (accepts ``tools: []``, a tool message with no preceding ``tool_calls``, unanswered ``tool_calls``, any
  ``max_tokens >= 1``; ignores unknown parameters such as ``enable_thinking``; sends no ``x-request-id`` and
  no ``request_id`` in error bodies; never sends ``reasoning_content``). A harness check that fails the clean
  server therefore tests something the documentation does not promise.
* Each entry of :data:`FAULTS` breaks exactly one documented statement. The harness must catch every one.

Only seed 001 is followed (not seed 002, a generic OpenAI-style table) because 001 is the vendor's page for
this very endpoint; where the two disagree (``n`` up to 10, role ``developer``, a 403 status) 001 wins.

Judgment calls where seed 001 is ambiguous
------------------------------------------
* Route order: unknown path 404, then non-POST 405, then a wrong key 401, then the body (400).
* An unknown model is 400 ``model_not_found`` (the error table has no 404). Later dated snapshots of a series
  listed with "and later snapshots" are accepted; the model list is the union of all regions.
* Ranges as printed: temperature [0, 2) (0 is accepted despite "Do not set this to 0"), top_p (0, 1.0) (so 1.0
  is refused), presence_penalty [-2.0, 2.0], n 1..4, seed 0..2**64-1, max_tokens >= 1 with no upper bound.
* n > 1 is accepted for the qwen-plus series (qwen-plus, qwen-plus-latest, its snapshots), not qwen3.5-plus.
* "tools is set" means a non-empty array: ``tools: []`` counts as no tools (so it is fine with stream or n > 1).
  Tools are accepted for every model although the table lists qwen-turbo, qwen-plus and qwen-max; likewise
  presence_penalty is not restricted by model. The tools + stream rule is checked before the n + tools rule.
* Roles: system, user, assistant and tool (the doc's own example sends tool messages with a ``name`` and no
  ``tool_call_id``); ``developer`` (seed 002) is refused. The last message must be user or tool. Assistant
  content may be null; other messages need string content (or an array of content parts).
* ``null`` for an optional parameter means "not given". Empty stop strings are ignored; token-id stops are
  accepted and ignored (words have no ids); any mix of strings, ids and id arrays is refused.
* stream_options must be an object even without stream; include_usage only acts when stream is true.
* Errors are plain JSON for stream requests too. Codes: invalid_api_key (the documented envelope, exactly),
  invalid_parameter_error, missing_required_parameter, model_not_found, invalid_json, invalid_request_body,
  not_found, method_not_allowed; ``param`` names the top-level parameter.
* system_fingerprint is null (the table says null; one sample shows ""). Non-stream tool calls carry no
  ``index``; a message without a call has no ``tool_calls`` key. ``tool_choice`` is honoured when it names a
  tool or says "none"/"required", never validated. A tool call that does not fit in max_tokens is cut:
  finish_reason "length", no call.

The model is a deterministic toy: completion tokens are the whitespace-separated words of a canned answer
chosen from the last user message; prompt tokens are the words of all messages (role included). The same
request with the same ``seed`` gives the same text on the streamed and the non-streamed path.

Usage::

    with DocServer(api_key="sk-test") as srv:
        client = openai.OpenAI(api_key="sk-test", base_url=srv.base_url)

    python -m tests.reference.docserver --port 8000 --api-key sk-test [--fault NAME]...
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# ---------------------------------------------------------------------------------------------------------------
# Faults: each breaks exactly one documented statement of seed 001.
# name -> (what the variant does, the seed-001 statement it breaks)
# ---------------------------------------------------------------------------------------------------------------

_RESP = "Response parameters table"
_REQ = "Request parameters table"
_STREAM = "HTTP API streaming sample output"

FAULTS: dict[str, tuple[str, str]] = {
    # --- a documented response field is missing (non-stream responses) ---
    "missing_id": ("non-stream response has no `id`", f"{_RESP}: id string, system-generated ID for the call"),
    "missing_model": ("non-stream response has no `model`", f"{_RESP}: model string, the model used"),
    "missing_created": ("non-stream response has no `created`", f"{_RESP}: created integer UNIX timestamp"),
    "missing_choices": ("non-stream response has no `choices`", f"{_RESP}: choices array"),
    "missing_usage": ("non-stream response has no `usage`", f"{_RESP}: usage object, token consumption"),
    "missing_message_role": (
        "non-stream choices[i].message has no `role`",
        f"{_RESP}: choices[i].message.role fixed to assistant",
    ),
    "missing_message_content": (
        "non-stream choices[i].message has no `content`",
        f"{_RESP}: choices[i].message.content string, generated text",
    ),
    "missing_finish_reason": (
        "non-stream choices[i] has no `finish_reason`",
        f"{_RESP}: choices[i].finish_reason stop/length",
    ),
    "missing_index": ("non-stream choices[i] has no `index`", f"{_RESP}: choices[i].index integer"),
    "missing_object": (
        "non-stream response has no `object`",
        'Non-streaming sample output: "object": "chat.completion"',
    ),
    # --- implausible values ---
    "created_milliseconds": (
        "`created` is in milliseconds",
        f"{_RESP}: created is a UNIX timestamp in seconds",
    ),
    "created_zero": ("`created` is 0 (1970)", f"{_RESP}: created is when the result was generated"),
    "created_1e6": ("`created` is 1000000 (Jan 1970)", f"{_RESP}: created is when the result was generated"),
    "usage_total_mismatch": (
        "usage.total_tokens is the sum plus one",
        f"{_RESP}: usage.total_tokens is the sum of prompt_tokens and completion_tokens",
    ),
    "usage_negative": (
        "usage.completion_tokens is negative (total still the sum)",
        f"{_RESP}: usage.completion_tokens is the number of tokens generated",
    ),
    "finish_reason_done": (
        'finish_reason is "done" instead of "stop"',
        f"{_RESP}: choices[i].finish_reason is null, stop or length",
    ),
    "role_bot": ('message.role is "bot"', f"{_RESP}: choices[i].message.role fixed to assistant"),
    "index_off_by_one": (
        "choices[i].index starts at 1 (non-stream)",
        f"{_RESP}: choices[i].index sequence number of the result, default 0",
    ),
    "model_wrong_echo": (
        'response `model` is "gpt-4" whatever was asked',
        f"{_RESP}: model, the model used",
    ),
    # --- a documented request rule is not enforced ---
    "accept_temperature_2": ("temperature >= 2 accepted", f"{_REQ}: temperature valid range [0, 2)"),
    "accept_top_p_0": ("top_p 0 accepted", f"{_REQ}: top_p valid range (0, 1.0)"),
    "accept_presence_penalty_out_of_range": (
        "presence_penalty outside [-2, 2] (e.g. 2.5) accepted",
        f"{_REQ}: presence_penalty valid range [-2.0, 2.0]",
    ),
    "accept_n_5": ("n > 4 (e.g. 5) accepted and generated", f"{_REQ}: n valid range 1 to 4"),
    "accept_n_other_model": (
        "n > 1 accepted for models other than qwen-plus",
        f"{_REQ}: n supported only for the qwen-plus model",
    ),
    "accept_n_with_tools": ("n > 1 accepted together with tools", f"{_REQ}: n must be 1 when tools is set"),
    "accept_system_not_first": (
        "a system message after messages[0] accepted",
        f"{_REQ}: the system role can only appear in messages[0]",
    ),
    "accept_last_assistant": (
        "a conversation ending with an assistant message accepted",
        f"{_REQ}: the last element must have the user role",
    ),
    "accept_long_tool_name": (
        "tool function names longer than 64 characters accepted",
        f"{_REQ}: tools name max 64 characters",
    ),
    "accept_mixed_stop": (
        'a stop array mixing strings and token ids (["Hello", 104307]) accepted',
        f"{_REQ}: do not mix token IDs and strings in the same stop array",
    ),
    "accept_negative_seed": ("seed -1 accepted", f"{_REQ}: seed supports unsigned 64-bit integers"),
    "accept_missing_model": ("a request without `model` accepted", f"{_REQ}: model required"),
    "accept_unknown_model": (
        "a model not in the Supported models lists accepted",
        f"{_REQ}: model, see Supported models",
    ),
    "accept_empty_messages": ("`messages: []` accepted", f"{_REQ}: messages required, conversation history"),
    "accept_unknown_role": (
        'an unknown message role (e.g. "wizard") accepted',
        f"{_REQ}: valid roles system, user, assistant",
    ),
    "accept_tools_with_stream": (
        "tools together with stream=true accepted (tools ignored)",
        f"{_REQ}: tools cannot be used with stream=True",
    ),
    "accept_max_tokens_zero": ("max_tokens 0 accepted", f"{_REQ}: max_tokens, maximum number of tokens to generate"),
    "accept_wrong_key": (
        "any API key (or none) accepted",
        "Error codes: 401 - Incorrect API key provided",
    ),
    # --- a documented parameter ignored on one path only ---
    "stop_ignored_stream": ("stop ignored on the stream path only", f"{_REQ}: stop"),
    "stop_ignored_nonstream": ("stop ignored on the non-stream path only", f"{_REQ}: stop"),
    "max_tokens_ignored_stream": ("max_tokens ignored on the stream path only", f"{_REQ}: max_tokens"),
    "max_tokens_ignored_nonstream": ("max_tokens ignored on the non-stream path only", f"{_REQ}: max_tokens"),
    "n_ignored_stream": ("n ignored on the stream path (one choice only)", f"{_REQ}: n number of responses"),
    "n_ignored_nonstream": ("n ignored on the non-stream path (one choice only)", f"{_REQ}: n number of responses"),
    "include_usage_ignored": (
        "stream_options.include_usage ignored: no usage chunk",
        f"{_REQ}: stream_options include_usage includes token usage in the streaming output",
    ),
    # --- stream shape ---
    "stream_no_done": ("the stream ends without `data: [DONE]`", f"{_STREAM}: ends with data: [DONE]"),
    "stream_no_role": (
        'the first chunk has no delta.role "assistant"',
        f'{_STREAM}: first chunk delta {{"content":"","role":"assistant"}}',
    ),
    "stream_usage_without_include": (
        "a usage chunk is sent although include_usage was not requested",
        f"{_REQ}: stream_options, set include_usage to include token usage",
    ),
    "stream_usage_every_chunk": (
        "every chunk carries a usage object instead of usage null",
        f'{_STREAM}: chunks carry "usage":null',
    ),
    "stream_id_changes": (
        "one content chunk has a different id",
        f"{_STREAM}: every chunk has the same id",
    ),
    "stream_no_finish_reason": (
        "finish_reason is never sent (finish chunk has null)",
        f'{_STREAM}: last chunk "finish_reason":"stop"',
    ),
    "stream_wrong_object": (
        'chunks have object "chat.completion"',
        f'{_STREAM}: "object":"chat.completion.chunk"',
    ),
    # --- errors ---
    "auth_403": ("wrong API key answered with 403", "Error codes: 401 - Incorrect API key provided"),
    "error_text_plain": (
        "error bodies are sent with Content-Type text/plain (body still JSON)",
        "Error response: a JSON body with code and message",
    ),
    "error_not_json": ("error bodies are not JSON", "Error response: a JSON body with code and message"),
    "error_no_code": ("error envelope has no `code`", "Error response: the response includes code and message"),
    "error_no_message": (
        "error envelope has no `message`",
        "Error response: the response includes code and message",
    ),
    "bad_param_500": (
        "an invalid parameter is answered 500 instead of 400",
        "Error codes: 400 - Invalid Request Error",
    ),
    # --- tools ---
    "tool_args_not_json": (
        "tool_calls[].function.arguments is not JSON text",
        "Tool calling example: json.loads(tool_calls[0].function.arguments)",
    ),
    "tool_name_not_offered": (
        "tool_calls[].function.name is not one of the offered tools",
        f"{_REQ}: tools defines the tools the model can call",
    ),
}

# ---------------------------------------------------------------------------------------------------------------
# Supported models (seed 001, all regions)
# ---------------------------------------------------------------------------------------------------------------

_EXACT_MODELS = frozenset(
    [
        "qwen3-max",
        "qwen3-max-preview",
        "qwen-max",
        "qwen-max-latest",
        "qwen3.5-plus",
        "qwen-plus",
        "qwen-plus-latest",
        "qwen-flash",
        "qwen-turbo",
        "qwen-turbo-latest",
        "qwen3-coder-plus",
        "qwen3-coder-flash",
        "qwen-coder-plus",
        "qwen-coder-plus-latest",
        "qwen-coder-plus-2024-11-06",
        "qwen-coder-turbo",
        "qwen-coder-turbo-latest",
        "qwen-coder-turbo-2024-09-19",
        "qwq-plus",
        "qwq-plus-latest",
        "qwq-plus-2025-03-05",
        "qwen-math-plus",
        "qwen-math-plus-latest",
        "qwen-math-turbo",
        "qwen-math-turbo-latest",
        "qwen-math-turbo-2024-09-19",
        "qwen-plus-us",
        "qwen-flash-us",
        "qwen-flash-2025-07-28-us",
        "qwen3.5-397b-a17b",
        "qwen3-next-80b-a3b-thinking",
        "qwen3-next-80b-a3b-instruct",
        "qwen3-235b-a22b-thinking-2507",
        "qwen3-235b-a22b-instruct-2507",
        "qwen3-30b-a3b-thinking-2507",
        "qwen3-30b-a3b-instruct-2507",
        "qwen3-235b-a22b",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "qwen3-14b",
        "qwen3-8b",
        "qwen3-4b",
        "qwen3-1.7b",
        "qwen3-0.6b",
        "qwen2.5-14b-instruct-1m",
        "qwen2.5-7b-instruct-1m",
        "qwen2.5-72b-instruct",
        "qwen2.5-32b-instruct",
        "qwen2.5-14b-instruct",
        "qwen2.5-7b-instruct",
        "qwen2.5-3b-instruct",
        "qwen2.5-1.5b-instruct",
        "qwen2.5-0.5b-instruct",
    ]
)

# "<series> ... <first snapshot> and later snapshots": (prefix, suffix, earliest date over all regions)
_SNAPSHOT_SERIES: tuple[tuple[str, str, datetime.date], ...] = (
    ("qwen3-max-", "", datetime.date(2025, 9, 23)),
    ("qwen-max-", "", datetime.date(2024, 9, 19)),
    ("qwen3.5-plus-", "", datetime.date(2026, 2, 15)),
    ("qwen-plus-", "", datetime.date(2024, 12, 20)),
    ("qwen-plus-", "-us", datetime.date(2025, 12, 1)),
    ("qwen-flash-", "", datetime.date(2025, 7, 28)),
    ("qwen-turbo-", "", datetime.date(2024, 11, 1)),
    ("qwen3-coder-plus-", "", datetime.date(2025, 7, 22)),
    ("qwen3-coder-flash-", "", datetime.date(2025, 7, 28)),
    ("qwen-math-plus-", "", datetime.date(2024, 8, 16)),
)

_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})$")


def is_supported_model(model: str) -> bool:
    """True for a model id listed under "Supported models" (or a later snapshot of a listed series)."""
    if model in _EXACT_MODELS:
        return True
    for prefix, suffix, first in _SNAPSHOT_SERIES:
        if not (model.startswith(prefix) and model.endswith(suffix)):
            continue
        middle = model[len(prefix) : len(model) - len(suffix)] if suffix else model[len(prefix) :]
        if not _DATE_RE.match(middle):
            continue
        try:
            day = datetime.date.fromisoformat(middle)
        except ValueError:
            continue
        if day >= first:
            return True
    return False


def supports_n(model: str) -> bool:
    """n > 1 is "supported only for the qwen-plus model" (read as the qwen-plus series: latest and snapshots)."""
    return model == "qwen-plus" or model.startswith("qwen-plus-")


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as HTTP status + {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        param: str | None = None,
        kind: str = "param",
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind  # "param" | "json" | "auth" | "route"
        self.type = type_


def _bad(param: str, message: str, code: str = "invalid_parameter_error") -> ApiError:
    return ApiError(400, message, code, param=param)


AUTH_ERROR_MESSAGE = "Incorrect API key provided. "

# ---------------------------------------------------------------------------------------------------------------
# Request validation (the request-parameter table of seed 001)
# ---------------------------------------------------------------------------------------------------------------

_TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_NAME_ANY_LENGTH_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ROLES = ("system", "user", "assistant", "tool")
_U64_MAX = 2**64 - 1


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    n: int = 1
    max_tokens: int | None = None
    seed: int | None = None
    stream: bool = False
    stop_strings: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    include_usage: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float)) and not isinstance(value, bool) and math.isfinite(value)


def _content_ok(content: Any) -> bool:
    if isinstance(content, str):
        return True
    if isinstance(content, list):
        return all(isinstance(part, dict) and isinstance(part.get("type"), str) for part in content)
    return False


def validate(body: Any, faults: frozenset[str]) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", "invalid_request_body", kind="json")

    # model
    model = body.get("model")
    if model is None:
        if "accept_missing_model" not in faults:
            raise _bad("model", "Missing required parameter: 'model'.", "missing_required_parameter")
        model = "qwen-plus"
    if not isinstance(model, str):
        raise _bad("model", "'model' must be a string.")
    if not is_supported_model(model) and "accept_unknown_model" not in faults:
        raise _bad("model", f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")

    # messages
    messages = body.get("messages")
    if messages is None:
        raise _bad("messages", "Missing required parameter: 'messages'.", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad("messages", "'messages' must be an array.")
    if not messages and "accept_empty_messages" not in faults:
        raise _bad("messages", "'messages' must not be empty.")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _bad("messages", f"messages[{i}] must be an object with role and content.")
        role = msg.get("role")
        if role not in _ROLES and not ("accept_unknown_role" in faults and isinstance(role, str)):
            raise _bad("messages", f"messages[{i}].role must be one of system, user, assistant, tool.")
        content = msg.get("content")
        if role == "assistant":
            if content is not None and not _content_ok(content):
                raise _bad("messages", f"messages[{i}].content must be a string.")
        elif not _content_ok(content):
            raise _bad("messages", f"messages[{i}].content is required and must be a string.")
        if role == "system" and i != 0 and "accept_system_not_first" not in faults:
            raise _bad("messages", "The system role can only appear in messages[0].")
    if messages:
        last_role = messages[-1].get("role")
        if last_role in ("system", "assistant") and "accept_last_assistant" not in faults:
            raise _bad("messages", "The last message must have the user role.")

    # temperature [0, 2)
    if body.get("temperature") is not None:
        t = body["temperature"]
        upper_ok = "accept_temperature_2" in faults or (_is_number(t) and t < 2)
        if not (_is_number(t) and t >= 0 and upper_ok):
            raise _bad("temperature", "temperature must be in [0, 2).")

    # top_p (0, 1.0)
    if body.get("top_p") is not None:
        p = body["top_p"]
        lower_ok = _is_number(p) and (p > 0 or ("accept_top_p_0" in faults and p >= 0))
        if not (lower_ok and p < 1.0):
            raise _bad("top_p", "top_p must be in (0, 1.0).")

    # presence_penalty [-2.0, 2.0]
    if body.get("presence_penalty") is not None:
        pp = body["presence_penalty"]
        if not _is_number(pp) or (not -2.0 <= pp <= 2.0 and "accept_presence_penalty_out_of_range" not in faults):
            raise _bad("presence_penalty", "presence_penalty must be in [-2.0, 2.0].")

    # stream
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream", "stream must be a boolean.")

    # tools
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise _bad("tools", "tools must be an array.")
    name_re = _TOOL_NAME_ANY_LENGTH_RE if "accept_long_tool_name" in faults else _TOOL_NAME_RE
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _bad("tools", f'tools[{i}].type must be "function".')
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _bad("tools", f"tools[{i}].function must be an object.")
        name = fn.get("name")
        if not isinstance(name, str) or not name_re.match(name):
            raise _bad("tools", f"tools[{i}].function.name must match ^[A-Za-z0-9_-]{{1,64}}$.")
        if fn.get("description") is not None and not isinstance(fn["description"], str):
            raise _bad("tools", f"tools[{i}].function.description must be a string.")
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise _bad("tools", f"tools[{i}].function.parameters must be a JSON Schema object.")
    if tools and stream and "accept_tools_with_stream" not in faults:
        raise _bad("tools", "tools cannot be used with stream=True.")

    # n: 1..4, qwen-plus only, 1 with tools
    n = body.get("n")
    if n is None:
        n = 1
    if not _is_int(n) or n < 1 or (n > 4 and "accept_n_5" not in faults):
        raise _bad("n", "n must be an integer in [1, 4].")
    if n > 1 and not supports_n(model) and "accept_n_other_model" not in faults:
        raise _bad("n", "n > 1 is supported only for the qwen-plus model.")
    if n > 1 and tools and "accept_n_with_tools" not in faults:
        raise _bad("n", "n must be 1 when tools is set.")
    n = min(n, 64)

    # max_tokens >= 1 (the per-model limit is not in the documentation)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        lowest = 0 if "accept_max_tokens_zero" in faults else 1
        if not _is_int(max_tokens) or max_tokens < lowest:
            raise _bad("max_tokens", "max_tokens must be a positive integer.")

    # seed: unsigned 64-bit
    seed = body.get("seed")
    if seed is not None:
        lowest = -(2**63) if "accept_negative_seed" in faults else 0
        if not _is_int(seed) or not lowest <= seed <= _U64_MAX:
            raise _bad("seed", "seed must be an unsigned 64-bit integer.")

    # stop: string, or an array of strings / token ids / arrays of token ids, not mixed
    stop = body.get("stop")
    stop_strings: list[str] = []
    if stop is not None:
        if isinstance(stop, str):
            stop_strings = [stop]
        elif isinstance(stop, list):
            kinds = set()
            for item in stop:
                if isinstance(item, str):
                    kinds.add("str")
                elif _is_int(item):
                    kinds.add("int")
                elif isinstance(item, list) and all(_is_int(x) for x in item):
                    kinds.add("ids")
                else:
                    raise _bad("stop", "stop elements must be strings, token ids or arrays of token ids.")
            if len(kinds) > 1 and "accept_mixed_stop" not in faults:
                raise _bad("stop", "Do not mix token IDs and strings in the same stop array.")
            stop_strings = [s for s in stop if isinstance(s, str)]
        else:
            raise _bad("stop", "stop must be a string or an array.")
    stop_strings = [s for s in stop_strings if s]

    # stream_options: object; include_usage takes effect only when stream is true
    include_usage = False
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise _bad("stream_options", "stream_options must be an object.")
        iu = opts.get("include_usage")
        if iu is not None and not isinstance(iu, bool):
            raise _bad("stream_options", "stream_options.include_usage must be a boolean.")
        include_usage = bool(iu) and stream

    return ChatRequest(
        model=model,
        messages=messages,
        n=n,
        max_tokens=max_tokens,
        seed=seed,
        stream=stream,
        stop_strings=stop_strings,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        include_usage=include_usage,
    )


# ---------------------------------------------------------------------------------------------------------------
# The toy model
# ---------------------------------------------------------------------------------------------------------------

_IDENTITY = (
    "I am a large language model from Alibaba Cloud. My name is Qwen.",
    "I am Qwen, a large language model created by Alibaba Cloud. How can I help you today?",
    "My name is Qwen. I am a large language model developed by Alibaba Cloud.",
)

_DEFAULT_SENTENCES = (
    "Here is a short answer from a small reference model.",
    "It builds every reply from a fixed set of sentences, so the words do not depend on the meaning of your question.",
    "Each word counts as one token, and the same request with the same seed always gives the same text.",
    "The reply is long enough to be cut by a small token limit or by a stop string.",
    "If you need a longer text, ask for a long story.",
)

_STORY = (
    "Once upon a time, in a small village between two green hills, there lived a young clockmaker named {hero}."
    " Every morning {hero} opened the wooden shutters of the workshop, wound the great brass clock above the door,"
    " and listened to the bells of the old tower answer from across the square. The villagers said that no clock"
    " ever ran late once {hero} had touched it, and travellers came from distant towns to have their watches"
    " mended.",
    "One autumn evening a stranger arrived in a coat the colour of rain. He carried a box of dark wood and set it"
    " on the counter without a word. Inside lay a clock with no hands and a single silver key. The stranger"
    " explained that the clock had stopped on the night his city lost its memory, and that nobody there could"
    " remember what day it was, what they had planned, or whom they had promised to meet.",
    "{hero} worked through the night. The gears were finer than hair, and some of them turned backwards, as if"
    " the clock wanted to return to a moment it had lost. Near dawn {hero} understood that the clock did not"
    " measure hours at all. It measured the promises people kept. A promise kept moved it forward, and a promise"
    " forgotten made it stop.",
    "So {hero} travelled with the stranger to the silent city. They knocked on doors, listened to stories, and"
    " helped the people remember small things first: a song for a child, a letter to a friend, bread left for a"
    " neighbour. With every kept promise the clock ticked once more. On the seventh day its hands appeared,"
    " bright as morning, and the bells of the city rang again. {hero} went home to the village between the hills,"
    " and from that day on the workshop sign read: clocks mended, promises kept.",
)
_HEROES = ("Mira", "Tomas", "Lina", "Arun")

_SAY_RE = re.compile(r"(?:say|reply with|respond with|repeat|answer with)\s*:?\s*[\"“'](.+?)[\"”']", re.I | re.S)
_COUNT_RE = re.compile(r"count(?:ing)?\b.*?\bto\s+(\d{1,4})", re.I | re.S)
_CITY_RE = re.compile(r"\b(?:in|at|for)\s+([A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+)*)")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Words of every message: its role plus its content (plus the name and arguments of any tool calls)."""
    total = 0
    for msg in messages:
        total += len(str(msg.get("role", "")).split())
        total += len(_text_of(msg.get("content")).split())
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                total += len(str(fn.get("name", "")).split()) + len(str(fn.get("arguments", "")).split())
    return total


def _variant(seed: int | None, index: int, count: int) -> int:
    if seed is None:
        return index % count
    digest = hashlib.sha256(str(seed).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + index) % count


def canned_answer(messages: list[dict[str, Any]], seed: int | None, index: int) -> str:
    """The full answer before max_tokens and stop are applied."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        result = _text_of(last.get("content")).strip() or "no output"
        name = last.get("name")
        source = f"the {name} tool" if isinstance(name, str) and name else "the tool"
        return f"According to {source}: {result} Let me know if there is anything else I can help you with."
    users = [m for m in messages if m.get("role") == "user"]
    prompt = _text_of(users[-1].get("content")) if users else _text_of(last.get("content"))
    lowered = prompt.lower()
    if match := _SAY_RE.search(prompt):
        return match.group(1)
    if match := _COUNT_RE.search(prompt):
        upper = max(1, min(int(match.group(1)), 500))
        return ", ".join(str(i) for i in range(1, upper + 1)) + "."
    if any(word in lowered for word in ("story", "long", "essay", "write")):
        hero = _HEROES[_variant(seed, index, len(_HEROES))]
        return "\n\n".join(p.format(hero=hero) for p in _STORY)
    if any(word in lowered for word in ("who are you", "your name", "introduce yourself")):
        return _IDENTITY[_variant(seed, index, len(_IDENTITY))]
    first = _variant(seed, index, len(_DEFAULT_SENTENCES))
    return " ".join(_DEFAULT_SENTENCES[first:] + _DEFAULT_SENTENCES[:first])


def _tokens(text: str) -> list[str]:
    """Whitespace-separated words, each carrying the whitespace that precedes it (so "".join gives the text)."""
    return re.findall(r"\s*\S+", text)


def cut(text: str, max_tokens: int | None, stop_strings: list[str]) -> tuple[list[str], str]:
    """Apply max_tokens and stop strings; return (the emitted token pieces, finish_reason)."""
    tokens = _tokens(text)
    finish = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        finish = "length"
    produced = "".join(tokens)
    hits = [pos for s in stop_strings if (pos := produced.find(s)) >= 0]
    if hits:
        keep = min(hits)
        finish = "stop"
        pieces: list[str] = []
        used = 0
        for tok in tokens:
            if used >= keep:
                break
            pieces.append(tok[: keep - used])
            used += len(tok)
        return [p for p in pieces if p], finish
    return tokens, finish


@dataclass
class Choice:
    index: int
    pieces: list[str]
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None
    completion_tokens: int = 0

    @property
    def content(self) -> str:
        return "".join(self.pieces)


def _tool_name(tool: dict[str, Any]) -> str:
    return tool["function"]["name"]


def _pick_tool(req: ChatRequest) -> dict[str, Any] | None:
    """The tool to call for the last user message, or None to answer in text."""
    if not req.tools or not req.messages or req.messages[-1].get("role") != "user":
        return None
    choice = req.tool_choice
    if choice == "none":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        for tool in req.tools:
            if _tool_name(tool) == wanted:
                return tool
    text = _text_of(req.messages[-1].get("content")).lower()

    def described(tool: dict[str, Any]) -> str:
        return (_tool_name(tool) + " " + str(tool["function"].get("description") or "")).lower()

    for keyword in ("weather", "time"):
        if keyword in text:
            for tool in req.tools:
                if keyword in described(tool):
                    return tool
    if len(req.tools) == 1 or choice == "required":
        return req.tools[0]
    for tool in req.tools:
        words = [w for w in re.split(r"[_\-]", _tool_name(tool).lower()) if len(w) > 3]
        if any(w in text for w in words):
            return tool
    return None


def _example_value(name: str, schema: Any, city: str) -> Any:
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if any(k in name.lower() for k in ("location", "city", "place", "region", "country")):
        return city
    return "example"


def tool_arguments(tool: dict[str, Any], user_text: str) -> str:
    params = tool["function"].get("parameters") or {}
    props = params.get("properties") if isinstance(params, dict) else None
    if not isinstance(props, dict) or not props:
        return "{}"
    match = _CITY_RE.search(user_text)
    city = match.group(1) if match else "Hangzhou"
    return json.dumps({name: _example_value(name, sub, city) for name, sub in props.items()}, ensure_ascii=False)


def generate(req: ChatRequest, faults: frozenset[str], streaming: bool) -> list[Choice]:
    """All choices of one request, with the per-path fault variants applied."""
    stop_strings = req.stop_strings
    if ("stop_ignored_stream" in faults and streaming) or ("stop_ignored_nonstream" in faults and not streaming):
        stop_strings = []
    max_tokens = req.max_tokens
    if ("max_tokens_ignored_stream" in faults and streaming) or (
        "max_tokens_ignored_nonstream" in faults and not streaming
    ):
        max_tokens = None
    n = req.n
    if ("n_ignored_stream" in faults and streaming) or ("n_ignored_nonstream" in faults and not streaming):
        n = 1

    choices: list[Choice] = []
    # Tools never reach the stream path (refused there), except under accept_tools_with_stream, which ignores them.
    tool = None if streaming else _pick_tool(req)
    for index in range(n):
        if tool is not None:
            name = _tool_name(tool)
            user_text = _text_of(req.messages[-1].get("content"))
            args = tool_arguments(tool, user_text)
            if "tool_args_not_json" in faults:
                args = args.replace("{", "(").replace("}", ")").replace('"', "") or "location=Hangzhou"
            if "tool_name_not_offered" in faults:
                name = "not_offered_" + name[:40]
            call = {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            tokens = len(name.split()) + len(args.split())
            if max_tokens is not None and tokens > max_tokens:
                # the call would not fit: the output is cut before it is complete, and no call is returned
                choices.append(Choice(index, [], "length", None, max_tokens))
            else:
                choices.append(Choice(index, [], "tool_calls", [call], tokens))
            continue
        text = canned_answer(req.messages, req.seed, index)
        pieces, finish = cut(text, max_tokens, stop_strings)
        choices.append(Choice(index, pieces, finish, None, len(pieces)))
    return choices


def usage_of(req: ChatRequest, choices: list[Choice], faults: frozenset[str]) -> dict[str, int]:
    prompt = count_prompt_tokens(req.messages)
    completion = sum(c.completion_tokens for c in choices)
    if "usage_negative" in faults:
        completion = -completion - 1
    total = prompt + completion
    if "usage_total_mismatch" in faults:
        total += 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _created(faults: frozenset[str]) -> int:
    if "created_milliseconds" in faults:
        return int(time.time() * 1000)
    if "created_zero" in faults:
        return 0
    if "created_1e6" in faults:
        return 1_000_000
    return int(time.time())


def completion_body(req: ChatRequest, faults: frozenset[str]) -> dict[str, Any]:
    choices = generate(req, faults, streaming=False)
    out_choices = []
    for c in choices:
        message: dict[str, Any] = {"role": "bot" if "role_bot" in faults else "assistant", "content": c.content}
        if c.tool_calls is not None:
            message["tool_calls"] = c.tool_calls
        if "missing_message_role" in faults:
            del message["role"]
        if "missing_message_content" in faults:
            del message["content"]
        finish = "done" if (c.finish_reason == "stop" and "finish_reason_done" in faults) else c.finish_reason
        item: dict[str, Any] = {
            "index": c.index + (1 if "index_off_by_one" in faults else 0),
            "message": message,
            "finish_reason": finish,
            "logprobs": None,
        }
        if "missing_finish_reason" in faults:
            del item["finish_reason"]
        if "missing_index" in faults:
            del item["index"]
        out_choices.append(item)
    body: dict[str, Any] = {
        "id": "chatcmpl-" + secrets.token_hex(16),
        "object": "chat.completion",
        "created": _created(faults),
        "model": "gpt-4" if "model_wrong_echo" in faults else req.model,
        "system_fingerprint": None,
        "choices": out_choices,
        "usage": usage_of(req, choices, faults),
    }
    for key in ("id", "object", "created", "model", "choices", "usage"):
        if f"missing_{key}" in faults:
            del body[key]
    return body


def stream_events(req: ChatRequest, faults: frozenset[str]) -> list[str]:
    """The `data:` payloads of one streamed answer, in order (without the framing)."""
    choices = generate(req, faults, streaming=True)
    chat_id = "chatcmpl-" + secrets.token_hex(16)
    created = _created(faults)
    model = "gpt-4" if "model_wrong_echo" in faults else req.model
    usage = usage_of(req, choices, faults)
    obj = "chat.completion" if "stream_wrong_object" in faults else "chat.completion.chunk"

    def chunk(choice_list: list[dict[str, Any]], usage_value: Any = None) -> dict[str, Any]:
        if "stream_usage_every_chunk" in faults and usage_value is None:
            usage_value = usage
        return {
            "id": chat_id,
            "object": obj,
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choice_list,
            "usage": usage_value,
        }

    def choice_chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return chunk([{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}])

    per_choice: list[list[dict[str, Any]]] = []
    for c in choices:
        first_delta: dict[str, Any] = {"content": ""}
        if "stream_no_role" not in faults:
            first_delta["role"] = "assistant"
        seq = [choice_chunk(c.index, first_delta, None)]
        seq.extend(choice_chunk(c.index, {"content": piece}, None) for piece in c.pieces)
        finish = None if "stream_no_finish_reason" in faults else c.finish_reason
        seq.append(choice_chunk(c.index, {"content": ""}, finish))
        per_choice.append(seq)

    ordered: list[dict[str, Any]] = []
    for rnd in range(max(len(seq) for seq in per_choice)):
        ordered.extend(seq[rnd] for seq in per_choice if rnd < len(seq))
    if "stream_id_changes" in faults and len(ordered) > 1:
        ordered[1]["id"] = "chatcmpl-" + secrets.token_hex(16)
    send_usage = req.include_usage and "include_usage_ignored" not in faults
    if "stream_usage_without_include" in faults and not req.include_usage:
        send_usage = True
    if send_usage:
        ordered.append(chunk([], usage))
    events = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in ordered]
    if "stream_no_done" not in faults:
        events.append("[DONE]")
    return events


# ---------------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------------

CHAT_PATHS = frozenset({"/compatible-mode/v1/chat/completions", "/v1/chat/completions"})
_MAX_BODY = 16 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DocServer/1.0"
    sys_version = ""
    timeout = 120
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("docserver: " + (format % args) + "\n")

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without TCP_NODELAY, Nagle plus the client's delayed
        # ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    # every method goes through one place
    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                size += length
                if size > _MAX_BODY:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(length))
                self.rfile.readline(1024)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, err: ApiError, extra: dict[str, str] | None = None) -> None:
        faults = self.server.faults
        status = err.status
        if err.kind == "auth" and "auth_403" in faults:
            status = 403
        if err.kind == "param" and "bad_param_500" in faults:
            status = 500
        envelope: dict[str, Any] = {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
        if "error_no_code" in faults:
            del envelope["code"]
        if "error_no_message" in faults:
            del envelope["message"]
        body = json.dumps({"error": envelope}, ensure_ascii=False).encode()
        if "error_not_json" in faults:
            body = f"Error {status}: {err.message}".encode()
        content_type = "text/plain; charset=utf-8" if "error_text_plain" in faults else "application/json"
        self._send(status, body, content_type, extra)

    def _authorized(self) -> bool:
        if "accept_wrong_key" in self.server.faults:
            return True
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.server.api_key

    def _handle(self, method: str) -> None:
        try:
            self._dispatch(method)
        except OSError:
            self.close_connection = True
        except Exception as exc:  # a bug here must still answer with the documented envelope
            self.close_connection = True
            err = ApiError(500, f"Internal error: {exc!r}", "internal_error", kind="internal", type_="server_error")
            with contextlib.suppress(OSError):
                self._send_error(err)

    def _dispatch(self, method: str) -> None:
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send_error(ApiError(400, "Could not read the request body.", "invalid_request_body", kind="json"))
            return
        path = urlsplit(self.path).path
        if path not in CHAT_PATHS:
            self._send_error(ApiError(404, f"Not found: {method} {path}", "not_found", kind="route"))
            return
        if method != "POST":
            err = ApiError(405, f"Method {method} not allowed; use POST.", "method_not_allowed", kind="route")
            self._send_error(err, {"Allow": "POST"})
            return
        if not self._authorized():
            self._send_error(ApiError(401, AUTH_ERROR_MESSAGE, "invalid_api_key", kind="auth"))
            return
        try:
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError) as exc:
                raise ApiError(400, f"The request body is not valid JSON: {exc}", "invalid_json", kind="json") from None
            req = validate(body, self.server.faults)
        except ApiError as err:
            self._send_error(err)
            return
        if req.stream:
            self._stream(req)
        else:
            payload = json.dumps(completion_body(req, self.server.faults), ensure_ascii=False).encode()
            self._send(200, payload, "application/json")

    def _stream(self, req: ChatRequest) -> None:
        events = stream_events(req, self.server.faults)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                data = f"data: {event}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api_key: str, faults: frozenset[str], verbose: bool) -> None:
        self.api_key = api_key
        self.faults = faults
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class DocServer:
    """The reference server, started in a background thread.

    >>> with DocServer(api_key="sk-test", faults=["missing_id"]) as srv:
    ...     srv.base_url  # doctest: +SKIP
    'http://127.0.0.1:40123/compatible-mode/v1'
    """

    def __init__(
        self,
        api_key: str,
        faults: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.faults = frozenset(faults)
        unknown = sorted(self.faults - FAULTS.keys())
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        self.api_key = api_key
        self.host = host
        self.port = port
        self.verbose = verbose
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/compatible-mode/v1"

    def start(self) -> DocServer:
        self._httpd = _HTTPServer((self.host, self.port), self.api_key, self.faults, self.verbose)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="docserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> DocServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reference.docserver",
        description="Reference DashScope compatible-mode chat server written from seed 001 only.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default="sk-test", help="the one accepted key (default: sk-test)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME", help="inject a fault (repeatable)")
    parser.add_argument("--list-faults", action="store_true", help="print the fault names and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.list_faults:
        for name, (description, statement) in FAULTS.items():
            print(f"{name}: {description}  [breaks: {statement}]")
        return 0
    try:
        server = DocServer(args.api_key, args.fault, host=args.host, port=args.port, verbose=args.verbose)
    except ValueError as exc:
        parser.error(str(exc))
    server.start()
    print(f"docserver listening on {server.base_url} faults={sorted(server.faults) or 'none'}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

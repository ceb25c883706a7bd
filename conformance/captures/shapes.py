"""What a parsed JSON document is (request, completion, chunk, error envelope), by its shape.

Captures rarely say what they contain; these predicates are shared by the JSON, SSE and HAR
readers so one document is classified the same way whichever file it came in.
"""

from __future__ import annotations

from typing import Any

NOTE_SSE_ASSUMED = "raw SSE transcript: request unknown, HTTP status 200 assumed"
NOTE_ERROR_BODY = "SSE transcript holding an error envelope: request and HTTP status unknown"
NOTE_STATUS_UNKNOWN = "bare JSON document: request and HTTP status unknown"
NOTE_STATUS_ASSUMED = "bare completion document: request unknown, HTTP status 200 assumed"
NOTE_REQUEST_ONLY = "request only: no response to check"
NOTE_SINGLE_CHUNK = "single stream chunk: checked against the chunk schema only"
"""Marker note: the validate engine checks such an Exchange's one event with the chunk schema only
(stream-level rules such as done-last cannot apply to a lone chunk)."""


def is_error_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and "error" in doc and "choices" not in doc


def is_chunk(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("object") == "chat.completion.chunk"


REQUEST_PARAMS = frozenset({
    "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "stream", "stream_options",
    "tools", "tool_choice", "parallel_tool_calls", "n", "seed", "stop", "presence_penalty",
    "frequency_penalty", "repetition_penalty", "response_format", "enable_thinking", "thinking_budget",
    "enable_search", "search_options", "logprobs", "top_logprobs", "modalities", "audio",
    "translation_options", "vl_high_resolution_images", "user", "logit_bias",
})
"""Request parameters (seed 001 and OpenAI): with `model`, they make a request even without messages."""


def is_request(doc: Any) -> bool:
    """A chat request body: `messages`, or a `model` with request parameters (a request that lost its
    messages is still a request, and breaks request.messages-nonempty)."""
    if not isinstance(doc, dict) or "choices" in doc or "object" in doc or "error" in doc:
        return False
    return "messages" in doc or ("model" in doc and not REQUEST_PARAMS.isdisjoint(doc))


def is_completion(doc: Any) -> bool:
    """A (possibly broken) chat.completion body: choices, its object label, a chatcmpl- id, or the
    id/model/created/usage/system_fingerprint members that only completions carry together."""
    if not isinstance(doc, dict):
        return False
    obj, ident = doc.get("object"), doc.get("id")
    return ("choices" in doc or (isinstance(obj, str) and obj.startswith("chat.completion"))
            or (isinstance(ident, str) and ident.startswith("chatcmpl"))
            or "system_fingerprint" in doc or ("model" in doc and ("created" in doc or "usage" in doc)))


def is_record(doc: Any) -> bool:
    """A chatconf recording line / pair document: {"request": ..., "response": {...}}. A pair whose
    response is not an object, or a line labelled "recording/..." without one, is still an attempt at
    one: the recording reader refuses it with the precise reason instead of it being misread."""
    if not isinstance(doc, dict):
        return False
    label = doc.get("chatconf")
    return (isinstance(doc.get("response"), dict) or ("request" in doc and "response" in doc)
            or (isinstance(label, str) and label.startswith("recording/")))


def is_har(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("log"), dict)


def classify(doc: Any) -> str | None:
    """The capture shape of one parsed document: har, record, request, chunk, error, completion, or
    None when it is none of them (a JSON document that is not chat traffic)."""
    for name, test in (("har", is_har), ("record", is_record), ("request", is_request), ("chunk", is_chunk),
                       ("error", is_error_envelope), ("completion", is_completion)):
        if test(doc):
            return name
    return None


LOAD_SAMPLE_KEYS = frozenset({"region", "kind", "worker", "ok", "e2e_ms"})


def non_capture(doc: Any) -> str | None:
    """What chatconf's own output files are (they sit next to recordings in a report directory), so
    `validate reports/` skips them instead of misreading them; None for anything else."""
    if not isinstance(doc, dict):
        return None
    if doc.get("tool") == "chatconf":
        if "checks" in doc:
            return "chatconf run summary"
        if "regions" in doc:
            return "chatconf load summary"
        return "chatconf report"
    if doc.keys() >= LOAD_SAMPLE_KEYS:
        return "chatconf load samples"
    return None

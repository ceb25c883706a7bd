"""Reading what a target answered, defensively: probes compare answers, and a garbage server must
produce a failed check with a clear message, never an AttributeError from the probe itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..exchange import Exchange


def deltas(ex: Exchange) -> Iterator[tuple[int, int, dict[str, Any], Any]]:
    """(event index, choice index, delta, finish_reason) for every well-formed choice of a stream."""
    if not isinstance(ex.events, list):
        return
    for ev in ex.events:
        if ev.is_done:
            continue
        chunk = ev.json
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict):
                delta = choice.get("delta")
                index = choice.get("index")
                yield (ev.index, index if isinstance(index, int) else 0,
                       delta if isinstance(delta, dict) else {}, choice.get("finish_reason"))


def first_message(ex: Exchange) -> dict[str, Any] | None:
    """choices[0].message of a JSON answer, if it has one."""
    body = ex.body
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    return message if isinstance(message, dict) else None


def answer_text(ex: Exchange) -> tuple[str, str | None, str]:
    """(content, finish_reason, reasoning) of choice 0, streamed or not."""
    if isinstance(ex.events, list):
        content, reasoning, finish = [], [], None
        for _, index, delta, reason in deltas(ex):
            if index != 0:
                continue
            content.append(delta.get("content") if isinstance(delta.get("content"), str) else "")
            text = delta.get("reasoning_content")
            reasoning.append(text if isinstance(text, str) else "")
            finish = reason or finish
        return "".join(content), finish, "".join(reasoning)
    message = first_message(ex) or {}
    body = ex.body if isinstance(ex.body, dict) else {}
    choice = (body.get("choices") or [{}])[0] if isinstance(body.get("choices"), list) else {}
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    content = message.get("content")
    reasoning = message.get("reasoning_content")
    return (content if isinstance(content, str) else "", finish,
            reasoning if isinstance(reasoning, str) else "")


def has_tool_calls(ex: Exchange) -> bool:
    if isinstance(ex.events, list):
        return any(delta.get("tool_calls") for _, _, delta, _ in deltas(ex))
    message = first_message(ex)
    return bool(message and message.get("tool_calls"))

"""Secrets never leave the process: every header map, URL and text that is shown, logged,
recorded or reported passes through these functions first."""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"
PUBLIC_WRONG_KEY = "chatconf-wrong-key-0000"
"""The made-up key of the wrong-key probes: public, so reproducers may show it as it was sent."""

SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-dashscope-api-key",
    "cookie", "set-cookie", "x-goog-api-key", "ocp-apim-subscription-key",
})

# sk-... style keys (OpenAI, DashScope), bearer tokens, and api_key= query parameters.
_KEY_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"\bsk-[A-Za-z0-9._-]{6,}"),
    re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|key)=)[^&\s\"']+"),
]


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Lower-case header names and replace secret values, keeping the auth scheme visible."""
    out: dict[str, str] = {}
    if not headers:
        return out
    for name, value in headers.items():
        key = str(name).lower()
        if key in SECRET_HEADERS:
            scheme = str(value).split(" ", 1)[0] if " " in str(value) else ""
            out[key] = f"{scheme} {REDACTED}".strip() if scheme.lower() == "bearer" else REDACTED
        else:
            out[key] = redact_text(str(value))
    return out


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secret values and anything shaped like an API key from free text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    if match.group(0).endswith(PUBLIC_WRONG_KEY):
        return match.group(0)
    return match.group(1) + REDACTED if match.re.groups else REDACTED

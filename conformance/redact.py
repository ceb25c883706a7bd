"""Secrets never leave the process: every header map, URL and text that is shown, logged,
recorded or reported passes through these functions first.

Two kinds of secrets are removed:

- the exact values the harness itself sent (the API key), registered once with
  `register_secret` where the key is read, together with the encodings a server could echo them
  in: JSON-escaped, URL-percent-encoded, base64 (standard and URL-safe, with and without padding)
  of the key, of `Bearer <key>` and of HTTP basic `<key>:` / `:<key>`;
- anything shaped like an API key (`sk-...`, bearer tokens, `api_key=` parameters), for captures
  whose keys the harness never saw.

`report_text` additionally makes a string safe for every report format (UTF-8 files, XML, a
console): lone surrogates and control characters become visible `\\uXXXX` / `\\xNN` escapes.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"
PUBLIC_WRONG_KEY = "chatconf-wrong-key-0000"
"""The made-up key of the wrong-key probes: public, so reproducers may show it as it was sent."""
MIN_SECRET_LEN = 4

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

_lock = threading.Lock()
_registered: dict[str, None] = {}     # the raw values, in registration order
_variants: tuple[str, ...] = ()       # every value and encoding to replace, longest first


def _encodings(secret: str) -> set[str]:
    out = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
           quote(secret, safe=""), quote_plus(secret, safe="")}
    for plain in (secret, f"Bearer {secret}", f"bearer {secret}", f"{secret}:", f":{secret}"):
        raw = plain.encode("utf-8", "surrogatepass")
        for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = enc.decode("ascii")
            out.add(text)
            out.add(text.rstrip("="))
    return {v for v in out if len(v) >= MIN_SECRET_LEN}


def register_secret(value: str | None) -> None:
    """Remember a secret the process holds (the API key); every redaction removes it from now on.

    Values shorter than four characters are ignored (replacing them would shred ordinary text)."""
    global _variants
    if not value or len(value) < MIN_SECRET_LEN:
        return
    with _lock:
        if value in _registered:
            return
        _registered[value] = None
        variants = set(_variants) | _encodings(value)
        _variants = tuple(sorted(variants, key=lambda v: (-len(v), v)))


def registered_secrets() -> tuple[str, ...]:
    return tuple(_registered)


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _variants
    with _lock:
        _registered.clear()
        _variants = ()


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


def redact_secrets(text: str) -> str:
    """Only the registered secrets and their encodings (cheap; for live payloads checks still read)."""
    for variant in _variants:
        if variant in text:
            text = text.replace(variant, REDACTED)
    return text


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove registered and given secret values and anything shaped like an API key from text."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LEN:
            text = text.replace(secret, REDACTED)
    text = redact_secrets(text)
    if "=" not in text and "sk-" not in text and "bearer" not in text.lower():
        return text  # no key pattern can match (each needs one of these): most strings skip 3 regex passes
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(_replacement, text)
    return text


def _replacement(match: re.Match[str]) -> str:
    if match.group(0).endswith(PUBLIC_WRONG_KEY):
        return match.group(0)
    return match.group(1) + REDACTED if match.re.groups else REDACTED


def redact_obj(obj: Any, text: Any = redact_text) -> Any:
    """A copy of a JSON-like value with `text` applied to every string, keys included."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, dict):
        return {(text(k) if isinstance(k, str) else k): redact_obj(v, text) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v, text) for v in obj]
    return obj


# Lone surrogates, C0/C1 controls other than TAB/LF/CR, DEL and the XML non-characters.
_UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def report_text(text: str) -> str:
    """Redacted, and safe to write anywhere: UTF-8 files, XML attributes, HTML, a terminal."""
    text = redact_text(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


_LINE_BREAKS = re.compile("[\r\n\u2028\u2029]")


def console_text(text: str) -> str:
    """`report_text` for one terminal line: line breaks escaped too, so a file name or a server's
    text can neither run escape sequences nor forge a line such as `FAKE.sse: VALID`."""
    text = report_text(text)
    return _LINE_BREAKS.sub(_escape, text) if _LINE_BREAKS.search(text) else text


def scrub_summary(summary: Any) -> Any:
    """One pass over a RunSummary before it is written or printed: every string of every check,
    the target and the extras goes through `report_text` (secrets out, unsafe characters escaped)."""
    summary.target = redact_obj(summary.target, report_text)
    summary.extra = redact_obj(summary.extra, report_text)
    for check in summary.checks:
        check.title = report_text(check.title)
        check.message = report_text(check.message)
        if check.evidence:
            check.evidence = redact_obj(check.evidence, report_text)
    return summary

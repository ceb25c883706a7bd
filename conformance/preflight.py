"""What `run` and `load` check before their first real request: output paths, and one small chat
request to the target (the preflight).

The preflight sends ONE valid, cheap request (`max_tokens: 1`, non-stream) with the user's key and a
short timeout, and turns the answers that make a whole run pointless into one line and exit 2
(UsageError): the key is rejected (401/403), there is no chat endpoint at the URL (404/405 that is not
an unknown-model error, a redirect), TLS does not match the port, the host does not resolve, the
connection is refused, or nothing answers within the timeout. Every other answer (2xx, 400, 429, 5xx,
...) is the suite's business and the run goes on. A model the target says it does not know is
UnknownModel (a UsageError too): every request would be refused the same way, so nothing is measured.

Neither the key nor the Authorization header is ever printed: every server text that is echoed is
first scrubbed of the key.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import UsageError
from .jsonutil import JSONError, loads
from .tls import CA_ENV_HINT, client_context

PATH = "/chat/completions"


class UnknownModel(UsageError):
    """The target says it does not serve the model: every request of the run would fail the same way."""

MAX_BODY = 64 * 1024
ENDPOINT_STATUSES = (404, 405)
REDIRECTS = (301, 302, 303, 307, 308)


# -- output paths ---------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists():
        if current.parent == current:
            break
        current = current.parent
    return current


def check_output_dir(value: str, flag: str) -> None:
    """`flag DIR` must be a writable directory or creatable as one (nothing is created here)."""
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{flag} {value}: exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {value}: directory is not writable")
        return
    _check_creatable(path.parent, value, flag)


def check_output_file(value: str, flag: str) -> None:
    """`flag FILE` must be a writable file path whose directory exists or can be created."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {value}: is a directory, expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {value}: file is not writable")
    _check_creatable(path.parent, value, flag)


def _check_creatable(parent: Path, value: str, flag: str) -> None:
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise UsageError(f"{flag} {value}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {value}: cannot write in {base}")


def check_keyword(expr: str) -> Any:
    """A pytest -k expression, compiled (pytest's own parser); a bad one is a usage error."""
    from _pytest.mark import expression

    errors: tuple[type[BaseException], ...] = (SyntaxError,)  # pytest >= 9
    if hasattr(expression, "ParseError"):  # pytest < 9
        errors += (expression.ParseError,)
    try:
        return expression.Expression.compile(expr)
    except errors as exc:
        message = getattr(exc, "msg", None) or getattr(exc, "message", None) or str(exc)
        column = getattr(exc, "offset", None) or getattr(exc, "column", None)
        where = f" at column {column}" if column else ""
        raise UsageError(f"invalid -k expression {expr!r}: {' '.join(str(message).split())}{where}") from None


def keyword_matches(compiled: Any, names: list[str]) -> bool:
    """Evaluate a compiled -k expression the way pytest matches keywords: a name matches when it is
    a case-insensitive substring of one of `names`."""
    lowered = [n.lower() for n in names]

    def matcher(subname: str, /, **kwargs: Any) -> bool:
        sub = subname.lower()
        return any(sub in n for n in lowered)

    return bool(compiled.evaluate(matcher))


# -- the preflight request ------------------------------------------------------------------------


def _scrub(text: str, api_key: str | None) -> str:
    text = " ".join(str(text).split())[:160]
    if api_key:
        text = text.replace(api_key, "[REDACTED]")
    return text


def _envelope(text: str) -> dict[str, Any]:
    try:
        data = loads(text.encode("utf-8", "replace"))
    except JSONError:
        return {}
    if not isinstance(data, dict):
        return {}
    inner = data.get("error")
    return inner if isinstance(inner, dict) else data


_NOT_FOUND = re.compile(r"not (?:exist|found|available)|does ?n[o']t exist|unknown|no such|invalid model", re.I)


def model_unknown(text: str, model: str, *, strict: bool = False) -> str | None:
    """The error code when a JSON error envelope says the model is not known, else None. A 404 needs
    only a message about the model; `strict` (a 400) also needs it to say not found / unknown."""
    env = _envelope(text)
    if not env:
        return None
    code = str(env.get("code") or "")
    message = str(env.get("message") or "")
    if "model" in code.lower() and any(w in code.lower() for w in ("not_found", "notfound", "not_exist",
                                                                    "notexist", "invalid", "unknown")):
        return code
    about_model = bool(model and model in message) or bool(re.search(r"\bmodels?\b", message, re.I))
    if message and about_model and (not strict or _NOT_FOUND.search(message)):
        return code or "model"
    return None


def suggest_base_url(base_url: str) -> str:
    """The hint for a base URL with no chat endpoint behind it."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith(PATH):
        return f"pass the base URL without {PATH} (e.g. {base_url[: -len(PATH)] or base_url})"
    host = (parts.hostname or "").lower()
    if "dashscope" in host and path != "/compatible-mode/v1":
        fixed = urlunsplit((parts.scheme, parts.netloc, "/compatible-mode/v1", "", ""))
        return f"did you mean {fixed}?"
    if not re.search(r"/v\d+$", path):
        return f"did you mean {base_url.rstrip('/')}/v1?"
    return "check --base-url"


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    text = str(exc)
    if "SSL" in text or "TLS" in text or "CERTIFICATE" in text.upper():
        return ssl.SSLError(text)
    return None


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        current = current.__cause__ or current.__context__
    return "refused" in str(exc).lower()


def _speaks_tls(host: str, port: int, timeout_s: float) -> bool:
    """True when a TLS handshake succeeds on host:port (certificate not checked: only the protocol)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                ctx.wrap_socket(sock, server_hostname=host):
            return True
    except (OSError, ValueError):
        return False


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def preflight(base_url: str, *, model: str, api_key: str | None, api_key_env: str,
              timeout_s: float = 10.0) -> None:
    """Send the preflight request; raise UsageError when the run cannot be useful."""
    base_url = base_url.rstrip("/")
    url = base_url + PATH
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or _first_line(exc)
        raise UsageError(f"target unreachable: cannot resolve host {host!r} of {base_url} ({reason})") from None
    headers = {"content-type": "application/json", "accept": "application/json", "user-agent": "chatconf"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    status: int
    text = ""
    location = ""
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False,
                          verify=client_context()) as client, \
                client.stream("POST", url, headers=headers, json=body) as resp:
            status = resp.status_code
            location = resp.headers.get("location", "")
            if status in (400, 401, 403, 404, 405):
                buf = bytearray()
                for chunk in resp.iter_raw():
                    buf += chunk
                    if len(buf) >= MAX_BODY:
                        break
                text = bytes(buf[:MAX_BODY]).decode("utf-8", "replace")
    except httpx.ConnectTimeout:
        raise UsageError(f"target unreachable: {base_url} (no connection within {timeout_s:g} s)") from None
    except httpx.TimeoutException:
        raise UsageError(f"target did not answer the preflight request within {timeout_s:g} s "
                         f"(POST {url})") from None
    except httpx.ConnectError as exc:
        tls = _tls_cause(exc) if parts.scheme == "https" else None
        if isinstance(tls, ssl.SSLCertVerificationError) or (tls and "CERTIFICATE_VERIFY" in str(tls).upper()):
            reason = getattr(tls, "verify_message", None) or _first_line(tls)
            raise UsageError(f"TLS certificate of {host} not trusted ({reason}); {CA_ENV_HINT}") from None
        if tls is not None:
            raise UsageError(f"TLS handshake failed: is {base_url} really https? "
                             f"(the port may speak plain HTTP: try http://)") from None
        if _refused(exc):
            raise UsageError(f"target unreachable: {base_url} (connection refused)") from None
        raise UsageError(f"target unreachable: {base_url} ({_scrub(_first_line(exc), api_key)})") from None
    except httpx.HTTPError as exc:  # closed without an answer, or an answer that is not HTTP
        if parts.scheme == "http" and _speaks_tls(host, port, timeout_s):
            https = urlunsplit(("https", parts.netloc, parts.path, "", ""))
            raise UsageError(f"{base_url} speaks TLS, not plain HTTP: did you mean {https}?") from None
        raise UsageError(f"target gave no HTTP answer to the preflight request (POST {url}: "
                         f"{_scrub(_first_line(exc), api_key)})") from None

    if status in (401, 403):
        if not api_key:
            raise UsageError(f"the target requires an API key (HTTP {status} from {url}): set ${api_key_env}")
        code = str(_envelope(text).get("code") or "")
        detail = f" {_scrub(code, api_key)}" if code else ""
        raise UsageError(f"the API key was rejected (HTTP {status}{detail}) by {base_url}: check ${api_key_env} "
                         "(or pass --api-key-env NAME)")
    if status == 400 and "plain http request was sent to https port" in text.lower():
        https = urlunsplit(("https", parts.netloc, parts.path, "", ""))
        raise UsageError(f"{base_url} is a TLS port: did you mean {https}?")
    if status in ENDPOINT_STATUSES or status == 400:
        unknown = model_unknown(text, model, strict=status == 400)
        if unknown is not None:
            raise UnknownModel(f"the target did not recognise model {model!r} (HTTP {status} "
                               f"{_scrub(unknown, api_key)}): pass --model with a model it serves")
        if status == 400:
            return
        raise UsageError(f"no chat completions endpoint at {url} (HTTP {status}): {suggest_base_url(base_url)}")
    if status in REDIRECTS:
        where = _scrub(location, api_key) or "elsewhere"
        raise UsageError(f"{url} redirects (HTTP {status} to {where}); chatconf does not follow redirects: "
                         "pass the final base URL")
    return None


def preflight_timeout(live: bool, timeout: float | None = None) -> float:
    """The preflight's timeout: --timeout when given, else 10 s for live targets, 5 s on loopback."""
    if timeout:
        return float(timeout)
    return 10.0 if live else 5.0

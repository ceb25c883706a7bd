"""Where requests go: an explicit base URL, a documented region, or the embedded mock.

Shared by `run` and `load` so both resolve targets, keys and reachability the same way.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import UsageError
from .profiles import Profile

MOCK_KEY = "sk-chatconf-mock"


@dataclass(frozen=True)
class Target:
    base_url: str | None   # None: the embedded mock, started later
    label: str
    kind: str              # url | region | mock

    @property
    def is_mock(self) -> bool:
        return self.kind == "mock"


def resolve_target(profile: Profile, *, base_url: str | None = None, region: str | None = None,
                   label: str | None = None) -> Target:
    if base_url and region:
        raise UsageError("give either --base-url or --region, not both")
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
        return Target(base_url.rstrip("/"), label or parts.hostname or base_url, "url")
    if region:
        regions = profile.regions
        if region not in regions:
            known = ", ".join(regions) or "none"
            raise UsageError(f"profile {profile.name!r} has no region {region!r} (known: {known})")
        return Target(regions[region].rstrip("/"), label or region, "region")
    return Target(None, label or "mock", "mock")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_api_key(env_name: str, *, required: bool) -> str | None:
    """The key from the named environment variable; missing + required -> UsageError (exit 2)."""
    if not env_name.replace("_", "").isalnum():
        raise UsageError(f"--api-key-env must name an environment variable, got {env_name!r}")
    value = os.environ.get(env_name, "").strip()
    if not value and required:
        raise UsageError(f"no API key: set the environment variable {env_name} (or pass --api-key-env NAME)")
    return value or None


def check_reachable(base_url: str, *, timeout_s: float = 5.0) -> None:
    """A TCP connection is enough: refused, unresolvable or no route -> UsageError (exit 2).

    No HTTP request is sent, so a server that accepts but then hangs or misbehaves is left to the
    checks, which report it as failures instead of calling the target unreachable.
    """
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            pass
    except TimeoutError as exc:
        raise UsageError(f"target unreachable: {base_url} (no connection within {timeout_s:g} s)") from exc
    except OSError as exc:
        raise UsageError(f"target unreachable: {base_url} ({exc.strerror or exc})") from exc

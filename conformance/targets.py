"""Where requests go: an explicit base URL, a documented region, or the embedded mock.

Shared by `run` and `load` so both resolve targets and keys the same way (reachability: the one
preflight request of conformance/preflight.py).
"""

from __future__ import annotations

import ipaddress
import os
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
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address; any other name counts as reachable from elsewhere (a name
    is not resolved: what it points to can change after the check)."""
    host = host.strip("[]")
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

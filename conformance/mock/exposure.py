"""Who may steer a running mock, and what a bind address exposes.

The control routes that change a mock (PUT /_mock/faults, POST /_mock/stats/reset) would let anyone
who reaches the port break a conformance run in progress or wipe a load test's timings. They take a
credential: the control token when one is set, else the mock's API key, as `Authorization: Bearer`.
A mock with neither is open to control only on loopback; bound to another address it refuses them
(there is no secret to check). The read-only routes (GET /_mock/stats, GET /_mock/faults) stay open:
they hold timings, request counts, the latency profile and fault names, nothing a client sent.
"""

from __future__ import annotations

import hmac

from ..targets import is_loopback_host
from .config import MockConfig


def control_secret(config: MockConfig) -> str | None:
    """The Bearer token control requests must carry (None: no credential configured)."""
    return config.control_token or config.api_key or None


def control_denial(config: MockConfig, authorization: str) -> tuple[int, str] | None:
    """(status, reason) when a control request with this Authorization header is refused, else None."""
    secret = control_secret(config)
    if secret is None:
        if is_loopback_host(config.host):
            return None
        return 403, ("control routes are off: this mock listens beyond loopback without --api-key or "
                     "--control-token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode()):
        return None
    which = "control token" if config.control_token else "API key"
    return 401, f"control routes need the mock's {which} (Authorization: Bearer ...)"


def exposure_warning(config: MockConfig) -> str | None:
    """One line naming what a non-loopback bind exposes (None on loopback)."""
    if is_loopback_host(config.host):
        return None
    chat = "any non-empty key accepted" if not config.api_key else "--api-key required"
    if config.control_token:
        control = "need the control token"
    elif config.api_key:
        control = "need the API key"
    else:
        control = "refused: no --api-key or --control-token"
    return (f"chatconf mock: warning: listening on {config.host}, beyond loopback: other machines reach the "
            f"chat API ({chat}), GET /_mock/stats and /_mock/faults (readable by anyone), and the control "
            f"routes PUT /_mock/faults, POST /_mock/stats/reset ({control})")

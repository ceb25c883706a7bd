"""chatconf: conformance and load testing for OpenAI-compatible Chat Completions APIs.

The public surface is small and re-exported here; everything else is private to its module.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .exchange import Exchange, HTTPRequest
from .profiles import Profile, load_profile
from .rules.base import REGISTRY, Rule, Violation
from .sse import SSEDecoder, SSEEvent

__all__ = [
    "REGISTRY",
    "Exchange",
    "HTTPRequest",
    "Profile",
    "Rule",
    "SSEDecoder",
    "SSEEvent",
    "Violation",
    "__version__",
    "load_profile",
]

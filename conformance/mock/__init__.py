"""The built-in DashScope compatible-mode mock: a real uvicorn server that answers like
production (research F1-F7), with simulated region latency, injected load faults, conformance fault
modes (one per rule id) and replay of recorded traffic.

    from conformance.mock import MockServer, MockConfig
    with MockServer(MockConfig(latency="singapore")) as base_url:
        ...  # point any OpenAI-compatible client at base_url
"""

from .config import ConfigError, MockConfig, parse_inject
from .faults import FAULTS, FaultError
from .latency import LatencyError, LatencyProfile, load_latency
from .server import MockServer, MockStartError

__all__ = ["FAULTS", "ConfigError", "FaultError", "LatencyError", "LatencyProfile", "MockConfig",
           "MockServer", "MockStartError", "load_latency", "parse_inject"]

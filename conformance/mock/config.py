"""MockConfig: everything that shapes one mock server, as plain JSON-able data so the same value
configures an in-process server, a child process (sent over its stdin, never argv, so an API key
never shows in `ps`) and the `chatconf mock` command."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_BODY_BYTES = 8 * 1024 * 1024

INJECT_RATES = ("429", "429_burst", "500", "503", "drop", "stall", "slow_headers", "midstream_error")
"""Per-request probabilities. 429: limit_requests; 429_burst: limit_burst_rate; drop: connection
closed mid-stream; stall: the stream pauses for `stall_s`; slow_headers: headers delayed by
`slow_headers_s`; midstream_error: an SSE error event, then the stream ends without [DONE]."""
INJECT_DURATIONS = {"stall_s": 2.0, "slow_headers_s": 2.0}


class ConfigError(ValueError):
    """A bad MockConfig value (bad --inject spec, unknown key, rate outside [0, 1])."""


@dataclass
class MockConfig:
    profile: str = "dashscope"
    api_key: str | None = field(default=None, repr=False)
    control_token: str | None = field(default=None, repr=False)   # else the API key guards /_mock/*
    latency: str | dict[str, Any] | None = None
    faults: tuple[str, ...] = ()
    inject: dict[str, float] | None = None
    seed: int = 0
    replay: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    max_body_bytes: int = MAX_BODY_BYTES
    log_requests: bool = False  # print one line per chat request (GET /_mock/requests keeps them anyway)

    def to_json(self) -> str:
        data = asdict(self)
        data["faults"] = list(self.faults)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> MockConfig:
        data = json.loads(text)
        data["faults"] = tuple(data.get("faults") or ())
        return cls(**data)


def check_inject(inject: dict[str, Any] | None) -> dict[str, float]:
    """Validated injection table: known keys only, rates in [0, 1], durations >= 0."""
    out: dict[str, float] = dict(INJECT_DURATIONS)
    rates = 0.0
    for key, value in (inject or {}).items():
        key = str(key)
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--inject {key}: {value!r} is not a number") from exc
        if key in INJECT_DURATIONS:
            if number < 0:
                raise ConfigError(f"--inject {key}: must be >= 0 seconds")
        elif key in INJECT_RATES:
            if not 0.0 <= number <= 1.0:
                raise ConfigError(f"--inject {key}: rate must be in [0, 1]")
            if key in ("429", "429_burst", "500", "503"):
                rates += number
        else:
            known = ", ".join((*INJECT_RATES, *INJECT_DURATIONS))
            raise ConfigError(f"--inject: unknown key {key!r} (known: {known})")
        out[key] = number
    if rates > 1.0:
        raise ConfigError("--inject: 429 + 429_burst + 500 + 503 rates add up to more than 1")
    return out


def parse_inject(spec: str | None) -> dict[str, float]:
    """'429=0.05,500=0.01,drop=0.01' -> {'429': 0.05, ...} (validated)."""
    if not spec:
        return {}
    table: dict[str, Any] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--inject: expected KEY=RATE, got {part!r}")
        table[key.strip()] = value.strip()
    checked = check_inject(table)
    return {k: v for k, v in checked.items() if k in table}

"""Simulated latency profiles for the mock: how long until the role chunk, the first token, the
gaps between token events, and how jittery they are.

Every value here is SIMULATED (plausible numbers for a region, not measurements of Alibaba Cloud);
the stats endpoint and the `chatconf mock` banner say so. Profiles are YAML files in
fixtures/latency/ (named presets) or any YAML path or dict; "none" means no injected delay.
Timings are drawn from a seeded RNG so a run is reproducible under `--seed`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..resources import fixtures_dir, read_yaml_mapping


class LatencyError(ValueError):
    """Unknown preset, unreadable file or a bad value in a latency profile."""


@dataclass(frozen=True)
class LatencyProfile:
    """Server-side schedule of one streamed answer, in milliseconds from the request's arrival.

    `network_rtt_ms` stands in for the region's round trip (loopback has none): it delays every
    answer, so a client's TTFT is about `network_rtt_ms + ttft_ms`.
    """

    name: str = "none"
    simulated: bool = True
    description: str = "no injected latency"
    network_rtt_ms: float = 0.0
    role_chunk_ms: float = 0.0
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    jitter: float = 0.0
    tokens_per_event: int = 1
    usage_lag_ms: float = 0.0
    output_tokens: tuple[int, int] = (24, 64)
    reasoning_tokens: tuple[int, int] = (16, 40)

    @property
    def is_zero(self) -> bool:
        return not (self.network_rtt_ms or self.role_chunk_ms or self.ttft_ms or self.itl_ms
                    or self.usage_lag_ms)

    def label(self) -> str:
        if self.is_zero:
            return f"latency {self.name} (no injected delay)"
        return (f"latency {self.name} (SIMULATED: ttft {self.ttft_ms:g} ms, itl {self.itl_ms:g} ms, "
                f"rtt {self.network_rtt_ms:g} ms, jitter {self.jitter:g})")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_tokens"] = list(self.output_tokens)
        data["reasoning_tokens"] = list(self.reasoning_tokens)
        data["expected_server_ttft_ms"] = self.network_rtt_ms + self.ttft_ms
        return data

    # -- sampling (seconds, for the scheduler) ---------------------------------------------------

    def _jittered(self, ms: float, rng: random.Random) -> float:
        if not ms:
            return 0.0
        if self.jitter:
            ms *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return max(ms, 0.0) / 1000.0

    def first_token_s(self, rng: random.Random) -> float:
        """Offset of the first token event (role chunk offset is `role_s`, never later)."""
        return self.network_rtt_ms / 1000.0 + self._jittered(self.ttft_ms, rng)

    def role_s(self, first_token_s: float) -> float:
        return min(first_token_s, (self.network_rtt_ms + self.role_chunk_ms) / 1000.0)

    def gap_s(self, rng: random.Random) -> float:
        return self._jittered(self.itl_ms, rng)

    def usage_lag_s(self) -> float:
        return self.usage_lag_ms / 1000.0


PRESETS = ("none", "singapore", "virginia", "beijing")
NONE = LatencyProfile()


def preset_names() -> list[str]:
    found = {p.stem for p in (fixtures_dir() / "latency").glob("*.yaml")}
    return ["none", *sorted(found - {"none"})]


def _from_mapping(data: dict[str, Any], default_name: str) -> LatencyProfile:
    known = {f.name for f in fields(LatencyProfile)}
    unknown = sorted(set(data) - known - {"expected_server_ttft_ms"})
    if unknown:
        raise LatencyError(f"unknown latency field(s): {', '.join(unknown)}")
    values = {k: v for k, v in data.items() if k in known}
    values.setdefault("name", default_name)
    try:
        for key in ("output_tokens", "reasoning_tokens"):
            if key in values:
                lo, hi = (int(x) for x in values[key])
                if not 1 <= lo <= hi:
                    raise ValueError(f"{key} must be [min, max] with 1 <= min <= max")
                values[key] = (lo, hi)
        for key in ("network_rtt_ms", "role_chunk_ms", "ttft_ms", "itl_ms", "usage_lag_ms", "jitter"):
            if key in values:
                values[key] = float(values[key])
                if values[key] < 0:
                    raise ValueError(f"{key} must be >= 0")
        if values.get("jitter", 0.0) > 1.0:
            raise ValueError("jitter is a fraction in [0, 1]")
        if "tokens_per_event" in values:
            values["tokens_per_event"] = int(values["tokens_per_event"])
            if values["tokens_per_event"] < 1:
                raise ValueError("tokens_per_event must be >= 1")
        values["simulated"] = True
        values["name"] = str(values["name"])
        values["description"] = str(values.get("description", ""))
    except (TypeError, ValueError) as exc:
        raise LatencyError(f"bad latency profile {default_name!r}: {exc}") from exc
    return LatencyProfile(**values)


def load_latency(spec: str | dict[str, Any] | LatencyProfile | None) -> LatencyProfile:
    """A preset name, a YAML path, a mapping or a profile -> LatencyProfile (None: "none")."""
    if spec is None or spec == "none":
        return NONE
    if isinstance(spec, LatencyProfile):
        return spec
    if isinstance(spec, dict):
        return _from_mapping(dict(spec), str(spec.get("name", "custom")))
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        path = fixtures_dir() / "latency" / f"{spec}.yaml"
        if not path.exists():
            raise LatencyError(f"unknown latency preset {spec!r} (available: {', '.join(preset_names())}, "
                               "or a YAML file)")
    return _from_mapping(read_yaml_mapping(path, f"latency profile {spec}", LatencyError), path.stem)

"""Locust custom arguments (each also an environment variable) and target resolution.

Plain `locust -f loadtests/locustfile.py` and `chatconf load` share these: `chatconf load`
translates its own flags into them, so both paths run the same code. Custom arguments travel from
a Locust master to its workers in the spawn message; the API key never does (each process reads
it from its own environment variable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

REGION_NAMES = ("singapore", "virginia", "beijing")
MOCK_TOKEN = "chatconf-mock-token"  # the embedded mock accepts any non-empty Bearer token


def add_arguments(parser: Any) -> None:
    """Register the chatconf options on Locust's (configargparse) parser."""
    group = parser.add_argument_group("chatconf", "chatconf streaming load test (also env vars)")
    add = group.add_argument
    add(
        "--chatconf-targets",
        env_var="CHATCONF_TARGETS",
        default="",
        help="explicit targets: label=base_url[,label=base_url] (what `chatconf load` passes)",
    )
    add(
        "--chatconf-regions",
        env_var="CHATCONF_REGIONS",
        default="",
        help="comma-separated documented regions of the profile, e.g. singapore,virginia",
    )
    add("--chatconf-base-url", env_var="CHATCONF_BASE_URL", default="", help="custom base URL (ends in /v1)")
    add("--chatconf-label", env_var="CHATCONF_LABEL", default="", help="report label for --chatconf-base-url")
    add(
        "--chatconf-simulated",
        env_var="CHATCONF_SIMULATED",
        default="",
        help="mark the targets as simulated (set automatically for the embedded mock)",
    )
    add("--chatconf-model", env_var="CHATCONF_MODEL", default="", help="model id (default: the profile's)")
    add("--chatconf-profile", env_var="CHATCONF_PROFILE", default="dashscope", help="profile name or YAML path")
    add(
        "--chatconf-api-key-env",
        env_var="CHATCONF_API_KEY_ENV",
        default="",
        help="environment variable holding the API key (default: the profile's, DASHSCOPE_API_KEY)",
    )
    add(
        "--chatconf-rate",
        env_var="CHATCONF_RATE",
        type=float,
        default=0.0,
        help="open loop: total requests/s over all regions and workers (0: closed loop)",
    )
    add(
        "--chatconf-arrivals",
        env_var="CHATCONF_ARRIVALS",
        default="poisson",
        choices=["constant", "poisson"],
        help="open-loop arrival process",
    )
    add(
        "--chatconf-max-requests",
        env_var="CHATCONF_MAX_REQUESTS",
        type=int,
        default=0,
        help="stop after this many requests in total (0: no limit)",
    )
    add(
        "--chatconf-report-dir",
        env_var="CHATCONF_REPORT_DIR",
        default="",
        help="write summary.json, samples.jsonl and report.html here",
    )
    add(
        "--chatconf-mix",
        env_var="CHATCONF_MIX",
        default="",
        help="request mix weights, e.g. short=50,long=20,tools=15,thinking=15",
    )
    add("--chatconf-seed", env_var="CHATCONF_SEED", type=int, default=0, help="seed of the request mix")
    add("--chatconf-prompt-tokens", env_var="CHATCONF_PROMPT_TOKENS", default="",
        help="prompt length in tokens: N, uniform:LO,HI, normal:MEAN,SD, lognormal:MEDIAN,SIGMA or hist:FILE")
    add("--chatconf-max-tokens", env_var="CHATCONF_MAX_TOKENS", default="",
        help="max_tokens of each request, as a distribution like --chatconf-prompt-tokens")
    add("--chatconf-turns", env_var="CHATCONF_TURNS", default="",
        help="conversations of this many turns (a distribution) that grow their history")
    add("--chatconf-replay", env_var="CHATCONF_REPLAY", default="",
        help="send the chat requests of this capture (recording, HAR, ...) with their captured timing")
    add("--chatconf-speed", env_var="CHATCONF_SPEED", type=float, default=1.0,
        help="replay speed: 2 sends the captured traffic twice as fast")
    add("--chatconf-replay-model", env_var="CHATCONF_REPLAY_MODEL", default="",
        help="model for every replayed request (default: each keeps its captured model)")
    add("--chatconf-dataset", env_var="CHATCONF_DATASET", default="",
        help="JSONL of the user's prompts (`messages` or `prompt`, optional `max_tokens`)")
    add(
        "--chatconf-timeout",
        env_var="CHATCONF_TIMEOUT",
        type=float,
        default=60.0,
        help="seconds to wait for the next bytes of a response",
    )
    add("--chatconf-slo", env_var="CHATCONF_SLO", default="",
        help="objectives, e.g. ttft_p99<=800ms,error_rate<=1%%; the run exits 1 when one is missed "
             "(default error_rate<=1%%; none: no objectives)")
    add("--chatconf-no-check", env_var="CHATCONF_NO_CHECK", default="", help="set to 1 to skip the conformance pass")
    add("--chatconf-quiet", env_var="CHATCONF_QUIET", default="", help="set to 1: no progress lines")


def main(argv: list[str] | None = None) -> int:
    """`python -m loadtests.locustfile --help`: the --chatconf-* options and their environment
    variables. Locust prints `locust -f ... --help` before it imports the locustfile, so its own
    help can never list them."""
    import configargparse

    parser = configargparse.ArgumentParser(
        prog="locust -f loadtests/locustfile.py",
        description="chatconf's options for plain Locust; every Locust option works as well (locust --help).",
    )
    add_arguments(parser)
    parser.parse_args(argv)
    parser.print_help()
    return 0


def truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Targets:
    by_label: dict[str, str]
    simulated: bool

    def encode(self) -> str:
        return ",".join(f"{label}={url}" for label, url in self.by_label.items())


def parse_targets(text: str) -> dict[str, str]:
    """`label=url,label=url` -> {label: url} (labels unique, URLs http(s))."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        label, sep, url = part.partition("=")
        if not sep or not label.strip() or not url.strip():
            raise ValueError(f"bad target {part!r} (expected label=base_url)")
        label, url = label.strip(), url.strip()
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"target {label!r}: not an http(s) URL: {url!r}")
        if label in out:
            raise ValueError(f"target label {label!r} given twice")
        out[label] = url
    return out


def default_label(base_url: str) -> str:
    return urlsplit(base_url).hostname or "custom"


def targets_from_host(host: str) -> dict[str, str]:
    """Locust's Host (`--host` or the web UI's field): one base URL, or label=base_url pairs."""
    host = host.strip()
    if "=" in host.split("://", 1)[0]:
        return parse_targets(host)
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"host is not an http(s) base URL: {host!r}")
    return {default_label(host): host}


def host_text(targets: Targets) -> str:
    """What Locust shows as the Host for these targets (and reads back unchanged)."""
    if len(targets.by_label) == 1:
        label, url = next(iter(targets.by_label.items()))
        if label == default_label(url):
            return url
    return targets.encode()


def resolve_static(opts: Any, profile_regions: dict[str, str]) -> Targets | None:
    """Targets named by the options, or None when none was named (-> the embedded mock)."""
    simulated = truthy(getattr(opts, "chatconf_simulated", ""))
    if getattr(opts, "chatconf_targets", ""):
        return Targets(parse_targets(opts.chatconf_targets), simulated)
    out: dict[str, str] = {}
    regions = [r.strip() for r in (getattr(opts, "chatconf_regions", "") or "").split(",") if r.strip()]
    for region in regions:
        if region not in profile_regions:
            raise ValueError(f"unknown region {region!r} (profile regions: {', '.join(profile_regions) or 'none'})")
        out[region] = profile_regions[region]
    base = getattr(opts, "chatconf_base_url", "")
    if base:
        label = getattr(opts, "chatconf_label", "") or default_label(base)
        if label in out:
            raise ValueError(f"label {label!r} clashes with a region; pick another --label")
        out[label] = base
    if not out:
        return None
    return Targets(out, simulated)


if __name__ == "__main__":
    raise SystemExit(main())

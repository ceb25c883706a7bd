"""How bench_load_compare.py runs each load tool and reads its results (chatconf, GuideLLM, AIPerf).

Each tool is one closed-loop run of `streams` concurrent streams for `seconds` against the
benchmark upstream (benchmarks/sse_upstream.py). A `Tool` builds the command line and environment,
and parses the tool's own report into a `ToolResult`: the tool's TTFT and per-token gap percentiles
as the tool itself computed them. What each tool calls its per-token gap differs:

- chatconf `itl_ms`: every gap between token events, pooled over requests (per chunk);
- AIPerf `inter_chunk_latency`: every gap between content chunks, pooled (per chunk);
- GuideLLM `inter_token_latency_ms`: one value per request, (last token - first token) / (tokens - 1).

`ToolResult.gap_kind` says which, so the comparison takes the server's matching distribution.
GuideLLM and AIPerf run from their own venvs (never chatconf dependencies), fully offline, with a
tiny local tokenizer (benchmarks/tiny_tokenizer.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_TOKENS = 64
PROMPT_TOKENS = 32
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "NO_COLOR": "1"}
PER_CHUNK, PER_REQUEST = "per chunk", "per-request mean"


@dataclass
class Sample:
    """One completed request as the tool measured it: wall-clock start (s), TTFT and its gaps (ms)."""

    start: float
    ttft: float
    gaps: list[float]


@dataclass
class ToolResult:
    """One tool's own figures for one step (ms), or why there are none.

    `ttft`/`gap` are the tool's summary over its whole run; `samples` are its per-request values,
    from which the comparison takes the steady-state window (after the warm-up)."""

    requests: int = 0
    ttft: dict[str, float | None] = field(default_factory=dict)
    gap: dict[str, float | None] = field(default_factory=dict)
    gap_kind: str = PER_CHUNK
    samples: list[Sample] = field(default_factory=list)
    paired: list[Sample] | None = None   # AIPerf raw export: per-request biases against the server's stamps
    error: str | None = None


@dataclass
class Tool:
    """A load tool: how to start one step, and how to read what it wrote."""

    name: str
    executable: Path | None
    why_absent: str = ""

    def available(self) -> bool:
        return self.executable is not None and self.executable.exists()

    def command(self, url: str, streams: int, seconds: float, out: Path, tokenizer: Path | None) -> list[str]:
        raise NotImplementedError

    def env(self, tokenizer: Path | None) -> dict[str, str]:
        return {**os.environ, **OFFLINE_ENV}

    def result(self, out: Path) -> ToolResult:
        raise NotImplementedError


def _q(d: dict[str, Any] | None, *keys: str) -> float | None:
    """The first of `keys` present (not None) in `d`."""
    for k in keys:
        if d and d.get(k) is not None:
            return float(d[k])
    return None


# -- chatconf -----------------------------------------------------------------------------------------

class Chatconf(Tool):
    """`chatconf load`, one Locust process (--workers 0), closed loop, every user started at once."""

    def command(self, url: str, streams: int, seconds: float, out: Path, tokenizer: Path | None) -> list[str]:
        return [str(self.executable), "load", "--base-url", f"{url}/v1", "--label", "bench", "--users", str(streams),
                "--spawn-rate", str(streams), "--run-time", f"{seconds:g}s", "--workers", "0", "--mix", "short=1",
                "--max-tokens", str(OUTPUT_TOKENS), "--prompt-tokens", str(PROMPT_TOKENS), "--slo", "none",
                "--report-dir", str(out), "--quiet"]

    def env(self, tokenizer: Path | None) -> dict[str, str]:
        # any token: the benchmark upstream does not check it (never a real key)
        return {**os.environ, **OFFLINE_ENV, "DASHSCOPE_API_KEY": "sk-bench-not-a-key"}

    def result(self, out: Path) -> ToolResult:
        try:
            summary = json.loads((out / "summary.json").read_text())
        except (OSError, ValueError):
            return ToolResult(error=f"no summary.json (see {out}/locust.log)")
        region = next(iter((summary.get("regions") or {}).values()), None)
        if not region:
            return ToolResult(error="summary.json has no region")
        samples = []
        with contextlib.suppress(OSError):
            for line in (out / "samples.jsonl").read_text().splitlines():
                rec = json.loads(line)
                if rec.get("ok") and rec.get("ttft_ms") is not None:
                    samples.append(Sample(float(rec["t"]), float(rec["ttft_ms"]), list(rec.get("itl_ms") or [])))
        return ToolResult(requests=int(region.get("requests") or 0),
                          ttft={q: _q(region.get("ttft_ms"), q) for q in ("p50", "p99")},
                          gap={q: _q(region.get("itl_ms"), q) for q in ("p50", "p99")}, gap_kind=PER_CHUNK,
                          samples=samples)


# -- GuideLLM -----------------------------------------------------------------------------------------

class GuideLLM(Tool):
    """`guidellm run`: concurrent profile, one worker process, a max_duration constraint."""

    def command(self, url: str, streams: int, seconds: float, out: Path, tokenizer: Path | None) -> list[str]:
        return [str(self.executable), "run",
                "--backend", f"kind=openai_http,target={url}/v1,model=qwen-plus,http2=false",
                "--profile", f"kind=concurrent,streams={streams}",
                "--constraint", f"kind=max_duration,seconds={seconds:g}",
                "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
                "--data", f"kind=synthetic_text,prompt_tokens={PROMPT_TOKENS},output_tokens={OUTPUT_TOKENS}",
                "--output", f"kind=json,path={out / 'benchmarks.json'}",
                "--disable-console"]

    def env(self, tokenizer: Path | None) -> dict[str, str]:
        return {**os.environ, **OFFLINE_ENV, "GUIDELLM__MAX_WORKER_PROCESSES": "1",
                "GUIDELLM__LOGGING__LOG_FILE": "guidellm.log"}

    def result(self, out: Path) -> ToolResult:
        try:
            bench = json.loads((out / "benchmarks.json").read_text())["benchmarks"][0]
            metrics = bench["metrics"]
        except (OSError, ValueError, KeyError, IndexError):
            return ToolResult(error=f"no benchmarks.json (see {out}/tool.log)")

        def pct(name: str) -> dict[str, float | None]:
            p = ((metrics.get(name) or {}).get("successful") or {}).get("percentiles") or {}
            return {"p50": _q(p, "p50"), "p99": _q(p, "p99")}

        samples = [Sample(float(r["request_start_time"]), float(r["time_to_first_token_ms"]),
                          [float(r["inter_token_latency_ms"])] if r.get("inter_token_latency_ms") is not None else [])
                   for r in (bench.get("requests") or {}).get("successful") or []
                   if r.get("request_start_time") is not None and r.get("time_to_first_token_ms") is not None]
        return ToolResult(requests=int((metrics.get("request_totals") or {}).get("successful") or 0),
                          ttft=pct("time_to_first_token_ms"), gap=pct("inter_token_latency_ms"),
                          gap_kind=PER_REQUEST, samples=samples)


# -- AIPerf -------------------------------------------------------------------------------------------

class AIPerf(Tool):
    """`aiperf profile`: --concurrency, one worker and one record processor, a benchmark duration."""

    export_level = "records"

    def command(self, url: str, streams: int, seconds: float, out: Path, tokenizer: Path | None) -> list[str]:
        return [str(self.executable), "profile", "--model", "qwen-plus", "--url", url, "--endpoint-type", "chat",
                "--streaming", "--concurrency", str(streams), "--benchmark-duration", f"{seconds:g}",
                "--benchmark-grace-period", "0", "--tokenizer", HUB_TOKENIZER_ID,
                "--isl", str(PROMPT_TOKENS), "--osl", str(OUTPUT_TOKENS), "--extra-inputs", "ignore_eos:true",
                "--use-server-token-count", "--workers-max", "1", "--record-processors", "1", "--ui", "none",
                "--no-server-metrics", "--no-gpu-telemetry", "--wait-for-model-timeout", "0",
                "--export-level", self.export_level, "--artifact-dir", str(out / "artifacts")]

    def env(self, tokenizer: Path | None) -> dict[str, str]:
        # AIPerf in offline mode loads tokenizers only from the Hub cache layout (a plain directory path fails
        # with HFValidationError), so the tiny tokenizer is also laid out as a cached repo
        hub = tokenizer.parent / "hub" if tokenizer else None
        return {**os.environ, **OFFLINE_ENV, **({"HF_HUB_CACHE": str(hub)} if hub else {})}

    def result(self, out: Path) -> ToolResult:
        art = out / "artifacts"
        try:
            summary = json.loads((art / "profile_export_aiperf.json").read_text())
        except (OSError, ValueError):
            return ToolResult(error=f"no profile_export_aiperf.json (see {out}/tool.log)")
        ttft, icl = summary.get("time_to_first_token") or {}, summary.get("inter_chunk_latency") or {}
        result = ToolResult(requests=int(_q(summary.get("request_count"), "avg") or 0),
                            ttft={"p50": _q(ttft, "p50"), "p99": _q(ttft, "p99")},
                            gap={"p50": _q(icl, "p50"), "p99": _q(icl, "p99")}, gap_kind=PER_CHUNK)
        with contextlib.suppress(OSError):
            for line in (art / "profile_export.jsonl").read_text().splitlines():
                rec = json.loads(line)
                meta, m = rec.get("metadata") or {}, rec.get("metrics") or {}
                ttft_v = (m.get("time_to_first_token") or {}).get("value")
                if meta.get("was_cancelled") or ttft_v is None or meta.get("request_start_ns") is None:
                    continue
                gaps = (m.get("inter_chunk_latency") or {}).get("value") or []
                result.samples.append(Sample(meta["request_start_ns"] / 1e9, float(ttft_v), [float(g) for g in gaps]))
        raw = art / "profile_export_raw.jsonl"
        if raw.exists():
            result.paired = paired_bias(raw)
        return result


HUB_TOKENIZER_ID = "local/tiny-bench"
HUB_REVISION = "0" * 40


def make_tokenizer(python: Path, work: Path) -> Path:
    """Build the tiny tokenizer with a tool venv's interpreter; also lay it out as a Hub cache entry."""
    import shutil
    import subprocess

    target = work / "tokenizer"
    proc = subprocess.run([str(python), str(ROOT / "benchmarks" / "tiny_tokenizer.py"), str(target)],
                          env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"tokenizer build failed: {proc.stderr.strip().splitlines()[-1:]}")
    repo = work / "hub" / ("models--" + HUB_TOKENIZER_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / HUB_REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(HUB_REVISION)
    for f in target.iterdir():
        shutil.copy(f, snapshot / f.name)
    return target


# -- per-chunk pairing of AIPerf's raw export with the server's stamps ---------------------------------

SERVER_STAMP = re.compile(r" s(\d+)")
RECEIVED_STAMP = re.compile(r"chatcmpl-r(\d+)")


def paired_bias(raw: Path) -> list[Sample]:
    """Per request and per chunk, AIPerf's own timestamps against the server's stamps in the same chunks.

    Returns one Sample per request whose `ttft` is its TTFT bias, (first content arrival - request
    start) - (first token write - request received), and whose `gaps` are (arrival gap) - (write gap)
    for each pair of consecutive content chunks, in ms. Both clocks are CLOCK_MONOTONIC on one machine
    (`perf_counter_ns`), so the stamps compare directly.
    """
    out: list[Sample] = []
    with raw.open() as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            start, wall = rec.get("start_perf_ns"), (rec.get("metadata") or {}).get("request_start_ns")
            received, chunks = None, []
            for resp in rec.get("responses") or []:
                text = "".join(p.get("value", "") for p in resp.get("packets") or [] if p.get("name") == "data")
                if received is None:
                    m = RECEIVED_STAMP.search(text)
                    received = int(m.group(1)) if m else None
                stamp = SERVER_STAMP.search(text)
                if stamp and resp.get("perf_ns"):
                    chunks.append((int(resp["perf_ns"]), int(stamp.group(1))))
            if not chunks or None in (start, wall, received) or rec.get("status") != 200:
                continue
            out.append(Sample(wall / 1e9, ((chunks[0][0] - start) - (chunks[0][1] - received)) / 1e6,
                              [((a1 - a0) - (w1 - w0)) / 1e6 for (a0, w0), (a1, w1) in itertools.pairwise(chunks)]))
    return out


def tools(chatconf: Path | None, guidellm: Path | None, aiperf: Path | None) -> list[Tool]:
    """The three tools, in the order each step runs them."""
    return [Chatconf("chatconf", chatconf, "chatconf CLI not found (pip install -e '.[test]')"),
            GuideLLM("guidellm", guidellm, "GuideLLM not installed (see benchmarks/README.md)"),
            AIPerf("aiperf", aiperf, "AIPerf not installed (see benchmarks/README.md)")]

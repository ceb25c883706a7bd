"""`chatconf validate -j N` over many capture files: events/s with 1 and 2 worker processes, side by side.

Writes `--files` SSE captures of `--chunks` realistic chunks each (bench_validate.py's generator) and
times the real command, `chatconf validate -j N DIR`, best of `--repeat`, interleaved. Start-up (the
interpreter, imports, the worker pool) is included, as a user pays it.

    .venv/bin/python benchmarks/bench_validate_jobs.py [--files 8] [--chunks 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import generate


def timed(jobs: int, folder: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "validate", "-j", str(jobs), str(folder)],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"validate -j {jobs} failed: {proc.stderr[-300:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatconf-bench-jobs-") as tmp:
        folder = Path(tmp)
        for i in range(args.files):
            generate(folder / f"capture-{i:03d}.sse", args.chunks)
        events = args.files * args.chunks
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(args.repeat):
            for jobs in best:
                best[jobs] = min(best[jobs], timed(jobs, folder))
        print(f"{args.files} files x {args.chunks} chunks = {events:,} events")
        for jobs, seconds in best.items():
            print(f"  -j {jobs}: {seconds:6.2f} s  {events / seconds:>10,.0f} events/s")
        print(f"  speed-up -j 2 / -j 1: {best[1] / best[2]:.2f}x")


if __name__ == "__main__":
    main()

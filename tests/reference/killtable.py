"""The kill table against the independent reference server: `python -m tests.reference.killtable`.

Runs `chatconf run` once against the clean DocServer (seed 001 only, no code shared with the mock),
then once per single-fault variant. A variant is *killed* only when its run breaks (failed, or
warned for a should check) a check that the clean run passed: exiting 1 proves nothing when the
reference itself fails. Prints one line per variant and the score; exit 0 when every variant is killed
and the clean run has no failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .docserver import FAULTS, DocServer

KEY = "ref-key-7f3a9c2e1b5d"
KEY_ENV = "CHATCONF_REFERENCE_KEY"
BROKEN = ("failed", "warned")


@dataclass
class RunResult:
    code: int
    statuses: dict[str, str]
    messages: dict[str, str]
    seconds: float


def run_against(faults: Iterable[str] = (), *extra: str, examples: int = 2) -> RunResult:
    """One real `chatconf run` process against a DocServer with `faults`."""
    with DocServer(api_key=KEY, faults=list(faults)) as server, \
            tempfile.TemporaryDirectory(prefix="chatconf-ref-") as tmp:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "-q", "--base-url", server.base_url,
                               "--api-key-env", KEY_ENV, "--examples", str(examples), "--report-dir", tmp, *extra],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, KEY_ENV: KEY, "NO_COLOR": "1"})
        seconds = time.monotonic() - start
        path = Path(tmp) / "summary.json"
        if not path.exists():
            return RunResult(proc.returncode, {}, {"(run)": (proc.stderr or proc.stdout).strip()[-300:]}, seconds)
        checks = json.loads(path.read_text())["checks"]
    return RunResult(proc.returncode, {c["id"]: c["status"] for c in checks},
                     {c["id"]: c["message"] for c in checks}, seconds)


def kills(clean: RunResult, faulty: RunResult) -> list[str]:
    """Checks the faulty run broke that the clean run passed (or, exit 2: the preflight refused it)."""
    return sorted(cid for cid, status in faulty.statuses.items()
                  if status in BROKEN and clean.statuses.get(cid) == "passed")


def drift_changes(clean: RunResult, faulty: RunResult) -> list[str]:
    """Drift points whose observation differs: a variant there is noticed, by design never failed."""
    return sorted(cid for cid, status in faulty.statuses.items() if cid.startswith("drift.")
                  and status == "observed" and faulty.messages.get(cid, "").split(":")[-1]
                  != clean.messages.get(cid, "").split(":")[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", help="variants to run (default: all)")
    args = parser.parse_args(argv)
    clean = run_against()
    failed = [cid for cid, s in clean.statuses.items() if s == "failed"]
    warned = sorted(cid for cid, s in clean.statuses.items() if s == "warned")
    print(f"clean reference: exit {clean.code}, {len(failed)} failed, {len(warned)} warned "
          f"({', '.join(warned)}) in {clean.seconds:.1f} s")
    names = args.faults or list(FAULTS)
    killed = observed = 0
    for name in names:
        faulty = run_against([name])
        hit = kills(clean, faulty)
        drift = drift_changes(clean, faulty)
        if hit or faulty.code == 2:
            killed += 1
            mark = "killed"
            how = "preflight refused it (exit 2)" if faulty.code == 2 else ", ".join(
                f"{cid} {faulty.statuses[cid]}" for cid in hit[:3]) + (" ..." if len(hit) > 3 else "")
        elif drift:
            observed += 1
            mark, how = "observed", ", ".join(f"{cid}: {faulty.messages[cid][:60]}" for cid in drift)
        else:
            mark, how = "MISSED", ""
        print(f"  {mark:<8} {name:<38} exit {faulty.code}  {how}", flush=True)
    print(f"kill score: {killed}/{len(names)} variants killed, {observed} more observed at a drift point "
          f"(never failed by design), {len(names) - killed - observed} missed")
    return 0 if killed + observed == len(names) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())

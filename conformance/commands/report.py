"""`chatconf report`: render one or more run summaries as a self-contained HTML page; with several
targets (regions, gateways, providers) it leads with a checks x targets compatibility matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from ..reports.html import write_html
from ..results import RunSummary


def main(args: argparse.Namespace) -> int:
    summaries = []
    for path in args.summaries:
        try:
            summaries.append(RunSummary.read(path))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    out = write_html(summaries, Path(args.output))
    kind = "compatibility matrix" if len(summaries) > 1 else "report"
    print(f"chatconf report: wrote {kind} of {len(summaries)} run(s) to {out}")
    return 0

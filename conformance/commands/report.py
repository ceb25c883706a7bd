"""`chatconf report`: render run and load summaries as one self-contained HTML page.

Several conformance runs (regions, gateways, providers) lead with a checks x targets compatibility
matrix; load summaries add a targets-and-regions x latency table. Inputs are summary.json files or
report directories (a directory holding summary.json, or whose subdirectories do); `--label` names
each input in order.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..jsonutil import JSONError, loads
from ..redact import console_text
from ..reports.html import write_html
from ..reports.load_table import is_load_summary
from ..results import RunSummary


def summary_files(inputs: list[str]) -> list[Path]:
    """Each input as summary files: a file as it is, a report dir's summary.json, or those one level down."""
    files: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = [path / "summary.json"] if (path / "summary.json").is_file() else \
                sorted(p for p in path.glob("*/summary.json") if p.is_file())
            if not found:
                raise UsageError(f"{console_text(raw)}: no summary.json in this directory or its subdirectories")
            files.extend(found)
        else:
            raise UsageError(f"{console_text(raw)}: no such file or directory")
    return files


def _read(path: Path) -> dict[str, Any]:
    try:
        data = loads(path.read_bytes())
    except (OSError, JSONError) as exc:
        raise UsageError(f"cannot read summary {console_text(str(path))}: {exc}") from None
    if not isinstance(data, dict) or data.get("tool") != "chatconf":
        raise UsageError(f"{console_text(str(path))} is not a chatconf run or load summary")
    return data


def main(args: argparse.Namespace) -> int:
    files = summary_files(args.summaries)
    labels = args.label or []
    if len(labels) > len(files):
        raise UsageError(f"{len(labels)} --label values for {len(files)} summaries")
    runs: list[RunSummary] = []
    load_summaries: list[dict[str, Any]] = []
    for i, path in enumerate(files):
        data = _read(path)
        if i < len(labels):
            data.setdefault("target", {})["label"] = labels[i]
        if is_load_summary(data):
            load_summaries.append(data)
        elif "checks" in data:
            runs.append(RunSummary.from_dict(data))
        else:
            raise UsageError(f"{console_text(str(path))} is not a chatconf run or load summary")
    out = write_html(runs, Path(args.output), load_summaries)
    parts = [f"{len(runs)} run(s)" if runs else "", f"{len(load_summaries)} load run(s)" if load_summaries else ""]
    kind = "report" if len(runs) == 1 and not load_summaries else "comparison"
    print(f"chatconf report: wrote {kind} of {' and '.join(p for p in parts if p)} to {console_text(str(out))}")
    return 0

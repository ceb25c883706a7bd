"""Writes a load run's files: summary.json, samples.jsonl (one raw sample per request), report.html.

Each through conformance.outputs (atomic, checked); summary.json goes last, so its presence says the
other two were written (`chatconf load` removes it before a run and reads it after)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.jsonutil import dumpb, dumps
from conformance.outputs import write_atomic
from conformance.recording import json_lines

from .report_html import render_html

REPORT_ERROR = "chatconf-report-error: "
"""Prefix of the progress line a Locust process sends when a report file could not be written."""


def write_reports(
    report_dir: str | os.PathLike[str],
    summary: dict[str, Any],
    samples: Iterable[dict[str, Any]],
    calibration: dict[str, Any] | None = None,
) -> Path:
    out = Path(report_dir)
    samples = sorted(samples, key=lambda s: s["t"])
    if calibration is not None:
        summary = {**summary, "calibration": calibration}
    write_atomic(out / "samples.jsonl", b"".join(dumpb(s) + b"\n" for s in samples))
    write_atomic(out / "report.html", render_html(summary, samples))
    write_atomic(out / "summary.json", dumps(summary, indent=True) + "\n")
    return out


def read_samples(report_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The raw samples a run wrote (to re-render its report, e.g. marked partial after Ctrl-C)."""
    path = Path(report_dir) / "samples.jsonl"
    with path.open(encoding="utf-8") as fh:
        return [s for _, s in json_lines(fh) if isinstance(s, dict)]

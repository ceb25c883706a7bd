"""Run reports: summary.json (DESIGN.md format), JUnit XML and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from ..results import RunSummary


def write_run_reports(summary: RunSummary, report_dir: Path) -> list[Path]:
    """summary.json and report.html in `report_dir` (recording.jsonl is written while running), each
    atomically; raises OutputError naming the first file that could not be written."""
    from .html import write_html

    return [summary.write(report_dir / "summary.json"), write_html([summary], report_dir / "report.html")]

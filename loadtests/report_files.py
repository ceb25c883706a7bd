"""Writes a load run's files: summary.json, samples.jsonl (one raw sample per request), report.html."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.jsonutil import dumpb, dumps

from .report_html import render_html


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_reports(
    report_dir: str | os.PathLike[str],
    summary: dict[str, Any],
    samples: Iterable[dict[str, Any]],
    calibration: dict[str, Any] | None = None,
) -> Path:
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = sorted(samples, key=lambda s: s["t"])
    if calibration is not None:
        summary = {**summary, "calibration": calibration}
    _atomic_write(out / "summary.json", (dumps(summary, indent=True) + "\n").encode())
    _atomic_write(out / "samples.jsonl", b"".join(dumpb(s) + b"\n" for s in samples))
    _atomic_write(out / "report.html", render_html(summary, samples).encode())
    return out

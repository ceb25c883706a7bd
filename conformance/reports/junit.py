"""JUnit XML for CI systems: one testcase per check; observed checks pass with their note."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..jsonutil import dumps
from ..results import RunSummary


def junit_xml(summary: RunSummary) -> str:
    totals = summary.totals
    suite = ET.Element("testsuite", name="chatconf", tests=str(len(summary.checks)),
                       failures=str(totals["failed"]), skipped=str(totals["skipped"]), errors="0",
                       time=f"{summary.duration_s:.3f}", timestamp=summary.started)
    props = ET.SubElement(suite, "properties")
    for key, value in summary.target.items():
        ET.SubElement(props, "property", name=f"target.{key}", value=str(value))
    for check in summary.checks:
        case = ET.SubElement(suite, "testcase", classname=f"chatconf.{check.area or 'check'}", name=check.id,
                             time=f"{check.duration_s:.3f}")
        if check.status == "failed":
            node = ET.SubElement(case, "failure", message=check.message[:500], type=check.severity)
            node.text = f"{check.title}\n{check.message}\n\nevidence:\n{dumps(check.evidence or {}, indent=True)}"
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message[:500])
        elif check.status == "observed":
            out = ET.SubElement(case, "system-out")
            out.text = f"observed: {check.message}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(summary: RunSummary, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(summary), encoding="utf-8")
    return path

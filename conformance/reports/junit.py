"""JUnit XML for CI systems: one testcase per check.

`failed` checks are failures; `warned` (should-level) checks pass with a `chatconf.status` property
and their note in system-out, so CI stays green unless the run used --fail-on should (then they are
failures too); observed checks pass with their note. An interrupted run says so in the suite's
properties and lists every check it did not run as skipped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..results import RunSummary
from ..sources import explain
from .evidence_view import evidence_text


def junit_xml(summary: RunSummary, fail_on: str = "must") -> str:
    failing = {c.id for c in summary.failing(fail_on)}
    suite = ET.Element("testsuite", name="chatconf", tests=str(len(summary.checks) + len(summary.not_run)),
                       failures=str(len(failing)), skipped=str(summary.totals["skipped"] + len(summary.not_run)),
                       errors="0", time=f"{summary.duration_s:.3f}", timestamp=summary.started)
    props = ET.SubElement(suite, "properties")
    for key, value in summary.target.items():
        ET.SubElement(props, "property", name=f"target.{key}", value=str(value))
    ET.SubElement(props, "property", name="interrupted", value=str(summary.interrupted).lower())
    ET.SubElement(props, "property", name="fail_on", value=fail_on)
    for check in summary.checks:
        case = ET.SubElement(suite, "testcase", classname=f"chatconf.{check.area or 'check'}", name=check.id,
                             time=f"{check.duration_s:.3f}")
        if check.status == "warned":
            case_props = ET.SubElement(case, "properties")
            ET.SubElement(case_props, "property", name="chatconf.status", value="warned")
            ET.SubElement(case_props, "property", name="chatconf.severity", value=check.severity)
        if check.id in failing:
            node = ET.SubElement(case, "failure", message=check.message[:500], type=check.severity)
            sources = "\n".join(f"  {src.describe()}" for src in explain(check.source))
            node.text = (f"{check.title}\n{check.message}\n\n{evidence_text(check.evidence)}\n\n"
                         f"source: {check.source}\n{sources}")
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message[:500])
        elif check.status in ("observed", "warned"):
            out = ET.SubElement(case, "system-out")
            out.text = f"{check.status}: {check.message}"
    for check_id in summary.not_run:
        case = ET.SubElement(suite, "testcase", classname=f"chatconf.{check_id.split('.', 1)[0]}", name=check_id)
        ET.SubElement(case, "skipped", message="not run: the run was interrupted" if summary.interrupted
                      else "not run")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(summary: RunSummary, path: Path, fail_on: str = "must") -> Path:
    from ..outputs import write_atomic
    return write_atomic(path, junit_xml(summary, fail_on))

"""A self-contained HTML report a person would rather read than summary.json.

One summary: totals, then checks grouped by area, failures first and open, each with its message,
the evidence and a curl reproducer. Several summaries: a compatibility matrix (checks x targets)
above the per-target detail. No external assets: inline CSS and a few lines of inline JS.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..results import STATUSES, CheckResult, RunSummary
from ..sources import explain
from ..suite.catalog import AREAS
from .evidence_view import evidence_blocks
from .load_table import load_table_html, target_name

_CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--warn:#bc4c00;--skip:#9a6700;--obs:#0969da;--bg:#f6f8fa;--line:#d0d7de}
*{box-sizing:border-box}body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1f2328}
header{background:#24292f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header .meta{opacity:.8;font-size:13px}main{padding:20px 28px;max-width:1200px}
.tiles{display:flex;gap:12px;margin:0 0 18px}.tile{border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:110px}
.tile b{display:block;font-size:24px}.passed b{color:var(--pass)}.failed b{color:var(--fail)}
.skipped b{color:var(--skip)}.observed b{color:var(--obs)}.warned b{color:var(--warn)}
.banner{border:2px solid var(--fail);background:#ffebe9;border-radius:8px;padding:10px 14px;margin:0 0 16px;font-weight:600}
.filters{margin:0 0 14px}.filters button{border:1px solid var(--line);background:#fff;border-radius:16px;padding:3px 12px;margin-right:6px;cursor:pointer}
.filters button.on{background:#24292f;color:#fff}
h2{font-size:16px;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:26px}
details{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:#fff}
summary{padding:7px 10px;cursor:pointer;list-style:none;display:flex;gap:10px;align-items:baseline}
summary::-webkit-details-marker{display:none}
.badge{font-size:11px;font-weight:600;padding:1px 7px;border-radius:10px;color:#fff;min-width:62px;text-align:center}
.b-passed{background:var(--pass)}.b-failed{background:var(--fail)}.b-warned{background:var(--warn)}.b-skipped{background:var(--skip)}.b-observed{background:var(--obs)}
.id{font-family:ui-monospace,Menlo,monospace;font-size:12.5px;min-width:250px}.sev{font-size:11px;color:#57606a}
.body{padding:4px 12px 12px;border-top:1px solid var(--line);background:var(--bg)}
pre{white-space:pre-wrap;word-break:break-all;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px;font-size:12px;max-height:360px;overflow:auto}
.msg{margin:8px 0}.src{color:#57606a;font-size:12px}.src ul{margin:2px 0 0;padding-left:18px}
.note{color:#57606a;font-size:12.5px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;flex:1;min-width:0}
.blk{margin:8px 0 2px;font-weight:600;font-size:12.5px}table.matrix td .v{display:block;font-weight:400;font-size:11px;color:#57606a;max-width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.matrix{border-collapse:collapse;font-size:12.5px}table.matrix th,table.matrix td{border:1px solid var(--line);padding:3px 8px}
table.matrix td.c{text-align:center;font-weight:600}td.passed{color:var(--pass)}td.failed{color:var(--fail);background:#ffebe9}
td.skipped{color:var(--skip)}td.observed{color:var(--obs)}td.warned{color:var(--warn)}
"""

_JS = """
document.querySelectorAll('.filters button').forEach(b=>b.onclick=()=>{
 document.querySelectorAll('.filters button').forEach(x=>x.classList.remove('on'));b.classList.add('on');
 const s=b.dataset.s;document.querySelectorAll('details.check').forEach(d=>{d.style.display=(s==='all'||d.dataset.s===s)?'':'none'})});
"""

_ORDER = {"failed": 0, "warned": 1, "observed": 2, "skipped": 3, "passed": 4}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _check_html(check: CheckResult) -> str:
    note = ""
    if check.status != "passed" and check.message:
        note = f'<span class="note">{_e(check.message.splitlines()[0][:220])}</span>'
    parts = [f'<details class="check" data-s="{check.status}"{" open" if check.status == "failed" else ""}>',
             f'<summary><span class="badge b-{check.status}">{check.status}</span>'
             f'<span class="id">{_e(check.id)}</span><span>{_e(check.title)}</span>{note}'
             f'<span class="sev">{_e(check.severity)}</span></summary><div class="body">']
    if check.message:
        parts.append(f'<div class="msg">{_e(check.message)}</div>')
    for title, text in evidence_blocks(check.evidence):
        parts.append(f'<div class="blk">{_e(title)}</div><pre>{_e(text)}</pre>')
    if check.source:
        explained = explain(check.source)
        items = "".join(f"<li>{_e(src.describe())}</li>" for src in explained)
        parts.append(f'<div class="src">Source: {_e(check.source)}{f"<ul>{items}</ul>" if items else ""}</div>')
    parts.append("</div></details>")
    return "".join(parts)


def _summary_html(summary: RunSummary) -> str:
    totals = summary.totals
    tiles = "".join(f'<div class="tile {s}"><b>{totals.get(s, 0)}</b>{s}</div>' for s in STATUSES)
    groups: dict[str, list[CheckResult]] = defaultdict(list)
    for check in summary.checks:
        groups[check.area or check.id.split(".", 1)[0]].append(check)
    sections = []
    for area in sorted(groups, key=lambda a: (min(_ORDER[c.status] for c in groups[a]), a)):
        checks = sorted(groups[area], key=lambda c: (_ORDER[c.status], c.id))
        bad = sum(c.status == "failed" for c in checks)
        sections.append(f"<h2>{_e(AREAS.get(area, area))} <span class=sev>({len(checks)} checks"
                        f"{f', {bad} failed' if bad else ''})</span></h2>" + "".join(_check_html(c) for c in checks))
    filters = '<div class="filters">' + "".join(
        f'<button data-s="{s}"{" class=on" if s == "all" else ""}>{s}</button>' for s in ("all", *STATUSES)) + "</div>"
    banner = ""
    if summary.interrupted:
        missing = ", ".join(summary.not_run[:40]) + (" ..." if len(summary.not_run) > 40 else "")
        banner = (f'<div class="banner">INTERRUPTED: this run was stopped before it finished; '
                  f'{len(summary.not_run)} planned check(s) did not run: {_e(missing)}</div>')
    return f'{banner}<div class="tiles">{tiles}</div>{filters}{"".join(sections)}'


def _label(summary: RunSummary) -> str:
    """A target as a reader knows it: its --label, else the built-in mock or its URL, with model and profile."""
    target = summary.target
    name = target_name(target, simulated=bool(target.get("simulated")))
    return f"{name} ({target.get('model', '?')}, {target.get('profile', '?')})"


def _cell_value(check: CheckResult) -> str:
    """What a drift point (or a broken check) saw, short enough for a matrix cell: the message after
    its subject ("top_p = 1.0: accepted (HTTP 200)" -> "accepted (HTTP 200)")."""
    if check.status == "passed" or not check.message:
        return ""
    first = check.message.splitlines()[0]
    value = first.split(": ", 1)[1] if check.status == "observed" and ": " in first else first
    return value[:80]


def _matrix_html(summaries: list[RunSummary]) -> str:
    ids = sorted({c.id for s in summaries for c in s.checks})
    by_target = [{c.id: c for c in s.checks} for s in summaries]
    head = "".join(f"<th>{_e(_label(s))}</th>" for s in summaries)
    rows = []
    for cid in ids:
        cells = []
        for table in by_target:
            check = table.get(cid)
            status = check.status if check else "-"
            tip = _e(check.message) if check and check.message else ""
            value = _cell_value(check) if check else ""
            shown = f'{status}<span class="v">{_e(value)}</span>' if value else status
            cells.append(f'<td class="c {status}" title="{tip}">{shown}</td>')
        rows.append(f'<tr><td class="id">{_e(cid)}</td>{"".join(cells)}</tr>')
    return f'<h2>Compatibility matrix</h2><table class="matrix"><tr><th>check</th>{head}</tr>{"".join(rows)}</table>'


def render_html(summaries: list[RunSummary], loads: list[dict[str, Any]] | None = None) -> str:
    """One run: its report. Several: the checks x targets matrix, then each run. Load summaries
    (from `chatconf load`) add a targets x metrics latency comparison."""
    loads = loads or []
    single = len(summaries) == 1 and not loads
    title = ("chatconf conformance report" if single else
             "chatconf compatibility matrix" if summaries else "chatconf latency comparison")
    if single:
        first = summaries[0]
        meta = f"{_e(_label(first))} &middot; started {_e(first.started)} &middot; {first.duration_s:.1f} s"
        if first.target.get("simulated"):
            meta += " &middot; target: built-in mock (simulated)"
        body = _summary_html(first)
    else:
        meta = " &middot; ".join(part for part in (
            f"{len(summaries)} conformance run(s)" if summaries else "",
            f"{len(loads)} load run(s)" if loads else "") if part)
        body = load_table_html(loads) if loads else ""
        if len(summaries) > 1:
            body += _matrix_html(summaries)
        for s in summaries:
            body += f"<h2>{_e(_label(s))}</h2>{_summary_html(s)}"
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_CSS}</style></head>"
            f"<body><header><h1>{title}</h1><div class=meta>{meta}</div></header><main>{body}</main>"
            f"<script>{_JS}</script></body></html>\n")


def write_html(summaries: list[RunSummary], path: Path, loads: list[dict[str, Any]] | None = None) -> Path:
    from ..outputs import write_atomic
    return write_atomic(path, render_html(summaries, loads))

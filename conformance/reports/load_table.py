"""Load summaries side by side: one row per target and region, one column per latency metric, the best
value of each column marked. Comparing regions (or gateways) is why people load-test more than one."""

from __future__ import annotations

import html
from typing import Any

REGIONS = ("singapore", "virginia", "beijing")

# (column title, metric key, statistic, lower is better)
COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("TTFT p50", "ttft_ms", "p50", True), ("TTFT p99", "ttft_ms", "p99", True),
    ("ITL p50", "itl_ms", "p50", True), ("ITL p99", "itl_ms", "p99", True),
    ("TPOT p50", "tpot_ms", "p50", True), ("E2E p50", "e2e_ms", "p50", True), ("E2E p99", "e2e_ms", "p99", True),
)


def target_name(target: dict[str, Any], *, simulated: bool = False) -> str:
    """A target as a reader knows it: its label, else the built-in mock, else its URL."""
    if target.get("label"):
        return str(target["label"])
    return "built-in mock" if simulated or target.get("kind") == "mock" else str(target.get("base_url", "?"))


def is_load_summary(data: Any) -> bool:
    return isinstance(data, dict) and data.get("tool") == "chatconf" and isinstance(data.get("regions"), dict) \
        and "checks" not in data


def load_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (summary, region) with the numbers the table shows."""
    rows = []
    for summary in summaries:
        target = summary.get("target") or {}
        name = target_name(target, simulated=bool(summary.get("simulated")))
        for region, stats in sorted((summary.get("regions") or {}).items()):
            if not isinstance(stats, dict):
                continue
            requests = int(stats.get("requests") or 0)
            failures = int(stats.get("failures") or 0)
            # a documented region is shown with its target; any other key is already the user's --label
            shown = f"{name} / {region}" if region in REGIONS or target.get("label") else region
            row = {"target": shown, "simulated": bool(stats.get("simulated")),
                   "requests": requests, "failures": failures,
                   "error_rate": failures / requests if requests else None,
                   "requests_per_s": stats.get("requests_per_s"),
                   "violations": stats.get("conformance_violations", 0)}
            for title, metric, stat, _ in COLUMNS:
                value = (stats.get(metric) or {}).get(stat) if isinstance(stats.get(metric), dict) else None
                row[title] = value if isinstance(value, int | float) else None
            rows.append(row)
    return rows


def load_table_html(summaries: list[dict[str, Any]]) -> str:
    rows = load_rows(summaries)
    best = {}
    for title, _, _, lower in COLUMNS:
        values = [r[title] for r in rows if r[title] is not None]
        if len(values) > 1:
            best[title] = min(values) if lower else max(values)
    head = "".join(f"<th>{t}</th>" for t in ("target / region", "requests", "errors", "req/s",
                                            *(c[0] for c in COLUMNS), "stream violations"))
    body = []
    for r in rows:
        rate = f" ({r['error_rate']:.1%})" if r["error_rate"] else ""
        cells = [f'<td class="id">{html.escape(r["target"])}{" (simulated)" if r["simulated"] else ""}</td>',
                 f"<td>{r['requests']}</td>",
                 f"<td>{r['failures']}{rate}</td>",
                 f"<td>{_num(r['requests_per_s'])}</td>"]
        for title, *_ in COLUMNS:
            mark = ' class="c passed"' if title in best and r[title] == best[title] else ""
            cells.append(f"<td{mark}>{_num(r[title])}</td>")
        cells.append(f"<td>{r['violations']}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    note = ("<p class=src>milliseconds; exact percentiles of successful requests; "
            "the best value of each column in green</p>")
    return f'<h2>Latency by target and region</h2><table class="matrix"><tr>{head}</tr>{"".join(body)}</table>{note}'


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)

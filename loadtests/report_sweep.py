"""sweep.html: latency against load per target, the capacity (highest load meeting every objective)
marked, and each step's figures; self-contained like the other reports."""

from __future__ import annotations

from typing import Any

from .report_html import CSS, _chart, _esc


def render_sweep(doc: dict[str, Any]) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>chatconf capacity sweep</title>"
             f"<style>{CSS}</style></head><body><h1>chatconf capacity sweep</h1>"]
    if doc.get("simulated"):
        parts.append('<p class="banner">SIMULATED targets (the embedded mock): the capacity is the harness\'s, '
                     "not a server's.</p>")
    if doc.get("interrupted"):
        parts.append('<p class="banner">INTERRUPTED: the sweep was stopped before it finished; it is partial.</p>')
    parts.append(f"<p>Objectives: <code>{_esc(', '.join(doc.get('objectives') or []) or 'none')}</code>; "
                 f"{doc.get('step_run_time_s', 0):g} s per step. Times in ms.</p>")
    for label, result in (doc.get("targets") or {}).items():
        steps = sorted(result.get("steps") or [], key=lambda s: s["load"])
        unit = result.get("unit", "")
        capacity = result.get("capacity")
        head = (f"capacity <b>{capacity:g} {_esc(unit)}</b>" if capacity is not None
                else "<b>no load met the objectives</b>")
        parts.append(f"<h2>{_esc(label)}</h2><p>{head} ({_esc(result.get('stopped'))}).</p>")
        series = [(name, [(s["load"], s[key]) for s in steps if s.get(key) is not None])
                  for name, key in (("ttft p50", "ttft_p50_ms"), ("ttft p99", "ttft_p99_ms"),
                                    ("tpot p50", "tpot_p50_ms"), ("e2e p99", "e2e_p99_ms"))]
        if capacity is not None:  # the knee: a vertical marker at the capacity
            top = max((y for _, pts in series for _, y in pts), default=1.0)
            series.append((f"capacity {capacity:g}", [(capacity, 0.0), (capacity, top)]))
        parts.append(_chart(series, x_label=f"load ({unit})", y_label="ms", dashed=[len(series) - 1]
                            if capacity is not None else ()))
        rows = "".join(
            f"<tr><td>{s['load']:g}</td><td class='{'ok' if s['passed'] else 'bad'}'>"
            f"{'met' if s['passed'] else 'missed'}</td><td>{_v(s.get('requests_per_s'))}</td>"
            f"<td>{_v(s.get('error_rate_pct'))}</td><td>{_v(s.get('ttft_p50_ms'))}</td><td>{_v(s.get('ttft_p99_ms'))}</td>"
            f"<td>{_v(s.get('tpot_p50_ms'))}</td><td>{_v(s.get('e2e_p99_ms'))}</td>"
            f"<td style='text-align:left'>{_esc('; '.join(s.get('missed') or []) or '')}"
            f"{_esc(' generator saturated: ' + s['saturated'][0]) if s.get('saturated') else ''}</td></tr>"
            for s in steps)
        parts.append(f"<table><tr><th>load ({_esc(unit)})</th><th>verdict</th><th>req/s</th><th>error %</th>"
                     f"<th>ttft p50</th><th>ttft p99</th><th>tpot p50</th><th>e2e p99</th><th>why</th></tr>{rows}"
                     "</table>")
    parts.append("</body></html>")
    return "".join(parts)


def _v(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"

"""report.html: one self-contained page (inline SVG and CSS, no scripts, no network).

Sections: run header (SIMULATED banner when the target is the mock), the verdicts, the per-region table,
TTFT CDF per region, ITL histogram, throughput and errors over time, conformance violations,
the calibration result when one was run, and the metric definitions.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
W, H = 610, 270
ML, MR, MT, MB = 54, 150, 14, 40


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9 and len(ticks) < 20:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt_tick(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def _chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    x_label: str,
    y_label: str,
    x_max: float | None = None,
    y_max: float | None = None,
    step: bool = False,
    dashed: Sequence[int] = (),
    colors: Sequence[str] | None = None,
) -> str:
    """A line chart (or step chart) in inline SVG with axes, ticks and a legend."""
    pts = [p for _, s in series for p in s]
    if not pts:
        return '<p class="empty">no data</p>'
    xmax = x_max if x_max is not None else max(p[0] for p in pts)
    ymax = y_max if y_max is not None else max(p[1] for p in pts)
    xmin = min(0.0, min(p[0] for p in pts))
    xmax = xmax if xmax > xmin else xmin + 1
    ymax = ymax if ymax > 0 else 1
    legend = max((len(name) for name, s in series if s), default=0) * 6.2 + 42  # legends are never cut
    width = max(W, int(W - MR + legend))
    pw, ph = width - ML - max(MR, int(legend)), H - MT - MB

    def sx(x: float) -> float:
        return ML + (min(x, xmax) - xmin) / (xmax - xmin) * pw

    def sy(y: float) -> float:
        return MT + ph - min(y, ymax) / ymax * ph

    out = [
        f'<svg viewBox="0 0 {width} {H}" width="{width}" height="{H}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for t in _nice_ticks(xmin, xmax):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{MT + ph}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{MT + ph + 14}" class="tick" text-anchor="middle">{_fmt_tick(t)}</text>')
    for t in _nice_ticks(0, ymax):
        y = sy(t)
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{ML - 5}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt_tick(t)}</text>')
    out.append(f'<text x="{ML + pw / 2}" y="{H - 6}" class="axis" text-anchor="middle">{_esc(x_label)}</text>')
    out.append(
        f'<text x="12" y="{MT + ph / 2}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 12 {MT + ph / 2})">{_esc(y_label)}</text>'
    )
    for i, (name, s) in enumerate(series):
        if not s:
            continue
        color = colors[i] if colors else COLORS[i % len(COLORS)]
        coords = []
        prev_y = None
        for x, y in s:
            if step and prev_y is not None:
                coords.append(f"{sx(x):.1f},{sy(prev_y):.1f}")
            coords.append(f"{sx(x):.1f},{sy(y):.1f}")
            prev_y = y
        dash = ' stroke-dasharray="5 3"' if i in dashed else ""
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{" ".join(coords)}"/>')
        ly = MT + 10 + 16 * i
        lx = ML + pw + 10
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 16}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 20}" y="{ly + 4}" class="legend">{_esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _cdf(values: Sequence[float], max_points: int = 400) -> list[tuple[float, float]]:
    data = sorted(values)
    n = len(data)
    if not n:
        return []
    idx = range(n) if n <= max_points else sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [(data[i], (i + 1) / n) for i in idx]


def _hist(values: Sequence[float], edges: Sequence[float]) -> list[tuple[float, float]]:
    counts = [0] * (len(edges) - 1)
    width = edges[1] - edges[0]
    for v in values:
        k = int((v - edges[0]) / width)
        if 0 <= k < len(counts):
            counts[k] += 1
        elif k >= len(counts):
            counts[-1] += 1
    total = max(1, len(values))
    pts = [(edges[i], counts[i] / total) for i in range(len(counts))]
    pts.append((edges[-1], counts[-1] / total))
    return pts


def _p(values: Sequence[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return 0.0
    return data[min(len(data) - 1, int(q / 100 * (len(data) - 1)))]


_COLUMN_NAMES = {"queue_ttft_ms": "queue-inclusive ttft", "queue_ms": "send lag"}


def _region_table(summary: dict[str, Any]) -> str:
    cols = [
        ("requests", None),
        ("failures", None),
        ("requests_per_s", None),
        ("output_tokens_per_s", None),
        ("ttft_ms", "p50"),
        ("ttft_ms", "p90"),
        ("ttft_ms", "p99"),
        ("first_event_ms", "p50"),
        ("first_content_ms", "p50"),
        ("itl_ms", "p50"),
        ("itl_ms", "p99"),
        ("tpot_ms", "p50"),
        ("e2e_ms", "p50"),
        ("e2e_ms", "p99"),
        ("e2e_stream_ms", "p50"),
        ("conformance_violations", None),
    ]
    if any((r.get("queue_ttft_ms") or {}).get("count") for r in summary.get("regions", {}).values()):
        cols += [("queue_ttft_ms", "p50"), ("queue_ttft_ms", "p99"), ("queue_ms", "p99")]  # open loop
    head = "".join(f"<th>{_esc(_COLUMN_NAMES.get(k, k.replace('_ms', '').replace('_', ' ')))}{' ' + q if q else ''}</th>"
                   for k, q in cols)
    rows = []
    for label, r in summary.get("regions", {}).items():
        cells = []
        for key, q in cols:
            v = r.get(key)
            if q:
                v = (v or {}).get(q)
            if isinstance(v, float):
                v = f"{v:.1f}"
            cells.append(f"<td>{_esc('-' if v is None else v)}</td>")
        name = _esc(label) + (' <span class="sim">simulated</span>' if r.get("simulated") else "")
        rows.append(f"<tr><th>{name}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>region</th>{head}</tr>{''.join(rows)}</table>"


def _slo_html(slo: dict[str, Any] | None) -> str:
    """Each objective with the measured value and its verdict; goodput under the latency objectives."""
    if not slo:
        return ""
    rows = "".join(
        f'<tr><td style="text-align:left"><code>{_esc(r.get("objective"))}</code></td><td>{_esc(r.get("scope"))}</td>'
        f"<td>{_esc('-' if r.get('measured') is None else r['measured'])} {_esc(r.get('unit'))}</td>"
        f'<td class="{"ok" if r.get("passed") else "bad"}">{"pass" if r.get("passed") else "FAIL"}</td></tr>'
        for r in slo.get("objectives", [])
    )
    verdict = "met" if slo.get("passed") else "NOT MET"
    good = ""
    if "goodput_per_s" in slo:
        good = (f"<p>Goodput: <b>{slo['goodput_per_s']:g} requests/s</b> met every latency objective "
                f"({_esc(', '.join(slo.get('goodput_objectives', [])))}).</p>")
    return (f'<h2>Service-level objectives: {verdict}</h2><table><tr><th>objective</th><th>scope</th>'
            f"<th>measured</th><th>verdict</th></tr>{rows}</table>{good}")


def _error_counts(region: dict[str, Any]) -> dict[str, int]:
    """Every failure kind with its count: an error code's detail ("429:limit_requests") where the answer
    had one, else the kind itself (dropped connections, connect errors and timeouts carry no code)."""
    out: dict[str, int] = {}
    detail = region.get("errors_by_detail") or {}
    for kind, count in (region.get("errors_by_code") or {}).items():
        parts = {k: v for k, v in detail.items() if k.split(":", 1)[0] == kind}
        out.update(parts)
        rest = count - sum(parts.values())
        if rest > 0:
            out[kind] = rest
    return out


def _timeline(samples: Sequence[dict[str, Any]], labels: Sequence[str]) -> tuple[str, str]:
    if not samples:
        return '<p class="empty">no requests</p>', '<p class="empty">no requests</p>'
    t0 = min(s["t"] for s in samples)
    done: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    tokens: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    errors: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    last = 0
    for s in samples:
        end = s["t"] - t0 + (s.get("e2e_stream_ms") or s.get("headers_ms") or 0) / 1000.0
        sec = int(end)
        last = max(last, sec)
        if s["ok"]:
            done[s["region"]][sec] += 1
            tokens[s["region"]][sec] += s.get("completion_tokens") or 0
        else:
            errors[f"{s['region']} {s['error']}"][sec] += 1
    secs = range(last + 1)
    colors = [COLORS[i % len(COLORS)] for i in range(len(labels))]
    thr = [(f"{lb}", [(float(t), float(tokens[lb][t])) for t in secs]) for lb in labels]
    chart = _chart(
        thr, x_label="seconds since start (by completion)", y_label="output tokens per second", step=True, colors=colors
    )
    req = [(f"{lb} ok", [(float(t), float(done[lb][t])) for t in secs]) for lb in labels]
    err = [(k, [(float(t), float(v[t])) for t in secs]) for k, v in sorted(errors.items())]
    err_colors = ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    req_chart = _chart(
        req + err,
        x_label="seconds since start (by completion)",
        y_label="requests per second",
        step=True,
        dashed=range(len(req), len(req) + len(err)),
        colors=colors + [err_colors[i % len(err_colors)] for i in range(len(err))],
    )
    if not errors:
        req_chart += '<p class="ok">no failed requests</p>'
    return chart, req_chart


def _calibration(cal: dict[str, Any]) -> str:
    parts = ["<h2>Calibration: the harness's own bias</h2>", f"<p>{_esc(cal.get('note', ''))}</p>"]
    steps = cal.get("steps") or []
    if steps:
        head = (
            "<tr><th>streams</th><th>requests</th><th>TTFT bias p50</th><th>p99</th><th>ITL bias p50</th>"
            "<th>p99</th><th>loop lag p99</th><th>CPU % (load gen)</th><th>within tolerance</th></tr>"
        )
        rows = []
        for st in steps:
            b = st.get("bias_ms", {})
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{_esc(v)}</td>"
                    for v in (
                        st.get("users"),
                        st.get("requests"),
                        b.get("ttft_ms", {}).get("p50"),
                        b.get("ttft_ms", {}).get("p99"),
                        b.get("itl_ms", {}).get("p50"),
                        b.get("itl_ms", {}).get("p99"),
                        st.get("loop_lag_p99_ms"),
                        st.get("cpu_percent"),
                        "yes" if st.get("within_tolerance") else "NO",
                    )
                )
                + "</tr>"
            )
        parts.append(f"<table>{head}{''.join(rows)}</table>")
        series = []
        for metric in ("ttft_ms", "itl_ms"):
            for q in ("p50", "p99"):
                pts = [(float(st["users"]), float(st["bias_ms"].get(metric, {}).get(q) or 0)) for st in steps]
                series.append((f"{metric.replace('_ms', '')} bias {q}", pts))
        parts.append(_chart(series, x_label="concurrent streams", y_label="measured - server-actual (ms)"))
    if cal.get("per_metric"):
        rows = []
        for metric, qs in cal["per_metric"].items():
            rows.append(
                f"<tr><th>{_esc(metric)}</th>"
                + "".join(f"<td>{_esc(qs.get(q))}</td>" for q in ("p50", "p90", "p99", "mean"))
                + "</tr>"
            )
        parts.append(
            "<h3>Bias per metric at the reference step (ms)</h3><table><tr><th>metric</th><th>p50</th>"
            f"<th>p90</th><th>p99</th><th>mean</th></tr>{''.join(rows)}</table>"
        )
    if cal.get("saturation_streams") is not None:
        parts.append(
            f"<p><b>Generator saturation:</b> within tolerance up to "
            f"{_esc(cal['saturation_streams'])} concurrent streams per worker process.</p>"
        )
    return "".join(parts)


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3}tr th:first-child{text-align:left}.banner{background:#fff3cd;border:1px solid #e0c060;
padding:8px 12px;font-weight:600}.sim{background:#fff3cd;border-radius:3px;padding:0 4px;font-size:11px}
.tick{font-size:10px;fill:#555}.axis{font-size:12px;fill:#333}.legend{font-size:11px;fill:#222}
.grid{display:flex;flex-wrap:wrap;gap:18px}.grid>div{flex:0 0 auto}.ok{color:#2a7}.bad{color:#c22;font-weight:600}.empty{color:#888}
code{background:#f3f3f3;padding:0 3px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{font-weight:600}"""


def render_html(summary: dict[str, Any], samples: Sequence[dict[str, Any]]) -> str:
    labels = list(summary.get("regions", {}))
    ok = [s for s in samples if s["ok"]]
    target = summary.get("target") or {}
    title = f"chatconf load report: {', '.join(labels) or 'no regions'}"
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{_esc(title)}</h1>"
    ]
    if summary.get("simulated"):
        parts.append(
            '<p class="banner">SIMULATED: these numbers come from the embedded mock server with '
            "simulated region latency presets. They measure the harness, not Alibaba Cloud.</p>"
        )
    mode = summary.get("mode", "closed")
    desc = f"{mode} loop, {summary.get('users')} users"
    if summary.get("rate"):
        desc += f", {summary['rate']:g} req/s {summary.get('arrivals')} arrivals"
    if summary.get("workers"):
        desc += f", {summary['workers']} worker processes"
        if summary.get("workers_reporting", summary["workers"]) != summary["workers"]:
            desc += f" ({summary['workers_reporting']} reporting at the end)"
    if summary.get("users_running") is not None and summary["users_running"] != summary.get("users"):
        desc += f", {summary['users_running']} users running at the end"
    parts.append(
        f"<p>Started {_esc(summary.get('started'))}, {summary.get('duration_s', 0):.1f} s, {_esc(desc)}; "
        f"model <code>{_esc(target.get('model'))}</code>, profile <code>{_esc(target.get('profile'))}</code>. "
        "All times in ms; percentiles exact from raw samples (linear interpolation).</p>"
    )
    urls = target.get("base_urls") or {}
    if urls:
        parts.append("<p>" + "; ".join(f"<b>{_esc(k)}</b>: <code>{_esc(v)}</code>" for k, v in urls.items()) + "</p>")
    if summary.get("interrupted"):
        parts.append('<p class="banner">INTERRUPTED: the run was stopped before its end (Ctrl-C); '
                     "every figure below is partial.</p>")
    warnings = (summary.get("generator") or {}).get("warnings") or []
    if warnings:
        parts.append('<div class="banner"><b>Load generator saturated</b>: these latencies include the '
                     "generator's own delays.<ul>" + "".join(f"<li>{_esc(w)}</li>" for w in warnings) + "</ul></div>")
    verdicts = summary.get("verdicts") or []
    if verdicts:
        parts.append(
            '<h2>Verdicts</h2><ul class="banner">'
            + "".join(f"<li><b>{_esc(v.get('name'))}</b>: {_esc(v.get('message'))}</li>" for v in verdicts)
            + "</ul>"
        )
    parts.append(_slo_html(summary.get("slo")))
    parts.append("<h2>Per region</h2>" + _region_table(summary))

    ttft_series = [
        (lb, _cdf([s["ttft_ms"] for s in ok if s["region"] == lb and s["ttft_ms"] is not None])) for lb in labels
    ]
    fc_series = [
        (
            f"{lb} first content",
            _cdf([s["first_content_ms"] for s in ok if s["region"] == lb and s["first_content_ms"] is not None]),
        )
        for lb in labels
    ]
    all_ttft = [s["ttft_ms"] for s in ok if s["ttft_ms"] is not None]
    x_max = _p(all_ttft + [s["first_content_ms"] for s in ok if s["first_content_ms"] is not None], 99.5) * 1.05
    region_colors = [COLORS[i % len(COLORS)] for i in range(len(labels))]
    cdf = _chart(
        ttft_series + fc_series,
        x_label="ms since send",
        y_label="fraction of requests",
        x_max=x_max or None,
        y_max=1.0,
        dashed=range(len(ttft_series), 2 * len(ttft_series)),
        colors=region_colors * 2,
    )
    itl_all = [x for s in ok for x in s["itl_ms"]]
    if itl_all:
        hi = max(_p(itl_all, 99.5) * 1.1, 1.0)
        edges = [hi * i / 40 for i in range(41)]
        hist = _chart(
            [(lb, _hist([x for s in ok if s["region"] == lb for x in s["itl_ms"]], edges)) for lb in labels],
            x_label="gap between token events (ms; last bin includes the tail)",
            y_label="fraction of gaps",
            step=True,
            colors=region_colors,
        )
    else:
        hist = '<p class="empty">no inter-token gaps</p>'
    thr, errs = _timeline(samples, labels)
    parts.append(
        '<div class="grid">'
        f"<div><h2>TTFT CDF (solid) and first visible content (dashed)</h2>{cdf}</div>"
        f"<div><h2>ITL histogram (per event, pooled)</h2>{hist}</div>"
        f"<div><h2>Throughput over time</h2>{thr}</div>"
        f"<div><h2>Completed (solid) and failed (dashed) requests over time</h2>{errs}</div></div>"
    )

    viol_rows = []
    for label, r in summary.get("regions", {}).items():
        for v in r.get("violation_samples") or ():
            viol_rows.append(
                f"<tr><th>{_esc(label)}</th><td>{_esc(v.get('rule'))}</td><td>{_esc(v.get('event'))}</td>"
                f'<td>{_esc(v.get("pointer"))}</td><td style="text-align:left">{_esc(v.get("message"))}</td>'
                f"<td>{_esc(v.get('request_id') or '')}</td></tr>"
            )
    parts.append("<h2>Conformance (same pass)</h2>")
    if viol_rows:
        parts.append(
            "<table><tr><th>region</th><th>rule</th><th>event</th><th>pointer</th><th>message</th>"
            f"<th>request id</th></tr>{''.join(viol_rows)}</table>"
        )
    else:
        checker = (summary.get("generator") or {}).get("conformance_checker", "stream rules")
        parts.append(f'<p class="ok">No stream rule violations in {len(samples)} responses ({_esc(checker)}).</p>')
    errors = {lb: _error_counts(r) for lb, r in summary.get("regions", {}).items()}
    if any(errors.values()):
        parts.append(
            "<h3>Errors</h3><ul>"
            + "".join(
                f"<li><b>{_esc(lb)}</b>: {_esc(', '.join(f'{k} x{v}' for k, v in e.items()))}</li>"
                for lb, e in errors.items()
                if e
            )
            + "</ul>"
        )
    if summary.get("calibration"):
        parts.append(_calibration(summary["calibration"]))
    gen = summary.get("generator") or {}
    lag = gen.get("loop_lag_ms") or {}
    if lag.get("count"):
        parts.append(
            f"<h2>Load generator health</h2><p>Event-loop lag (a greenlet's 10 ms sleep overshoot): "
            f"p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, max {lag['max']:.1f} ms. "
            f"CPU by worker: {_esc({k: v.get('mean') for k, v in (gen.get('cpu_percent_by_worker') or {}).items()})}. "
            f"Requests in flight at the stop (not counted): {gen.get('cancelled_at_stop', 0)}. "
            f"Backoff (after 429/503 or a refused/reset connection): {(gen.get('backoff') or {}).get('count', 0)} "
            f"waits, {(gen.get('backoff') or {}).get('seconds', 0):.1f} s.</p>"
        )
    defs = summary.get("definitions") or {}
    if defs:
        parts.append(
            "<h2>Definitions</h2><dl>"
            + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in defs.items())
            + "</dl>"
        )
    parts.append("</body></html>")
    return "".join(parts)

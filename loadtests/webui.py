"""chatconf's latency metrics in Locust's web UI: a "chatconf" tab and GET /chatconf/metrics.

Locust's request table has one STREAM row per target, so its request count and RPS are the real
ones; TTFT, ITL, TPOT and the other stream metrics are not requests and would inflate both. They
come from the exact samples the master already collects (loadtests.aggregate), shown in a tab of
their own (Locust's extendedTabs / extendedTables / extendedStats) and as JSON for scripts.
"""

from __future__ import annotations

import json
from typing import Any

from .aggregate import DIST_KEYS
from .options import targets_from_host

ROUTE = "/chatconf/metrics"
TAB_KEY = "chatconf"
PERCENTILES = ("p50", "p90", "p99")
# (column key, title): one row per target in the tab
COLUMNS = (
    ("name", "Target"),
    ("requests", "Requests"),
    ("failures", "Failures"),
    ("requests_per_s", "Req/s"),
    ("ttft_ms_p50", "TTFT p50 ms"),
    ("ttft_ms_p90", "TTFT p90"),
    ("ttft_ms_p99", "TTFT p99"),
    ("first_content_ms_p50", "1st content p50"),
    ("itl_ms_p50", "ITL p50 ms"),
    ("itl_ms_p99", "ITL p99"),
    ("tpot_ms_p50", "TPOT p50 ms"),
    ("e2e_ms_p50", "E2E p50 ms"),
    ("e2e_ms_p99", "E2E p99"),
)


def metrics(runtime: Any) -> dict[str, Any]:
    """Per target: request counts and the exact distributions of every stream metric, so far."""
    collector = runtime.collector
    labels = list(runtime.targets.by_label) if runtime.targets else []
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for sample in list(collector.samples):
        by_label.setdefault(sample["region"], []).append(sample)
    duration = collector.duration_s
    regions = {}
    for label, samples in by_label.items():
        full = collector.region_summary(samples, duration)
        keep = ("requests", "failures", "requests_per_s", "errors_by_code", *DIST_KEYS, "queue_ttft_ms")
        regions[label] = {key: full[key] for key in keep if key in full}
    return {
        "simulated": bool(runtime.targets and runtime.targets.simulated),
        "duration_s": round(duration, 3),
        "regions": regions,
    }


def table_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tab's rows: one per target, percentiles flattened into columns."""
    rows = []
    for label, region in data["regions"].items():
        row: dict[str, Any] = {"name": label}
        for key, _title in COLUMNS[1:]:
            metric, _, pct = key.rpartition("_")
            if pct in PERCENTILES:
                row[key] = (region.get(metric) or {}).get(pct)
            else:
                row[key] = region.get(key)
        rows.append(row)
    return rows


def install(environment: Any, runtime: Any) -> None:
    """Add the route and the tab to the web UI (no-op headless and on workers)."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return
    from flask import Response, jsonify, request

    web_ui.template_args["extendedTabs"] = [{"title": "chatconf latency", "key": TAB_KEY}]
    web_ui.template_args["extendedTables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in COLUMNS]}
    ]

    @web_ui.app.before_request
    def check_host() -> Response | None:
        """A Host the targets cannot be read from is refused before the run starts, in the form."""
        if request.path != "/swarm" or request.method != "POST":
            return None
        host = (request.form.get("host") or "").strip()
        if not host or host == runtime.idle_host:
            return None
        try:
            targets_from_host(host)
        except ValueError as exc:
            return jsonify({"success": False, "message": f"chatconf: {exc}", "host": environment.host})
        return None

    @web_ui.app.route(ROUTE)
    def chatconf_metrics() -> Response:
        return jsonify(metrics(runtime))

    @web_ui.app.after_request
    def add_chatconf_rows(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            rows = table_rows(metrics(runtime))
            body["extendedStats"] = [{"key": TAB_KEY, "data": rows}]
            response.set_data(json.dumps(body))
        return response

"""What the demo prints once its worker answers: the curl commands that ask it about its tables,
where its metrics are and what reads them, and where its output records go."""

from __future__ import annotations

from streams.plan.pipeline import Pipeline


def demo_commands(pipeline: Pipeline, web_port: int, users: list[str]) -> str:
    """The text block the demo prints for a worker whose API is on ``127.0.0.1:web_port``, with
    a point query per table for each of ``users``."""
    api = f"http://127.0.0.1:{web_port}"
    lines = ["", "The windows are filling. In another terminal:", ""]
    for table in pipeline.tables:
        lines += [f"  curl -s {api}/api/tables/{table.name}/keys/{user}" for user in users]
    lines += [
        f"  curl -s {api}/api/tables  # the catalog",
        f"  curl -s {api}/health      # liveness; {api}/ready is readiness",
        "",
        f"Metrics: {api}/metrics (Prometheus text format), for example",
        f"  curl -s {api}/metrics | grep -E '^continust_(consumer_lag|events|e2e_latency)'",
        "  every family is described in docs/operations-metrics.md; deploy/prometheus/alerts.yaml",
        "  and deploy/grafana/dashboards/continust.json alert on them and chart them",
        "  (docker-compose.yml runs both; docs/operations.md says what each alert means)",
    ]
    outputs = [f"{t.output!r} ({t.name}, emit {t.emit})" for t in pipeline.tables if t.output]
    if outputs:
        lines += ["", f"Output records are in the topics {', '.join(outputs)}. Ctrl-C stops the demo."]
    return "\n".join([*lines, ""])

"""The monitoring files the project ships, read for the tests: the alert rules
(deploy/prometheus/alerts.yaml), the Grafana dashboard (deploy/grafana/dashboards) with the
metric names their queries use, and the files docker-compose.yml mounts into a service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "continust.json"
COMPOSE = ROOT / "docker-compose.yml"

#: Grafana's interval variables, as Prometheus evaluates a query outside Grafana
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
#: metric names: every continust family, and Prometheus' own ``up``
METRIC_NAME = re.compile(r"\b(continust_[a-z0-9_]+|up)\b(?!\s*\()")


def alert_groups() -> list[dict[str, Any]]:
    """The rule groups of alerts.yaml."""
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def alert_expressions() -> dict[str, str]:
    """Alert name -> its expression."""
    return {rule["alert"]: rule["expr"] for group in alert_groups() for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> dict[str, str]:
    """``"<panel title> / <refId>"`` -> the target's expression, with Grafana's interval
    variables replaced by durations (as Prometheus can evaluate it)."""
    queries = {}
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, duration in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, duration)
            queries[f"{panel['title']} / {target['refId']}"] = expr
    return queries


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (histogram series by their ``_bucket`` name)."""
    return set(METRIC_NAME.findall(expr))


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_mounts(service: str) -> dict[str, Path]:
    """Path in the container -> the project's file or folder mounted there (bind mounts of
    ``service`` in docker-compose.yml)."""
    mounts = {}
    for volume in compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts

"""The Grafana dashboard and its provisioning: the JSON has unique panel ids, every panel
queries Prometheus through the ``datasource`` variable, and the provisioning files point Grafana
at the compose stack's Prometheus and at the folder the dashboard is mounted in."""

from __future__ import annotations

import yaml

from tests.monitoring_files import ROOT, compose_mounts, dashboard, dashboard_queries, metric_names

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
VARIABLE_SOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_panels_have_unique_ids_and_targets_with_expressions() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and metric_names(target["expr"]), (panel["title"], target)


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    board = dashboard()
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"] == VARIABLE_SOURCE, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", VARIABLE_SOURCE) == VARIABLE_SOURCE, panel["title"]


def test_the_dashboard_shows_the_operations_families() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_queries().values()))
    assert {
        "continust_events_total",
        "continust_output_records_total",
        "continust_consumer_lag_records",
        "continust_late_events_total",
        "continust_invalid_events_total",
        "continust_batch_seconds_bucket",
        "continust_commit_seconds_bucket",
        "continust_e2e_latency_seconds_bucket",
        "continust_stream_time_lag_seconds",
        "continust_rebalances_total",
        "continust_recovery_remaining_records",
        "continust_open_windows",
        "continust_state_bytes",
        "continust_http_request_seconds_bucket",
    } <= used
    quantiles = [expr for expr in dashboard_queries().values() if "histogram_quantile" in expr]
    assert all("_bucket[" in expr and "by (le" in expr for expr in quantiles)


def test_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "continust.yaml").read_text())["providers"]
    mounts = compose_mounts("grafana")
    assert (mounts[provider["options"]["path"]] / "continust.json").exists()
    assert (mounts["/etc/grafana/provisioning"] / "dashboards" / "continust.yaml").exists()

"""A working worker's operations endpoints on the real broker: ``/ready`` answers 503 while the
worker joins its group and restores its table, then 200; ``/health`` is 200; and after a small
backlog every metric family of the runtime is exported and has moved. A real Prometheus scrapes
the worker from its start with the project's alert rules: the target is up, every rule evaluates
without error, every metric the alerts and the dashboard name exists, and every dashboard query
returns data."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, publish, read_all
from tests.integration.conftest import run, wait_until
from tests.integration.prometheus_server import PrometheusServer
from tests.monitoring_files import alert_expressions, alert_groups, dashboard_queries, metric_names

PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"

[[source]]
name = "pings"
topics = ["{src}"]
key = "host"
timestamp = "ts"

[[table]]
name = "counts"
source = "pings"
window = {{ type = "tumbling", size = "1s", retention = "1h" }}
aggregate = {{ n = "count()" }}
emit = "final"
output = "{src}-counts"
"""
HOSTS, SECONDS = 4, 10


def scrape(url: str) -> dict[str, list[Any]]:
    """Family name -> its samples (name, labels, value)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(samples: list[Any], name: str, **labels: str) -> float:
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], PrometheusServer]]:
    """Start a Prometheus scraping the worker on a port (stopped when the test ends)."""
    servers: list[PrometheusServer] = []

    def start(worker_port: int) -> PrometheusServer:
        servers.append(PrometheusServer.start(worker_port, tmp_path / "prometheus"))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def prometheus_loads_the_rules_and_answers_the_dashboard(server: PrometheusServer) -> None:
    """Through Prometheus' HTTP API: the worker's target is up, every rule group is loaded and
    every rule evaluated without error, every metric name of the alerts and of the dashboard
    exists, and every dashboard query returns data."""

    def target_up() -> bool:
        try:
            targets = server.api("targets")["activeTargets"]
        except OSError:
            return False
        return [t["health"] for t in targets] == ["up"]

    wait_until(target_up, 15, "prometheus to scrape the worker", server.log_tail)

    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = server.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = wait_until(rules_evaluated, 15, "every rule evaluated", server.log_tail)
    assert [g["name"] for g in server.api("rules")["groups"]] == [g["name"] for g in alert_groups()]
    assert {rule["name"] for rule in rules} == set(alert_expressions())
    for rule in rules:
        assert rule["health"] == "ok" and not rule.get("lastError"), rule

    queries = dashboard_queries()
    named = set().union(*(metric_names(expr) for expr in [*alert_expressions().values(), *queries.values()]))

    def missing_names() -> set[str]:
        return named - set(server.api("label/__name__/values"))

    wait_until(
        lambda: not missing_names(), 15, "every metric the alerts and the dashboard name", missing_names
    )

    def empty_queries() -> list[str]:
        return [name for name, expr in queries.items() if not server.api("query", query=expr)["result"]]

    wait_until(lambda: not empty_queries(), 15, "data for every dashboard query", empty_queries)


def test_ready_turns_200_and_every_family_moves(
    kafka, run_id, start_worker, prometheus, tmp_path: Path
) -> None:
    app_id, src = f"ops-{run_id}", f"pings-{run_id}"
    run(ensure_topics(kafka, {src: 1}))  # one partition: one stream time, no idle wait
    now = int(time.time() * 1000)
    start = now - now % 1_000 - SECONDS * 1_000
    events = [
        (src, f"h{i % HOSTS}".encode(), orjson.dumps({"host": f"h{i % HOSTS}", "ts": start + i * 100}))
        for i in range(SECONDS * 10)
    ]
    invalid = (src, b"h0", b"{not json")  # one dead letter
    run(publish(kafka, [*events, invalid]))  # the backlog the worker starts with
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, src=src))
    port = free_port()
    server = prometheus(port)  # scraping from the worker's start, so rates cover the backlog
    worker = start_worker(pipeline, port)

    seen: list[tuple[int, str]] = []

    def ready() -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log_tail()}")
        try:
            status, body = worker.get("/ready")
        except OSError:
            return False
        seen.append((status, body["status"]))
        return status == 200

    wait_until(ready, 60, "/ready to answer 200", worker.log_tail)
    # 503s seen on the way name a reason; whether any is seen depends on when the poll lands
    # (the spare worker below is the deterministic 503)
    not_ready = [s for s in seen if s[0] == 503]
    assert {reason for _, reason in not_ready} <= {"not_joined", "no_assignment", "rebalancing", "recovering"}
    status, body = worker.get("/ready")
    assert status == 200 and body["remaining_records"] == 0
    assert set(body["recovery"]) == {f"{app_id}-counts-changelog:0"}
    assert worker.get("/health")[0] == 200

    # the closed windows of the backlog reach the output: the last second's windows stay open
    run(read_all(kafka, f"{src}-counts", (SECONDS - 1) * HOSTS, timeout=30))
    metrics_url = worker.url("/metrics")

    def processed() -> dict[str, list[Any]] | None:
        families = scrape(metrics_url)
        done = (
            total(families["continust_commit_seconds"], "continust_commit_seconds_count") > 0
            and total(families["continust_e2e_latency_seconds"], "continust_e2e_latency_seconds_count") > 0
        )
        return families if done else None

    families = wait_until(processed, 15, "commits and latencies in /metrics", worker.log_tail)

    def value(family: str, name: str | None = None, **labels: str) -> float:
        assert family in families, f"{family} missing from /metrics"
        return total(families[family], name or family, **labels)

    def labelled(family: str) -> list[dict[str, str]]:
        return [s.labels for s in families[family]]

    lag_partitions = {(lb["topic"], lb["partition"]) for lb in labelled("continust_consumer_lag_records")}
    assert (src, "0") in lag_partitions
    assert (f"{app_id}-counts-changelog", "0") not in lag_partitions  # restored, then written here
    assert value("continust_consumer_lag_records", topic=src) == 0  # the backlog is read
    assert value("continust_batch_records", "continust_batch_records_count") > 0
    assert value("continust_batch_records", "continust_batch_records_sum") >= len(events)
    assert value("continust_batch_seconds", "continust_batch_seconds_count") > 0
    assert value("continust_commit_seconds", "continust_commit_seconds_count") > 0
    assert value("continust_commit_failures", "continust_commit_failures_total") == 0
    assert value("continust_rebalances", "continust_rebalances_total") >= 1
    assert value("continust_rebalance_seconds", "continust_rebalance_seconds_total") > 0
    changelogs = {(lb["topic"], lb["partition"]) for lb in labelled("continust_recovery_remaining_records")}
    assert changelogs == {(f"{app_id}-counts-changelog", "0")}
    assert value("continust_recovery_remaining_records") == 0
    assert value("continust_recovery_seconds", "continust_recovery_seconds_count") >= 1
    assert value("continust_open_windows", table="counts") == HOSTS  # the last second's
    assert value("continust_state_bytes", table="counts") > 0
    assert (
        value("continust_e2e_latency_seconds", "continust_e2e_latency_seconds_count", table="counts")
        >= (SECONDS - 1) * HOSTS
    )
    assert (
        value("continust_backpressure_pauses", "continust_backpressure_pauses_total", limit="state_cache")
        == 0
    )
    assert (
        value(
            "continust_http_request_seconds",
            "continust_http_request_seconds_count",
            route="/ready",
            status="200",
        )
        >= 2
    )
    assert value("process_cpu_seconds", "process_cpu_seconds_total") > 0
    assert value("process_resident_memory_bytes") > 0
    assert "python_info" in families
    assert value("continust_ready") == 1
    assert value("continust_invalid_events", "continust_invalid_events_total", reason="not_json") == 1

    prometheus_loads_the_rules_and_answers_the_dashboard(server)

    # a second worker of the group finds nothing to hold (every topic has one partition): it
    # answers 503 no_assignment for as long as it runs, and the first stays ready
    spare = start_worker(pipeline, free_port())

    def settled() -> dict[str, Any] | None:
        try:
            answers = {"first": worker.get("/ready"), "spare": spare.get("/ready")}
        except OSError:
            return None
        statuses = {name: body["status"] for name, (_, body) in answers.items()}
        return answers if statuses == {"first": "ready", "spare": "no_assignment"} else None

    answers = wait_until(settled, 60, "the spare worker to answer no_assignment", spare.log_tail)
    status, body = answers["spare"]
    assert status == 503 and body["ready"] is False and body["remaining_records"] == 0
    assert answers["first"][0] == 200
    spare_families = scrape(spare.url("/metrics"))
    assert total(spare_families["continust_ready"], "continust_ready") == 0
    not_ready_answers = total(
        spare_families["continust_http_request_seconds"],
        "continust_http_request_seconds_count",
        route="/ready",
        status="503",
    )
    assert not_ready_answers >= 1

"""docker-compose.yml and k8s/ are validated offline: they parse, run the worker the way the CLI
defines it, and the pipeline they ship loads."""

from pathlib import Path
from typing import Any, cast

import yaml

from agents.cli import parser
from streams.http_api import core_routes
from streams.pipeline import parse_pipeline

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_a_broker_and_a_worker_with_a_valid_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    args = parser().parse_args(worker["command"][1:])
    assert args.command == "worker" and (ROOT / args.config.removeprefix("/app/")).exists()
    assert worker["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_k8s_statefulset_runs_the_shipped_pipeline() -> None:
    docs = list(yaml.safe_load_all((ROOT / "k8s" / "worker.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ConfigMap", "Service", "StatefulSet"}
    import tomllib

    pipeline = parse_pipeline(tomllib.loads(kinds["ConfigMap"]["data"]["pipelines.toml"]))
    assert pipeline.tables[0].name == "clicks_per_user"
    container = kinds["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    args = parser().parse_args(container["command"][1:])
    assert args.command == "worker" and args.config == "/etc/continust/pipelines.toml"
    probes = {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
    # the probes ask routes the worker serves, open to anyone (no token)
    served = {(route.path, route.scope) for route in core_routes(cast(Any, None))}
    assert {("/health", None), ("/ready", None)} <= served
    env = {e["name"]: e for e in container["env"]}
    assert env["CONTINUST_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

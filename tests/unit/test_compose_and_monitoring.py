"""docker-compose.yml and the monitoring resources are validated offline: the compose file is
valid by the Compose specification's JSON schema and runs the worker and its health check the
way the CLI defines them, and the prometheus-operator resources of k8s/base are valid by their
CRDs' schemas and carry the alert rules of deploy/prometheus/alerts.yaml. (The Dockerfile and
the kustomize manifests: test_deployment_files.py.)"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import yaml

from agents.cli.commands import parser
from streams.api.http_api import core_routes
from tests.monitoring_files import ALERTS, COMPOSE, ROOT, alert_groups, compose, compose_mounts

SCHEMAS = ROOT / "tests" / "schemas"
WORKERS = ("worker-1", "worker-2")


def compose_spec_errors(path: Path) -> str | None:
    """check-jsonschema against its vendored Compose specification schema: None when valid,
    else its report."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.fail("check-jsonschema is missing: it is in the dev extra")
    done = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return None if done.returncode == 0 else done.stdout + done.stderr


def test_compose_is_valid_by_the_compose_specification(tmp_path: Path) -> None:
    assert compose_spec_errors(COMPOSE) is None
    broken = compose()
    broken["services"]["worker-1"]["healthcheck"]["tset"] = ["CMD", "true"]  # the schema can refuse
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    assert "tset" in (compose_spec_errors(tmp_path / "docker-compose.yml") or "")


def test_compose_runs_a_broker_and_two_workers_with_valid_commands() -> None:
    services = compose()["services"]
    volumes, group_ids, host_ports = set(), set(), set()
    for name in WORKERS:
        worker = services[name]
        args = parser().parse_args(worker["command"][1:])
        assert args.command == "worker" and (ROOT / args.config.removeprefix("/app/")).exists()
        assert args.port == 6066 and args.data_dir == "/data"
        assert worker["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert worker["depends_on"] == {"kafka": {"condition": "service_healthy"}}
        assert worker["healthcheck"]["test"] == ["CMD", "continust", "health", "--ready"]
        check = parser().parse_args(worker["healthcheck"]["test"][2:])
        assert check.command == "health" and check.ready
        group_ids.add(worker["environment"]["CONTINUST_GROUP_INSTANCE_ID"])
        (volume,) = worker["volumes"]
        volumes.add(volume.split(":")[0])
        (port,) = worker["ports"]
        host_ports.add(port.split(":")[0])
    assert len(group_ids) == len(volumes) == 2 and host_ports == {"6066", "6067"}
    kafka = services["kafka"]
    assert kafka["environment"]["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_compose_pins_its_images_and_checks_every_service() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        if "image" in service:
            assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), (name, service["image"])
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "http://localhost:9090/-/ready" in services["prometheus"]["healthcheck"]["test"]
    assert "http://localhost:3000/api/health" in services["grafana"]["healthcheck"]["test"]


def test_compose_prometheus_scrapes_both_workers_with_the_alert_rules() -> None:
    mounts = compose_mounts("prometheus")
    assert mounts["/etc/prometheus/alerts.yaml"] == ALERTS
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "continust" and job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    services = compose()["services"]
    expected = {f"{name}:{parser().parse_args(services[name]['command'][1:]).port}" for name in WORKERS}
    assert targets == expected
    for name in ("prometheus", "grafana"):
        for target, source in compose_mounts(name).items():
            assert source.exists(), (name, target, source)


def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"monitoring.coreos.com_{kind}.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cast(jsonschema.protocols.Validator, validator_class(schema))


def test_servicemonitor_scrapes_the_workers_metrics_and_is_valid_by_its_crd() -> None:
    monitor = yaml.safe_load((ROOT / "k8s" / "base" / "servicemonitor.yaml").read_text())
    crd_validator("servicemonitors").validate(monitor)
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "continust"}}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert {(route.path, route.scope) for route in core_routes(cast(Any, None))} >= {("/metrics", None)}
    broken = {**monitor, "spec": {**monitor["spec"], "endpoints": [{"port": 6066}]}}
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("servicemonitors").validate(broken)  # the schema can refuse


def test_prometheusrule_carries_the_alert_rules_and_is_valid_by_its_crd() -> None:
    rule = yaml.safe_load((ROOT / "k8s" / "base" / "prometheusrule.yaml").read_text())
    crd_validator("prometheusrules").validate(rule)
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == alert_groups()
    broken = {**rule, "spec": {"groups": [{"rules": []}]}}  # a group without its name
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("prometheusrules").validate(broken)

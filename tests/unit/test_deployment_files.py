"""docker-compose.yml, the Dockerfile and k8s/ are validated offline: they parse, run the worker
the way the CLI defines it, the pipeline they ship loads, and the manifests kustomize renders
from k8s/base and k8s/overlays/example are valid Kubernetes objects (strict schemas) that run
the worker as the issue asks (non-root, read-only root filesystem, probes on the worker's open
routes, a grace period longer than the worker's shutdown bound)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest

from agents.cli.commands import parser
from streams.api.http_api import core_routes
from streams.plan.pipeline import parse_pipeline
from streams.settings import Settings
from tests.rendered_manifests import ROOT, Instruction, Rendered, dockerfile_stages, render

PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
IMAGE_USER = "10001:10001"


# --- the image ---------------------------------------------------------------------------


def final_stage() -> list[Instruction]:
    return dockerfile_stages()[-1]


def the(stage: list[Instruction], keyword: str) -> Instruction:
    (found,) = [i for i in stage if i.keyword == keyword]
    return found


def test_the_image_is_built_in_stages_on_one_pinned_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    bases = {stage[0].text.split()[0] for stage in stages}
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert stages[0][0].text.endswith(" AS builder")


def test_the_final_stage_runs_as_a_fixed_non_root_user_owning_data() -> None:
    stage = final_stage()
    assert the(stage, "USER").text == IMAGE_USER
    setup = " ".join(i.text for i in stage if i.keyword == "RUN")
    assert "--uid 10001" in setup and "--gid 10001" in setup and "-o 10001 -g 10001" in setup
    assert "/data" in setup and the(stage, "VOLUME").exec_form() == ["/data"]


def test_the_final_stage_copies_only_the_virtualenv_tini_and_the_example_pipeline() -> None:
    copied = sorted(i.text for i in final_stage() if i.keyword in {"COPY", "ADD"})
    assert copied == [
        "--from=builder /opt/continust /opt/continust",
        "--from=builder /usr/bin/tini /usr/bin/tini",
        "examples/pipelines.toml /app/examples/pipelines.toml",
    ]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :] == [
        "!pyproject.toml",
        "!README.md",
        "!windows/",
        "!streams/",
        "!agents/",
        "!examples/",
        "**/__pycache__",
        "**/*.pyc",
    ]


def image_command() -> list[str]:
    stage = final_stage()
    return the(stage, "ENTRYPOINT").exec_form() + the(stage, "CMD").exec_form()


def test_entrypoint_cmd_and_healthcheck_are_exec_form_continust_commands() -> None:
    entrypoint, command = image_command()[:2], image_command()[2:]
    assert entrypoint == ["/usr/bin/tini", "--"]
    assert command[0] == "continust"
    args = parser().parse_args(command[1:])
    assert args.command == "worker" and args.data_dir == "/data" and args.port == 6066
    assert (ROOT / args.config.removeprefix("/app/")).exists()
    options, _, check = the(final_stage(), "HEALTHCHECK").text.partition(" CMD ")
    health = Instruction("CMD", check).exec_form()
    assert health[0] == "continust"
    health_args = parser().parse_args(health[1:])
    assert health_args.command == "health" and health_args.url is None  # the worker's own address
    assert "--timeout=" in options and "--start-period=" in options


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["base", "overlays/example"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param)


def test_every_builtin_object_is_valid_against_the_kubernetes_schemas(rendered: Rendered) -> None:
    version = kubernetes_validate.utils.latest_version()
    kinds = {o["kind"] for o in rendered.objects}
    assert {
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "NetworkPolicy",
        *PROMETHEUS_OPERATOR_KINDS,
    } <= kinds
    for obj in rendered.objects:
        if obj["kind"] not in PROMETHEUS_OPERATOR_KINDS:  # CRs: their own schemas, elsewhere
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_statefulset_runs_the_shipped_pipeline_under_the_images_entrypoint(rendered: Rendered) -> None:
    statefulset = rendered.one("StatefulSet")
    spec = statefulset["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    worker = rendered.worker()
    assert "command" not in worker  # the image's entrypoint (tini) stays PID 1
    assert worker["args"][0] == "continust"
    args = parser().parse_args(worker["args"][1:])
    assert args.command == "worker"
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert mounts[str(Path(args.config).parent)] == "pipeline" and mounts[args.data_dir] == "data"
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    config_map = rendered.one("ConfigMap")
    assert volumes["pipeline"]["configMap"]["name"] == config_map["metadata"]["name"]
    pipeline = parse_pipeline(tomllib.loads(config_map["data"][Path(args.config).name]))
    assert [t.name for t in pipeline.tables] == ["clicks_per_user"]
    assert [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]] == ["data"]
    assert set(mounts.values()) <= set(volumes) | {"data"}


def test_probes_ask_the_workers_open_routes_on_the_named_port(rendered: Rendered) -> None:
    worker = rendered.worker()
    probes = {kind: worker[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: get["path"] for kind, get in probes.items()} == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert {get["port"] for get in probes.values()} == {"http"} and ports["http"] == 6066
    served = {(route.path, route.scope) for route in core_routes(cast(Any, None))}
    assert {("/health", None), ("/ready", None)} <= served  # open to anyone (no token)


def test_pods_and_the_container_are_locked_down(rendered: Rendered) -> None:
    pod = rendered.pod_spec()
    uid, gid = (int(part) for part in IMAGE_USER.split(":"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = rendered.worker()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsNonRoot"] is True
    writable = {m["mountPath"] for m in rendered.worker()["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/data", "/tmp"}
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    resources = rendered.worker()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def plain_env(worker: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in worker["env"] if "value" in e}


def test_the_grace_period_outlasts_the_workers_shutdown_bound(rendered: Rendered) -> None:
    pod = rendered.pod_spec()
    settings = Settings.from_env(plain_env(rendered.worker()))
    assert settings.shutdown_timeout_ms == 30_000
    assert pod["terminationGracePeriodSeconds"] * 1000 > settings.shutdown_timeout_ms


def test_each_pod_is_a_static_group_member_advertising_a_stable_address(rendered: Rendered) -> None:
    env = {e["name"]: e for e in rendered.worker()["env"]}
    fields = {
        name: e["valueFrom"]["fieldRef"]["fieldPath"]
        for name, e in env.items()
        if "fieldRef" in e.get("valueFrom", {})
    }
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    names = list(env)
    for name in ("CONTINUST_GROUP_INSTANCE_ID", "CONTINUST_WEB_HOST"):  # $(VAR): defined before
        assert names.index(name) > max(names.index("POD_NAME"), names.index("POD_NAMESPACE"))
    assert env["CONTINUST_GROUP_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    # the pod's DNS name under the headless Service: the same address after every restart
    peers = rendered.one("StatefulSet")["spec"]["serviceName"]
    assert env["CONTINUST_WEB_HOST"]["value"] == f"$(POD_NAME).{peers}.$(POD_NAMESPACE).svc"
    assert env["CONTINUST_WEB_BIND"]["value"] == "0.0.0.0"


def test_services_pdb_and_the_servicemonitor_select_the_workers(rendered: Rendered) -> None:
    statefulset = rendered.one("StatefulSet")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    services = {s["metadata"]["name"]: s for s in rendered.all("Service")}
    peers = services[statefulset["spec"]["serviceName"]]["spec"]
    assert peers["clusterIP"] == "None" and peers["publishNotReadyAddresses"] is True
    for service in services.values():
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    monitor = rendered.one("ServiceMonitor")["spec"]
    scraped = [
        name
        for name, s in services.items()
        if monitor["selector"]["matchLabels"].items() <= s["metadata"].get("labels", {}).items()
    ]
    # every worker scraped once, ready or not
    assert [services[name]["spec"].get("publishNotReadyAddresses") for name in scraped] == [True]
    assert [(e["port"], e.get("path")) for e in monitor["endpoints"]] == [("http", "/metrics")]


def test_the_network_policy_lets_in_peers_and_monitoring_and_out_to_kafka(rendered: Rendered) -> None:
    policy = rendered.one("NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [6066]
    sources = policy["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in sources
    assert {"podSelector": {"matchLabels": {"app": "continust"}}} in sources
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    bootstrap = plain_env(rendered.worker())["KAFKA_BOOTSTRAP_SERVERS"]
    assert {int(address.rsplit(":", 1)[1]) for address in bootstrap.split(",")} <= egress_ports
    assert {53, 6066} <= egress_ports


def test_the_example_overlay_runs_three_workers_on_a_sasl_cluster_from_a_secret() -> None:
    rendered = render("overlays/example")
    assert rendered.one("Namespace")["metadata"]["name"] == "streaming"
    assert {o["metadata"].get("namespace") for o in rendered.objects if o["kind"] != "Namespace"} == {
        "streaming"
    }
    statefulset = rendered.one("StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    env = {e["name"]: e for e in rendered.worker()["env"]}
    assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "kafka-credentials"
    # the Secret's values stand in; the settings the worker reads from them fit together
    secret = {"KAFKA_SASL_USERNAME": "continust", "KAFKA_SASL_PASSWORD": "secret"}
    checked = Settings.from_env(plain_env(rendered.worker()) | secret).kafka.check()
    assert (checked.protocol, checked.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")

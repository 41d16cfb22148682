"""The rendered example overlay runs: its StatefulSet's worker container (the image's entrypoint
and the container's args and environment, mounts mapped to temp folders, the pipeline from the
ConfigMap; see :mod:`tests.integration.pod_process`) starts against the test broker as PID 1 of
its own PID namespace with a read-only root filesystem, its probes answer as the manifest asks
within the kubelet's budgets, and SIGTERM stops it with exit code 0 within the pod's grace
period. Started again (the pod restarted: same name, same volume), it takes its partitions back
as the same static group member, without a rebalance, and is ready again, although its IP
changed.

The probes are asked every 0.2 s instead of every periodSeconds: their answers turn 200 once
and stay so, so the kubelet's coarser schedule sees the same; each attempt waits the probe's
timeoutSeconds, and the startup probe must succeed within periodSeconds x failureThreshold (a
container that exits fails the test at once). The pipeline's app id gets the run's id, so that
each run has a consumer group of its own on a broker that outlives runs."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

import orjson

from streams.kafka.topic_admin import ensure_topics
from streams.plan.pipeline import parse_pipeline
from tests.integration.broker_io import free_port
from tests.integration.conftest import run, wait_until
from tests.integration.pod_process import HttpProbe, PodProcess
from tests.rendered_manifests import dockerfile_stages, render

POD = "continust-0"
READY_WITHIN_S = 30  # joining the group on the test broker; the kubelet itself has no deadline
JOINED = re.compile(r"Joined group '[^']+' \(generation (\d+)\) with member_id (\S+)")


def run_until_sigterm(pod: PodProcess, log: Path) -> dict[str, float]:
    """Start the pod, follow its probes until it is ready, then SIGTERM it; how long each
    step took. Fails when a probe misses its budget or the exit is not 0 within the grace
    period."""
    probes = pod.probes()

    def log_tail() -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-30:])

    def answers(probe: HttpProbe) -> bool:
        """The probe answers 200; fails at once when the container has exited."""
        assert pod.proc is not None and pod.proc.poll() is None, f"the container exited\n{log_tail()}"
        return probe.status() == 200

    began = time.monotonic()
    pod.start(log)
    try:
        startup, readiness, liveness = (
            probes["startupProbe"],
            probes["readinessProbe"],
            probes["livenessProbe"],
        )
        wait_until(lambda: answers(startup), startup.budget_s, "the startup probe", log_tail)
        started = time.monotonic()
        wait_until(lambda: answers(readiness), READY_WITHIN_S, "the readiness probe", log_tail)
        ready = time.monotonic()
        assert liveness.status() == 200
        assert pod.pid_1_program() == ("1", "tini")  # the entrypoint is PID 1, as in the container
        assert pod.root_read_only()  # readOnlyRootFilesystem: only /data and /tmp are writable
        pod.terminate()
        assert pod.proc is not None
        code = pod.proc.wait(timeout=pod.grace_period_s())
        stopped = time.monotonic()
    finally:
        pod.kill()
    assert code == 0, log_tail()
    return {"start": started - began, "ready": ready - began, "stop": stopped - ready}


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_the_rendered_pod_answers_its_probes_stops_on_sigterm_and_comes_back(
    kafka, run_id, tmp_path: Path
) -> None:
    rendered = render("overlays/example")
    config_map = rendered.one("ConfigMap")
    config = config_map["data"]["pipelines.toml"]
    config_map["data"]["pipelines.toml"] = config.replace('id = "shop-analytics"', f'id = "pod-{run_id}"')
    pipeline = parse_pipeline(tomllib.loads(config))
    run(ensure_topics(kafka, {topic: 1 for source in pipeline.sources for topic in source.topics}))
    pod = PodProcess(rendered, dockerfile_stages()[-1], POD, tmp_path / "pod", kafka, free_port())
    assert [p.path for p in pod.probes().values()] == ["/health", "/ready", "/health"]

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = run_until_sigterm(pod, first_log)
    pod.pod_ip = "127.0.0.2"  # the pod restarted: same name and volume, a new IP
    second = run_until_sigterm(pod, second_log)

    for took in (first, second):
        assert took["start"] < pod.probes()["startupProbe"].budget_s
        assert took["stop"] < pod.grace_period_s()
    for log in (first_log, second_log):
        lines = log_lines(log)
        # the pod's environment reached the worker: JSON logs naming the pod (its member id)
        (start,) = [line for line in lines if line.get("event") == "worker.start"]
        assert start["worker"] == POD and start["app"] == f"pod-{run_id}"
        assert [line["code"] for line in lines if line.get("event") == "worker.exit"] == [0]
    joins = [
        [m.groups() for line in log_lines(log) if (m := JOINED.search(str(line.get("msg", ""))))]
        for log in (first_log, second_log)
    ]
    # the same static member took its assignment back: no new generation, a new member id
    assert joins[0][-1][0] == joins[1][0][0] and joins[1][0][1].startswith(f"{POD}-")
    assert joins[0][-1][1] != joins[1][0][1]

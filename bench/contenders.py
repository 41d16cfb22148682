"""The contenders: how each one is started for a run, where its state lives, how the harness
knows it is done, and how its final windows are read back.

Every run has fresh names (consumer group / app id, output topic, state directory), all
containing the run id, so repetitions never share state and the run's topics can be deleted.

- ``limit``, ``faust``, ``quix`` are :mod:`bench.jobs` programs that announce their own
  progress (``started``, ``done``) on stdout;
- ``continust-*`` is a continust worker (``streams.cli worker``) on a pipeline file written
  here; the harness watches its metrics and consumer group (:mod:`bench.consumption`) instead.
  The input's records are keyed by ``user`` (Kafka's default partitioner), so the pipeline
  declares its source ``partitioned_by_key`` and the tables read the input directly, as Quix
  and Faust do; ``continust-tumbling-repartition`` repartitions it first, as a source whose
  topics are not partitioned by the key field must.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.jobs.markers import read_results
from bench.outputs import ContinustOutputs, QuixOutputs
from bench.reading import read_topic
from bench.windowing import SESSION, SLIDING, TUMBLING, Results, WindowShape
from streams.cli import worker_argv

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunPlan:
    """One run of one contender: the input it reads and where it keeps its files."""

    run_id: str
    contender: str
    repetition: int
    bootstrap: str
    topic: str
    partitions: int
    events: int
    """Input events; 0 for an open-ended run (the latency measurement)."""
    workdir: Path

    @property
    def name(self) -> str:
        """Group id / app id, unique per run; the prefix of the run's own topics."""
        return f"bench-{self.run_id}-{self.contender}-{self.repetition}"

    @property
    def output_topic(self) -> str:
        return f"{self.name}-out"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def results_file(self) -> Path:
        return self.workdir / "results.json"


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]


class Contender(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> WindowShape:
        """The windows its results are checked against."""
        ...

    @property
    def writes_results(self) -> bool:
        """Whether its process writes a results file (else they are read from its output
        topic)."""
        ...

    def launch(self, plan: RunPlan) -> Launch: ...

    async def results(self, plan: RunPlan) -> Results: ...


def _job(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"bench.jobs.{module}", *args]


def _env(plan: RunPlan) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KAFKA_BOOTSTRAP_SERVERS": plan.bootstrap}


def _common(plan: RunPlan) -> list[str]:
    return [
        "--bootstrap",
        plan.bootstrap,
        "--topic",
        plan.topic,
        "--partitions",
        str(plan.partitions),
        "--events",
        str(plan.events),
    ]


class Limit:
    name = "limit"
    shape = TUMBLING
    writes_results = True

    def launch(self, plan: RunPlan) -> Launch:
        return Launch(_job("limit", *_common(plan), "--results", str(plan.results_file)), _env(plan))

    async def results(self, plan: RunPlan) -> Results:
        return read_results(plan.results_file)


class Faust:
    name = "faust"
    shape = TUMBLING
    writes_results = True

    def launch(self, plan: RunPlan) -> Launch:
        argv = _job(
            "faust_windows",
            *_common(plan),
            "--app-id",
            plan.name,
            "--data-dir",
            str(plan.state_dir),
            "--results",
            str(plan.results_file),
        )
        return Launch(argv, _env(plan))

    async def results(self, plan: RunPlan) -> Results:
        return read_results(plan.results_file)


class Quix:
    name = "quix"
    shape = TUMBLING
    writes_results = False

    def launch(self, plan: RunPlan) -> Launch:
        argv = _job(
            "quix_windows",
            *_common(plan),
            "--group",
            plan.name,
            "--state-dir",
            str(plan.state_dir),
            "--output",
            plan.output_topic,
        )
        return Launch(argv, _env(plan))

    async def results(self, plan: RunPlan) -> Results:
        outputs = QuixOutputs()
        await read_topic(plan.bootstrap, plan.output_topic, outputs.add)
        return outputs.results()


PIPELINE = """\
# Written by bench.contenders for one benchmark run.
[app]
id = "{app_id}"
processing_guarantee = "exactly_once"

[[source]]
name = "events"
topics = ["{topic}"]
key = "user"
timestamp = "ts"
partitioned_by_key = {partitioned_by_key}

[[table]]
name = "bench"
source = "events"
window = {window}
aggregate = {{ n = "count()", total = "sum(amount)" }}
emit = "update"
output = "{output}"
"""


def window_toml(shape: WindowShape) -> str:
    grace = f'grace = "{shape.grace_ms}ms"'
    if shape.kind == "tumbling":
        return f'{{ type = "tumbling", size = "{shape.size_ms}ms", {grace} }}'
    if shape.kind == "sliding":
        return f'{{ type = "sliding", size = "{shape.size_ms}ms", slide = "{shape.slide_ms}ms", {grace} }}'
    return f'{{ type = "session", gap = "{shape.gap_ms}ms", {grace} }}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Continust:
    """A continust worker; it announces nothing, the harness watches its consumer group."""

    name: str
    shape: WindowShape
    partitioned_by_key: bool = True
    writes_results: bool = False

    def pipeline_file(self, plan: RunPlan) -> Path:
        return plan.workdir / "pipelines.toml"

    def repartition_topic(self, plan: RunPlan) -> str:
        """The source's repartition topic (absent when the source is partitioned by key)."""
        return f"{plan.name}-events-repartition"

    @staticmethod
    def web_port(launch: Launch) -> int:
        """The HTTP port of the worker ``launch`` starts."""
        return int(launch.argv[launch.argv.index("--port") + 1])

    def launch(self, plan: RunPlan) -> Launch:
        config = self.pipeline_file(plan)
        config.write_text(
            PIPELINE.format(
                app_id=plan.name,
                topic=plan.topic,
                window=window_toml(self.shape),
                output=plan.output_topic,
                partitioned_by_key=str(self.partitioned_by_key).lower(),
            )
        )
        argv = worker_argv(config, free_port(), plan.state_dir)
        # the other contenders log warnings only; so does the worker
        argv[3:3] = ["--loglevel", "warning"]
        return Launch(argv, _env(plan))

    async def results(self, plan: RunPlan) -> Results:
        outputs = ContinustOutputs()
        await read_topic(plan.bootstrap, plan.output_topic, outputs.add)
        return outputs.results()


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Limit(),
        Faust(),
        Quix(),
        Continust("continust-tumbling", TUMBLING),
        Continust("continust-sliding", SLIDING),
        Continust("continust-session", SESSION),
        Continust("continust-tumbling-repartition", TUMBLING, partitioned_by_key=False),
    )
}
"""Every contender by name, in the order a repetition runs them."""

"""The contenders: how each one is started for a run, what input it reads, where its state
lives, how the harness knows it is done, and how its final windows are read back and checked.

Every run has fresh names (consumer group / app id, output topic, state directory), all
containing the run id, so repetitions never share state and the run's topics can be deleted.

- ``limit``, ``faust``, ``quix*`` are :mod:`bench.jobs` programs that announce their own
  progress (``started``, ``done``) on stdout;
- ``continust-*`` is a continust worker (``agents.cli worker``) on a pipeline file written
  here; the harness watches its metrics and consumer group (:mod:`bench.consumption`) instead.

The rows, in pairs that do the same work (the report's "vs its Quix row" divides the continust
row's throughput by its Quix row's):

- **state only**, no output topic: ``quix-state`` (``.current()`` with no sink: the windowed
  aggregation, its RocksDB state and its changelog, committed exactly-once) against
  ``continust-tumbling-state`` (a table with no ``output``);
- **final emission**: ``quix-final`` (``.final(closing_strategy="partition")`` to an output
  topic) against ``continust-tumbling-final`` (``emit = "final"``): one record per window, when
  it closes, both by the stream time of the window's partition;
- **coalesced against per event**: ``quix`` (``.current()`` to an output topic, one record per
  event) against ``continust-tumbling`` (``emit = "update"``: one record per changed window per
  commit). Not the same output: Quix has no per-commit coalescing;
- ``continust-sliding`` and ``continust-session``: other window shapes, ``emit = "update"``;
- ``continust-tumbling-repartition``: ``emit = "update"`` on an input whose record keys are
  random (:data:`bench.events.RANDOM_KEYS`), so the source is not ``partitioned_by_key``: every
  event goes through the repartition topic, and each table partition merges the events of every
  input partition, from a backlog. Every other contender reads the input keyed by ``user``
  (Kafka's default partitioner) and declares it ``partitioned_by_key``, as Quix and Faust read it.

What is checked, against the reference aggregation of the same events (:mod:`bench.verdict`,
:mod:`bench.windowing`), before a run is timed in the report:

- ``limit``, ``faust``: the job writes the content of its dict / table after the N-th event to
  a results file (:mod:`bench.jobs.markers`);
- ``quix-state``: the same results file, holding per window the latest value Quix's
  ``.current()`` gave, kept in the job's own process (a dict assignment per event). Its RocksDB
  state cannot be read back instead: Quix deletes a window from it once the window closes;
- ``continust-tumbling-state``: nothing is written anywhere but its state. Once its group has
  committed all of the input, while the worker still runs, the harness asks its HTTP API
  (``GET /api/tables/bench/keys/{key}``) for every user's windows, open and closed. So that closed
  windows are still there, this table keeps them (``retention`` 365 days of event time) where the
  other continust tables delete them once closed (retention 0), as Quix does;
- ``quix``, ``continust-tumbling``, ``-sliding``, ``-session``, ``-repartition``: their output
  topic, read ``read_committed`` after they stopped, the latest record of each window
  (:mod:`bench.outputs`);
- ``quix-final``, ``continust-tumbling-final``: their output topic likewise, against the windows
  of the reference that are closed at the end of the input (:func:`bench.windowing.closed_only`),
  each of which must have exactly one record;
- every continust worker, before it is stopped: its ``continust_late_events_total`` and
  ``continust_invalid_events_total`` must be 0 (the events are never later than the grace on
  their own partition, so on the repartitioned backlog too no event may be late).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from agents.cli.worker_command import worker_argv
from bench.events import RANDOM_KEYS, USER_KEYS
from bench.jobs.markers import read_results
from bench.outputs import ContinustOutputs, QuixOutputs
from bench.reading import read_topic
from bench.verdict import Readback
from bench.windowing import SESSION, SLIDING, TUMBLING, WindowShape
from bench.worker_api import metric_total, read_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TABLE = "bench"
"""The name of the continust table in every pipeline the bench writes."""
STATE_RETENTION = "365d"
"""Retention of the state-only table: every window stays readable over HTTP to the end."""
WORKER_COUNTERS = (
    ("continust_late_events_total", "late events"),
    ("continust_invalid_events_total", "invalid events (dead letters)"),
)
"""The worker's counters that must still be 0 when it has consumed its input."""


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
    keys: tuple[str, ...] = ()
    """Every window key (user) of the input, for reading a table back key by key."""

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
        topic or its HTTP API)."""
        ...

    @property
    def input_keys(self) -> str:
        """The record keys of the input it reads: ``USER_KEYS`` or ``RANDOM_KEYS``."""
        ...

    @property
    def final(self) -> bool:
        """Whether it emits closed windows only (checked against the closed windows only)."""
        ...

    @property
    def output(self) -> str:
        """What it writes per input event, for the report."""
        ...

    @property
    def peer(self) -> str | None:
        """The Quix contender doing the same work, for the report's ratio."""
        ...

    def launch(self, plan: RunPlan) -> Launch: ...

    async def inspect(self, plan: RunPlan, launch: Launch) -> Readback:
        """What is read while its process still runs, after it has processed all of its input:
        results that can only be read from the live process, problems it reports."""
        ...

    async def results(self, plan: RunPlan) -> Readback:
        """Its final windows, read after its process stopped (when :meth:`inspect` did not
        read them)."""
        ...


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


class _Job:
    """Defaults of the job contenders: user-keyed input, every window, nothing read live."""

    shape = TUMBLING
    input_keys = USER_KEYS
    final = False
    peer: str | None = None

    async def inspect(self, plan: RunPlan, launch: Launch) -> Readback:
        return Readback()


class Limit(_Job):
    name = "limit"
    output = "none (no state)"
    writes_results = True

    def launch(self, plan: RunPlan) -> Launch:
        return Launch(_job("limit", *_common(plan), "--results", str(plan.results_file)), _env(plan))

    async def results(self, plan: RunPlan) -> Readback:
        return Readback(read_results(plan.results_file))


class Faust(_Job):
    name = "faust"
    output = "state only (at-least-once)"
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

    async def results(self, plan: RunPlan) -> Readback:
        return Readback(read_results(plan.results_file))


def _repeated(repeated: list[tuple[str, int, int]]) -> list[str]:
    if not repeated:
        return []
    return [f"{len(repeated)} windows emitted more than once, e.g. {repeated[:3]}"]


@dataclass(frozen=True)
class Quix:
    """Quix Streams (:mod:`bench.jobs.quix_windows`) on the user-keyed input; ``emit`` is
    ``current`` (every update to the output topic), ``final`` (closed windows to the output
    topic) or ``none`` (state only; the job writes the final windows to its results file)."""

    name: str
    emit: str
    output: str
    shape = TUMBLING
    input_keys = USER_KEYS
    peer: str | None = None

    @property
    def writes_results(self) -> bool:
        return self.emit == "none"

    @property
    def final(self) -> bool:
        return self.emit == "final"

    async def inspect(self, plan: RunPlan, launch: Launch) -> Readback:
        return Readback()

    def launch(self, plan: RunPlan) -> Launch:
        sink = (
            ["--results", str(plan.results_file)] if self.writes_results else ["--output", plan.output_topic]
        )
        argv = _job(
            "quix_windows",
            *_common(plan),
            "--group",
            plan.name,
            "--state-dir",
            str(plan.state_dir),
            "--emit",
            self.emit,
            *sink,
        )
        return Launch(argv, _env(plan))

    async def results(self, plan: RunPlan) -> Readback:
        if self.writes_results:
            return Readback(read_results(plan.results_file))
        outputs = QuixOutputs()
        await read_topic(plan.bootstrap, plan.output_topic, outputs.add)
        return Readback(outputs.results(), _repeated(outputs.repeated()) if self.final else [])


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
name = "{table}"
source = "events"
window = {window}
aggregate = {{ n = "count()", total = "{total}" }}
emit = "{emit}"
"""
#: the user functions the ``-chain`` and ``-custom`` rows name, written next to their pipeline
#: file as a user's module would be: a filter that keeps every event, a map that returns a new
#: payload, and a user's aggregation equal to ``sum``
USER_FUNCTIONS = """# Written by bench.contenders for one benchmark run.
def keep(event):
    return event["amount"] is not None


def same(event):
    return {"user": event["user"], "ts": event["ts"], "amount": event["amount"]}


class Total:
    def initialize(self):
        return 0

    def add(self, state, value):
        return state + value

    def merge(self, a, b):
        return a + b

    def result(self, state):
        return state
"""
CHAIN = 'operators = [{ filter = "bench_user_functions:keep" }, { map = "bench_user_functions:same" }]\n'
CUSTOM_SUM = "bench_user_functions:Total(amount)"


def window_toml(shape: WindowShape, retention: str | None = None) -> str:
    grace = f'grace = "{shape.grace_ms}ms"'
    if retention is not None:
        grace += f', retention = "{retention}"'
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
    """A continust worker; it announces nothing, the harness watches its consumer group.

    ``partitioned_by_key``: the source reads the user-keyed input directly; otherwise it reads
    the random-keyed input through its repartition topic. ``emit``: the table's emission.
    ``writes_output``: whether the table has an output topic; without one, its windows are read
    back over HTTP and kept until then, for ``retention`` of event time."""

    name: str
    shape: WindowShape
    partitioned_by_key: bool = True
    emit: str = "update"
    writes_output: bool = True
    retention: str = STATE_RETENTION
    peer: str | None = None
    writes_results: bool = False
    #: the table's chain of user functions (a TOML line, :data:`CHAIN`) and its ``total``
    operators: str = ""
    total: str = "sum(amount)"

    @property
    def input_keys(self) -> str:
        return USER_KEYS if self.partitioned_by_key else RANDOM_KEYS

    @property
    def final(self) -> bool:
        return self.emit == "final"

    @property
    def output(self) -> str:
        if not self.writes_output:
            return "state only"
        if self.emit == "final":
            return "final (1 per window)"
        return "coalesced (1 per window per commit)"

    def pipeline_file(self, plan: RunPlan) -> Path:
        return plan.workdir / "pipelines.toml"

    def pipeline_toml(self, plan: RunPlan) -> str:
        text = PIPELINE.format(
            app_id=plan.name,
            topic=plan.topic,
            table=TABLE,
            window=window_toml(self.shape, None if self.writes_output else self.retention),
            emit=self.emit,
            partitioned_by_key=str(self.partitioned_by_key).lower(),
            total=self.total,
        )
        text += self.operators
        return text + (f'output = "{plan.output_topic}"\n' if self.writes_output else "")

    def repartition_topic(self, plan: RunPlan) -> str:
        """The source's repartition topic (absent when the source is partitioned by key)."""
        return f"{plan.name}-events-repartition"

    @staticmethod
    def web_port(launch: Launch) -> int:
        """The HTTP port of the worker ``launch`` starts."""
        return int(launch.argv[launch.argv.index("--port") + 1])

    def launch(self, plan: RunPlan) -> Launch:
        config = self.pipeline_file(plan)
        config.write_text(self.pipeline_toml(plan))
        if self.operators or ":" in self.total:
            (config.parent / "bench_user_functions.py").write_text(USER_FUNCTIONS)
        argv = worker_argv(config, free_port(), plan.state_dir)
        # the other contenders log warnings only; so does the worker
        argv[3:3] = ["--loglevel", "warning"]
        return Launch(argv, _env(plan))

    async def inspect(self, plan: RunPlan, launch: Launch) -> Readback:
        port = self.web_port(launch)
        problems = []
        for metric, what in WORKER_COUNTERS:
            count = await asyncio.to_thread(metric_total, port, metric)
            if count is None:
                problems.append(f"the worker's /metrics did not answer ({metric})")
            elif count:
                problems.append(f"the worker counted {count:.0f} {what}")
        if self.writes_output:
            return Readback(None, problems)
        try:
            return Readback(await read_table(port, TABLE, plan.keys), problems)
        except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
            return Readback({}, [*problems, f"reading table {TABLE!r} over HTTP: {exc!r}"])

    async def results(self, plan: RunPlan) -> Readback:
        outputs = ContinustOutputs()
        await read_topic(plan.bootstrap, plan.output_topic, outputs.add)
        return Readback(outputs.results(), _repeated(outputs.repeated()) if self.final else [])


CONTENDERS: dict[str, Contender] = {
    c.name: c
    for c in (
        Limit(),
        Faust(),
        Quix("quix-state", emit="none", output="state only"),
        Continust("continust-tumbling-state", TUMBLING, writes_output=False, peer="quix-state"),
        Quix("quix-final", emit="final", output="final (1 per window)"),
        Continust("continust-tumbling-final", TUMBLING, emit="final", peer="quix-final"),
        Quix("quix", emit="current", output="every update (1 per event)"),
        Continust("continust-tumbling", TUMBLING, peer="quix"),
        Continust("continust-sliding", SLIDING),
        Continust("continust-session", SESSION),
        Continust("continust-tumbling-repartition", TUMBLING, partitioned_by_key=False),
        Continust(
            "continust-tumbling-state-chain",
            TUMBLING,
            writes_output=False,
            peer="continust-tumbling-state",
            operators=CHAIN,
        ),
        Continust(
            "continust-tumbling-state-custom",
            TUMBLING,
            writes_output=False,
            peer="continust-tumbling-state",
            total=CUSTOM_SUM,
        ),
    )
}
"""Every contender by name, in the order a repetition runs them (and the report lists them)."""

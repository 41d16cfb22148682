"""Testing a pipeline without a broker: :func:`run_pipeline` runs a pipeline over a list of
records through the worker's own stages and returns what came out.

::

    from agents.harness import Input, run_pipeline

    result = run_pipeline(app, [Input("purchases", {"user": "ann", "ts": 1_000, "amount": 12})])
    assert result.windows["big_purchases_per_user"][("ann", 0, 60_000)] == {"n": 1, "cents": 1200}

It is not a second implementation of the semantics: the stages are those the worker builds
(:mod:`agents.stage_wiring`: the source stage, the repartition topic, the keyed stream, the
tables with their chains of user functions, the commit sequence), run by the stage test driver
(:mod:`agents.stage_driver`) on an in-memory log in place of Kafka and in-memory stores in
place of RocksDB. Records are read as the worker reads them: each input partition in the order
given, the partitions in turn, at most ``max_batch`` records of one partition per batch, every
topic ``read_committed``; a commit (:mod:`agents.commit_order`) follows every round of batches.
The wall clock is the one handed in (``now_ms``): it decides which event times are too far in
the future (the pipeline's ``max_future``, 1 h by default, as for the worker), and nothing else
in the window semantics reads it. Once every record is read, each
source partition counts as quiet, as a worker's input does once nothing more arrives for the
source's ``idle_after``: partitions that had no records (or stopped early) stop holding the
tables' clocks, and the windows that closes are emitted.

What the worker does across several workers, rebalances and crashes is the broker's part and
is tested on the broker; the stages' part of it (any batch sizes, commits, crashes) is the stage
driver's own property test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from agents.stage_driver import DriverRecord, StageDriver
from streams.kafka.partitioning import key_partition
from streams.plan.dead_letters import DETAIL, EVENT_TIME, REASON, STREAM_TIME, TABLE, dead_letter_topic
from streams.plan.pipeline import Pipeline
from streams.plan.python_front import App
from streams.settings import Settings


@dataclass(frozen=True)
class Input:
    """One record of a source topic: ``value`` (a dict or list is written as JSON, bytes as
    they are), on ``partition`` (``None``: the partition of ``key`` by Kafka's default
    partitioner, or 0 without a key), with the Kafka record timestamp ``timestamp_ms``."""

    topic: str
    value: Any
    key: str | bytes | None = None
    partition: int | None = None
    timestamp_ms: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Letter:
    """A record the pipeline dead-lettered: its reason code and detail, the table that
    rejected it (empty: the source), its value as written, and every header."""

    reason: str
    detail: str
    table: str
    value: bytes | None
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Late:
    """An event a table found late: the table, the event time and the partition's stream time
    that made it so (epoch ms), and the record's value as written."""

    table: str
    event_time_ms: int
    stream_time_ms: int | None
    value: bytes | None


@dataclass
class Result:
    """What a run gave. ``outputs``: per output topic, the committed records' values (decoded
    JSON) per partition in offset order; ``windows``: per table, every window held at the end
    as ``(key, start, end) -> value`` (closed and open alike, expired ones gone);
    ``late`` and ``dead_letters`` in the order written."""

    outputs: dict[str, dict[int, list[Any]]] = field(default_factory=dict)
    windows: dict[str, dict[tuple[str, int, int], dict[str, Any]]] = field(default_factory=dict)
    late: list[Late] = field(default_factory=list)
    dead_letters: list[Letter] = field(default_factory=list)

    def output_values(self, topic: str) -> list[Any]:
        """The values of every partition of ``topic``, partition after partition."""
        return [value for _, values in sorted(self.outputs.get(topic, {}).items()) for value in values]


class _FixedClock:
    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now

    def now_ms(self) -> int:
        return self._now()


def _encoded(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return orjson.dumps(value)


def run_pipeline(
    pipeline: Pipeline | App,
    inputs: Iterable[Input],
    *,
    partitions: int = 1,
    now_ms: int | Callable[[], int] = 2**62,
    max_batch: int = 100,
) -> Result:
    """Run ``pipeline`` (planned, or an :class:`~streams.plan.python_front.App`) over
    ``inputs`` until every record is processed and committed (see the module docstring).
    ``partitions``: the partition count of every source topic. ``now_ms``: the wall clock (a
    fixed epoch ms, or a function giving it); by default far enough ahead that no event time is
    in the future."""
    plan = pipeline.plan() if isinstance(pipeline, App) else pipeline
    late_topics = {source.name: f"{plan.app.id}-harness-late-{source.name}" for source in plan.sources}
    plan = replace(
        plan,
        sources=tuple(
            source if source.late_topic else replace(source, late_topic=late_topics[source.name])
            for source in plan.sources
        ),
    )
    clock = _FixedClock(now_ms if callable(now_ms) else (lambda: now_ms))
    settings = Settings().with_pipeline(plan)  # the worker's defaults, not the environment's
    driver = StageDriver(
        plan, partitions, clock=clock, max_batch=max_batch, max_future_ms=settings.max_future_ms
    )
    read = sorted({topic for source in plan.sources for topic in source.topics})
    for record in inputs:
        if record.topic not in read:
            raise ValueError(f"no source reads topic {record.topic!r}; the pipeline reads {', '.join(read)}")
        key = record.key.encode() if isinstance(record.key, str) else record.key
        partition = record.partition
        if partition is None:
            partition = 0 if key is None else key_partition(key, partitions)
        if not 0 <= partition < partitions:
            raise ValueError(f"partition {partition} of {record.topic!r}: the topics have {partitions}")
        driver.send(
            record.topic,
            partition,
            [(key, _encoded(record.value), list(record.headers), record.timestamp_ms)],
        )
    asyncio.run(_run_to_the_end(driver, plan))
    return _result(driver, plan)


async def _run_to_the_end(driver: StageDriver, plan: Pipeline) -> None:
    """Every record read and committed; then, as for a worker whose input stays quiet for the
    source's ``idle_after``, every source partition counts as quiet and stops holding its
    tables' clocks; what that closes is emitted and committed too."""
    await driver.run()
    for source in plan.sources:
        for topic in source.topics:
            for partition in range(driver.partitions):
                driver.quiet(topic, partition)
    await driver.run()
    await driver.commit()


def _result(driver: StageDriver, plan: Pipeline) -> Result:
    result = Result()
    for table in plan.tables:
        stage = driver.table(table.name)
        result.windows[table.name] = {
            (key, window.start, window.end): stage.aggregate.value(window)
            for partition in range(stage.partitions)
            for key, window in stage.store.scan_windows(partition)
        }
        if table.output is not None:
            result.outputs[table.output] = {
                partition: [orjson.loads(r.value or b"null") for r in records]
                for partition, records in driver.committed_records(table.output).items()
            }
    dead_topics = sorted({dead_letter_topic(plan.app.id, s.dead_letter_topic) for s in plan.sources})
    for topic in dead_topics:
        for record in _records(driver, topic):
            headers = {name: value for name, value in record.headers}
            result.dead_letters.append(
                Letter(
                    reason=headers.get(REASON, b"").decode(),
                    detail=headers.get(DETAIL, b"").decode(),
                    table=headers.get(TABLE, b"").decode(),
                    value=record.value,
                    headers=headers,
                )
            )
    for topic in sorted({s.late_topic for s in plan.sources if s.late_topic}):
        for record in _records(driver, topic):
            headers = {name: value for name, value in record.headers}
            stream_time = headers.get(STREAM_TIME, b"None").decode()
            result.late.append(
                Late(
                    table=headers.get(TABLE, b"").decode(),
                    event_time_ms=int(headers[EVENT_TIME]),
                    stream_time_ms=None if stream_time == "None" else int(stream_time),
                    value=record.value,
                )
            )
    return result


def _records(driver: StageDriver, topic: str) -> list[DriverRecord]:
    return [record for _, records in sorted(driver.committed_records(topic).items()) for record in records]

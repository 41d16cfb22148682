"""End-to-end latency at a fixed input rate, for contenders that write every window update to
an output topic (continust tumbling with ``emit = "update"``, Quix with ``.current()``).

While the contender runs on a fresh input topic, events are produced at ``rate`` per second for
``seconds`` (in 10 ms ticks, event time = the wall clock, a fifth of them up to the grace
earlier), and the output topic is read with ``read_committed`` as records become readable.

The latency of an event is the time the first output record reflecting it became readable
minus the time it was handed to the producer: the record of window ``w`` of key ``k`` with count
``n`` reflects the first ``n`` events of ``k`` in ``w`` in partition order (all events of a key
are on one partition, produced in order). Quix writes a record per event; continust under
``emit = "update"`` one per changed window per commit, which reflects every event since the
previous one (:func:`event_latencies`). The percentiles are over the produced events; an event
that no readable record reflects within the drain limit after production stopped counts as
infinitely late (shown as "> limit").

Before the timed production, one warm-up event per input partition (keys ``warmup-*``, not
measured) must come out the other side, so group joining and startup are not measured.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.child import pump_markers, start_child, stop_child
from bench.contenders import Contender, RunPlan
from bench.events import Event
from bench.producing import send_events
from bench.topics import create_topic
from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import partition_counts
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")

TICK_S = 0.01

OutputKey = tuple[str, int, int]
"""(key, window start, count) of an output record."""


def continust_output(record: Any) -> OutputKey:
    value = orjson.loads(record.value)
    return value["key"], int(value["start"]), int(value["value"]["n"])


def quix_output(record: Any) -> OutputKey:
    value = orjson.loads(record.value)
    return record.key.decode(), int(value["start"]), int(value["n"])


@dataclass
class LatencyResult:
    contender: str
    rate: int
    seconds: float
    status: str = "ok"
    detail: str = ""
    produced: int = 0
    achieved_rate: float = 0.0
    readable: int = 0
    """Produced events whose output record became readable within the drain limit."""
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def percentile(self, q: float) -> float:
        """The ``q``-quantile (0..1) over all produced events; ``inf`` when it falls among the
        events whose output never became readable."""
        if not self.produced:
            return math.nan
        ordered = sorted(self.latencies_ms) + [math.inf] * (self.produced - len(self.latencies_ms))
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def event_latencies(
    arrivals: dict[OutputKey, float], sent_at: dict[tuple[str, int], list[float]]
) -> list[float]:
    """Milliseconds from each produced event (``sent_at``: per (key, window start), the produce
    times in order) to the first readable record with a count reaching it (``arrivals``: when
    each (key, window start, count) became readable); events no record reaches are left out."""
    counts: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for (key, start, n), arrived in arrivals.items():
        counts.setdefault((key, start), []).append((n, arrived))
    latencies: list[float] = []
    for window, times in sent_at.items():
        records = sorted(counts.get(window, ()))
        earliest = math.inf  # readable time of the first record with a count >= the event's index
        reach: list[float] = [math.inf] * len(times)
        for n, arrived in reversed(records):
            earliest = min(earliest, arrived)
            for i in range(min(n, len(times)) - 1, -1, -1):
                if reach[i] <= earliest:
                    break
                reach[i] = earliest
        latencies.extend(1000 * (r - t) for r, t in zip(reach, times, strict=True) if r != math.inf)
    return latencies


class _Outputs:
    """Reads the output topic from the beginning, noting when each record became readable."""

    def __init__(self, bootstrap: str, topic: str, parse: Callable[[Any], OutputKey]) -> None:
        self.bootstrap, self.topic, self.parse = bootstrap, topic, parse
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **KafkaSecurity.from_env().check().client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            auto_offset_reset="earliest",
        )
        self.arrivals: dict[OutputKey, float] = {}

    async def run(self) -> None:
        while not (
            partitions := (
                await partition_counts(self.bootstrap, [self.topic], KafkaSecurity.from_env().check())
            ).get(self.topic)
        ):
            await asyncio.sleep(0.2)  # the contender creates it when it starts
        await self.consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(partitions)]
            self.consumer.assign(tps)
            await self.consumer.seek_to_beginning(*tps)
            while True:
                batch = await self.consumer.getmany(timeout_ms=50)
                now = time.time()
                for records in batch.values():
                    for record in records:
                        self.arrivals.setdefault(self.parse(record), now)
        finally:
            await self.consumer.stop()


def _warmup_keys(partitions: int) -> dict[int, str]:
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < partitions:
        key = f"warmup-{i}"
        keys.setdefault(key_partition(key.encode(), partitions), key)
        i += 1
    return keys


async def measure_latency(
    contender: Contender,
    plan: RunPlan,
    parse: Callable[[Any], OutputKey],
    rate: int,
    seconds: float,
    users: list[str],
    grace_ms: int,
    drain_s: float,
    ready_s: float = 180.0,
) -> LatencyResult:
    result = LatencyResult(contender.name, rate, seconds)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    await create_topic(plan.bootstrap, plan.topic, plan.partitions)
    launch = contender.launch(plan)
    log_path = plan.workdir / "contender.log"
    log.info(
        logfmt("bench.latency.start", contender=contender.name, rate=rate, seconds=seconds, log=log_path)
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=plan.bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        linger_ms=0,
    )
    outputs = _Outputs(plan.bootstrap, plan.output_topic, parse)
    markers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    with log_path.open("ab") as log_file:
        proc = await start_child(launch, log_file)
        await producer.start()
        tasks = [
            asyncio.create_task(pump_markers(proc, log_file, markers)),
            asyncio.create_task(outputs.run()),
        ]
        try:
            await _run(result, plan, proc, producer, outputs, users, grace_ms, drain_s, ready_s)
        finally:
            await stop_child(proc)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await producer.stop()
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    log.info(
        logfmt(
            "bench.latency.end",
            contender=contender.name,
            status=result.status,
            produced=result.produced,
            achieved_rate=round(result.achieved_rate),
            readable=result.readable,
            p50_ms=round(p50, 1) if math.isfinite(p50) else p50,
            p99_ms=round(p99, 1) if math.isfinite(p99) else p99,
        )
    )
    return result


async def _run(
    result: LatencyResult,
    plan: RunPlan,
    proc: asyncio.subprocess.Process,
    producer: AIOKafkaProducer,
    outputs: _Outputs,
    users: list[str],
    grace_ms: int,
    drain_s: float,
    ready_s: float,
) -> None:
    # warm-up: one event per input partition must come out the other side
    warmup = _warmup_keys(plan.partitions)
    now_ms = int(time.time() * 1000)
    await send_events(producer, plan.topic, plan.partitions, [Event(k, now_ms, 1.0) for k in warmup.values()])
    waited, deadline = time.monotonic(), time.monotonic() + ready_s
    while not all(any(o[0] == k for o in outputs.arrivals) for k in warmup.values()):
        if proc.returncode is not None or time.monotonic() > deadline:
            result.status = "crashed" if proc.returncode is not None else "timeout"
            result.detail = "the warm-up events did not come out"
            return
        await asyncio.sleep(0.2)
    log.info(
        logfmt(
            "bench.latency.ready", contender=result.contender, waited_s=round(time.monotonic() - waited, 1)
        )
    )

    rng = random.Random(20_000)
    sent_at: dict[tuple[str, int], list[float]] = {}
    size = 10_000  # tumbling window of the measured contenders, ms
    started = time.monotonic()
    produced, last_log = 0, started
    while (elapsed := time.monotonic() - started) < result.seconds:
        due = int(elapsed * result.rate) - produced
        if due > 0:
            wall = time.time()
            wall_ms = int(wall * 1000)
            tick: list[Event] = []
            for _ in range(due):
                user = users[rng.randrange(len(users))]
                ts = wall_ms - rng.randrange(1, grace_ms) if rng.random() < 0.2 else wall_ms
                tick.append(Event(user, ts, round(rng.uniform(0.5, 500.0), 2)))
                sent_at.setdefault((user, ts - ts % size), []).append(wall)
            await send_events(producer, plan.topic, plan.partitions, tick)
            produced += due
        if time.monotonic() - last_log >= 2:
            last_log = time.monotonic()
            log.info(
                logfmt(
                    "bench.latency.progress",
                    contender=result.contender,
                    produced=produced,
                    readable=len(outputs.arrivals),
                )
            )
        await asyncio.sleep(TICK_S)
    result.produced = produced
    result.achieved_rate = produced / (time.monotonic() - started)

    drain_end = time.monotonic() + drain_s
    while (
        len(event_latencies(outputs.arrivals, sent_at)) < produced
        and time.monotonic() < drain_end
        and proc.returncode is None
    ):
        await asyncio.sleep(0.2)
        if time.monotonic() - last_log >= 2:
            last_log = time.monotonic()
            log.info(
                logfmt(
                    "bench.latency.drain",
                    contender=result.contender,
                    records=len(outputs.arrivals),
                    reflected=len(event_latencies(outputs.arrivals, sent_at)),
                    of=produced,
                )
            )
    result.latencies_ms = event_latencies(outputs.arrivals, sent_at)
    result.readable = len(result.latencies_ms)
    if result.readable < produced:
        missing = produced - result.readable
        result.detail = f"{missing} of {produced} events had no readable output {drain_s:.0f}s after the last"

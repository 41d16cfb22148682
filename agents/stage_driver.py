"""The stage test driver: a pipeline's real stages, run without a broker and without Faust.

:class:`StageDriver` builds the stages of a validated pipeline as the worker builds them
(:class:`agents.merge.SourceStage`, the source's :class:`agents.keyed_stream.KeyedStream`, one
:class:`agents.windowed.TableStage` per table, their hooks in the commit sequence of an
:class:`agents.app_runtime.AppRuntime`), on an in-memory log of topics (:class:`TopicLog`) in
place of Kafka, an in-memory committed store per table in place of RocksDB, and a clock the
test hands in. As with Kafka Streams' ``TopologyTestDriver``, the test then steps what the
worker's runtime would do, each step to its end:

- :meth:`StageDriver.send`: records appended to a source topic partition (a plain producer);
- :meth:`StageDriver.process`: fetches of every partition, at most ``max_batch`` records each,
  handed to the stage that reads the topic (the batch routes of the runtime), in offset order,
  until nothing more can be read. Every topic is read ``read_committed``: what a stage writes
  to the repartition topic is read once its transaction commits;
- :meth:`StageDriver.commit`: the app's commit sequence, steps 1 to 7 of
  :mod:`agents.commit_order`, with one transaction per input partition holding what was derived
  from its records and committing with its offset (and its offset metadata);
- :meth:`StageDriver.crash`: a SIGKILL. Every open transaction is aborted, the stages and all
  they hold in memory are gone, and new ones read every partition again from its committed
  offset. With ``lose_disk``, each table's committed store is rebuilt from its changelog's
  committed records, as a worker restoring a table without its disk;
- :meth:`StageDriver.rebalance`: a revocation and an assignment of every partition: the commit
  the worker makes before it lets partitions go, then the stages' revocation handlers.

The driver holds every partition itself (one worker); it does not model fetch timing, several
workers, standbys or Faust's recovery. Source partitions are quiet (idle) only when the test
says so (:meth:`StageDriver.quiet`); the idle timers run when the test calls
:meth:`StageDriver.run_timers`, on the clock it handed in.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.clock import WALL_CLOCK, Clock
from agents.commit_gate import Batch
from agents.commit_order import CommitOutcome, CommitRequest
from agents.sink import Headers
from agents.stage_wiring import StageOptions, build_stages
from agents.table_store import MemoryTablePartitions
from agents.windowed import TableStage
from streams.plan.pipeline import Pipeline

#: what a test sends: key, value, headers, Kafka timestamp (epoch ms)
Sent = tuple[bytes | None, bytes | None, Headers, int]


@dataclass(frozen=True)
class DriverRecord:
    """A record as a stage reads it (the fields of aiokafka's ``ConsumerRecord`` it uses)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass
class _Entry:
    record: DriverRecord
    #: the open transaction that wrote it; ``None``: committed (or written without one)
    transaction: int | None
    aborted: bool = False


class TopicLog:
    """Topic partitions as append-only logs of records, with transactions: a record written in
    a transaction is read only once it commits, and a ``read_committed`` reader stops at the
    first record of a transaction still open (the last stable offset), as in Kafka."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], list[_Entry]] = {}
        #: per open transaction, the records it wrote
        self._open: dict[int, list[_Entry]] = {}

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        timestamp: int,
        transaction: int | None = None,
    ) -> int:
        """Append one record; returns its offset."""
        entries = self._entries.setdefault((topic, partition), [])
        record = DriverRecord(topic, partition, len(entries), timestamp, key, value, list(headers))
        entry = _Entry(record, transaction)
        entries.append(entry)
        if transaction is not None:
            self._open.setdefault(transaction, []).append(entry)
        return record.offset

    def end(self, topic: str, partition: int) -> int:
        """The offset the next record will take (the high watermark)."""
        return len(self._entries.get((topic, partition), []))

    def read(self, topic: str, partition: int, start: int, most: int | None = None) -> list[DriverRecord]:
        """Committed records from offset ``start`` on, up to the last stable offset, at most
        ``most``; aborted ones are skipped."""
        found: list[DriverRecord] = []
        for entry in self._entries.get((topic, partition), [])[start:]:
            if entry.transaction is not None:
                break
            if not entry.aborted:
                found.append(entry.record)
                if most is not None and len(found) >= most:
                    break
        return found

    def stable_end(self, topic: str, partition: int, start: int = 0) -> int:
        """The last stable offset: the first record of an open transaction, else the end."""
        for entry in self._entries.get((topic, partition), [])[start:]:
            if entry.transaction is not None:
                return entry.record.offset
        return self.end(topic, partition)

    def finish(self, transaction: int, commit: bool) -> None:
        """Commit or abort every record of ``transaction``."""
        for entry in self._open.pop(transaction, []):
            entry.transaction = None
            entry.aborted = not commit

    def partitions(self, topic: str) -> list[int]:
        """The partitions of ``topic`` written so far."""
        return sorted(p for t, p in self._entries if t == topic)


class _Signal:
    """Faust's signal, as the stages use it: handlers connected, sent to in order."""

    def __init__(self) -> None:
        self.handlers: list[Callable[..., Awaitable[None]]] = []

    def connect(self, handler: Callable[..., Awaitable[None]]) -> None:
        self.handlers.append(handler)

    async def send(self, *args: Any) -> None:
        for handler in self.handlers:
            await handler(None, *args, signal=self)


class DriverSink:
    """The stages' sink (:class:`agents.sink.RecordSink`): queued records go, at each flush, into
    the open transaction of the input partition they derive from."""

    exactly_once = True

    def __init__(self, driver: StageDriver) -> None:
        self.driver = driver
        self._pending: list[tuple[TP, str, int, bytes | None, bytes | None, Headers]] = []

    def add(
        self,
        source: TP,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: Headers | None = None,
    ) -> None:
        self._pending.append((source, topic, partition, key, value, list(headers or [])))

    async def flush(self, delivered: bool = False) -> dict[tuple[str, int], int]:
        pending, self._pending = self._pending, []
        last: dict[tuple[str, int], int] = {}
        for source, topic, partition, key, value, headers in pending:
            transaction = self.driver.transaction_of(source)
            now = self.driver.clock.now_ms()
            last[(topic, partition)] = self.driver.log.append(
                topic, partition, key, value, headers, now, transaction
            )
        return last if delivered else {}

    def writable(self, source: TP) -> bool:
        return True  # the driver holds every partition, in a transaction, between its steps


class _DriverConsumer:
    """What the stages ask of Faust's consumer."""

    def __init__(self, driver: StageDriver) -> None:
        self.driver = driver

    async def committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        return {tp: self.driver.metadata[tp] for tp in tps if tp in self.driver.metadata}

    def caught_up(self, tp: TP) -> bool:
        return self.driver.position(tp) >= self.driver.log.stable_end(tp.topic, tp.partition)

    def quiet_for(self, tp: TP, now: float) -> float:
        return float("inf") if tp in self.driver.quiet_inputs else 0.0


class _DriverAssignor:
    def __init__(self, driver: StageDriver) -> None:
        self.driver = driver

    def assigned_actives(self) -> set[TP]:
        return set(self.driver.assignment())

    def group_for_topic(self, topic: str) -> int:
        return 0


class DriverApp:
    """The Faust app the stages see: its id, the flags the runtime reads (never stopping,
    rebalancing or recovering between the driver's steps), a consumer, an assignor, topics
    (channels naming their topics), the revocation signal and timers."""

    def __init__(self, app_id: str, driver: StageDriver) -> None:
        self.conf = SimpleNamespace(id=app_id)
        self.should_stop = False
        self.rebalancing = False
        self.in_recovery = False
        self.consumer = _DriverConsumer(driver)
        self.assignor = _DriverAssignor(driver)
        self.topics = SimpleNamespace(add=lambda channel: None)
        self.on_partitions_revoked = _Signal()
        self.timers: list[Callable[[], Awaitable[None]]] = []

    def topic(self, *topics: str, **options: Any) -> Any:
        return SimpleNamespace(topics=topics)

    def timer(self, interval: float, name: str | None = None) -> Callable[[Any], Any]:
        def register(function: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            self.timers.append(function)
            return function

        return register


@dataclass
class _Stages:
    """One generation of the worker's stages (a crash starts a new one)."""

    app: DriverApp
    runtime: AppRuntime
    sink: DriverSink
    tables: dict[str, TableStage]


@dataclass
class StageDriver:
    """Runs ``pipeline``'s stages over :attr:`log` (see the module docstring). ``partitions``:
    the partition count of every source topic; ``max_batch``: the most records one fetch
    returns per partition."""

    pipeline: Pipeline
    partitions: int
    clock: Clock = WALL_CLOCK
    max_batch: int = 100
    max_future_ms: int = 10 * 365 * 86_400_000
    log: TopicLog = field(default_factory=TopicLog)

    def __post_init__(self) -> None:
        self.app_id = self.pipeline.app.id
        #: per table, its committed store (the worker's RocksDB): kept through a crash
        self.committed: dict[str, MemoryTablePartitions] = {
            table.name: MemoryTablePartitions() for table in self.pipeline.tables
        }
        #: per input partition: the committed offset and its metadata, the offset after the last
        #: record processed since, the transaction open for it
        self.offsets: dict[TP, int] = {}
        self.metadata: dict[TP, str] = {}
        self._processed: dict[TP, int] = {}
        self._transactions: dict[TP, int] = {}
        self._ids = itertools.count(1)
        self.quiet_inputs: set[TP] = set()
        self.stages = self._start()

    # -- the worker's stages ------------------------------------------------------------------

    def _start(self) -> _Stages:
        """Build the stages as the worker does (:func:`agents.stage_wiring.build_stages`)."""
        app = DriverApp(self.app_id, self)
        runtime = AppRuntime(app)
        sink = DriverSink(self)
        every = {spec.name: self.partitions for spec in self.pipeline.sources}
        built = build_stages(
            app,
            runtime,
            sink,
            self.pipeline,
            StageOptions(
                app_id=self.app_id,
                max_future_ms=self.max_future_ms,
                source_partitions=every,
                topic_partitions={t: self.partitions for s in self.pipeline.sources for t in s.topics},
                clock=self.clock,
                committed=self.committed.__getitem__,
                changelog=self.changelog_of,
            ),
        )
        return _Stages(app, runtime, sink, built.tables)

    def changelog_of(self, table: str) -> str:
        """The changelog topic of ``table``."""
        return f"{self.app_id}-{table}-changelog"

    def assignment(self) -> list[TP]:
        """Every partition of every topic a stage reads (the driver holds them all)."""
        topics = sorted(self.stages.runtime.batch_routes)
        return [TP(topic, p) for topic in topics for p in range(self.partitions)]

    def position(self, tp: TP) -> int:
        """The next offset of ``tp`` to read."""
        return self._processed.get(tp, self.offsets.get(tp, 0))

    def transaction_of(self, source: TP) -> int:
        """The transaction open for input partition ``source`` (one begins on first use)."""
        transaction = self._transactions.get(source)
        if transaction is None:
            transaction = self._transactions[source] = next(self._ids)
        return transaction

    # -- steps ----------------------------------------------------------------------------------

    def send(self, topic: str, partition: int, records: Iterable[Sent]) -> list[int]:
        """Append ``records`` to a source topic partition, committed; returns their offsets."""
        return [
            self.log.append(topic, partition, key, value, headers, timestamp)
            for key, value, headers, timestamp in records
        ]

    def quiet(self, topic: str, partition: int, quiet: bool = True) -> None:
        """Whether source partition ``topic:partition`` counts as quiet for ``idle_after``."""
        (self.quiet_inputs.add if quiet else self.quiet_inputs.discard)(TP(topic, partition))

    async def process(self, max_batches: int | None = None) -> int:
        """Fetch and process until nothing more can be read (or ``max_batches`` batches);
        returns the number of records processed."""
        routes, done, batches = self.stages.runtime.batch_routes, 0, 0
        while max_batches is None or batches < max_batches:
            moved = False
            for tp in self.assignment():
                records = self.log.read(tp.topic, tp.partition, self.position(tp), self.max_batch)
                if not records:
                    continue
                await routes[tp.topic](Batch(tp, 0, records))
                self._processed[tp] = records[-1].offset + 1
                done, batches, moved = done + len(records), batches + 1, True
                if max_batches is not None and batches >= max_batches:
                    break
            if not moved:
                break
        return done

    async def commit(self) -> bool:
        """The app's commit sequence; returns whether offsets were committed."""
        return await self.stages.runtime.sequence.run(self, CommitRequest())

    async def run(self) -> None:
        """Process and commit until every record of every topic is processed and committed."""
        while True:
            await self.process()
            await self.commit()
            if not any(self._readable(tp) for tp in self.assignment()):
                return

    def _readable(self, tp: TP) -> bool:
        return bool(self.log.read(tp.topic, tp.partition, self.position(tp), 1))

    async def crash(self, lose_disk: bool = False) -> None:
        """A SIGKILL and a restart (see the module docstring)."""
        for transaction in self._transactions.values():
            self.log.finish(transaction, commit=False)
        self._transactions.clear()
        self._processed.clear()
        if lose_disk:
            for name in self.committed:
                store = self.committed[name] = MemoryTablePartitions()
                changelog = self.changelog_of(name)
                for partition in self.log.partitions(changelog):
                    records = self.log.read(changelog, partition, 0)
                    store.apply(partition, [(r.key, r.value) for r in records if r.key is not None], None)
        self.stages = self._start()

    async def rebalance(self) -> None:
        """A clean revocation of every partition, and their assignment again."""
        await self.commit()
        await self.stages.app.on_partitions_revoked.send(set(self.assignment()))
        self._processed.clear()

    async def run_timers(self) -> None:
        """Run every timer the stages registered (the idle timeout's) once."""
        for timer in self.stages.app.timers:
            await timer()

    # -- the commit's steps 4 to 6 (agents.commit_order.CommitTransport) -------------------------

    async def drain_send_buffer(self) -> None:
        return None

    async def commit_offsets(self, request: CommitRequest) -> CommitOutcome:
        moved: dict[TP, int] = {}
        sequence = self.stages.runtime.sequence
        for tp, offset in sorted(self._processed.items()):
            if self.offsets.get(tp) == offset:
                continue
            self.offsets[tp] = moved[tp] = offset
            self.metadata[tp] = sequence.metadata_for(tp)
            transaction = self._transactions.pop(tp, None)
            if transaction is not None:
                self.log.finish(transaction, commit=True)
        return CommitOutcome(committed=True, moved=moved)

    async def commit_writes_without_offsets(self, request: CommitRequest) -> None:
        for transaction in self._transactions.values():
            self.log.finish(transaction, commit=True)
        self._transactions.clear()

    # -- what came out --------------------------------------------------------------------------

    def committed_records(self, topic: str) -> dict[int, list[DriverRecord]]:
        """Every committed record of ``topic``, per partition in offset order."""
        return {p: self.log.read(topic, p, 0) for p in self.log.partitions(topic)}

    def table(self, name: str) -> TableStage:
        """The running stage of table ``name``."""
        return self.stages.tables[name]

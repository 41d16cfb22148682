"""Table stage: aggregate a source's keyed stream (its repartition topic, or its own topics when
they are partitioned by key) into a windowed table.

The window rules are the pure code of :mod:`windows`: one :class:`PartitionWindows` per
assigned partition applies each event, moves stream time, and decides which windows close,
which are emitted and which are deleted. Its state is one record per window plus a time index
(:mod:`windows.store_layout`) in one Faust table: RocksDB plus a changelog, co-partitioned with
the keyed stream, so it survives restarts and rebalances; nothing is rebuilt in memory when a
partition is assigned. Changes wait in a write-back cache (:class:`WriteBackStore`); at each
commit the changed windows go to the changelog through the sink, in the transactions that
commit the offsets of the events behind them, and once those have committed, to RocksDB
(:class:`~agents.table_store.RocksDBPartitions`) with the changelog offset they reflect. Every
output record goes to the output topic's partition of the same number as the input partition,
in the transaction that commits the input's offset.

With ``idle_timeout``, a timer moves the stream time of partitions that have received nothing
for that long by the wall-clock time that passed (:mod:`agents.idle_timeout`), under the commit
gate and in the partition's own transaction, so the last windows of a quiet stream close too.
The wall clock is the stage's ``clock`` (:class:`~agents.clock.Clock`), the system's unless one
is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import orjson
from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.clock import WALL_CLOCK, Clock
from agents.commit_gate import Batch
from agents.commit_order import (
    AfterCommit,
    CommitOutcome,
    HeldBackWrites,
    OutputFlush,
    StateFlush,
)
from agents.faults import FAULTS, FaultPoint, offsets_detail
from agents.faust_compat import in_recovery
from agents.idle_timeout import IdleTimeout
from agents.keyed_stream import KeyedStream
from agents.merge import KeyedEvent, ProgressReport, SourceStage, input_time_ms
from agents.progress_signal import ProgressSignal
from agents.sink import RecordSink
from agents.table_store import RocksDBPartitions, TablePartitions
from streams.plan.causation import cause_headers
from streams.plan.dead_letters import late_event_headers
from streams.plan.errors import InvalidEvent
from streams.plan.operators import Chain, UserFunctionFailed
from streams.plan.pipeline import TableSpec
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import (
    CHANGELOG_RECORDS_RESTORED,
    E2E_LATENCY,
    EVENTS_LATE,
    INPUT_HOLDING,
    INPUT_IDLE,
    INPUT_PROGRESS,
    OPEN_WINDOWS,
    OPERATOR_ERRORS,
    OPERATOR_EVENTS,
    OUTPUTS,
    RANKED_WINDOWS,
    RANKS_DROPPED,
    RANKS_RELEASED,
    STATE_CACHE_BYTES,
    STATE_CHANGELOG_OFFSET,
    STREAM_TIME,
    STREAM_TIME_LAG,
)
from streams.telemetry.tracing import current_tracer
from windows.aggregates import InvalidField
from windows.custom_aggregation import AggregationFailed
from windows.emission import Emission
from windows.ordered_store import Write
from windows.partition import PartitionWindows
from windows.rank_index import RankedStore, TableRanks
from windows.spec import SessionWindows
from windows.write_back import WriteBackStore, window_bytes_for

log = logging.getLogger("continust.table")


def install_keyed_agent(
    runtime: AppRuntime, stream: KeyedStream, sink: RecordSink, stages: list[TableStage], partitions: int
) -> None:
    """One agent per keyed stream, handing each event to every table of the source in turn.

    Under ``exactly_once`` the writes of all tables for an event and the event's offset must
    commit together. With one agent per table, each table would consume the stream at its own
    pace, and a commit could carry one table's outputs for an event whose offset cannot commit
    yet because another table has not processed it; after a crash that event would be processed
    again by every table. Here an event is processed by all tables and acknowledged as one step.
    Each batch is a ``continust.batch`` span when tracing is on (:mod:`streams.telemetry.tracing`).
    """

    names = ",".join(stage.spec.name for stage in stages)

    async def process_batch(batch: Batch) -> None:
        tp = batch.tp
        with current_tracer().batch(names, tp.topic, tp.partition, batch.records):
            items = stream.events(batch)
            read_through = batch.records[-1].offset if batch.records else None
            for stage in stages:
                stage.process_events(tp, items, read_through)
            await sink.flush()
        for stage in stages:
            stage.observe_latency()

    runtime.install_batch_handler(stream.channel(runtime.app, partitions), process_batch)


def rejection(exc: InvalidField | AggregationFailed | InvalidEvent) -> InvalidEvent:
    """The dead letter's reason for an event a table could not take: ``invalid_field`` for a
    field the aggregations cannot read, ``user_error`` for a user's aggregation that failed."""
    if isinstance(exc, InvalidEvent):
        return exc
    if isinstance(exc, AggregationFailed):
        return UserFunctionFailed(f"aggregate({exc.aggregation})", exc.error_type, exc.message)
    return InvalidEvent("invalid_field", str(exc))


@dataclass
class TableStage:
    app: faust.App
    runtime: AppRuntime
    spec: TableSpec
    #: the source: its spec, and its dead letters (:meth:`SourceStage.reject`)
    source: SourceStage
    #: what the table reads of the source
    stream: KeyedStream
    sink: RecordSink
    partitions: int
    clock: Clock = WALL_CLOCK
    #: Faust's RocksDB options for each partition's database (:func:`store_options`)
    store_options: dict[str, int] | None = None
    #: the committed state, and the name of its changelog topic; ``None``: a Faust table of the
    #: app, on RocksDB, restored and kept as standby by Faust (the worker). The stage test
    #: driver (:mod:`agents.stage_driver`) hands in a store of its own.
    committed: TablePartitions | None = None
    changelog: str | None = None

    def __post_init__(self) -> None:
        self.windows: Any = None
        if self.committed is None:
            self.windows = self._faust_table()
            self.rocksdb: TablePartitions = RocksDBPartitions.on_faust_table(self.windows)
        else:
            self.rocksdb = self.committed
        self.aggregate = self.spec.aggregate
        window = self.spec.window
        sessions = isinstance(window, SessionWindows)
        #: the active partitions' committed windows by rank, for top-N queries (built on the
        #: first one, taking the writes applied to RocksDB when a top-N next reads them,
        #: forgotten whenever Faust may write RocksDB itself: a changelog record read, a
        #: rebalance)
        dropped = RANKS_DROPPED.labels(table=self.spec.name)
        released = RANKS_RELEASED.labels(table=self.spec.name)
        #: the table's user functions, applied to each event before windows
        self.chain = Chain(self.spec.operators)
        self.ranks = TableRanks(
            self.aggregate,
            sessions,
            None if isinstance(window, SessionWindows) else window.size_ms,
            on_dropped=lambda partition: dropped.inc(),
            on_released=lambda partition: released.inc(),
        )
        RANKED_WINDOWS.labels(table=self.spec.name).set_function(self.ranks.windows)
        self.committed_store = RankedStore(self.rocksdb, self.ranks)
        self.store = WriteBackStore(
            self.committed_store,
            window_bytes_for(len(self.aggregate.aggregations)),
            by_end=isinstance(self.spec.window, SessionWindows),
        )
        # the changes sent in this commit's transactions, applied to RocksDB once it committed
        self._sent: dict[int, list[Write]] = {}
        self._sent_offsets: dict[int, int] = {}
        self._partitions: dict[int, PartitionWindows] = {}
        #: wakes queries waiting for a position (read-your-writes) after each batch applied
        self.progress = ProgressSignal()
        #: per keyed-stream topic partition, the offset of the last record processed (lag)
        self.keyed_read: dict[TP, int] = {}
        timeout = self.spec.idle_timeout_ms
        self.idle_timeout = None if timeout is None else IdleTimeout(timeout, self.clock)
        self._late = EVENTS_LATE.labels(table=self.spec.name)
        self._outputs = OUTPUTS.labels(table=self.spec.name)
        self._cache_gauge = STATE_CACHE_BYTES.labels(table=self.spec.name)
        self._restored = CHANGELOG_RECORDS_RESTORED.labels(table=self.spec.name)
        self._open_windows = OPEN_WINDOWS.labels(table=self.spec.name)
        self._latency = E2E_LATENCY.labels(table=self.spec.name)
        #: the input record time (epoch ms) of each output record queued by the events of the
        #: batch being processed, observed once the sink has handed them to the producer
        self._caused: list[int] = []
        #: the task bringing read ranks up to date after the last commit (see _catch_up_ranks)
        self._rank_upkeep: asyncio.Task[None] | None = None

    def _faust_table(self) -> Any:
        """The Faust table whose RocksDB and changelog hold the committed state."""
        # bytes: the store encodes keys and values itself, and Faust's recovery must not
        # decode them (a table's changelog serializer comes from its key and value types, and is
        # JSON unless the type is bytes)
        raw: dict[str, Any] = {
            "partitions": self.partitions,
            "store": "rocksdb://",
            "key_type": bytes,
            "value_type": bytes,
            "schema": faust.Schema(key_serializer="raw", value_serializer="raw"),
            "on_changelog_event": self._on_changelog_event,
            # a standby applies each changelog record as it reads it, so the committed state a
            # standby read answers from (``stale_ok``) is as fresh as the changelog; Faust would
            # otherwise hold up to 1000 records per partition in memory, unapplied
            "standby_buffer_size": 1,
        }
        if self.store_options:
            raw["options"] = dict(self.store_options)
        return self.app.Table(self.spec.name, **raw)

    @property
    def changelog_topic(self) -> str:
        """The topic the committed state's changelog records go to."""
        if self.windows is not None:
            return str(self.windows.changelog_topic.get_topic_name())
        return self.changelog or f"{self.spec.name}-changelog"

    async def _on_changelog_event(self, event: Any) -> None:
        """Faust read a changelog record of this stage's table (restoring, or as a standby): it
        will write the partition's RocksDB itself."""
        self.ranks.forget(event.message.partition)
        if in_recovery(self.app):
            self._restored.inc()
            message = event.message
            FAULTS.reached(
                FaultPoint.RECOVERY,
                table=self.spec.name,
                changelog=f"{message.topic}:{message.partition}",
                offset=message.offset,
            )

    def install(self) -> None:
        """Register the stage's rebalance handler and idle timer; its events come from the one
        agent of its source (:func:`install_keyed_agent`)."""
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        sequence = self.runtime.sequence
        sequence.add(HeldBackWrites(self.write_held_back))
        sequence.add(OutputFlush(self.sink.flush))
        sequence.add(StateFlush(self.send_state_changes))
        sequence.add(AfterCommit(self.apply_committed_state))
        self.runtime.gate.memory_use.setdefault("state_cache", []).append(self.cache_bytes)
        if self.idle_timeout is not None:
            interval = self.idle_timeout.check_interval_s
            self.app.timer(interval, name=f"continust.idle.{self.spec.name}")(self.advance_idle)

    async def send_state_changes(self) -> None:
        """Step 3 of a commit: the changelog records of every window, index entry and stream
        time changed since the last commit, into the transactions about to commit (through the
        sink, a batch per partition), delivered, so their offsets are known.

        The records are encoded a partition at a time, and the event loop runs between two
        partitions: queries answer meanwhile instead of waiting for the whole step. Nothing
        changes the cache during a commit (the commit gate holds every batch back), so the
        writes are the same as if encoded at once."""
        self._sent, self._sent_offsets = {}, {}
        partitions = self.store.changed_partitions()
        if not partitions:
            return
        changelog = self.changelog_topic
        keyed_topic = self.stream.topics[0]
        for i, partition in enumerate(partitions):
            if i:
                await asyncio.sleep(0)
            writes = self._sent[partition] = self.store.partition_changes(partition)
            source = TP(keyed_topic, partition)
            for key, value in writes:
                self.sink.add(source, changelog, key, value, partition)
        delivered = await self.sink.flush(delivered=True)
        # under exactly_once the transaction's commit marker follows its last record: RocksDB
        # names the marker's offset, which Faust's recovery then takes as read (it does not read
        # a marker, and would otherwise wait for it to time out)
        past = 1 if self.sink.exactly_once else 0
        self._sent_offsets = {
            partition: delivered[(changelog, partition)] + past
            for partition in self._sent
            if (changelog, partition) in delivered
        }

    def apply_committed_state(self, outcome: CommitOutcome) -> None:
        """Step 7: the commit is complete, so the changes it carried go to RocksDB, a write
        batch per partition with the changelog offset of its last record."""
        sent, self._sent = self._sent, {}
        if sent:
            moved = offsets_detail(outcome.moved)
            FAULTS.reached(FaultPoint.STATE_APPLY, table=self.spec.name, offsets=moved)
        self.store.committed(sent, self._sent_offsets)
        for partition, offset in self._sent_offsets.items():
            STATE_CHANGELOG_OFFSET.labels(table=self.spec.name, partition=str(partition)).set(offset)
        self._sent_offsets = {}
        self.progress.notify()  # queries waiting for a committed position look again
        self._catch_up_ranks()

    def _catch_up_ranks(self) -> None:
        """After a commit, bring the ranks a top-N read since the previous one up to date with
        the writes the commit queued for them, a partition at a time with the event loop running
        between, so that the next top-N does not apply them while every client waits. A top-N
        that comes first applies them itself (:meth:`TableRanks.held`): the same writes, once."""
        partitions = self.ranks.read_since_last_asked()
        if not partitions:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a commit driven without an event loop: the next top-N applies them
            return
        self._rank_upkeep = loop.create_task(self._apply_queued_ranks(partitions))

    async def ranks_caught_up(self) -> None:
        """Return once the ranks' catch-up after the last commit (if any) has finished."""
        if self._rank_upkeep is not None:
            await self._rank_upkeep

    async def _apply_queued_ranks(self, partitions: list[int]) -> None:
        for partition in partitions:
            await asyncio.sleep(0)
            self.ranks.caught_up(partition)

    def cache_bytes(self) -> int:
        """Estimated bytes of the state read or changed since the last commit."""
        size = self.store.approx_bytes
        self._cache_gauge.set(size)
        return size

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Forget the in-memory schedules: whatever partitions come back are recovered from
        their changelogs first, and their schedules are rebuilt from that state."""
        self._partitions.clear()
        self._open_windows.set(0)
        self._caused.clear()
        self.keyed_read.clear()
        if self.idle_timeout is not None:
            self.idle_timeout.forget()
        self.store.forget()
        self.ranks.forget_all()

    async def write_held_back(self) -> None:
        """Step 1 of a commit (:mod:`agents.commit_order`), inside the transactions about to
        commit: mark the idle inputs of a source partitioned by key over several topics (moving
        the clock), and queue in the sink the windows changed since the last commit
        (``emit = "update"``); export each partition's clock as these leave it. The sink is
        flushed in step 2, the changed state written to RocksDB and the changelogs in step 3."""
        topic = self.stream.topics[0]
        if self.stream.tables_mark_idle and self.stream.inputs_per_partition > 1:
            self._mark_idle_inputs()
        for partition in sorted(self._partitions):
            for emission in self._partitions[partition].emit_updates():
                self.emit(TP(topic, partition), emission)
        self._export_clocks()

    def _mark_idle_inputs(self) -> None:
        """An input topic partition with nothing left to read and nothing fetched for the
        source's ``idle_after`` stops holding its table partition's clock back."""
        app: Any = self.app
        if self.runtime.writes_paused():
            return
        consumer, now = app.consumer, time.monotonic()
        idle_after_s = self.source.spec.idle_after_ms / 1000
        topics = self.stream.topics  # the inputs' own topics: tables_mark_idle
        for partition, windows in sorted(self._partitions.items()):
            if not self.sink.writable(TP(topics[0], partition)):
                continue
            for source, topic in enumerate(topics):
                state = windows.clock.inputs.get(source)
                if state is not None and state.idle:
                    continue
                tp = TP(topic, partition)
                if consumer.caught_up(tp) and consumer.quiet_for(tp, now) >= idle_after_s:
                    for emission in windows.on_input_progress(source, None, idle=True):
                        self.emit(TP(topics[0], partition), emission)

    def _export_clocks(self) -> None:
        """Each partition's stream time, its lag behind the wall clock, and its inputs."""
        name, now_ms = self.spec.name, self.clock.now_ms()
        for partition, windows in self._partitions.items():
            label = str(partition)
            clock = windows.clock
            if windows.stream_time is not None:
                STREAM_TIME_LAG.labels(table=name, partition=label).set((now_ms - windows.stream_time) / 1000)
            holding = set(clock.holding())
            for source in range(clock.expected):
                state = clock.inputs.get(source)
                labels = {
                    "table": name,
                    "partition": label,
                    "input": self.stream.input_name(partition, source),
                }
                if state is not None and state.progress is not None:
                    INPUT_PROGRESS.labels(**labels).set(state.progress)
                INPUT_HOLDING.labels(**labels).set(source in holding)
                INPUT_IDLE.labels(**labels).set(state is not None and state.idle)

    def partition(self, partition: int) -> PartitionWindows:
        windows = self._partitions.get(partition)
        if windows is None:
            self.rocksdb.db_for(partition)  # opened before it is processed
            windows = PartitionWindows(
                self.aggregate, self.store, partition, inputs=self.stream.inputs_per_partition
            )
            self._partitions[partition] = windows
            if self.idle_timeout is not None:
                self.idle_timeout.received(partition, windows.stream_time)
            if self.stream.tables_mark_idle:
                # this stage judges the idleness of the topic partitions it reads itself: a
                # partition taken over may have a backlog now, so each holds the clock again
                # until it is quiet for idle_after (a repartitioned source's stage reports it)
                for source, state in sorted(windows.clock.inputs.items()):
                    if state.idle:
                        assert windows.on_input_progress(source, None, idle=False) == ()
            log.info(
                logfmt(
                    "table.partition_loaded",
                    table=self.spec.name,
                    partition=partition,
                    stream_time=windows.stream_time,
                )
            )
        return windows

    def process_events(
        self, tp: TP, items: list[KeyedEvent | ProgressReport], read_through: int | None = None
    ) -> None:
        """Apply the events and progress reports of one partition of the keyed stream, in
        offset order; the records they produce are queued on the sink, which the caller
        flushes. ``read_through``: the offset of the batch's last record (valid or not).

        Every event counts for the partition's processed offsets (:meth:`_processed`), valid,
        late or with an invalid field; for a source partitioned by key, so does every record
        of the batch (``read_through``), including those rejected before they became events."""
        windows = self.partition(tp.partition)
        before = windows.stream_time
        on_input_event, emit = windows.on_input_event, self.emit
        # the input record behind each event, saved with the windows it changes and named in
        # their output records' headers (not needed without an output topic)
        cause_of = self.stream.cause_of if self.spec.output is not None else None
        partition, cause = tp.partition, None
        inputs = False
        arrivals: dict[int, int] = {}
        chain = self.chain
        for item in items:
            if isinstance(item, ProgressReport):
                emissions = windows.on_input_progress(item.source, item.progress, item.idle)
            else:
                inputs = True
                record, key, timestamp_ms, payload, source, arrival, own = item
                arrivals[source] = arrival
                if cause_of is not None:
                    cause = cause_of(partition, item)
                if chain:
                    for emission in self._through_chain(tp, windows, item, cause):
                        emit(tp, emission)
                    continue
                try:
                    result = on_input_event(source, key, payload, timestamp_ms, arrival, own, cause)
                except (InvalidField, AggregationFailed) as exc:
                    problem = rejection(exc)
                    origin = self.stream.cause_of(partition, item)
                    self.source.reject(tp, record, problem, table=self.spec.name, cause=origin)
                    continue
                if result.late:
                    self._late_event(tp, record, key, timestamp_ms, result.stream_time)
                emissions = result.emissions
                if emissions and self.spec.output is not None:
                    self._caused.extend([input_time_ms(record)] * len(emissions))
            for emission in emissions:
                emit(tp, emission)
        # any input record, valid or not, ends the quiet (a batch of progress reports does not)
        if self.idle_timeout is not None and (inputs or not items):
            self.idle_timeout.received(tp.partition, windows.stream_time)
        if windows.stream_time != before:
            STREAM_TIME.labels(table=self.spec.name, partition=str(tp.partition)).set(
                windows.stream_time or 0
            )
        if read_through is not None:
            self.keyed_read[tp] = read_through
        self._processed(tp, arrivals, read_through)
        self._open_windows.set(self.open_windows())
        if chain:
            self._count_chain()
        self.progress.notify()

    def _through_chain(
        self, tp: TP, windows: PartitionWindows, item: KeyedEvent, cause: Any
    ) -> Sequence[Emission]:
        """Apply one event through the table's chain of user functions
        (:mod:`streams.plan.operators`): each payload it gives is an event of the record's key
        and time; none moves the input's progress only; a step that fails, or a payload the
        aggregations cannot read, dead-letters the record before any window takes any of it."""
        record, key, timestamp_ms, payload, source, arrival, own = item
        try:
            payloads = self.chain.run(payload)
            if len(payloads) > 1:  # all valid before the first is applied: never half a record
                for one in payloads:
                    for aggregation in self.spec.aggregations:
                        aggregation.extract(one)
        except (UserFunctionFailed, InvalidField) as exc:
            origin = self.stream.cause_of(tp.partition, item)
            self.source.reject(tp, record, rejection(exc), table=self.spec.name, cause=origin)
            return ()
        if not payloads:
            return windows.on_input_passed(source, timestamp_ms)
        emissions: list[Emission] = []
        late = None
        for index, one in enumerate(payloads):
            try:
                result = windows.on_input_event(source, key, one, timestamp_ms, arrival, own, cause)
            except (InvalidField, AggregationFailed) as exc:
                if index > 0:  # the record's earlier events are in its windows: cannot be undone
                    log.error(logfmt("event.partly_applied", table=self.spec.name, offset=record.offset))
                origin = self.stream.cause_of(tp.partition, item)
                self.source.reject(tp, record, rejection(exc), table=self.spec.name, cause=origin)
                return emissions
            if result.late and late is None:
                late = result.stream_time
            emissions.extend(result.emissions)
        if late is not None:
            self._late_event(tp, record, key, timestamp_ms, late)
        if emissions and self.spec.output is not None:
            self._caused.extend([input_time_ms(record)] * len(emissions))
        return emissions

    def _count_chain(self) -> None:
        """The chain's per-step counts since the last batch, into ``/metrics``."""
        name = self.spec.name
        for label, taken, given, failed in self.chain.take_counts():
            if taken:
                OPERATOR_EVENTS.labels(table=name, operator=label, direction="in").inc(taken)
                OPERATOR_EVENTS.labels(table=name, operator=label, direction="out").inc(given)
            if failed:
                OPERATOR_ERRORS.labels(table=name, operator=label).inc(failed)

    def open_windows(self) -> int:
        """Windows not closed yet over the partitions loaded here (never below 0)."""
        return max(0, sum(windows.open_windows for windows in self._partitions.values()))

    def observe_latency(self) -> None:
        """After the sink handed a batch's records to the producer: observe, for each output
        record an input event emitted, the wall clock now minus that input record's time
        (``continust_e2e_latency_seconds``). Records emitted at a commit (``emit = "update"``)
        or by the idle timer are not observed: no input event caused them."""
        caused, self._caused = self._caused, []
        if not caused:
            return
        now_ms, observe = self.clock.now_ms(), self._latency.observe
        for input_ms in caused:
            observe(max(0, now_ms - input_ms) / 1000)

    def _processed(self, tp: TP, arrivals: dict[int, int], read_through: int | None) -> None:
        """Raise the partition's processed offsets (saved with its state, so they survive a
        restart or a move) to the inputs' offsets a batch processed through
        (:meth:`agents.keyed_stream.KeyedStream.processed`)."""
        partition = tp.partition
        moved = self.stream.processed(tp, arrivals, read_through)
        if not moved:
            return
        offsets = self.store.get_offsets(partition)
        if all(offsets.get(name, -1) >= offset for name, offset in moved.items()):
            return
        for name, offset in moved.items():
            offsets[name] = max(offsets.get(name, -1), offset)
        self.store.set_offsets(partition, offsets)

    def _late_event(self, tp: TP, record: Any, key: str, timestamp_ms: int, stream_time: int | None) -> None:
        self._late.inc()
        log.debug(
            logfmt(
                "event.late",
                table=self.spec.name,
                key=key,
                ts=timestamp_ms,
                stream_time=stream_time,
                partition=tp.partition,
                offset=record.offset,
            )
        )
        late_topic = self.source.spec.late_topic
        if late_topic is not None:
            headers = late_event_headers(self.spec.name, timestamp_ms, stream_time)
            self.sink.add(tp, late_topic, record.key, record.value, tp.partition, headers)

    def emit(self, source: TP, emission: Emission) -> None:
        """Queue the output record of ``emission``, with the headers naming the input record of
        the last event that changed its window (:mod:`streams.plan.causation`) when that is known (a
        window saved before causes were, and not changed since, has none)."""
        if self.spec.output is None:
            return
        record = orjson.dumps(emission.to_record(self.spec.name))
        cause = emission.cause
        headers = None if cause is None else cause_headers(cause)
        self.sink.add(source, self.spec.output, emission.key.encode(), record, source.partition, headers)
        self._outputs.inc()

    async def advance_idle(self) -> None:
        """Move the stream time of every assigned partition that has been quiet for the idle
        timeout (see :class:`agents.idle_timeout.IdleTimeout`)."""
        idle_timeout = self.idle_timeout
        if idle_timeout is None or self.runtime.writes_paused():
            return
        topic = self.stream.topics[0]
        assigned = sorted(tp for tp in self.app.assignor.assigned_actives() if tp.topic == topic)
        async with self.runtime.gate.closed():
            for tp in assigned:
                windows = self.partition(tp.partition)
                before = windows.stream_time
                emissions = idle_timeout.advance(tp.partition, windows)
                stream_time = windows.stream_time
                if stream_time is None or stream_time == before:
                    continue
                for emission in emissions:
                    self.emit(tp, emission)
                STREAM_TIME.labels(table=self.spec.name, partition=str(tp.partition)).set(stream_time)
                self._open_windows.set(self.open_windows())
                if emissions:
                    log.info(
                        logfmt(
                            "table.idle_advance",
                            table=self.spec.name,
                            partition=tp.partition,
                            stream_time=stream_time,
                            emitted=len(emissions),
                        )
                    )
            await self.sink.flush()

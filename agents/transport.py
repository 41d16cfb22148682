"""The ``continust://`` Faust transport: Faust's aiokafka transport with a transaction manager
that keeps every write in the transaction of the input partition it derives from.

Faust's own manager picks the transactional producer by the *destination* topic and partition,
which fails for topics the app does not consume (output topics) and puts a record written to
another partition (repartitioning) into another partition's transaction. Here:

* a send that names ``transactional_id`` goes to exactly that producer;
* a send without one (Faust's table changelog writes, always to the partition of the event being
  processed) keeps Faust's rule, which for co-partitioned topics is the source's producer;
* before offsets commit, Faust's send buffer is drained completely, so changelog records
  buffered by ``send_soon`` are inside the transaction that commits the offsets they derive
  from. Faust's own ``flush()`` gives up after 100 ms without progress and does not wait for
  the record its background task is sending; its producer here uses a buffer that can be
  drained (:class:`DrainableProducerBuffer`);
* records written while a partition had no input (stream time moved by the idle timeout) are
  committed in that partition's transaction at the next commit although no offset moved.

Its consumer
* commits only through the commit gate (:mod:`agents.commit_gate`);
* asks the broker for end offsets instead of reading the cached last stable offset: under
  ``exactly_once`` Faust takes a partition's highwater from the last fetch, which is unknown (-1)
  for a changelog partition not fetched yet, so a worker restarting with state on disk failed its
  recovery consistency check (persisted offset > -1). ``end_offsets`` of a ``read_committed``
  consumer is the last stable offset, which is what recovery must read up to;
* rewinds partitions without a committed offset to their beginning when Faust rewinds to the
  committed offsets (see :meth:`ConsumerThread._seek_to_committed`).

Registered under the ``faust.transports`` entry point as ``continust``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import aiokafka.errors as Errors
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.transport.consumer import TransactionManager as FaustTransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import RecordMetadata

from agents.commit_gate import Batch, batch_routes_for, gate_for
from agents.faults import FAULTS, FaultPoint, offsets_detail
from streams.logfmt import logfmt

log = logging.getLogger("continust.transport")


def transactional_id_for(app_id: str, group: int, partition: int) -> str:
    """Faust's transactional id of the producer owning input partition ``partition`` of topic
    group ``group``."""
    return f"{app_id}-{group}-{partition}"


DRAIN_TIMEOUT_S = 60.0


class DrainableProducerBuffer(ProducerBuffer):
    """Faust's send buffer, counting the record its background task is sending."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._in_flight = 0
        self._progress = asyncio.Event()

    async def _send_pending(self, fut: Any) -> None:
        self._in_flight += 1
        try:
            await super()._send_pending(fut)
        finally:
            self._in_flight -= 1
            self._progress.set()

    async def drain(self) -> None:
        """Return once every buffered record has been handed to its producer, in order (the
        background task sends them; nothing here sends out of turn). Raises ``TimeoutError``
        when the buffer makes no progress for ``DRAIN_TIMEOUT_S``."""
        while self.size or self._in_flight:
            self._progress.clear()
            await asyncio.wait_for(self._progress.wait(), timeout=DRAIN_TIMEOUT_S)


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            raise ValueError("continust does not support Faust's producer_threaded setting")
        self.buffer = DrainableProducerBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app

    async def commit_transactions(
        self,
        tid_to_offset_map: Mapping[str, Mapping[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        """Commit the transaction of every input partition at the same time. Faust commits them
        one after another, each a few broker round trips (offsets, end, begin): with 8 input
        partitions a commit took about 0.5 s, during which the gate holds processing and every
        output waits. The transactions are independent, as they are when committed in turn; the
        first failure is raised once all have finished. Each offset is committed with the
        metadata the stages give for its partition (:meth:`CommitGate.metadata_for`)."""
        commit_one = super().commit_transactions
        metadata_for = gate_for(self.app).metadata_for
        results = await asyncio.gather(
            *(
                commit_one(
                    {tid: {tp: (offset, metadata_for(tp)) for tp, offset in offsets.items()}},  # type: ignore[misc]
                    group_id,
                    start_new_transaction=start_new_transaction,
                )
                for tid, offsets in tid_to_offset_map.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


class TransactionManager(FaustTransactionManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._written: set[str] = set()  # transactional ids with records since their last commit

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        if transactional_id is None:
            # Faust's rule, for its own writes (table changelogs, always co-partitioned)
            partition = self.consumer.key_partition(topic, key, partition)
            if partition is not None:
                group = self.app.assignor.group_for_topic(topic)
                transactional_id = transactional_id_for(self.app.conf.id, group, partition)
        if transactional_id is not None:
            self._written.add(transactional_id)
        return await self.producer.send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    def mark_written(self, transactional_id: str) -> None:
        """Record that ``transactional_id``'s producer got records outside :meth:`send` (batches
        from :class:`agents.sink.Sink`), so the next commit covers them."""
        self._written.add(transactional_id)

    @property
    def uncommitted_writes(self) -> bool:
        """Whether some producer sent records that no commit has covered yet."""
        return bool(self._written)

    async def _drain(self) -> None:
        await cast(DrainableProducerBuffer, self.producer.buffer).drain()

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        await self._drain()
        await self._ensure_in_transaction(offsets)
        FAULTS.reached(FaultPoint.COMMIT_IN_TRANSACTION, offsets=offsets_detail(offsets))
        committed = await super().commit(offsets, start_new_transaction=start_new_transaction)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                logfmt(
                    "transaction.commit",
                    offsets=",".join(f"{tp.topic}:{tp.partition}={o}" for tp, o in sorted(offsets.items())),
                )
            )
        assignor = self.app.assignor
        for tp in offsets:
            self._written.discard(
                transactional_id_for(self.app.conf.id, assignor.group_for_topic(tp.topic), tp.partition)
            )
        return committed

    async def commit_writes_without_offsets(self, start_new_transaction: bool = True) -> None:
        """Commit the transactions that hold records but no offsets: what a partition wrote
        while no input arrived (stream time moved by the idle timeout). Without this they would
        stay invisible to ``read_committed`` readers until the partition's next input."""
        await self._drain()
        producers: Mapping[str, Any] = getattr(self.producer, "_transaction_producers", {})
        locks: Mapping[str, asyncio.Lock] = getattr(self.producer, "_trn_locks", {})

        async def commit(tid: str) -> None:
            producer = producers.get(tid)
            if producer is None:
                return
            async with locks.get(tid) or asyncio.Lock():
                if not producer._txn_manager.is_in_transaction():
                    return
                await producer.commit_transaction()
                log.debug(logfmt("transaction.committed_without_offsets", transactional_id=tid))
                if start_new_transaction:
                    await producer.begin_transaction()

        pending = sorted(self._written)
        results = await asyncio.gather(*(commit(tid) for tid in pending), return_exceptions=True)
        self._written.clear()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _ensure_in_transaction(self, offsets: Mapping[TP, int]) -> None:
        """On shutdown Faust commits once with ``start_new_transaction=False`` and then once more
        when its consumer stops; offsets still to commit then need a transaction to go in."""
        producers: Mapping[str, Any] = getattr(self.producer, "_transaction_producers", {})
        assignor = self.app.assignor
        for tp in offsets:
            tid = transactional_id_for(self.app.conf.id, assignor.group_for_topic(tp.topic), tp.partition)
            producer = producers.get(tid)
            if producer is not None and not producer._txn_manager.is_in_transaction():
                await producer.begin_transaction()


# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, UNSTABLE_OFFSET_COMMIT
RETRIABLE_FETCH_ERRORS = {14, 15, 16, 88}
NOT_COORDINATOR = 16


async def fetch_committed(consumer: Any, tps: list[TP], timeout_s: float = 60.0) -> dict[TP, int]:
    """The group's committed offset of each partition that has one (see
    :func:`fetch_committed_entries`)."""
    return {tp: offset for tp, (offset, _metadata) in (await fetch_committed_entries(consumer, tps)).items()}


async def fetch_committed_entries(
    consumer: Any, tps: list[TP], timeout_s: float = 60.0
) -> dict[TP, tuple[int, str]]:
    """The group's committed offset and its metadata, for each partition that has one.

    aiokafka's ``committed()`` ignores the group-level error code of an OffsetFetch response
    (v2+), so while the coordinator loads or moves it reports "no committed offset" for every
    partition; here such an answer is retried instead of being taken for the truth."""
    coordinator = consumer._coordinator
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp.partition)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        await coordinator.ensure_coordinator_known()
        response = await coordinator._send_req(
            OffsetFetchRequest(coordinator.group_id, list(by_topic.items()))
        )
        codes = {getattr(response, "error_code", 0)}
        offsets: dict[TP, tuple[int, str]] = {}
        for topic, partitions in response.topics:
            for partition, offset, metadata, error_code in partitions:
                codes.add(error_code)
                if offset >= 0:
                    offsets[TP(topic, partition)] = (offset, metadata or "")
        codes.discard(0)
        if not codes:
            return offsets
        log.warning(logfmt("offsets.fetch_retry", group=coordinator.group_id, error_codes=sorted(codes)))
        if NOT_COORDINATOR in codes:
            coordinator.coordinator_dead()
        if not codes <= RETRIABLE_FETCH_ERRORS:
            raise Errors.for_code(max(codes - RETRIABLE_FETCH_ERRORS))()
        if asyncio.get_running_loop().time() > deadline:
            raise Errors.KafkaTimeoutError(f"committed offsets of {coordinator.group_id} not available")
        await asyncio.sleep(0.2)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def _seek_wait(self, consumer: Any, partitions: Mapping[TP, int | None]) -> None:
        """Faust's recovery seeks changelog partitions to the offsets it read before; when a
        rebalance lands during recovery, partitions added since have none (``None``), and the
        seek crashed the worker. No known offset means reading the changelog from its start."""
        unknown = sorted(f"{tp.topic}:{tp.partition}" for tp, o in partitions.items() if o is None or o < 0)
        if unknown:
            log.info(logfmt("recovery.seek_from_start", partitions=",".join(unknown)))
        fixed = {tp: (o if o is not None and o >= 0 else 0) for tp, o in partitions.items()}
        await super()._seek_wait(consumer, fixed)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[TP, int | None]:
        """Rewind every assigned partition to its committed offset, and a partition with none
        to its beginning. Faust drops records fetched around a rebalance and relies on this
        rewind to read them again; aiokafka skips partitions without a committed offset, whose
        dropped records were then never read."""
        consumer = self._ensure_consumer()
        assigned = sorted(consumer.assignment())
        committed = await fetch_committed(consumer, assigned)
        uncommitted = []
        for tp in assigned:
            offset = committed.get(tp)
            if offset is None:
                uncommitted.append(tp)
            else:
                consumer.seek(tp, offset)
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return {tp: committed.get(tp) for tp in assigned}

    async def committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        return await self.call_thread(self._committed_metadata, tps)

    async def _committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        entries = await fetch_committed_entries(self._ensure_consumer(), tps)
        return {tp: metadata for tp, (_offset, metadata) in entries.items()}

    def caught_up(self, tp: TP) -> bool:
        """Whether the consumer has read ``tp`` up to its last stable offset (as the last fetch
        response gave it): nothing is left to read."""
        consumer = self._consumer
        if consumer is None:
            return False
        subscription = consumer._subscription.subscription
        assignment = None if subscription is None else subscription.assignment
        if assignment is None or tp not in assignment.tps:
            return False
        state = assignment.state_value(tp)
        end = state.lso if state.lso is not None and state.lso >= 0 else state.highwater
        return state._position is not None and end is not None and state._position >= end

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Faust's ``at_least_once`` commit, with the metadata the stages give for each partition
        (:meth:`agents.commit_gate.CommitGate.metadata_for`); Faust commits an empty string."""
        consumer = self._ensure_consumer()
        assignment = self.assignment()
        metadata_for = gate_for(self.consumer.app).metadata_for
        committable = {tp: offset for tp, offset in offsets.items() if tp in assignment}
        try:
            self.tp_last_committed_at.update(dict.fromkeys(committable, time.monotonic()))
            await consumer.commit(
                {
                    TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, metadata_for(tp))
                    for tp, offset in committable.items()
                }
            )
        except Errors.CommitFailedError as exc:
            if "already rebalanced" in str(exc):
                return False
            log.exception(logfmt("consumer.commit_failed", error=repr(exc)))
            await self.crash(exc)
            return False
        except Exception as exc:
            log.exception(logfmt("consumer.commit_failed", error=repr(exc), assignment=sorted(assignment)))
            await self.crash(exc)
            return False
        return True

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        return cast(Mapping[TP, int], await self._ensure_consumer().end_offsets(partitions))


class Consumer(faust_aiokafka.Consumer):
    def __post_init__(self) -> None:
        super().__post_init__()
        # per partition, the highest offset an agent processed since the partition was assigned
        self._processed: dict[TP, int] = {}
        # per partition, when a fetch last returned records for it (or it was first asked about)
        self._fetched_at: dict[TP, float] = {}

    def caught_up(self, tp: TP) -> bool:
        """Whether nothing is left to read of ``tp`` (see :meth:`ConsumerThread.caught_up`)."""
        return cast(ConsumerThread, self._thread).caught_up(tp)

    def quiet_for(self, tp: TP, now: float) -> float:
        """Seconds (monotonic ``now``) since a fetch last returned records of ``tp``, or since
        this was first asked about ``tp`` in its assignment."""
        return now - self._fetched_at.setdefault(tp, now)

    async def committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        """The metadata committed with the group's offsets of ``tps`` (partitions without a
        committed offset are left out)."""
        return await cast(ConsumerThread, self._thread).committed_metadata(tps)

    def is_repeat(self, message: Any) -> bool:
        """Whether an agent already processed the record of ``message`` since its partition was
        assigned (records of a partition are processed in offset order)."""
        return bool(message.offset <= self._processed.get(message.tp, -1))

    def ack(self, message: Any) -> bool:
        """Count ``message`` as processed only if an agent took it from its stream, once.

        Faust's streams also acknowledge the records they skip: those fetched before a rebalance
        or while the flow was stopped, which the seek after the rebalance reads again. Counted,
        such a record lets the committed offset pass records nobody processed (a crash then
        loses them), and its second delivery waits for an acknowledgement that can never count,
        so the offset stops moving. A repeated delivery (:meth:`is_repeat`) is acknowledged
        without counting for the same reason."""
        if not self.app.topics.acks_enabled_for(message.topic):
            return bool(super().ack(message))
        if not message.tracked:
            message.acked = True
            return False
        if self.is_repeat(message) or message.offset in self._acked_index[message.tp]:
            message.acked = True
            self._unacked_messages.discard(message)
            log.info(
                logfmt(
                    "consumer.repeat_skipped",
                    tp=f"{message.topic}:{message.partition}",
                    offset=message.offset,
                )
            )
            return False
        acked = bool(super().ack(message))
        if acked:
            self._processed[message.tp] = message.offset
        return acked

    def processed_offset(self, tp: TP) -> int:
        """The highest offset of ``tp`` an agent processed since it was assigned (-1: none)."""
        return self._processed.get(tp, -1)

    def ack_processed(self, tp: TP, offsets: list[int]) -> None:
        """Acknowledge records of one partition that a stage processed, in offset order (the
        batch path's :meth:`ack`)."""
        committed = self._committed_offset[tp]
        if committed is not None and offsets[0] < committed:
            offsets = [o for o in offsets if o >= committed]
        if not offsets:
            return
        self._acked_index[tp].update(offsets)
        self._acked[tp].extend(offsets)
        self._n_acked += len(offsets)
        self._processed[tp] = offsets[-1]

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop, handing the records of batch-delivered topics
        (:func:`agents.commit_gate.install_batch_handler`) to their handler a fetch at a time,
        per partition, as aiokafka returned them; records of other topics take Faust's
        per-message path.

        This is Faust's ``getmany`` with its per-record work (an async generator step, the
        generation and flow checks, the highwater and a ``Message`` object per record) done
        once per partition and fetch; the gate checks generation and flow again under its lock
        (:meth:`agents.commit_gate.CommitGate.process_batch`)."""
        routes = batch_routes_for(self.app)
        if not routes:
            await super()._drain_messages(fetcher)
            return
        gate = gate_for(self.app)
        callback = self.callback
        read_offset = self._read_offset
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        monitor = self.app.monitor
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                await asyncio.sleep(0)
                if self.should_stop:
                    break
                records, active = await self._wait_next_records(1.0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:  # as Faust's getmany: back to the committed offsets
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        log.warning(logfmt("consumer.seek_failed", error=repr(exc)))
                    continue
                generation = self.app.consumer_generation_id
                fetched_at = time.monotonic()
                for tp in records:
                    self._fetched_at[tp] = fetched_at
                for tp, fetched in records.items():
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    monitor.track_tp_end_offset(tp, self.highwater(tp))
                    r_offset = read_offset.get(tp)
                    if r_offset is not None and fetched and fetched[0].offset < r_offset:
                        fetched = [r for r in fetched if r.offset >= r_offset]
                    if not fetched:
                        continue
                    read_offset[tp] = fetched[-1].offset
                    handler = routes.get(tp.topic)
                    if handler is not None:
                        await gate.process_batch(self.app, Batch(tp, generation, fetched), handler)
                        continue
                    for record in fetched:
                        await self.wait_first(
                            callback(self._to_message(tp, record)), self.suspend_flow.wait()
                        )
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._processed.pop(tp, None)
            self._fetched_at.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        """Rewind to the committed offsets, without delivering again what agents processed.

        Faust resumes the stream partitions before it seeks them to their committed offsets
        (``Recovery._resume_streams``), so records fetched in between are processed, and then
        delivered again after the seek: every output of theirs twice. Their outputs are in the
        partition's open transaction and their acknowledgements commit with it, so the seek
        keeps the read position past them."""
        await super().perform_seek()
        for tp, offset in self._processed.items():
            read = self._read_offset.get(tp)
            if read is None or read <= offset:
                self._read_offset[tp] = offset + 1

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: one past the highest acknowledged offset that lies
        below every record delivered to the agents and not yet acknowledged.

        Faust's own rule looks for a run of consecutive acknowledged offsets starting right after
        the last commit, and returns nothing while the first one is more than one offset away.
        In a transactional topic that is common (commit markers, and the records of aborted
        transactions a ``read_committed`` consumer skips, after a crash), and its gap tracking
        misses the first record after a restart or a rebalance. The offset then stays behind for
        good while the partition's transaction keeps committing the outputs of later records, and
        a restart processes them again: duplicates. Records are delivered in offset order and
        each agent processes them in order, so every delivered record below the lowest one in
        flight has been processed by all agents."""
        acked = self._acked[tp]
        if not acked:
            return None
        in_flight = [m.offset for m in list(self._unacked_messages) if m.tp == tp]
        limit = min(in_flight, default=None)
        done = [offset for offset in acked if limit is None or offset < limit]
        if not done:
            return None
        new_offset = max(done) + 1
        acked[:] = sorted(offset for offset in acked if offset >= new_offset)
        self._acked_index[tp].difference_update(done)
        return new_offset

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        gate = gate_for(self.app)
        async with gate.closed():
            for write_back in gate.before_commit:
                await write_back()
            before = dict(self._committed_offset)
            committed = await super().force_commit(topics, start_new_transaction=start_new_transaction)
            if self.in_transaction:
                transactions = cast(TransactionManager, self.transactions)
                await transactions.commit_writes_without_offsets(start_new_transaction)
            if committed:
                moved = {
                    tp: o for tp, o in self._committed_offset.items() if o is not None and before.get(tp) != o
                }
                FAULTS.reached(FaultPoint.COMMIT_DONE, offsets=offsets_detail(moved))
            return committed

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer
    TransactionManager = TransactionManager

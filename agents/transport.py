"""The ``continust://`` Faust transport: Faust's aiokafka transport with a transaction manager
that keeps every write in the transaction of the input partition it derives from.

Faust's own manager picks the transactional producer by the *destination* topic and partition,
which fails for topics the app does not consume (output topics) and puts a record written to
another partition (repartitioning) into another partition's transaction. Here:

* a send that names ``transactional_id`` goes to exactly that producer;
* a send without one (Faust's table changelog writes, always to the partition of the event being
  processed) keeps Faust's rule, which for co-partitioned topics is the source's producer;
* before offsets commit, Faust's send buffer is drained completely (step 4 of
  :mod:`agents.commit_order`), so changelog records buffered by ``send_soon`` are inside the
  transaction that commits the offsets they derive from. Faust's own ``flush()`` gives up
  after 100 ms without progress and does not wait for the record its background task is
  sending; its producer here uses a buffer that can be drained (:class:`DrainableProducerBuffer`);
* records written while a partition had no input (stream time moved by the idle timeout) are
  committed in that partition's transaction at the next commit although no offset moved.

Its consumer
* commits only through the commit gate (:mod:`agents.commit_gate`), in the order of the app's
  commit sequence (:mod:`agents.commit_order`), whose steps 4 to 6 it carries out;
* asks the broker for end offsets instead of reading the cached last stable offset: under
  ``exactly_once`` Faust takes a partition's highwater from the last fetch, which is unknown (-1)
  for a changelog partition not fetched yet, so a worker restarting with state on disk failed its
  recovery consistency check (persisted offset > -1). ``end_offsets`` of a ``read_committed``
  consumer is the last stable offset, which is what recovery must read up to;
* rewinds partitions without a committed offset to their beginning when Faust rewinds to the
  committed offsets (see :meth:`ConsumerThread.rewind_to_committed`).

Every private name of Faust or aiokafka it needs goes through :mod:`agents.faust_compat`.

Registered under the ``faust.transports`` entry point as ``continust``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from types import MappingProxyType
from typing import Any, cast

import aiokafka.errors as Errors
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from faust.types.enums import ProcessingGuarantee
from faust.types.tuples import FutureMessage, RecordMetadata
from mode import ServiceT

from agents.app_runtime import runtime_of
from agents.commit_gate import Batch, BatchHandler
from agents.commit_order import CommitOutcome, CommitRequest
from agents.faults import FAULTS, FaultPoint, offsets_detail
from agents.faust_compat import (
    ConsumerHooks,
    ProducerHooks,
    SendBufferHooks,
    acked_index,
    acked_offsets,
    buffered_partitions,
    committed_offsets,
    consumer_thread,
    count_acked,
    faust_aiokafka,
    forget_coordinator,
    in_transaction,
    install_send_buffer,
    kafka_consumer,
    next_records,
    offset_fetch,
    offsets_with_metadata,
    partition_state,
    persisted_changelog_offsets,
    read_offsets,
    to_message,
    transaction_lock,
    transaction_producer,
    unacked_messages,
)
from agents.faust_compat import TransactionManager as FaustTransactionManager
from agents.rewinds import PartitionRewinds
from agents.stable_ends import ends_reaching
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import COMMIT_FAILURES, COMMIT_SECONDS
from streams.telemetry.tracing import current_tracer

log = logging.getLogger("continust.transport")

DRAIN_TIMEOUT_S = 60.0


class DrainableProducerBuffer(SendBufferHooks):
    """Faust's send buffer, counting the record its background task is sending."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_flight = 0
        self.drain_progress = asyncio.Event()

    async def send_buffered(self, fut: FutureMessage) -> None:
        self.in_flight += 1
        try:
            await super().send_buffered(fut)
        finally:
            self.in_flight -= 1
            self.drain_progress.set()

    async def drain(self) -> None:
        """Return once every buffered record has been handed to its producer, in order (the
        background task sends them; nothing here sends out of turn). Raises ``TimeoutError``
        when the buffer makes no progress for ``DRAIN_TIMEOUT_S``."""
        while self.size or self.in_flight:
            self.drain_progress.clear()
            await asyncio.wait_for(self.drain_progress.wait(), timeout=DRAIN_TIMEOUT_S)


class Producer(ProducerHooks):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            raise ValueError("continust does not support Faust's producer_threaded setting")
        install_send_buffer(self, DrainableProducerBuffer(loop=self.loop, beacon=self.beacon))

    def settings_extra(self) -> Mapping[str, Any]:
        """Faust's, and under ``exactly_once`` the transaction timeout of the worker's settings
        (:attr:`AppRuntime.transaction_timeout_ms`): a transaction open when the broker became
        unreachable stays valid for as long as the worker waits for it."""
        extra = dict(super().settings_extra())
        if self.app.in_transaction:
            extra["transaction_timeout_ms"] = runtime_of(self.app).transaction_timeout_ms
        return extra

    async def maybe_begin_transaction(self, transactional_id: str) -> None:
        """Begin a transaction for a partition assigned at a rebalance, unless its producer has
        one open already: a partition this worker keeps whose transaction held nothing at the
        revocation's commit (Faust begins unconditionally, and logs aiokafka's refusal of
        ``IN_TRANSACTION -> IN_TRANSACTION`` as an exception)."""
        producer = transaction_producer(self, transactional_id)
        if producer is not None and in_transaction(producer):
            return
        await super().maybe_begin_transaction(transactional_id)

    async def commit_transactions(
        self,
        tid_to_offset_map: Mapping[str, Mapping[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        """Commit the transaction of every input partition at the same time, each once its
        records are acknowledged (see the comment in the body). Faust commits them
        one after another, each a few broker round trips (offsets, end, begin): with 8 input
        partitions a commit took about 0.5 s, during which the gate holds processing and every
        output waits. The transactions are independent, as they are when committed in turn; the
        first failure is raised once all have finished. Each offset is committed with the
        metadata the stages give for its partition (:meth:`CommitSequence.metadata_for`)."""
        commit_one = super().commit_transactions
        metadata_for = runtime_of(self.app).sequence.metadata_for

        async def commit(tid: str, offsets: Mapping[TP, int]) -> None:
            producer = transaction_producer(self, tid)
            if producer is None:
                # Faust logs "Commit invoked for unknown transaction" and goes on as if the
                # offsets had committed: the commit's later steps would then apply state whose
                # offsets no transaction carried
                raise NoTransactionProducer(tid, offsets)
            # The transaction's records are acknowledged before its offsets are added. Adding
            # them (AddOffsetsToTxn) puts the transaction in a pending state on its
            # coordinator; a produce of the same transaction still in flight then fails the
            # broker's transaction verification (KIP-890) with CONCURRENT_TRANSACTIONS, which
            # the broker reports to aiokafka as NOT_ENOUGH_REPLICAS: the "NotEnoughReplicas"
            # produce retries on changelog and output partitions of a healthy single broker.
            # commit_transaction waits for these acknowledgements anyway; waiting first
            # spares the retries.
            await producer.flush()
            await commit_one(
                {tid: offsets_with_metadata(offsets, metadata_for)},
                group_id,
                start_new_transaction=start_new_transaction,
            )

        results = await asyncio.gather(
            *(commit(tid, offsets) for tid, offsets in tid_to_offset_map.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


class NoTransactionProducer(RuntimeError):
    """Offsets to commit in a transaction whose producer this worker does not have (never
    started, or stopped after it was fenced): they cannot commit exactly once, so the commit
    fails and the worker stops; the partition's next owner processes that input again, once."""

    def __init__(self, transactional_id: str, offsets: Mapping[TP, int]) -> None:
        partitions = ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(offsets))
        super().__init__(f"no transactional producer {transactional_id} for the offsets of {partitions}")
        self.transactional_id = transactional_id


class TransactionManager(FaustTransactionManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: transactional ids with records since their last commit
        self.written_since_commit: set[str] = set()
        #: transactional ids whose partition had input processed since its offset last committed
        self.input_since_commit: set[str] = set()

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
                transactional_id = runtime_of(self.app).transactional_id(TP(topic, partition))
        if transactional_id is not None:
            self.written_since_commit.add(transactional_id)
        return await self.producer.send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    def mark_written(self, transactional_id: str) -> None:
        """Record that ``transactional_id``'s producer got records outside :meth:`send` (batches
        from :class:`agents.sink.Sink`), so the next commit covers them."""
        self.written_since_commit.add(transactional_id)

    def mark_input(self, tp: TP) -> None:
        """Record that input of ``tp`` was processed: its transaction holds what that input
        wrote, which may commit only with ``tp``'s offset (step 5), never without it (step 6)."""
        self.input_since_commit.add(self.transactional_id_of(tp))

    def transactional_id_of(self, tp: TP) -> str:
        """The transactional id of input partition ``tp`` (:meth:`AppRuntime.transactional_id`)."""
        return runtime_of(self.app).transactional_id(tp)

    @property
    def uncommitted_writes(self) -> bool:
        """Whether some producer sent records that no commit has covered yet."""
        return bool(self.written_since_commit)

    async def drain_send_buffer(self) -> None:
        """Wait until every record in Faust's send buffer was handed to its producer."""
        await cast(DrainableProducerBuffer, self.producer.buffer).drain()

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Commit ``offsets`` in their partitions' transactions (step 5 of
        :mod:`agents.commit_order`, called by Faust's ``force_commit``). The commit sequence
        drained the send buffer just before (step 4); draining again here covers what Faust sent
        since (its attached records), so no offset commits ahead of a record still buffered.

        Faust's own ``commit`` catches ``ProducerFenced``, crashes the app and answers that it
        committed: the commit sequence then went on to step 7 and wrote the fenced (aborted)
        transaction's state to RocksDB, with a changelog offset past it, so a restart from
        that disk held state no committed offset covers. Here the producer's error is raised:
        the commit fails, step 7 never runs, and the worker stops."""
        await self.drain_send_buffer()
        await self.begin_missing_transactions(offsets)
        await FAULTS.pass_point(FaultPoint.COMMIT_IN_TRANSACTION, offsets=offsets_detail(offsets))
        by_transaction: dict[str, dict[TP, int]] = {}
        for tp, offset in offsets.items():
            by_transaction.setdefault(self.transactional_id_of(tp), {})[tp] = offset
        if by_transaction:
            try:
                await cast(Producer, self.producer).commit_transactions(
                    by_transaction, self.app.conf.id, start_new_transaction=start_new_transaction
                )
            except Errors.ProducerFenced as exc:
                log.error(logfmt("transaction.fenced", error=repr(exc)))
                await self.app.crash(exc)  # as Faust does, whichever path asked for the commit
                raise
        committed = True
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                logfmt(
                    "transaction.commit",
                    offsets=",".join(f"{tp.topic}:{tp.partition}={o}" for tp, o in sorted(offsets.items())),
                )
            )
        for tp in offsets:
            tid = self.transactional_id_of(tp)
            self.written_since_commit.discard(tid)
            self.input_since_commit.discard(tid)
        return committed

    async def commit_writes_without_offsets(self, start_new_transaction: bool = True) -> None:
        """Commit the transactions that hold records but no offsets: what a partition wrote
        while no input arrived (stream time moved by the idle timeout). Without this they would
        stay invisible to ``read_committed`` readers until the partition's next input (step 6
        of :mod:`agents.commit_order`; the buffer is drained again, as in :meth:`commit`).

        A transaction holding records of processed input whose offset step 5 did not commit is
        never committed here: its records would become visible while the offset that covers
        them stays behind, and the partition's next owner would process that input again.
        Raises :class:`UncoveredInput` instead, which stops the worker; its transactions are
        aborted when the next owner's producer fences them, and the input is processed again,
        once."""
        uncovered = sorted(self.input_since_commit & self.written_since_commit)
        if uncovered:
            raise UncoveredInput(uncovered)
        await self.drain_send_buffer()
        faust_producer = cast(faust_aiokafka.Producer, self.producer)

        async def commit(tid: str) -> None:
            producer = transaction_producer(faust_producer, tid)
            if producer is None:
                return
            async with transaction_lock(faust_producer, tid):
                if not in_transaction(producer):
                    return
                await producer.commit_transaction()
                log.debug(logfmt("transaction.committed_without_offsets", transactional_id=tid))
                if start_new_transaction:
                    await producer.begin_transaction()

        pending = sorted(self.written_since_commit)
        results = await asyncio.gather(*(commit(tid) for tid in pending), return_exceptions=True)
        self.written_since_commit.clear()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def begin_missing_transactions(self, offsets: Mapping[TP, int]) -> None:
        """On shutdown Faust commits once with ``start_new_transaction=False`` and then once more
        when its consumer stops; offsets still to commit then need a transaction to go in."""
        runtime = runtime_of(self.app)
        for tp in offsets:
            producer = runtime.producer_for(tp)
            if producer is not None and not in_transaction(producer):
                await producer.begin_transaction()


class UncoveredInput(RuntimeError):
    """A commit would make records of processed input visible without the offsets that cover
    them (see :meth:`TransactionManager.commit_writes_without_offsets`)."""

    def __init__(self, transactional_ids: list[str]) -> None:
        super().__init__(
            f"transactions {', '.join(transactional_ids)} hold records of processed input whose "
            "offsets did not commit; not committing them without their offsets"
        )
        self.transactional_ids = transactional_ids


# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, UNSTABLE_OFFSET_COMMIT
RETRIABLE_FETCH_ERRORS = {14, 15, 16, 88}
NOT_COORDINATOR = 16


async def fetch_committed(consumer: Any, tps: list[TP], timeout_s: float = 60.0) -> dict[TP, int]:
    """The group's committed offset of each partition that has one (see
    :func:`fetch_committed_entries`)."""
    entries = await fetch_committed_entries(consumer, tps, timeout_s)
    return {tp: offset for tp, (offset, _metadata) in entries.items()}


async def fetch_committed_entries(
    consumer: Any, tps: list[TP], timeout_s: float = 60.0
) -> dict[TP, tuple[int, str]]:
    """The group's committed offset and its metadata, for each partition that has one.

    aiokafka's ``committed()`` ignores the group-level error code of an OffsetFetch response
    (v2+), so while the coordinator loads or moves it reports "no committed offset" for every
    partition; here such an answer is retried instead of being taken for the truth."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        answer = await offset_fetch(consumer, tps)
        codes = {answer.error_code}
        offsets: dict[TP, tuple[int, str]] = {}
        for entry in answer.entries:
            codes.add(entry.error_code)
            if entry.offset >= 0:
                offsets[entry.tp] = (entry.offset, entry.metadata or "")
        codes.discard(0)
        if not codes:
            return offsets
        log.warning(logfmt("offsets.fetch_retry", group=answer.group_id, error_codes=sorted(codes)))
        if NOT_COORDINATOR in codes:
            forget_coordinator(consumer)
        if not codes <= RETRIABLE_FETCH_ERRORS:
            raise Errors.for_code(max(codes - RETRIABLE_FETCH_ERRORS))()
        if asyncio.get_running_loop().time() > deadline:
            raise Errors.KafkaTimeoutError(f"committed offsets of {answer.group_id} not available")
        await asyncio.sleep(0.2)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    #: what the last rewind to the committed offsets sought: each partition assigned then, with
    #: its committed offset (0: none, read from its beginning)
    last_rewound: Mapping[TP, int] = MappingProxyType({})

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check reads each assigned partition's fetch position, which aiokafka
        asserts is known; a partition assigned moments ago whose position is still being
        fetched or reset has none, and the check crashed the worker (seen when one worker took
        over every partition of one that stopped). Such a partition is checked once it has a
        position."""
        state = partition_state(kafka_consumer(self), tp)
        if state is None or state.position is None:
            return None
        return super().verify_event_path(now, tp)

    async def seek_wait(self, partitions: Mapping[TP, int | None]) -> None:
        """Faust's recovery seeks changelog partitions to the offsets it read before; when a
        rebalance lands during recovery, partitions added since have none (``None``), and the
        seek crashed the worker. No known offset means reading the changelog from its start."""
        unknown = sorted(f"{tp.topic}:{tp.partition}" for tp, o in partitions.items() if o is None or o < 0)
        if unknown:
            log.info(logfmt("recovery.seek_from_start", partitions=",".join(unknown)))
        fixed = {tp: (o if o is not None and o >= 0 else 0) for tp, o in partitions.items()}
        await super().seek_wait(fixed)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self.rewind_to_committed)

    async def rewind_to_committed(self) -> Mapping[TP, int | None]:
        """Rewind every assigned partition to its committed offset, and a partition with none
        to its beginning (in the consumer thread). Faust drops records fetched around a
        rebalance and relies on this rewind to read them again; aiokafka skips partitions
        without a committed offset, whose dropped records were then never read."""
        consumer = kafka_consumer(self)
        assigned = sorted(consumer.assignment())
        committed = await fetch_committed(consumer, assigned)
        uncommitted = []
        for tp in assigned:
            offset = committed.get(tp)
            if offset is None:
                uncommitted.append(tp)
            else:
                consumer.seek(tp, offset)
        self.last_rewound = {tp: committed.get(tp) or 0 for tp in assigned}
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return {tp: committed.get(tp) for tp in assigned}

    async def committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        return await self.call_thread(self.read_committed_metadata, tps)

    async def read_committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        """The metadata committed with the group's offsets of ``tps`` (in the consumer thread)."""
        entries = await fetch_committed_entries(kafka_consumer(self), tps)
        return {tp: metadata for tp, (_offset, metadata) in entries.items()}

    def caught_up(self, tp: TP) -> bool:
        """Whether the consumer has read ``tp`` up to its last stable offset (as the last fetch
        response gave it): nothing is left to read."""
        try:
            consumer = kafka_consumer(self)
        except ConsumerNotStarted:
            return False
        state = partition_state(consumer, tp)
        if state is None:
            return False
        lso = state.last_stable_offset
        end = lso if lso is not None and lso >= 0 else state.highwater
        return state.position is not None and end is not None and state.position >= end

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit ``offsets`` under ``at_least_once`` (in the consumer thread, see
        :meth:`commit_with_metadata`)."""
        return await self.call_thread(self.commit_with_metadata, offsets)

    async def commit_with_metadata(self, offsets: Mapping[TP, int]) -> bool:
        """Faust's ``at_least_once`` commit, with the metadata the stages give for each partition
        (:meth:`agents.commit_order.CommitSequence.metadata_for`); Faust commits an empty string."""
        consumer = kafka_consumer(self)
        assignment = self.assignment()
        metadata_for = runtime_of(self.consumer.app).sequence.metadata_for
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
            COMMIT_FAILURES.inc()
            log.exception(logfmt("consumer.commit_failed", error=repr(exc)))
            await self.crash(exc)
            return False
        except Exception as exc:
            COMMIT_FAILURES.inc()
            log.exception(logfmt("consumer.commit_failed", error=repr(exc), assignment=sorted(assignment)))
            await self.crash(exc)
            return False
        return True

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """The end offsets of ``partitions``, asked of the broker (see the module docstring);
        under ``exactly_once``, not behind what the tables' stores on disk name
        (:func:`agents.stable_ends.ends_reaching`)."""
        ends = await self.call_thread(self.read_end_offsets, list(partitions))
        app = self.consumer.app
        if app.conf.processing_guarantee != ProcessingGuarantee.EXACTLY_ONCE:
            return ends

        async def reread(tps: list[TP]) -> Mapping[TP, int]:
            return await self.call_thread(self.read_end_offsets, tps)

        return await ends_reaching(ends, persisted_changelog_offsets(app, partitions), reread)

    async def read_end_offsets(self, partitions: list[TP]) -> Mapping[TP, int]:
        """The end offsets of ``partitions`` (in the consumer thread): the last stable offsets
        for a ``read_committed`` consumer."""
        return cast(Mapping[TP, int], await kafka_consumer(self).end_offsets(partitions))


class Consumer(ConsumerHooks):
    def __post_init__(self) -> None:
        super().__post_init__()
        #: the rewind bookkeeping of the assignment: where each partition may be processed from,
        #: the seek epoch, the partitions waiting to be sought back (:mod:`agents.rewinds`)
        self.rewinds = PartitionRewinds()
        #: per partition, when a fetch last returned records for it (or it was first asked about)
        self.fetched_at: dict[TP, float] = {}
        #: partitions whose records the last fetch returned and the gate has not dealt with yet:
        #: not idle, whatever the fetch position says (one fetch's batches can take longer than
        #: ``idle_after`` to process, each waiting for the gate, under load)
        self.unhandled: set[TP] = set()

    def caught_up(self, tp: TP) -> bool:
        """Whether nothing is left to read of ``tp`` (see :meth:`ConsumerThread.caught_up`), nor
        to process: records a fetch returned count as read for the fetch position, and wait in
        the fetch loop until the gate has dealt with them (:attr:`unhandled`), or were dropped
        and wait for their rewind (:meth:`rewind_pending`)."""
        if tp in self.unhandled or self.rewinds.pending(tp):
            return False
        return cast(ConsumerThread, consumer_thread(self)).caught_up(tp)

    def quiet_for(self, tp: TP, now: float) -> float:
        """Seconds (monotonic ``now``) since a fetch last returned records of ``tp``, or since
        this was first asked about ``tp`` in its assignment."""
        return now - self.fetched_at.setdefault(tp, now)

    async def committed_metadata(self, tps: list[TP]) -> Mapping[TP, str]:
        """The metadata committed with the group's offsets of ``tps`` (partitions without a
        committed offset are left out)."""
        return await cast(ConsumerThread, consumer_thread(self)).committed_metadata(tps)

    def is_repeat(self, message: Any) -> bool:
        """Whether an agent already processed the record of ``message`` since its partition was
        assigned (records of a partition are processed in offset order)."""
        return bool(message.offset <= self.rewinds.processed.get(message.tp, -1))

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
        if self.is_repeat(message) or message.offset in acked_index(self)[message.tp]:
            message.acked = True
            unacked_messages(self).discard(message)
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
            self.rewinds.processed[message.tp] = message.offset
        return acked

    @property
    def seek_epoch(self) -> int:
        """The rewind epoch (:attr:`agents.rewinds.PartitionRewinds.seek_epoch`): a batch from a
        fetch that began in an older one is dropped by the gate."""
        return self.rewinds.seek_epoch

    def mark_rewind(self, tp: TP) -> None:
        """The gate dropped fetched records of ``tp`` unprocessed: nothing more of it may be
        processed before the fetch loop rewinds it (:meth:`rewind_dropped`)."""
        self.rewinds.mark(tp)

    def rewind_pending(self, tp: TP) -> bool:
        return self.rewinds.pending(tp)

    async def rewind_dropped(self) -> None:
        """Seek each partition marked by :meth:`mark_rewind` back to its target
        (:meth:`agents.rewinds.PartitionRewinds.target`), so that the records the gate dropped
        are read and processed, in order, before any later one. A partition no longer assigned
        is forgotten; one not yet rewound in this assignment waits for :meth:`perform_seek`."""
        assigned = self.assignment()
        rewinds = self.rewinds
        rewinds.forget(tp for tp in sorted(rewinds.rewind_needed) if tp not in assigned)
        for tp in sorted(rewinds.rewind_needed):
            target = rewinds.target(tp)
            if target is None:
                continue
            rewinds.sought_back(tp)  # a new epoch before the seek: a fetch now is from after it
            await self.seek(tp, target)
            self.fetched_at[tp] = time.monotonic()  # quiet (idle) only from the rewind on
            log.info(logfmt("consumer.rewind_dropped", tp=f"{tp.topic}:{tp.partition}", offset=target))

    def resume_offset(self, tp: TP) -> int | None:
        """The offset ``tp`` was rewound to in this assignment (its last committed offset, read
        stably), or ``None`` before the rewind: no record of ``tp`` may be processed then."""
        return self.rewinds.positioned.get(tp)

    def processed_offset(self, tp: TP) -> int:
        """The highest offset of ``tp`` an agent processed since it was assigned (-1: none)."""
        return self.rewinds.processed.get(tp, -1)

    def ack_processed(self, tp: TP, offsets: list[int]) -> None:
        """Acknowledge records of one partition that a stage processed, in offset order (the
        batch path's :meth:`ack`)."""
        committed = committed_offsets(self)[tp]
        if committed is not None and offsets[0] < committed:
            offsets = [o for o in offsets if o >= committed]
        if not offsets:
            return
        acked_index(self)[tp].update(offsets)
        acked_offsets(self)[tp].extend(offsets)
        count_acked(self, len(offsets))
        self.rewinds.processed[tp] = offsets[-1]
        if self.in_transaction:
            cast(TransactionManager, self.transactions).mark_input(tp)

    async def drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's fetch loop, handing the records of batch-delivered topics
        (:meth:`agents.app_runtime.AppRuntime.install_batch_handler`) to their handler a fetch at a time,
        per partition, as aiokafka returned them; records of other topics take Faust's
        per-message path.

        This is Faust's ``getmany`` with its per-record work (an async generator step, the
        generation and flow checks, the highwater and a ``Message`` object per record) done
        once per partition and fetch; the gate checks generation and flow again under its lock
        (:meth:`agents.commit_gate.CommitGate.process_batch`)."""
        routes = runtime_of(self.app).batch_routes
        if not routes:
            await super().drain_messages(fetcher)
            return
        try:
            while not (self.should_stop or fetcher.should_stop):
                await asyncio.sleep(0)
                if self.should_stop:
                    break
                if self.rewinds.rewind_needed:
                    await self.rewind_dropped()
                epoch = self.seek_epoch  # before the fetch: a rewind during it makes it stale
                records, active = await next_records(self, 1.0)
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
                    self.fetched_at[tp] = fetched_at
                self.unhandled.update(records)
                try:
                    for tp, fetched in records.items():
                        await self.deliver_batch(tp, fetched, active, generation, routes, epoch)
                        self.unhandled.discard(tp)
                finally:
                    self.unhandled.clear()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def deliver_batch(
        self,
        tp: TP,
        fetched: list[Any],
        active: set[TP] | None,
        generation: int,
        routes: Mapping[str, BatchHandler],
        epoch: int = 0,
    ) -> None:
        """Hand the records of ``tp`` one fetch returned to their batch handler through the gate,
        or to Faust's per-message path (see :meth:`drain_messages`); ``epoch``: the seek epoch
        when the fetch began."""
        if not (active is None or tp in active or tp in buffered_partitions(self)):
            return
        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        read_offset = read_offsets(self)
        r_offset = read_offset.get(tp)
        if r_offset is not None and fetched and fetched[0].offset < r_offset:
            fetched = [r for r in fetched if r.offset >= r_offset]
        if not fetched:
            return
        read_offset[tp] = fetched[-1].offset
        handler = routes.get(tp.topic)
        if handler is not None:
            gate = runtime_of(self.app).gate
            await gate.process_batch(self.app, Batch(tp, generation, fetched, epoch), handler)
            return
        for record in fetched:
            await self.wait_first(self.callback(to_message(self, tp, record)), self.suspend_flow.wait())

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit everything processed, then forget the revoked partitions' bookkeeping.

        Faust drops the acknowledged offsets of the revoked partitions first and commits
        after, at the end of its revocation handler: that commit carried no offsets, while
        the transactions still held the records of the batches processed since the last
        commit, which step 6 of the commit then made visible. Every such record was read
        again by the partition's next owner (or by this worker after its rewind): counted
        twice. A batch still being processed when the revocation arrived also acknowledged
        its offsets after they were dropped, so a later assignment of the partition took
        them for its own and skipped records nobody had committed.

        Here the flow stops first (no batch starts after), the commit takes the gate (a batch
        in progress finishes first), commits every processed offset with the records it
        derives from and ends the transactions; only then is anything forgotten. A commit
        that fails stops the worker: its open transactions are aborted when the partitions'
        next owners fence them, and their input is processed again, once."""
        FAULTS.revocation_began()
        try:
            await self.commit_and_forget(revoked)
        finally:
            FAULTS.revocation_ended()

    async def commit_and_forget(self, revoked: set[TP]) -> None:
        """The revocation of :meth:`on_partitions_revoked`: commit, then forget (in Faust's
        handler too, whose own commit then finds nothing left)."""
        if revoked and not self.app.should_stop:
            self.stop_flow()
            try:
                await self.force_commit(start_new_transaction=False)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                log.exception(logfmt("rebalance.commit_failed", error=repr(exc)))
                await self.crash(exc)
                raise
        self.rewinds.forget(revoked)
        for tp in revoked:
            self.fetched_at.pop(tp, None)
        if self.in_transaction:
            transactions = cast(TransactionManager, self.transactions)
            for tp in revoked:
                transactions.input_since_commit.discard(transactions.transactional_id_of(tp))
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        """Rewind to the committed offsets, without delivering again what agents processed.

        Faust resumes the stream partitions before it seeks them to their committed offsets
        (``Recovery._resume_streams``); records fetched in between are dropped by the gate, as
        nothing of a partition is processed before its rewind. A rewind later in the same
        assignment (the fetch loop rewinds while the flow is stopped) keeps the read position
        past what was processed: those records' outputs are in the partition's open
        transaction, and their acknowledgements commit with it.

        The committed offsets are read stably (:func:`fetch_committed`), and each partition the
        rewind sought is remembered with its offset (:meth:`resume_offset`): the gate processes
        nothing of a partition before its rewind, nor any record below that offset. The fetch
        loop runs while the rewind waits for the broker, so its end starts a new seek epoch and
        keeps the partitions the gate marked meanwhile marked (:mod:`agents.rewinds`): their
        fetch position moved past records it dropped. Records fetched before the rewind were
        dropped, so each partition's quiet time (:meth:`quiet_for`) starts again at it: a
        partition whose backlog was fetched, dropped and not yet fetched again is not idle."""
        rewinds = self.rewinds
        rewinds.seek_began()  # what a fetch in progress returns is from before the rewind
        await super().perform_seek()
        assigned = self.assignment()
        sought = cast(ConsumerThread, consumer_thread(self)).last_rewound
        rewinds.seek_ended({tp: offset for tp, offset in sought.items() if tp in assigned})
        read_offset = read_offsets(self)
        for tp, offset in rewinds.processed.items():
            read = read_offset.get(tp)
            if read is None or read <= offset:
                read_offset[tp] = offset + 1
        # what was fetched before the rewind is read again: a partition is quiet (idle) only
        # once nothing came for idle_after since the rewind, not since a fetch it dropped
        now = time.monotonic()
        for tp in rewinds.positioned:
            self.fetched_at[tp] = now

    def new_offset(self, tp: TP) -> int | None:
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
        acked = acked_offsets(self)[tp]
        if not acked:
            return None
        in_flight = [m.offset for m in list(unacked_messages(self)) if m.tp == tp]
        limit = min(in_flight, default=None)
        done = [offset for offset in acked if limit is None or offset < limit]
        if not done:
            return None
        new_offset = max(done) + 1
        acked[:] = sorted(offset for offset in acked if offset >= new_offset)
        acked_index(self)[tp].difference_update(done)
        return new_offset

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Commit under the commit gate, in the order of the app's commit sequence
        (:class:`agents.commit_order.CommitSequence`); steps 4 to 6 are the methods below.
        Each commit is observed in ``continust_commit_seconds``, one that raises (cancellation
        aside) counts in ``continust_commit_failures_total``, and one that committed offsets is
        progress for the worker's liveness (:mod:`agents.liveness`); each is a
        ``continust.commit`` span when tracing is on (:mod:`streams.telemetry.tracing`)."""
        request = CommitRequest(topics, start_new_transaction)
        runtime = runtime_of(self.app)
        async with runtime.gate.closed():
            started = time.perf_counter()
            try:
                with current_tracer().commit() as span:
                    committed = await runtime.sequence.run(self, request)
                    span.set_attribute("continust.committed", committed)
            except BaseException as exc:
                if not isinstance(exc, asyncio.CancelledError):
                    COMMIT_FAILURES.inc()
                raise
            COMMIT_SECONDS.observe(time.perf_counter() - started)
            if committed:
                runtime.liveness.progressed()
            return committed

    async def drain_send_buffer(self) -> None:
        """Step 4: under ``exactly_once``, hand every record of Faust's send buffer to its
        transactional producer (under ``at_least_once`` Faust flushes the producer in step 5)."""
        if self.in_transaction:
            await cast(TransactionManager, self.transactions).drain_send_buffer()

    async def commit_offsets(self, request: CommitRequest) -> CommitOutcome:
        """Step 5: Faust's commit of the acknowledged offsets (in each input partition's
        transaction under ``exactly_once``: :meth:`TransactionManager.commit`)."""
        before = dict(committed_offsets(self))
        committed = await super().force_commit(
            request.topics, start_new_transaction=request.start_new_transaction
        )
        if not committed:
            return CommitOutcome(committed=False)
        moved = {tp: o for tp, o in committed_offsets(self).items() if o is not None and before.get(tp) != o}
        return CommitOutcome(committed=True, moved=moved)

    async def commit_writes_without_offsets(self, request: CommitRequest) -> None:
        """Step 6: under ``exactly_once``, commit the transactions holding records whose
        offset did not move (:meth:`TransactionManager.commit_writes_without_offsets`)."""
        if self.in_transaction:
            transactions = cast(TransactionManager, self.transactions)
            await transactions.commit_writes_without_offsets(request.start_new_transaction)

    def new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer
    TransactionManager = TransactionManager

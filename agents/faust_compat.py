"""The runtime seam: every place continust depends on a private name or an undocumented behaviour
of faust-streaming, mode, aiokafka or aiohttp (Faust's web server).

Exactly-once needs more than the libraries' public API: the transactional producer of an input
partition, whether it has a transaction open, Faust's offset bookkeeping, its fetch loop, the
fetch position of a partition, the group's committed offsets with their error codes, a table
partition's RocksDB. All of it goes through this module, as small functions, or as an adapter
class that maps a private method the library calls to a hook under continust's own name. No
other module of the project (``agents``, ``streams``, ``windows``, ``bench``) names a private
attribute of those libraries, overrides one of their private methods, or reads an attribute
with a ``getattr`` default; ``tests/unit/test_faust_compat.py`` scans every module.

Every item's docstring says what it relies on (library, class, member and signature), what
continust needs it for, and what breaks if it changes. Another module may override a public but
undocumented library method (``agents/transport.py`` does, for the commit path): each such
override is registered too, under the overriding class's ``module:Class``, with the signature
and the source of the method it replaces, so a library change fails the canary rather than
leaving an override that silently stops running. :data:`REGISTRY` lists the library
members the items touch, with the signature or attribute each expects; the canary test checks
every entry against the installed libraries, one test per entry.

The items were checked against :data:`PINS`, the versions ``pyproject.toml`` pins. Nothing here
falls back silently: a missing attribute raises ``AttributeError`` where it is used, and a
shape the seam does not know raises :class:`SeamMismatch`.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import inspect
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSet
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server
from aiokafka.conn import create_conn
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.commit import (
    OffsetFetchRequest,
    OffsetFetchRequest_v1,
    OffsetFetchRequest_v2,
    OffsetFetchRequest_v3,
)
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)
from aiokafka.structs import OffsetAndMetadata
from faust.assignor import PartitionAssignor
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.manager import TableManager
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.consumer import TransactionManager as TransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP, AppT, ConsumerMessage, Message
from faust.types.tuples import FutureMessage
from mode import ServiceT

from streams.api.http_server import (
    ConnectionLimits,
    handler_error_answer,
    head_timeout_answer,
    over_cap_answer,
)

#: The library versions every item below was checked against (``pyproject.toml`` pins the same).
PINS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "aiohttp": "3.14.5"}


class SeamMismatch(RuntimeError):
    """A library object does not have the shape the seam was written for."""


# -- transactions: faust.transport.drivers.aiokafka.Producer, aiokafka.AIOKafkaProducer -------


def transactional_id_for(app_id: str, group: int, partition: int) -> str:
    """The transactional id of the producer Faust runs for input partition ``partition`` of topic
    group ``group``.

    Relies on: faust-streaming, ``faust.transport.consumer.TransactionManager``, which names the
    producer of an active input partition ``transactional_id_format``
    (``"{group_id}-{tpg.group}-{tpg.partition}"``, spelled out again in its ``commit``) and starts
    and stops it on every rebalance.
    Needed for: picking the producer of the input partition a record derives from (the sink, the
    transaction manager's sends and commits).
    If it changes: :func:`transaction_producer` finds no producer, so every exactly-once write
    raises "no transactional producer", or a record lands in another partition's transaction.
    """
    return f"{app_id}-{group}-{partition}"


def transaction_producer(producer: faust_aiokafka.Producer, transactional_id: str) -> Any | None:
    """The aiokafka producer Faust runs for ``transactional_id``, or ``None`` when it has none
    (the partition is not assigned here, or its producer was fenced and stopped).

    Relies on: faust-streaming, ``faust.transport.drivers.aiokafka.Producer._transaction_producers``
    (``dict[str, aiokafka.AIOKafkaProducer]``, filled by ``begin_transaction``, emptied by
    ``stop_transaction``).
    Needed for: appending whole record batches to a transaction (Faust sends one record at a
    time), and committing transactions that hold records but no offsets. Faust has no public
    lookup of a transaction's producer.
    If it changes: ``AttributeError`` at the first write under ``exactly_once``.
    """
    producers: Mapping[str, Any] = producer._transaction_producers
    return producers.get(transactional_id)


def transaction_lock(producer: faust_aiokafka.Producer, transactional_id: str) -> asyncio.Lock:
    """The lock Faust holds around every operation on ``transactional_id``'s transaction.

    Relies on: faust-streaming, ``faust.transport.drivers.aiokafka.Producer._trn_locks``
    (``dict[str, asyncio.Lock]``; ``begin_transaction`` creates the lock with the producer and
    nothing removes it, so a producer :func:`transaction_producer` finds has one).
    Needed for: committing a transaction that holds records but no offsets without interleaving
    with Faust's own commit or begin of the same transaction.
    If it changes: ``AttributeError`` (renamed), or ``KeyError`` (no lock per producer any more)
    at the first commit of an idle partition's writes.
    """
    locks: Mapping[str, asyncio.Lock] = producer._trn_locks
    return locks[transactional_id]


def in_transaction(kafka_producer: Any) -> bool:
    """Whether the transactional aiokafka producer ``kafka_producer`` has a transaction open.

    Relies on: aiokafka, ``AIOKafkaProducer._txn_manager`` (an
    ``aiokafka.producer.transaction_manager.TransactionManager`` on a transactional producer) and
    its ``is_in_transaction()``.
    Needed for: the last commit of a stop or a revocation starts no transaction; a stage must not
    write after it (aiokafka raises), and offsets still to commit need a transaction begun first.
    If it changes: ``AttributeError`` at the first commit under ``exactly_once``.
    """
    return bool(kafka_producer._txn_manager.is_in_transaction())


def plain_kafka_producer(producer: faust_aiokafka.Producer) -> Any:
    """Faust's non-transactional aiokafka producer (``at_least_once`` writes).

    Relies on: faust-streaming, ``faust.transport.drivers.aiokafka.Producer._ensure_producer()``
    (returns the started ``aiokafka.AIOKafkaProducer``, raises ``NotReady`` before the start).
    Needed for: appending whole record batches (``create_batch``/``send_batch``), which Faust's
    own ``send`` does not offer.
    If it changes: ``AttributeError`` at the first write under ``at_least_once``.
    """
    return producer._ensure_producer()


def offsets_with_metadata(offsets: Mapping[TP, int], metadata_for: Callable[[TP], str]) -> Mapping[TP, int]:
    """``offsets`` with each partition's commit metadata, in the form Faust's
    ``commit_transactions`` hands on to aiokafka.

    Relies on: faust-streaming,
    ``faust.transport.drivers.aiokafka.Producer.commit_transactions(tid_to_offset_map, group_id,
    start_new_transaction)`` passing each transaction's mapping unchanged to aiokafka's
    ``AIOKafkaProducer.send_offsets_to_transaction(offsets, group_id)``, which takes an
    ``OffsetAndMetadata`` per partition (Faust types the values as ``int``; the cast keeps its
    signature).
    Needed for: a source partition's progress is committed with its offset (as the offset's
    metadata), so a worker taking the partition over judges the next events as this one would.
    If it changes: the commit fails (Faust uses the values as numbers), or the metadata is lost
    and a restarted source forgets its progress.
    """
    return cast(
        Mapping[TP, int],
        {tp: OffsetAndMetadata(offset, metadata_for(tp)) for tp, offset in offsets.items()},
    )


class SendBufferHooks(ProducerBuffer):
    """Faust's send buffer, with the private method its background task calls for each record
    exposed as :meth:`send_buffered`.

    Relies on: faust-streaming, ``faust.transport.producer.ProducerBuffer._send_pending(fut)``,
    which the buffer's background task (``_handle_pending``) awaits for every buffered record,
    one at a time and in order, after taking it out of the queue ``size`` counts.
    Needed for: counting the record being sent, which ``size`` leaves out, so that the buffer can
    be drained completely before a commit.
    If it changes: the hook is no longer called, the record in flight is not counted, and a
    drain can return while a changelog record is still outside the transaction it belongs to.
    """

    async def _send_pending(self, fut: FutureMessage) -> None:
        await self.send_buffered(fut)

    async def send_buffered(self, fut: FutureMessage) -> None:
        """Send one buffered record (Faust's ``_send_pending``); overrides call this last."""
        await super()._send_pending(fut)


class ProducerHooks(faust_aiokafka.Producer):
    """Faust's aiokafka producer, with the private method that gives the settings of every
    aiokafka producer it creates (the transactional ones included) exposed as
    :meth:`settings_extra`.

    Relies on: faust-streaming, ``faust.transport.drivers.aiokafka.Producer._settings_extra()``,
    whose mapping ``_new_producer`` passes last (over the defaults and the credentials) to every
    ``aiokafka.AIOKafkaProducer`` it makes: the plain producer and, in ``begin_transaction``,
    one per transactional id.
    Needed for: the transactional producers' ``transaction_timeout_ms``, which Faust has no
    setting for (aiokafka's default, 60 s, is shorter than a broker outage a worker rides out).
    If it changes: the hook is no longer called, the producers time their transactions out
    after 60 s again, and a worker whose transaction was open through a longer outage is fenced
    when the broker is back.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return self.settings_extra()

    def settings_extra(self) -> Mapping[str, Any]:
        """Settings for each new aiokafka producer, over Faust's (its ``_settings_extra``)."""
        return super()._settings_extra()


def install_send_buffer(producer: faust_aiokafka.Producer, buffer: ProducerBuffer) -> None:
    """Make ``buffer`` the producer's send buffer, instead of the one Faust's constructor made.
    Call it from the producer's ``__init__``, after Faust's.

    Relies on: faust-streaming, ``faust.transport.producer.Producer.__init__`` creating
    ``self.buffer`` (a ``ProducerBuffer`` whose ``app`` it sets) with nothing else holding it
    until ``on_start`` adds ``self.buffer`` as a runtime dependency; ``send_soon`` puts records
    into ``self.buffer``.
    Needed for: Faust's producer has no setting for its buffer class, and the transaction
    manager drains the buffer (:class:`SendBufferHooks`) before every commit.
    If it changes: ``SeamMismatch`` here when ``buffer`` is gone; a buffer Faust no longer uses
    would leave changelog records outside the transaction they belong to.
    """
    if not isinstance(producer.buffer, ProducerBuffer):
        raise SeamMismatch(f"Faust's producer has no ProducerBuffer to replace: {producer.buffer!r}")
    producer.buffer = buffer
    buffer.app = producer.app


# -- the consumer: faust.transport.consumer.Consumer and its aiokafka driver ------------------


class ConsumerHooks(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with the private methods continust replaces exposed as hooks:
    :meth:`new_consumer_thread`, :meth:`drain_messages` and :meth:`new_offset`. Each hook's
    default is Faust's own method; an override may call it through ``super()``.

    Relies on: faust-streaming, ``faust.transport.consumer.ThreadDelegateConsumer
    ._new_consumer_thread()`` (its constructor calls it once for the consumer thread),
    ``faust.transport.consumer.Consumer._drain_messages(fetcher)`` (the ``Fetcher`` service's
    only task awaits it: the fetch loop) and ``Consumer._new_offset(tp)`` (the commit asks it
    for each partition's offset to commit, ``None`` for none).
    Needed for: a consumer thread that commits offsets with metadata and rewinds partitions
    without a committed offset; batches handed to the stages a fetch at a time; an offset to
    commit that does not stall at the gaps of transactional topics.
    If it changes: the hooks are no longer called and Faust's own behaviour silently returns:
    offsets without metadata, no batch delivery, committed offsets stuck behind the outputs.
    """

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return self.new_consumer_thread()

    def new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        """The thread that runs the aiokafka consumer (Faust's ``_new_consumer_thread``)."""
        return super()._new_consumer_thread()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        await self.drain_messages(fetcher)

    async def drain_messages(self, fetcher: ServiceT) -> None:
        """The fetch loop, until the consumer or ``fetcher`` stops (Faust's ``_drain_messages``)."""
        await super()._drain_messages(fetcher)

    def _new_offset(self, tp: TP) -> int | None:
        return self.new_offset(tp)

    def new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``, ``None`` for none (Faust's ``_new_offset``)."""
        return super()._new_offset(tp)


def acked_offsets(consumer: FaustConsumer) -> MutableMapping[TP, list[int]]:
    """Per partition, the acknowledged offsets the consumer has not committed yet (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._acked``
    (``defaultdict(list)``; ``ack`` appends, ``_new_offset`` takes from it).
    Needed for: acknowledging a whole batch at once, and computing the offset to commit.
    If it changes: ``AttributeError`` at the first acknowledgement.
    """
    return consumer._acked


def acked_index(consumer: FaustConsumer) -> MutableMapping[TP, set[int]]:
    """Per partition, the set of the offsets in :func:`acked_offsets` (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._acked_index``
    (``defaultdict(set)``, kept in step with ``_acked``).
    Needed for: recognising a record delivered a second time, and acknowledging a batch.
    If it changes: ``AttributeError`` at the first acknowledgement.
    """
    return consumer._acked_index


def unacked_messages(consumer: FaustConsumer) -> MutableSet[Message]:
    """The messages delivered to agents and not acknowledged yet (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._unacked_messages`` (a
    ``WeakSet`` ``track_message`` adds to; Faust's public ``unacked`` is a read-only view).
    Needed for: the offset to commit stays below every record in flight; a repeated delivery is
    removed from it; the diagnostic dump lists it.
    If it changes: ``AttributeError`` at the first commit.
    """
    return consumer._unacked_messages


def read_offsets(consumer: FaustConsumer) -> MutableMapping[TP, int | None]:
    """Per partition, the offset of the last record the fetch loop delivered (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._read_offset``
    (``defaultdict`` of ``None``; records below it are dropped as already read, ``seek`` and
    ``perform_seek`` reset it).
    Needed for: the batch fetch loop drops records it already delivered, and the rewind after a
    rebalance keeps the read position past what was processed.
    If it changes: ``AttributeError`` in the fetch loop.
    """
    return consumer._read_offset


def committed_offsets(consumer: FaustConsumer) -> MutableMapping[TP, int | None]:
    """Per partition, the offset the consumer last committed (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._committed_offset``
    (``defaultdict`` of ``None``, updated after every commit).
    Needed for: a batch acknowledgement skips offsets below it; a commit's fault point names the
    offsets that moved; the diagnostic dump.
    If it changes: ``AttributeError`` at the first acknowledgement.
    """
    return consumer._committed_offset


def count_acked(consumer: FaustConsumer, n: int) -> None:
    """Add ``n`` acknowledgements to the consumer's count.

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._n_acked`` (``int``; the
    ``broker_commit_every`` setting commits once it is reached).
    Needed for: a batch acknowledgement counts as many as Faust's per-record ``ack`` would.
    If it changes: ``AttributeError`` at the first acknowledgement.
    """
    consumer._n_acked += n


def buffered_partitions(consumer: FaustConsumer) -> set[TP]:
    """The partitions whose stream buffer is full (live).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._buffered_partitions``
    (``set[TP]``; Faust's fetch loop still delivers records of these partitions).
    Needed for: the batch fetch loop delivers the same partitions as Faust's.
    If it changes: ``AttributeError`` in the fetch loop.
    """
    return consumer._buffered_partitions


def active_partitions(consumer: FaustConsumer) -> set[TP] | None:
    """The partitions Faust fetches (assigned and not paused).

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._active_partitions``.
    Needed for: the diagnostic dump (SIGUSR1).
    If it changes: the dump logs ``worker.dump_failed`` instead.
    """
    return consumer._active_partitions


def paused_partitions(consumer: FaustConsumer) -> set[TP]:
    """The partitions Faust paused.

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._paused_partitions``.
    Needed for: the diagnostic dump (SIGUSR1).
    If it changes: the dump logs ``worker.dump_failed`` instead.
    """
    return consumer._paused_partitions


async def next_records(
    consumer: FaustConsumer, timeout: float
) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
    """The records of the next fetch (aiokafka ``ConsumerRecord`` lists per partition) and the
    partitions that were active for it; waits while the flow is stopped.

    Relies on: faust-streaming, ``faust.transport.consumer.Consumer._wait_next_records(timeout)``
    (what Faust's ``getmany`` awaits before turning records into messages).
    Needed for: the batch fetch loop takes whole fetches, without a ``Message`` per record.
    If it changes: ``AttributeError`` in the fetch loop: the worker stops consuming.
    """
    return await consumer._wait_next_records(timeout)


def to_message(consumer: FaustConsumer, tp: TP, record: Any) -> ConsumerMessage:
    """Faust's ``Message`` for an aiokafka record of ``tp``.

    Relies on: faust-streaming, ``faust.transport.drivers.aiokafka.Consumer._to_message(tp,
    record)``.
    Needed for: records of topics without a batch handler take Faust's per-message path.
    If it changes: ``AttributeError`` at the first record of such a topic.
    """
    return consumer._to_message(tp, record)


def consumer_thread(consumer: faust_aiokafka.Consumer) -> faust_aiokafka.AIOKafkaConsumerThread:
    """The thread that runs the consumer's aiokafka consumer.

    Relies on: faust-streaming, ``faust.transport.consumer.ThreadDelegateConsumer._thread``
    (what ``_new_consumer_thread`` returned).
    Needed for: asking the thread for the fetch state and the committed metadata, which the
    consumer does not delegate.
    If it changes: ``AttributeError`` at the first commit.
    """
    return consumer._thread


def kafka_consumer(thread: faust_aiokafka.AIOKafkaConsumerThread) -> Any:
    """The thread's ``aiokafka.AIOKafkaConsumer``; raises Faust's ``ConsumerNotStarted`` before
    the thread started it.

    Relies on: faust-streaming,
    ``faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer()``.
    Needed for: committing with metadata, rewinding, fetching committed offsets and end offsets,
    reading fetch positions.
    If it changes: ``AttributeError`` at the first commit or rebalance.
    """
    return thread._ensure_consumer()


# -- the classes agents.transport extends: faust.transport.drivers.aiokafka ----------------------

# ``faust_aiokafka`` (Faust's Kafka driver module: its ``Transport``, ``Producer``, ``Consumer``
# and ``AIOKafkaConsumerThread``) and ``TransactionManager`` (Faust's), imported above, are the classes
# :mod:`agents.transport` subclasses, imported from here: only the seam imports Faust's driver
# modules, and each member the subclasses override or call is in :data:`REGISTRY`.


# -- a connection of its own: aiokafka.conn -------------------------------------------------------


async def open_broker_connection(host: str, port: int, timeout_ms: int, options: Mapping[str, Any]) -> Any:
    """A connection to the one broker at ``host:port``, with its TLS handshake and SASL login
    done (``options``: aiokafka's client security options), closed with ``close()``; raises
    what the connection or the login raised.

    Relies on: aiokafka, ``aiokafka.conn.create_conn(host, port, *, request_timeout_ms, ...)``.
    Needed for: telling a refused login or certificate apart from an unreachable broker before
    the worker starts (:mod:`streams.kafka.credentials_check`). aiokafka's clients retry every
    bootstrap server and report only that none answered.
    If it changes: ``TypeError`` or ``ImportError`` at the worker's start, before it joins.
    """
    return await create_conn(host, port, request_timeout_ms=timeout_ms, **options)


def in_recovery(app: faust.App) -> bool:
    """Whether Faust is restoring tables from their changelogs.

    Relies on: faust-streaming, ``faust.App.in_recovery`` (declared on ``AppT``; ``Recovery``
    sets it while it restores and clears it when done).
    Needed for: a stage writes nothing while the worker recovers (the last commit before it
    starts no transaction), and the recovery fault point.
    If it changes: ``AttributeError`` in the idle timer and before every commit.
    """
    return bool(app.in_recovery)


def persisted_changelog_offsets(app: AppT, tps: Iterable[TP]) -> dict[TP, int]:
    """The offset each changelog partition's local store (RocksDB) says it holds up to, for the
    partitions recovery knows (those assigned and added to it); others are left out.

    Relies on: faust-streaming, ``Recovery.tp_to_table`` (filled as changelog partitions are
    added to recovery, before it reads highwaters) and ``Collection.persisted_offset(tp)``.
    Needed for: recovery's highwaters wait for a committed transaction's markers
    (:func:`agents.stable_ends.ends_reaching`).
    If it changes: ``AttributeError`` when recovery asks for highwaters.
    """
    tables = app.tables.recovery.tp_to_table  # type: ignore[attr-defined]
    found: dict[TP, int] = {}
    for tp in tps:
        table = tables.get(tp)
        offset = None if table is None else table.persisted_offset(tp)
        if offset is not None:
            found[tp] = int(offset)
    return found


def recovery_remaining(app: faust.App) -> dict[TP, int]:
    """Changelog records left to restore, per changelog partition of an active table partition
    this worker restores or restored in its current assignment (0 once restored; never
    negative).

    Relies on: faust-streaming, ``faust.tables.manager.TableManager.recovery`` (the ``Recovery``
    service, created on first use) and ``Recovery.active_remaining()`` (a ``Counter`` of the
    highwater of each active changelog partition minus the offset restored so far; ``revoke``
    drops revoked partitions).
    Needed for: ``/ready`` names what recovery still has to read, and
    ``continust_recovery_remaining_records``.
    If it changes: ``AttributeError`` at the first ``/ready`` or scrape.
    """
    remaining = app.tables.recovery.active_remaining()  # type: ignore[attr-defined]
    return {tp: max(0, int(records)) for tp, records in remaining.items()}


def recovery_times(app: faust.App) -> tuple[float | None, float | None]:
    """When the last recovery started and ended (``time.monotonic()`` seconds; ``None``: not
    yet). An end before the start: a recovery is under way.

    Relies on: faust-streaming, ``faust.tables.recovery.Recovery._recovery_started_at`` and
    ``_recovery_ended_at`` (class attributes ``None``, set from ``monotonic()`` by
    ``_set_recovery_started`` and ``_set_recovery_ended``).
    Needed for: ``continust_recovery_seconds``, observed when a rebalance ends; Faust has no
    sensor callback for recovery.
    If it changes: ``AttributeError`` when a rebalance ends (the sensor logs it and the
    histogram stays empty).
    """
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return recovery._recovery_started_at, recovery._recovery_ended_at


# -- table partitions: faust.stores.rocksdb.Store ----------------------------------------------


def partition_db(store: RocksDBStore, partition: int) -> Any:
    """The RocksDB of table partition ``partition``, opened if needed.

    Relies on: faust-streaming, ``faust.stores.rocksdb.Store._db_for_partition(partition)``.
    Needed for: reading and writing a partition named explicitly; Faust's table API takes the
    partition from the event being processed, and stream time also moves without one.
    If it changes: ``AttributeError`` at the first window written.
    """
    return store._db_for_partition(partition)


def open_partition_db(store: RocksDBStore, partition: int) -> Any | None:
    """The RocksDB of table partition ``partition`` if the store has it open, else ``None``.

    Relies on: faust-streaming, ``faust.stores.rocksdb.Store._dbs`` (``dict[int, DB]``: the
    partitions held here, active or standby).
    Needed for: a read (an HTTP query) never opens a database for a partition the worker does
    not hold.
    If it changes: ``AttributeError`` at the first read.
    """
    dbs: Mapping[int, Any] = store._dbs
    return dbs.get(partition)


#: where Faust's RocksDB store keeps each partition database's changelog offset
FAUST_OFFSET_KEY = b"__faust\x00offset__"


def changelog_offset_key(store: RocksDBStore) -> bytes:
    """The key under which a partition's RocksDB holds the changelog offset its state reflects.

    Relies on: faust-streaming, ``faust.stores.rocksdb.Store.offset_key`` (read by
    ``persisted_offset``, which Faust's recovery seeks the changelog to).
    Needed for: writing the offset in the same RocksDB write batch as the committed state it
    belongs to, so a restart after a crash reads only the changelog records committed since.
    If it changes: the canary fails; a worker would restore every changelog in full.
    """
    key: bytes = store.offset_key
    return key


# -- fetch state: aiokafka.AIOKafkaConsumer's subscription ------------------------------------


@dataclass(frozen=True)
class PartitionFetchState:
    """An assigned partition's fetch state, as the consumer's last fetch left it."""

    position: int | None  # next offset to fetch (None: not known yet)
    last_stable_offset: int | None  # as the last fetch response gave it (None: no fetch yet)
    highwater: int | None
    paused: bool
    status: str  # aiokafka's PartitionStatus


def partition_state(consumer: Any, tp: TP) -> PartitionFetchState | None:
    """``tp``'s fetch state in the aiokafka consumer ``consumer``, ``None`` when it is not
    assigned.

    Relies on: aiokafka, ``AIOKafkaConsumer._subscription`` (a
    ``consumer.subscription_state.SubscriptionState``), its ``subscription.assignment``
    (``None`` before an assignment), the assignment's ``tps`` and ``state_value(tp)``, and
    ``TopicPartitionState``'s ``lso``, ``highwater``, ``has_valid_position``, ``position``,
    ``paused`` and ``_status``. aiokafka's public ``highwater()``/``last_stable_offset()``
    assert the partition is assigned, and it has no synchronous public position.
    Needed for: a source input is idle only when nothing is left to read (its position reached
    the last stable offset), which must be answered synchronously under the commit gate; the
    diagnostic dump.
    If it changes: ``AttributeError`` before the first commit of a source with an idle timeout.
    """
    subscription = consumer._subscription.subscription
    assignment = None if subscription is None else subscription.assignment
    if assignment is None or tp not in assignment.tps:
        return None
    state = assignment.state_value(tp)
    return PartitionFetchState(
        position=state.position if state.has_valid_position else None,
        last_stable_offset=state.lso,
        highwater=state.highwater,
        paused=bool(state.paused),
        status=str(state._status),
    )


# -- committed offsets: aiokafka's group coordinator and the OffsetFetch protocol --------------


@dataclass(frozen=True)
class CommittedEntry:
    """One partition of an OffsetFetch answer (``offset`` -1: nothing committed)."""

    tp: TP
    offset: int
    metadata: str | None
    error_code: int


@dataclass(frozen=True)
class OffsetFetchAnswer:
    """The group's answer to an OffsetFetch request: the group-level error code (0 before
    protocol version 2, which has none) and an entry per partition."""

    group_id: str
    error_code: int
    entries: list[CommittedEntry]


class StableOffsetFetchResponse_v7(Response):
    """OffsetFetch v7's answer (KIP-447, flexible since v6): per partition the committed
    offset, its leader epoch, metadata and error code, and the group-level error code."""

    API_KEY = 9
    API_VERSION = 7
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            CompactArray(
                ("topic", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition", Int32),
                        ("offset", Int64),
                        ("leader_epoch", Int32),
                        ("metadata", CompactString("utf-8")),
                        ("error_code", Int16),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class StableOffsetFetchRequest_v7(RequestStruct):
    """OffsetFetch v7 with ``require_stable`` (KIP-447): a partition whose offset a transaction
    has committed but whose commit marker the group coordinator has not applied yet answers
    ``UNSTABLE_OFFSET_COMMIT`` (88) instead of the offset before that transaction."""

    FLEXIBLE_VERSION = True
    API_KEY = 9
    API_VERSION = 7
    RESPONSE_TYPE = StableOffsetFetchResponse_v7
    SCHEMA = Schema(
        ("consumer_group", CompactString("utf-8")),
        (
            "topics",
            CompactArray(
                ("topic", CompactString("utf-8")),
                ("partitions", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetchRequest(Request[StableOffsetFetchRequest_v7]):
    """OffsetFetch asking for stable offsets only; a broker without v7 (Kafka before 2.5) gets
    no request: aiokafka raises when it negotiates the version, nothing falls back to v3."""

    API_KEY = 9

    def __init__(self, consumer_group: str, partitions: list[tuple[str, list[int]]]) -> None:
        self._consumer_group = consumer_group
        self._partitions = partitions

    def build(self, request_struct_class: type[StableOffsetFetchRequest_v7]) -> StableOffsetFetchRequest_v7:
        topics: list[tuple[str, list[int], dict[int, bytes]]] = [
            (topic, partitions, {}) for topic, partitions in self._partitions
        ]
        return request_struct_class(self._consumer_group, topics, True, {})


#: OffsetFetch protocol versions the seam decodes, and whether each has a group-level error.
OFFSET_FETCH_GROUP_ERROR = {1: False, 2: True, 3: True, 7: True}


def schema_names(schema: Any, path: str) -> tuple[str, ...]:
    """The field names of an aiokafka protocol ``Schema`` at ``path`` (dotted, through arrays;
    ``""``: the top level)."""
    for part in filter(None, path.split(".")):
        schema = schema.fields[schema.names.index(part)].array_of
    return tuple(schema.names)


def decode_offset_fetch(group_id: str, response: Any) -> OffsetFetchAnswer:
    """An OffsetFetch response, read by field name. Raises :class:`SeamMismatch` for a version
    the seam does not know.

    Relies on: aiokafka, ``aiokafka.protocol.commit.OffsetFetchResponse_v1`` to ``_v3``: their
    ``API_VERSION``, ``SCHEMA`` (``names``, ``fields``, an ``Array``'s ``array_of``), the
    ``topics`` rows (``topic``, ``partitions``), each partition row (``partition``, ``offset``,
    ``metadata``, ``error_code``), and from v2 the group-level ``error_code`` (``get_item``).
    Needed for: aiokafka's ``committed()`` ignores the group-level error, so while the
    coordinator loads or moves it reports "nothing committed" for every partition.
    If it changes: ``SeamMismatch`` or ``KeyError`` at the first rebalance.
    """
    version = response.API_VERSION
    if version not in OFFSET_FETCH_GROUP_ERROR:
        raise SeamMismatch(f"OffsetFetch response version {version} is not one the seam decodes")
    error_code = int(response.get_item("error_code")) if OFFSET_FETCH_GROUP_ERROR[version] else 0
    topic_fields = schema_names(response.SCHEMA, "topics")
    partition_fields = schema_names(response.SCHEMA, "topics.partitions")
    entries = []
    for topic_row in response.get_item("topics"):
        topic = dict(zip(topic_fields, topic_row, strict=True))
        for partition_row in topic["partitions"]:
            row = dict(zip(partition_fields, partition_row, strict=True))
            entries.append(
                CommittedEntry(
                    TP(topic["topic"], row["partition"]), row["offset"], row["metadata"], row["error_code"]
                )
            )
    return OffsetFetchAnswer(group_id, error_code, entries)


async def offset_fetch(consumer: Any, tps: list[TP], require_stable: bool = True) -> OffsetFetchAnswer:
    """Ask the group coordinator of the aiokafka consumer ``consumer`` for the committed offsets
    of ``tps``, once (no retry: the caller reads the error codes). ``require_stable``
    (default): OffsetFetch v7, where a partition with a transactional offset commit whose
    marker is not applied yet answers ``UNSTABLE_OFFSET_COMMIT`` (88) rather than the offset
    before it; ``False``: aiokafka's own request (v1 to v3), which answers the older offset.

    Relies on: aiokafka, ``AIOKafkaConsumer._coordinator`` (a
    ``consumer.group_coordinator.GroupCoordinator`` once started) with its ``group_id``,
    ``ensure_coordinator_known()`` and ``_send_req(request)`` (sends to the coordinator node,
    returns the decoded response), ``OffsetFetchRequest(consumer_group, partitions)``, and the
    protocol base classes :class:`StableOffsetFetchRequest` builds on (``Request``, whose
    generic argument lists the versions it may send, ``RequestStruct`` with
    ``FLEXIBLE_VERSION``, ``Response``, and the compact types); the answer is read by
    :func:`decode_offset_fetch`.
    Needed for: see :func:`decode_offset_fetch`; aiokafka's public API has no OffsetFetch that
    reports the group-level error, and none that asks for stable offsets. Kafka applies a
    transaction's offsets only when its commit marker reaches the offsets topic, after the
    producer's commit returned: without ``require_stable`` a worker taking over a partition
    right after a commit could resume from the offset before it and process its records again.
    If it changes: ``AttributeError`` at the first rebalance: the worker cannot rewind.
    """
    coordinator = consumer._coordinator
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp.partition)
    await coordinator.ensure_coordinator_known()
    kind = StableOffsetFetchRequest if require_stable else OffsetFetchRequest
    response = await coordinator._send_req(kind(coordinator.group_id, list(by_topic.items())))
    return decode_offset_fetch(coordinator.group_id, response)


def forget_coordinator(consumer: Any) -> None:
    """Mark the group coordinator of the aiokafka consumer ``consumer`` as gone, so that the
    next request looks it up again.

    Relies on: aiokafka, ``AIOKafkaConsumer._coordinator`` and its ``coordinator_dead()``.
    Needed for: an OffsetFetch answered NOT_COORDINATOR is retried against the new coordinator.
    If it changes: ``AttributeError`` when the coordinator moves during a rebalance.
    """
    consumer._coordinator.coordinator_dead()


# -- start and stop without fixed waits: faust.tables.manager.TableManager, mode.worker.Worker --


#: How long a stopping worker's event loop runs after every task was cancelled, so that their
#: cancellations and the connections' close callbacks complete (mode waits 1 s).
STOP_GRACE_SECONDS = 0.1


class PromptTableManager(TableManager):
    """Faust's table manager without the one-second wait it starts with.

    Relies on: faust-streaming, ``faust.tables.manager.TableManager.on_start`` (its body: wait
    1 s, then, unless stopping, ``_update_channels()`` and ``recovery.start()``; the canary
    checks that body by its hash) and ``_update_channels``.
    Needed for: every worker start waited 1 s before subscribing to its changelogs. The wait
    gives agents started beside the manager time to declare tables; continust declares every
    table before the app starts, so nothing arrives during it.
    If it changes: the canary fails on the new body; replaying an old body could skip what a new
    version starts there.
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class PromptWorker(faust.Worker):
    """Faust's worker whose stopping event loop runs :data:`STOP_GRACE_SECONDS` after the last
    task was cancelled, not 1 s.

    Relies on: mode-streaming, ``mode.worker.Worker._sentinel_task`` (awaited once by
    ``_shutdown_loop`` after ``_gather_all`` cancelled every task, before the loop closes; its
    body, checked by hash, is ``asyncio.sleep(1.0)``).
    Needed for: every stop of a worker waited 1 s after it had committed, left its group and
    closed its stores.
    If it changes: the canary fails; the stop would be as slow as before or skip the grace.
    """

    async def _sentinel_task(self) -> None:
        await asyncio.sleep(STOP_GRACE_SECONDS)


# -- the HTTP API's connections: aiohttp.web_protocol.RequestHandler, aiohttp.web_server.Server --


class ApiRequestHandler(RequestHandler):
    """aiohttp's handler of one connection, answering in JSON what it answers on its own, and
    closing a connection whose request head is too slow (:mod:`streams.api.http_server`).

    Relies on: aiohttp, ``RequestHandler.handle_error(request, status, exc, message)`` (called
    for a request the parser refused and for an exception no middleware caught; it logs and
    returns the answer), ``data_received`` (feeds the parser; each complete head increments
    ``_request_count`` and queues in ``_messages``), ``_current_request`` (set while a route
    runs), ``_force_close``, ``_loop``, ``transport`` and ``force_close()``.
    Needed for: every error of the API is JSON, parser errors included; a client sending one
    header line a second cannot hold a connection.
    If it changes: the canary fails; without it parser errors are plain text again and slow
    heads are held until the idle timeout.
    """

    limits: ConnectionLimits = ConnectionLimits()
    _head_timer: asyncio.TimerHandle | None = None

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once an answer began
        return handler_error_answer(status, message)

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._stop_head_timer()
        elif data and self._head_timer is None and self._between_requests():
            self._head_timer = self._loop.call_later(self.limits.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self._current_request is None and not self._messages and not self._force_close

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._between_requests() and self.transport is not None:
            self.transport.write(head_timeout_answer(self.limits))
            self.force_close()


class ApiServer(Server):
    """aiohttp's connection factory, making :class:`ApiRequestHandler` and refusing a connection
    over ``max_connections``.

    Relies on: aiohttp, ``Server.__call__`` (makes each connection's ``RequestHandler(self,
    loop=self._loop, **self._kwargs)``), ``Server.connection_made(handler, transport)`` and its
    ``_connections``.
    Needed for: the connection cap and the handler above.
    If it changes: the canary fails.
    """

    limits: ConnectionLimits = ConnectionLimits()

    def __call__(self) -> RequestHandler:
        handler = ApiRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.limits = self.limits
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.limits.max_connections:
            transport.write(over_cap_answer(self.limits))
            handler.force_close()


class ApiRunner(web.AppRunner):
    """An ``AppRunner`` serving through :class:`ApiServer` with ``limits``; the idle timeout is
    aiohttp's keep-alive timeout, which also runs from a connection's start.

    Relies on: aiohttp, ``AppRunner._make_server()`` (returns the application's ``Server``) and
    the server's ``request_handler``, ``request_factory``, ``handler_cancellation``, ``_loop``
    and ``_kwargs``; faust-streaming, ``faust.web.drivers.aiohttp.Web._runner`` (made in its
    constructor, set up when the web server starts): see :func:`serve_web_with`.
    Needed for: the server above.
    If it changes: the canary fails.
    """

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.idle_timeout_s, **kwargs)
        self.limits = limits

    async def _make_server(self) -> Server:
        made = await super()._make_server()
        server = ApiServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
        server.limits = self.limits
        return server


def serve_web_with(app: faust.App, limits: ConnectionLimits) -> None:
    """Have Faust's web server run its aiohttp application through :class:`ApiRunner`.

    Relies on: faust-streaming, ``faust.web.drivers.aiohttp.Web._runner`` (its ``AppRunner``,
    made with ``access_log=None`` in the constructor, set up at start) and ``web_app``.
    Needed for: the API's JSON parser errors and connection limits.
    If it changes: ``AttributeError`` when the worker builds its app (the canary fails first).
    """
    web_server = cast(Any, app.web)
    web_server._runner = ApiRunner(web_server.web_app, limits, access_log=None)


def client_assignment(assignor: PartitionAssignor) -> object:
    """The assignment Faust's partition assignor holds for this worker: a new object at each
    assignment, so its identity tells whether the assignment changed.

    Relies on: faust-streaming, ``faust.assignor.PartitionAssignor._assignment`` (a
    ``ClientAssignment``), which ``on_assignment`` replaces, never mutates.
    Needed for: answering which partitions this worker holds (a query asks several times per
    partition) from the sets ``assigned_actives()``/``assigned_standbys()`` computed once per
    assignment; both build a new set of new ``TP`` tuples at every call.
    If it changes: ``AttributeError`` at the first query (renamed), or stale roles (mutated in
    place): the source check of ``on_assignment`` fails first.
    """
    return cast(object, assignor._assignment)


# -- the registry ---------------------------------------------------------------------------


class Kind(enum.Enum):
    """How the canary checks a :class:`SeamItem`."""

    METHOD = "method"  # a callable; ``expected``: its inspect.signature parameter names
    ATTRIBUTE = "attribute"  # on the class, or on an instance the canary builds
    VALUE = "value"  # a class attribute equal to ``expected``
    FIELDS = "fields"  # a protocol struct whose schema at ``member`` has the names in ``expected``
    ABSENT = "absent"  # a name the seam adds to a subclass: the library must not define it
    SOURCE = "source"  # a method the seam replaces: ``expected`` is :func:`source_digest` of it


@dataclass(frozen=True)
class SeamItem:
    """One library member a seam item (``name``, in this module) touches: ``owner`` is
    ``"module:Class"``, ``member`` an attribute of it (for :attr:`Kind.FIELDS`, a dotted path in
    its ``SCHEMA``, ``""`` for the top level)."""

    name: str
    owner: str
    member: str
    kind: Kind
    expected: Any = None

    @property
    def library(self) -> str:
        """The distribution the owner comes from."""
        root = self.owner.split(".", 1)[0]
        return {
            "faust": "faust-streaming",
            "aiokafka": "aiokafka",
            "mode": "mode-streaming",
            "aiohttp": "aiohttp",
        }[root]

    @property
    def test_id(self) -> str:
        owner = self.owner.rsplit(":", 1)[-1]  # a module-level member: the module
        source = ":source" if self.kind is Kind.SOURCE else ""
        return f"{self.name}:{owner}.{self.member or 'SCHEMA'}{source}"


_A_HANDLER = "aiohttp.web_protocol:RequestHandler"
_A_SERVER = "aiohttp.web_server:Server"
_A_RUNNER = "aiohttp.web_runner:AppRunner"
_F_WEB = "faust.web.drivers.aiohttp:Web"
_F_CONSUMER = "faust.transport.consumer:Consumer"
_F_DELEGATE = "faust.transport.consumer:ThreadDelegateConsumer"
_F_AIO_CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
_F_AIO_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"
_F_AIO_PRODUCER = "faust.transport.drivers.aiokafka:Producer"
_F_PRODUCER = "faust.transport.producer:Producer"
_F_BUFFER = "faust.transport.producer:ProducerBuffer"
_F_STORE = "faust.stores.rocksdb:Store"
_F_RECOVERY = "faust.tables.recovery:Recovery"
_F_TABLES = "faust.tables.manager:TableManager"
_F_ASSIGNOR = "faust.assignor.partition_assignor:PartitionAssignor"
_K_PRODUCER = "aiokafka.producer.producer:AIOKafkaProducer"
_K_CONSUMER = "aiokafka.consumer.consumer:AIOKafkaConsumer"
_K_SUBSCRIPTIONS = "aiokafka.consumer.subscription_state"
_K_COORDINATOR = "aiokafka.consumer.group_coordinator:GroupCoordinator"
_K_COMMIT = "aiokafka.protocol.commit"

#: Every library member the seam touches, with what it expects of it.
REGISTRY: tuple[SeamItem, ...] = (
    SeamItem(
        "transactional_id_for",
        "faust.transport.consumer:TransactionManager",
        "transactional_id_format",
        Kind.VALUE,
        "{group_id}-{tpg.group}-{tpg.partition}",
    ),
    SeamItem("transaction_producer", _F_AIO_PRODUCER, "_transaction_producers", Kind.ATTRIBUTE),
    SeamItem(
        "open_broker_connection",
        "aiokafka.conn",
        "create_conn",
        Kind.METHOD,
        (
            "host",
            "port",
            "client_id",
            "request_timeout_ms",
            "ssl_context",
            "security_protocol",
            "max_idle_ms",
            "on_close",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
            "sasl_kerberos_service_name",
            "sasl_kerberos_domain_name",
            "sasl_oauth_token_provider",
        ),
    ),
    SeamItem("transaction_lock", _F_AIO_PRODUCER, "_trn_locks", Kind.ATTRIBUTE),
    SeamItem("in_transaction", _K_PRODUCER, "_txn_manager", Kind.ATTRIBUTE),
    SeamItem(
        "in_transaction",
        "aiokafka.producer.transaction_manager:TransactionManager",
        "is_in_transaction",
        Kind.METHOD,
        ("self",),
    ),
    SeamItem("plain_kafka_producer", _F_AIO_PRODUCER, "_ensure_producer", Kind.METHOD, ("self",)),
    SeamItem(
        "offsets_with_metadata",
        _F_AIO_PRODUCER,
        "commit_transactions",
        Kind.METHOD,
        ("self", "tid_to_offset_map", "group_id", "start_new_transaction"),
    ),
    SeamItem(
        "offsets_with_metadata",
        _K_PRODUCER,
        "send_offsets_to_transaction",
        Kind.METHOD,
        ("self", "offsets", "group_id"),
    ),
    SeamItem("SendBufferHooks", _F_BUFFER, "_send_pending", Kind.METHOD, ("self", "fut")),
    SeamItem("SendBufferHooks", _F_BUFFER, "send_buffered", Kind.ABSENT),
    SeamItem("ProducerHooks", _F_AIO_PRODUCER, "_settings_extra", Kind.METHOD, ("self",)),
    SeamItem("ProducerHooks", _F_AIO_PRODUCER, "settings_extra", Kind.ABSENT),
    SeamItem("install_send_buffer", _F_PRODUCER, "buffer", Kind.ATTRIBUTE),
    SeamItem("install_send_buffer", _F_BUFFER, "app", Kind.ATTRIBUTE),
    SeamItem("ConsumerHooks", _F_DELEGATE, "_new_consumer_thread", Kind.METHOD, ("self",)),
    SeamItem("ConsumerHooks", _F_AIO_CONSUMER, "new_consumer_thread", Kind.ABSENT),
    SeamItem("ConsumerHooks", _F_CONSUMER, "_drain_messages", Kind.METHOD, ("self", "fetcher")),
    SeamItem("ConsumerHooks", _F_AIO_CONSUMER, "drain_messages", Kind.ABSENT),
    SeamItem("ConsumerHooks", _F_CONSUMER, "_new_offset", Kind.METHOD, ("self", "tp")),
    SeamItem("ConsumerHooks", _F_AIO_CONSUMER, "new_offset", Kind.ABSENT),
    SeamItem("acked_offsets", _F_CONSUMER, "_acked", Kind.ATTRIBUTE),
    SeamItem("acked_index", _F_CONSUMER, "_acked_index", Kind.ATTRIBUTE),
    SeamItem("unacked_messages", _F_CONSUMER, "_unacked_messages", Kind.ATTRIBUTE),
    SeamItem("read_offsets", _F_CONSUMER, "_read_offset", Kind.ATTRIBUTE),
    SeamItem("committed_offsets", _F_CONSUMER, "_committed_offset", Kind.ATTRIBUTE),
    SeamItem("count_acked", _F_CONSUMER, "_n_acked", Kind.ATTRIBUTE),
    SeamItem("buffered_partitions", _F_CONSUMER, "_buffered_partitions", Kind.ATTRIBUTE),
    SeamItem("active_partitions", _F_CONSUMER, "_active_partitions", Kind.ATTRIBUTE),
    SeamItem("paused_partitions", _F_CONSUMER, "_paused_partitions", Kind.ATTRIBUTE),
    SeamItem("next_records", _F_CONSUMER, "_wait_next_records", Kind.METHOD, ("self", "timeout")),
    SeamItem("to_message", _F_AIO_CONSUMER, "_to_message", Kind.METHOD, ("self", "tp", "record")),
    SeamItem("consumer_thread", _F_DELEGATE, "_thread", Kind.ATTRIBUTE),
    SeamItem("kafka_consumer", _F_AIO_THREAD, "_ensure_consumer", Kind.METHOD, ("self",)),
    SeamItem("in_recovery", "faust.app.base:App", "in_recovery", Kind.ATTRIBUTE),
    SeamItem("recovery_remaining", "faust.tables.manager:TableManager", "recovery", Kind.ATTRIBUTE),
    SeamItem("recovery_remaining", _F_RECOVERY, "active_remaining", Kind.METHOD, ("self",)),
    SeamItem("persisted_changelog_offsets", _F_RECOVERY, "tp_to_table", Kind.ATTRIBUTE),
    SeamItem(
        "persisted_changelog_offsets",
        "faust.tables.base:Collection",
        "persisted_offset",
        Kind.METHOD,
        ("self", "tp"),
    ),
    SeamItem("recovery_times", _F_RECOVERY, "_recovery_started_at", Kind.ATTRIBUTE),
    SeamItem("recovery_times", _F_RECOVERY, "_recovery_ended_at", Kind.ATTRIBUTE),
    SeamItem("partition_db", _F_STORE, "_db_for_partition", Kind.METHOD, ("self", "partition")),
    SeamItem("open_partition_db", _F_STORE, "_dbs", Kind.ATTRIBUTE),
    SeamItem("changelog_offset_key", _F_STORE, "offset_key", Kind.VALUE, FAUST_OFFSET_KEY),
    SeamItem("partition_state", _K_CONSUMER, "_subscription", Kind.ATTRIBUTE),
    SeamItem("partition_state", f"{_K_SUBSCRIPTIONS}:SubscriptionState", "subscription", Kind.ATTRIBUTE),
    SeamItem("partition_state", f"{_K_SUBSCRIPTIONS}:Subscription", "assignment", Kind.ATTRIBUTE),
    SeamItem("partition_state", f"{_K_SUBSCRIPTIONS}:Assignment", "tps", Kind.ATTRIBUTE),
    SeamItem("partition_state", f"{_K_SUBSCRIPTIONS}:Assignment", "state_value", Kind.METHOD, ("self", "tp")),
    *(
        SeamItem("partition_state", f"{_K_SUBSCRIPTIONS}:TopicPartitionState", member, Kind.ATTRIBUTE)
        for member in ("lso", "highwater", "has_valid_position", "position", "paused", "_status")
    ),
    SeamItem("offset_fetch", _K_CONSUMER, "_coordinator", Kind.ATTRIBUTE),
    SeamItem("offset_fetch", _K_COORDINATOR, "group_id", Kind.ATTRIBUTE),
    SeamItem("offset_fetch", _K_COORDINATOR, "ensure_coordinator_known", Kind.METHOD, ("self",)),
    SeamItem("offset_fetch", _K_COORDINATOR, "_send_req", Kind.METHOD, ("self", "request")),
    SeamItem(
        "offset_fetch",
        f"{_K_COMMIT}:OffsetFetchRequest",
        "__init__",
        Kind.METHOD,
        ("self", "consumer_group", "partitions"),
    ),
    SeamItem(
        "decode_offset_fetch",
        f"{_K_COMMIT}:OffsetFetchRequest",
        "_CLASSES",
        Kind.VALUE,
        (OffsetFetchRequest_v1, OffsetFetchRequest_v2, OffsetFetchRequest_v3),
    ),
    *(
        SeamItem(
            "decode_offset_fetch", f"{_K_COMMIT}:OffsetFetchResponse_v{version}", path, Kind.FIELDS, names
        )
        for version, group_error in OFFSET_FETCH_GROUP_ERROR.items()
        if version != StableOffsetFetchResponse_v7.API_VERSION  # the seam's own struct
        for path, names in (
            ("", ("topics", "error_code") if group_error else ("topics",)),
            ("topics", ("topic", "partitions")),
            ("topics.partitions", ("partition", "offset", "metadata", "error_code")),
        )
    ),
    SeamItem("offset_fetch", "aiokafka.protocol.api:Request", "prepare", Kind.METHOD, ("self", "versions")),
    SeamItem("offset_fetch", "aiokafka.protocol.api:RequestStruct", "FLEXIBLE_VERSION", Kind.VALUE, False),
    SeamItem(
        "offset_fetch",
        "aiokafka.protocol.api:RequestStruct",
        "build_request_header",
        Kind.METHOD,
        ("self", "correlation_id", "client_id"),
    ),
    SeamItem("forget_coordinator", _K_COORDINATOR, "coordinator_dead", Kind.METHOD, ("self",)),
    SeamItem("PromptTableManager", _F_TABLES, "on_start", Kind.SOURCE, "b82e759be50ccebe"),
    SeamItem("PromptTableManager", _F_TABLES, "_update_channels", Kind.METHOD, ("self",)),
    SeamItem("PromptWorker", "mode.worker:Worker", "_sentinel_task", Kind.SOURCE, "3c41d4f6f5c37580"),
    SeamItem("PromptWorker", "mode.worker:Worker", "_shutdown_loop", Kind.METHOD, ("self",)),
    SeamItem(
        "ApiRequestHandler",
        _A_HANDLER,
        "handle_error",
        Kind.METHOD,
        ("self", "request", "status", "exc", "message"),
    ),
    SeamItem("ApiRequestHandler", _A_HANDLER, "data_received", Kind.METHOD, ("self", "data")),
    SeamItem("ApiRequestHandler", _A_HANDLER, "connection_lost", Kind.METHOD, ("self", "exc")),
    SeamItem("ApiRequestHandler", _A_HANDLER, "force_close", Kind.METHOD, ("self",)),
    *(
        SeamItem("ApiRequestHandler", _A_HANDLER, name, Kind.ATTRIBUTE)
        for name in ("_request_count", "_current_request", "_messages", "_force_close", "_loop", "transport")
    ),
    *(
        SeamItem("ApiRequestHandler", _A_HANDLER, name, Kind.ABSENT)
        for name in ("limits", "_head_timer", "_between_requests", "_stop_head_timer", "_head_timed_out")
    ),
    SeamItem(
        "ApiServer",
        _A_SERVER,
        "__init__",
        Kind.METHOD,
        ("self", "handler", "request_factory", "handler_cancellation", "loop", "kwargs"),
    ),
    SeamItem("ApiServer", _A_SERVER, "__call__", Kind.METHOD, ("self",)),
    SeamItem("ApiServer", _A_SERVER, "connection_made", Kind.METHOD, ("self", "handler", "transport")),
    *(
        SeamItem("ApiServer", _A_SERVER, name, Kind.ATTRIBUTE)
        for name in (
            "_connections",
            "_kwargs",
            "_loop",
            "request_handler",
            "request_factory",
            "handler_cancellation",
        )
    ),
    SeamItem("ApiServer", _A_SERVER, "limits", Kind.ABSENT),
    SeamItem("ApiRunner", _A_RUNNER, "_make_server", Kind.METHOD, ("self",)),
    SeamItem("ApiRunner", _A_RUNNER, "limits", Kind.ABSENT),
    SeamItem("client_assignment", _F_ASSIGNOR, "_assignment", Kind.ATTRIBUTE),
    SeamItem("client_assignment", _F_ASSIGNOR, "on_assignment", Kind.SOURCE, "63482c10174f442e"),
    SeamItem("client_assignment", _F_ASSIGNOR, "assigned_actives", Kind.METHOD, ("self",)),
    SeamItem("client_assignment", _F_ASSIGNOR, "assigned_standbys", Kind.METHOD, ("self",)),
    SeamItem("serve_web_with", _F_WEB, "_runner", Kind.ATTRIBUTE),
    SeamItem("serve_web_with", _F_WEB, "web_app", Kind.ATTRIBUTE),
    # public but undocumented library methods a class of another module overrides (the item is
    # named ``module:Class`` after it): the signature it overrides, and the body its
    # ``super()`` call runs
    SeamItem(
        "agents.transport:Producer",
        _F_AIO_PRODUCER,
        "maybe_begin_transaction",
        Kind.METHOD,
        ("self", "transactional_id"),
    ),
    SeamItem(
        "agents.transport:Producer",
        _F_AIO_PRODUCER,
        "maybe_begin_transaction",
        Kind.SOURCE,
        "2c8ca7169bf6a753",
    ),
    SeamItem(
        "agents.transport:Producer", _F_AIO_PRODUCER, "commit_transactions", Kind.SOURCE, "cf922e8ea25a3160"
    ),
    SeamItem(
        "agents.transport:TransactionManager",
        "faust.transport.consumer:TransactionManager",
        "send",
        Kind.METHOD,
        ("self", "topic", "key", "value", "partition", "timestamp", "headers", "transactional_id"),
    ),
    SeamItem(
        "agents.transport:TransactionManager",
        "faust.transport.consumer:TransactionManager",
        "send",
        Kind.SOURCE,
        "bc6cc96b66650a3a",
    ),
    SeamItem(
        "agents.transport:TransactionManager",
        "faust.transport.consumer:TransactionManager",
        "commit",
        Kind.METHOD,
        ("self", "offsets", "start_new_transaction"),
    ),
    SeamItem(
        "agents.transport:TransactionManager",
        "faust.transport.consumer:TransactionManager",
        "commit",
        Kind.SOURCE,
        "fd7680d220343227",
    ),
    SeamItem(
        "agents.transport:ConsumerThread",
        _F_AIO_THREAD,
        "verify_event_path",
        Kind.METHOD,
        ("self", "now", "tp"),
    ),
    SeamItem(
        "agents.transport:ConsumerThread", _F_AIO_THREAD, "verify_event_path", Kind.SOURCE, "3f5576be114149b0"
    ),
    SeamItem(
        "agents.transport:ConsumerThread", _F_AIO_THREAD, "seek_wait", Kind.METHOD, ("self", "partitions")
    ),
    SeamItem("agents.transport:ConsumerThread", _F_AIO_THREAD, "seek_wait", Kind.SOURCE, "8356b4c729d67b44"),
    SeamItem("agents.transport:ConsumerThread", _F_AIO_THREAD, "seek_to_committed", Kind.METHOD, ("self",)),
    SeamItem(
        "agents.transport:ConsumerThread", _F_AIO_THREAD, "seek_to_committed", Kind.SOURCE, "43907fc1163624bd"
    ),
    SeamItem("agents.transport:ConsumerThread", _F_AIO_THREAD, "commit", Kind.METHOD, ("self", "offsets")),
    SeamItem("agents.transport:ConsumerThread", _F_AIO_THREAD, "commit", Kind.SOURCE, "415fafc636076e44"),
    SeamItem(
        "agents.transport:ConsumerThread", _F_AIO_THREAD, "highwaters", Kind.METHOD, ("self", "partitions")
    ),
    SeamItem("agents.transport:ConsumerThread", _F_AIO_THREAD, "highwaters", Kind.SOURCE, "5e07f495f86e1eba"),
    SeamItem("agents.transport:Consumer", _F_CONSUMER, "ack", Kind.METHOD, ("self", "message")),
    SeamItem("agents.transport:Consumer", _F_CONSUMER, "ack", Kind.SOURCE, "5548cf0f75843f73"),
    SeamItem(
        "agents.transport:Consumer", _F_CONSUMER, "on_partitions_revoked", Kind.METHOD, ("self", "revoked")
    ),
    SeamItem(
        "agents.transport:Consumer", _F_CONSUMER, "on_partitions_revoked", Kind.SOURCE, "652177e770ee66d6"
    ),
    SeamItem("agents.transport:Consumer", _F_CONSUMER, "perform_seek", Kind.METHOD, ("self",)),
    SeamItem("agents.transport:Consumer", _F_CONSUMER, "perform_seek", Kind.SOURCE, "2b4ceebd23deb7ee"),
    SeamItem(
        "agents.transport:Consumer",
        _F_CONSUMER,
        "force_commit",
        Kind.METHOD,
        ("self", "topics", "start_new_transaction"),
    ),
    SeamItem("agents.transport:Consumer", _F_CONSUMER, "force_commit", Kind.SOURCE, "464b62ae917215ab"),
    SeamItem(
        "offset_fetch",
        "aiokafka.protocol.api:Request",
        "build",
        Kind.METHOD,
        ("self", "request_struct_class"),
    ),
    SeamItem("offset_fetch", "aiokafka.protocol.api:Request", "build", Kind.SOURCE, "eac666de710e3b5c"),
)


def source_digest(function: Callable[..., Any]) -> str:
    """The first 16 hex digits of the SHA-256 of ``function``'s dedented source: a method the
    seam replaces is checked by its body, not only its signature."""
    text = textwrap.dedent(inspect.getsource(function))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

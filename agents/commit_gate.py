"""The commit gate: a transaction never commits in the middle of a batch.

Faust commits on a timer, concurrently with the processing. A record whose outputs were already
sent but whose offset was not yet acknowledged would have its outputs committed without its
offset; after a crash or a stop, it is processed again and its outputs appear twice. Faust also
cancels its fetch loop mid-batch on shutdown, with the same effect.

Every batch (the records one fetch returned for one partition) is therefore processed and
acknowledged as one step under a lock, shielded from cancellation, and the consumer takes the
same lock for the whole commit (every step of :mod:`agents.commit_order`: state written back,
offsets computed, transaction committed), so a commit sees each batch either not started or
sent and acknowledged. What a commit does, and in which order, is the commit sequence's; the
gate only decides when it may run.

After every batch the gate compares what the stages hold in memory with the worker's limits
(:attr:`CommitGate.memory_limits`, e.g. ``state_cache``: the write-back caches of the tables).
Over a limit, it commits at once, before the next fetch is processed: fetching and processing
pause until the commit has drained what the limit counts (backpressure), and
``continust_backpressure_pauses_total`` counts it.

Each batch processed is observed once in ``continust_batch_records`` and
``continust_batch_seconds`` (handler and acknowledgement), and counts as progress for the
worker's liveness (:mod:`agents.liveness`).

A record the consumer delivers a second time while its partition stays assigned (Faust rewinds
partitions it has already resumed, see :meth:`agents.transport.Consumer.perform_seek`) is
dropped without being processed again: its first processing is in the same transaction. Nothing
of a partition is processed before the consumer has rewound it to its committed offset in the
current assignment (read stably, so never an offset older than the last committed
transaction's), nor any record below that offset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from agents.faults import FAULTS, FaultPoint
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import BACKPRESSURE_PAUSES, BACKPRESSURE_SECONDS, BATCH_RECORDS, BATCH_SECONDS

log = logging.getLogger("continust.gate")


@dataclass(frozen=True)
class Batch:
    """Records of one partition from one fetch, in offset order, as aiokafka returns them
    (``ConsumerRecord``: ``topic``, ``partition``, ``offset``, ``timestamp`` in epoch ms,
    ``key``, ``value``, ``headers``), with the consumer generation they were fetched in and
    the consumer's seek epoch when the fetch began (:attr:`agents.transport.Consumer.seek_epoch`)."""

    tp: TP
    generation_id: int
    records: list[Any]
    epoch: int = 0


BatchHandler = Callable[[Batch], Awaitable[None]]


class CommitGate:
    """The gate of one worker; ``on_progress`` is called after every batch processed (the
    worker's liveness, :meth:`agents.liveness.Liveness.progressed`)."""

    def __init__(self, on_progress: Callable[[], None] = lambda: None) -> None:
        self._lock = asyncio.Lock()
        self.on_progress = on_progress
        #: records handed to a handler since the worker started (repeats not counted)
        self.records_processed = 0
        #: limit name -> bytes; and what counts against it, summed (checked after every batch)
        self.memory_limits: dict[str, int] = {}
        self.memory_use: dict[str, list[Callable[[], int]]] = {}

    def over_limit(self) -> str | None:
        """The first memory limit that what the stages hold has reached, or ``None``."""
        for name, limit in self.memory_limits.items():
            if sum(use() for use in self.memory_use.get(name, ())) >= limit:
                return name
        return None

    async def relieve_pressure(self, app: Any) -> None:
        """Over a memory limit: commit now (the caller, the fetch loop, waits meanwhile)."""
        limit = self.over_limit()
        if limit is None or app.should_stop:
            return
        started = time.monotonic()
        BACKPRESSURE_PAUSES.labels(limit=limit).inc()
        await app.consumer.commit()
        paused = time.monotonic() - started
        BACKPRESSURE_SECONDS.labels(limit=limit).inc(paused)
        log.debug(logfmt("backpressure.commit", limit=limit, paused_s=round(paused, 3)))

    async def process_batch(self, app: Any, batch: Batch, handler: BatchHandler) -> None:
        """Run ``handler`` on the records of one partition that a fetch returned, and acknowledge
        them, as one step no commit interleaves with and no cancellation interrupts.

        Records fetched before a rebalance (an older generation, or while the flow is stopped),
        before the partition was rewound to its committed offset in this assignment, or by a
        fetch that began before its latest rewind, are dropped unacknowledged, and the
        partition is marked: nothing more of it is processed until the fetch loop has rewound
        it to the next record to process (:meth:`agents.transport.Consumer.rewind_dropped`).
        Without that, a later batch fetched before the rewind but processed after it was
        acknowledged past the dropped records, and the commit skipped them. Records below the
        committed offset, or already processed in this assignment, are dropped too."""
        task = asyncio.ensure_future(self._process_batch(app, batch, handler))
        await asyncio.shield(task)
        if self.memory_limits:
            await self.relieve_pressure(app)

    async def _process_batch(self, app: Any, batch: Batch, handler: BatchHandler) -> None:
        async with self._lock:
            consumer = app.consumer
            if consumer.rewind_pending(batch.tp):
                return
            resume = consumer.resume_offset(batch.tp)
            if (
                batch.generation_id != app.consumer_generation_id
                or not app.flow_control.is_active()
                or not consumer.flow_active
                or batch.epoch != consumer.seek_epoch
                or resume is None  # fetched before the partition was rewound to its committed offset
            ):
                consumer.mark_rewind(batch.tp)
                return
            records = batch.records
            floor = max(consumer.processed_offset(batch.tp) + 1, resume)
            if records[0].offset < floor:
                records = [r for r in records if r.offset >= floor]
                if not records:
                    return
                batch = Batch(batch.tp, batch.generation_id, records)
            started = time.perf_counter()
            where = {
                "tp": f"{batch.tp.topic}:{batch.tp.partition}",
                "first_offset": records[0].offset,
                "last_offset": records[-1].offset,
            }
            await FAULTS.pass_point(FaultPoint.BATCH_STARTED, **where)
            await handler(batch)
            await FAULTS.pass_point(FaultPoint.BATCH_WRITTEN, **where)
            consumer.ack_processed(batch.tp, [r.offset for r in records])
            BATCH_SECONDS.observe(time.perf_counter() - started)
            BATCH_RECORDS.observe(len(records))
            self.on_progress()
            self.records_processed += len(records)
            await FAULTS.pass_point(
                FaultPoint.BATCH_PROCESSED, **where, records_processed=self.records_processed
            )

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """Hold off event processing (for the duration of a commit)."""
        async with self._lock:
            yield

"""The state side of the query routes (:class:`streams.api.table_reads.TableReads`) for a running
pipeline: which partitions this worker holds, their views, waits and lags.

Ownership comes from Faust's assignor: the active partitions of every worker from the
changelog distribution the group leader sends to all (the same map the point query and
``/health`` read); this worker's own standbys from its assignment. Faust does not distribute
the standbys of the others, so each worker tells its own (``GET
/api/tables/{table}/partitions``) and the catalog gathers them.

* An active partition is read from the table stage's write-back store: committed state plus
  the changes of the commit in progress, the state the owner's next output reflects.
* A standby partition is read from its committed RocksDB only (Faust applies the changelog to
  it); how far behind it is: the changelog's end offset minus the offset its database names
  (records, transaction markers included).
* While the worker rebalances or restores, a partition it kept (held restored before and kept
  by the new assignment: :class:`agents.restored_partitions.RestoredPartitions`) is read from
  its committed state; the others answer 503.
* A top-N reads an active partition's ranked windows (:mod:`windows.rank_index`), built in
  slices by :meth:`PipelineReads.rank` once nothing restores, dropped by the table stage at
  every rebalance and whenever Faust writes the partition's RocksDB itself.
* Lag of an active partition: the keyed input's end offset (last stable offset) minus the
  next offset the stage processes, summed over the keyed topics (``None`` until the partition
  has processed a batch since its assignment).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.assignor import PartitionAssignor
from faust.types import TP

from agents.faust_compat import (
    client_assignment,
    consumer_thread,
    in_recovery,
    kafka_consumer,
    partition_state,
)
from agents.restored_partitions import RestoredPartitions
from agents.windowed import TableStage
from streams.api.positions import WrittenAt
from streams.api.table_catalog import table_description
from streams.api.table_reads import Role, build_in_slices
from streams.kafka.partitioning import key_partition
from streams.telemetry.logfmt import logfmt
from windows.rank_index import PartitionRanks
from windows.spec import SessionWindows
from windows.table_read import PartitionView
from windows.write_back import WriteBackStore

#: windows read per slice of a partition's ranks build (a few milliseconds each)
RANK_SLICE_WINDOWS = 1_000
#: how long a query waits for the cluster to say where a token's input partitions end (seconds)
END_OFFSETS_TIMEOUT_S = 5.0
log = logging.getLogger("continust.queries")


@dataclass
class PipelineReads:
    """The tables (table stages by name) of the Faust app ``app``."""

    app: faust.App
    tables: Mapping[str, TableStage]
    #: the active partitions known whole during a rebalance; by default, whole only once settled
    restored: RestoredPartitions | None = None
    _held_for: object = field(default=None, init=False, repr=False)
    _held: tuple[set[TP], set[TP]] = field(default_factory=lambda: (set(), set()), init=False, repr=False)

    def _stage(self, table: str) -> TableStage:
        return self.tables[table]

    def _changelog(self, table: str, partition: int) -> TP:
        return TP(self._stage(table).changelog_topic, partition)

    def _held_sets(self) -> tuple[set[TP], set[TP]]:
        """This worker's active and standby changelog partitions, computed once per assignment
        (a query asks several times per partition)."""
        assignor = self._assignor()
        current = client_assignment(assignor)
        if self._held_for is not current:
            self._held = (set(assignor.assigned_actives()), set(assignor.assigned_standbys()))
            self._held_for = current
        return self._held

    def _assignor(self) -> PartitionAssignor:
        return cast(PartitionAssignor, self.app.assignor)

    def table_names(self) -> list[str]:
        return sorted(self.tables)

    def description(self, table: str) -> dict[str, Any]:
        stage = self._stage(table)
        return table_description(stage.spec, stage.source.spec, stage.partitions)

    def aggregation_names(self, table: str) -> tuple[str, ...]:
        return self._stage(table).spec.aggregate_names

    def partition_count(self, table: str) -> int:
        return self._stage(table).partitions

    def partition_of(self, table: str, key: str) -> int:
        return key_partition(key.encode(), self._stage(table).partitions)

    def source_inputs(self, table: str) -> tuple[str, dict[str, int]]:
        source = self._stage(table).source
        return source.spec.name, dict(source.topic_partitions)

    def owner(self, table: str, partition: int) -> str | None:
        topic = self._changelog(table, partition).topic
        for url, tps in self._assignor().changelog_distribution.items():
            if partition in tps.get(topic, ()):
                return str(url)
        return None

    def workers(self) -> list[str]:
        return sorted(str(url) for url in self._assignor().changelog_distribution)

    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def role(self, table: str, partition: int) -> Role:
        tp = self._changelog(table, partition)
        actives, standbys = self._held_sets()
        if tp in actives:
            return "active"
        if tp in standbys:
            return "standby"
        return None

    def restoring(self) -> bool:
        """Whether this worker's partitions may not hold their whole state: from the start of a
        rebalance (``app.rebalancing``, set before partitions are revoked and cleared only when
        Faust's recovery of the new assignment is complete) through the recovery itself. A
        partition just assigned is active before its recovery starts: answering then read a
        store that did not hold the partition's state yet."""
        return bool(in_recovery(self.app) or self.app.rebalancing)

    def kept(self, table: str, partition: int) -> bool:
        tp = self._changelog(table, partition)
        if self.restored is None:
            return not self.restoring() and self.role(table, partition) == "active"
        return self.restored.holds(tp)

    def view(self, table: str, partition: int, committed: bool) -> PartitionView:
        stage = self._stage(table)
        store = stage.store
        if committed:  # a cache of its own over the committed state: never written
            store = WriteBackStore(
                stage.committed_store, by_end=isinstance(stage.spec.window, SessionWindows)
            )
        return PartitionView(store, stage.aggregate, partition, lambda: self._ranks(table, partition))

    def _ranks(self, table: str, partition: int) -> PartitionRanks | None:
        """The partition's ranked windows, if built (:meth:`rank`), while it is active here."""
        if self.role(table, partition) != "active":
            return None
        return self._stage(table).ranks.held(partition)

    async def rank(self, table: str, partition: int) -> None:
        stage = self._stage(table)
        held = lambda: not self.restoring() and self.role(table, partition) == "active"  # noqa: E731
        await build_in_slices(stage.ranks, partition, stage.committed_store, held, RANK_SLICE_WINDOWS)

    async def wait_processed(
        self, table: str, partition: int, condition: Callable[[], bool], timeout_s: float
    ) -> bool:
        return await self._stage(table).progress.wait_until(condition, timeout_s)

    async def _end_offsets(self, tps: list[TP]) -> dict[TP, int] | None:
        """The end offsets of ``tps`` as the worker's consumer last fetched them (the last
        stable offset, for a ``read_committed`` consumer): no request to the broker, so a
        catalog answer costs no round trip per partition. A partition not fetched yet is left
        out; ``None`` when the consumer has not started."""
        try:
            client = kafka_consumer(consumer_thread(cast(Any, self.app.consumer)))
        except Exception as exc:  # consumer not started: the answer says unknown
            log.warning(logfmt("query.end_offsets_unknown", error=repr(exc)))
            return None
        ends = {}
        for tp in tps:
            state = partition_state(client, tp)
            if state is None:
                continue
            stable = state.last_stable_offset
            end = stable if stable is not None and stable >= 0 else state.highwater
            if end is not None:
                ends[tp] = end
        return ends

    async def lag(self, table: str, partition: int) -> int | None:
        stage = self._stage(table)
        tps = [TP(topic, partition) for topic in stage.stream.topics]
        if any(tp not in stage.keyed_read for tp in tps):
            return None
        ends = await self._end_offsets(tps)
        if ends is None:
            return None
        return sum(max(0, ends[tp] - stage.keyed_read[tp] - 1) for tp in tps if tp in ends)

    async def input_ends(self, entries: list[WrittenAt]) -> dict[str, int]:
        tps = sorted({TP(e.topic, e.partition) for e in entries})
        try:
            ends = await asyncio.wait_for(self.app.consumer.highwaters(*tps), END_OFFSETS_TIMEOUT_S)
        except Exception as exc:  # no answer: the token's entries are not judged, only waited for
            log.warning(logfmt("query.input_ends_unknown", error=repr(exc)))
            return {}
        return {f"{tp.topic}:{tp.partition}": int(end) for tp, end in ends.items()}

    async def standby_behind(self, table: str, partition: int) -> int | None:
        tp = self._changelog(table, partition)
        ends = await self._end_offsets([tp])
        if ends is None or tp not in ends:
            return None
        applied = self._stage(table).committed_store.changelog_offset(partition)
        return ends[tp] if applied is None else max(0, ends[tp] - applied - 1)

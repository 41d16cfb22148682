"""How far a consumer group got through its topics, seen from the broker only (for a contender
that cannot report its own progress: the continust worker).

A group has consumed a topic when no committed record (``read_committed``) is at or after its
committed offset in any partition. Offsets alone cannot tell for a transactionally written
topic, whose end offset counts commit markers, so small gaps are checked by reading them; large
gaps are counted as offsets (an estimate, only used for progress).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.kafka_security import KafkaSecurity

SCAN_BELOW = 1_000
"""Gaps of fewer offsets than this are read to count their committed records exactly."""


class GroupWatch:
    """Persistent clients for polling one group; ``start`` before use, ``close`` after."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.group = group
        # connect as the worker does (the KAFKA_* environment, :mod:`streams.kafka.kafka_security`)
        security = KafkaSecurity.from_env().check()
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
        self.committed_reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **security.client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        self.raw_reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **security.client_options(),
            enable_auto_commit=False,
        )
        self._partitions: dict[str, int] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.committed_reader.start()
        await self.raw_reader.start()

    async def close(self) -> None:
        await self.raw_reader.stop()
        await self.committed_reader.stop()
        await self.admin.close()

    async def tps(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions; empty while the topic does not exist."""
        if topic not in self._partitions:
            described = await self.admin.describe_topics([topic])
            found = [d for d in described if d.get("error_code", 0) == 0 and d["partitions"]]
            if not found:
                return []
            self._partitions[topic] = len(found[0]["partitions"])
        return [TopicPartition(topic, p) for p in range(self._partitions[topic])]

    async def written(self, topic: str) -> int:
        """Records written to ``topic`` so far, committed or not (sum of high watermarks)."""
        tps = await self.tps(topic)
        if not tps:
            return 0
        return sum((await self.raw_reader.end_offsets(tps)).values())

    async def committed(self, topic: str) -> dict[TopicPartition, int]:
        """The group's committed offset per partition (0 where it has committed nothing)."""
        tps = await self.tps(topic)
        if not tps:
            return {}
        offsets = await self.admin.list_consumer_group_offsets(self.group, partitions=tps)
        return {tp: max(0, offsets[tp].offset) if tp in offsets else 0 for tp in tps}

    async def unread(self, topic: str) -> int:
        """Committed records of ``topic`` at or after the group's committed offsets (exact when
        every gap is small, otherwise an upper bound); 0 for a topic that does not exist."""
        committed = await self.committed(topic)
        if not committed:
            return 0
        ends = await self.committed_reader.end_offsets(list(committed))
        total, scan = 0, {}
        for tp, start in committed.items():
            gap = ends[tp] - start
            if gap >= SCAN_BELOW:
                total += gap
            elif gap > 0:
                scan[tp] = (start, ends[tp])
        return total + (await self._count(scan) if scan else 0)

    async def _count(self, ranges: dict[TopicPartition, tuple[int, int]]) -> int:
        """Committed records in ``[start, end)`` of each partition, read all at once."""
        reader = self.committed_reader
        reader.assign(list(ranges))
        for tp, (start, _end) in ranges.items():
            reader.seek(tp, start)
        count, pending = 0, set(ranges)
        while pending:
            batch = await reader.getmany(*pending, timeout_ms=100)
            count += sum(1 for tp, ms in batch.items() for m in ms if m.offset < ranges[tp][1])
            pending = {tp for tp in pending if await reader.position(tp) < ranges[tp][1]}
        return count

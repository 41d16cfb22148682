"""Reading a table's output topic for a live subscription: one aiokafka consumer, no consumer
group, ``isolation_level="read_committed"`` (only records of committed transactions, so a
subscriber never sees output that a failed commit rolled back), assigned the partitions the
subscription follows and positioned at the offsets it resumes from.

Cost: each reader is a Kafka client of its own (a metadata connection, a connection to each
partition leader, a background fetch task and up to :data:`FETCH_BYTES_PER_PARTITION` bytes
fetched ahead per partition). A worker serves at most ``api_max_subscribers`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity

#: how much one fetch returns at most per partition (bytes); a subscriber never needs more
FETCH_BYTES_PER_PARTITION = 256 * 1024
#: how long to wait for the broker while opening a reader (ms)
REQUEST_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class OutputRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Bounds:
    """Per partition, the first offset still held and the end offset of committed records (the
    last stable offset: the next offset a committed record can take)."""

    beginning: dict[int, int]
    end: dict[int, int]


class OutputReader:
    """Committed records of ``partitions`` of ``topic``, from the offsets given to :meth:`seek`.

    Errors of the Kafka client (:class:`aiokafka.errors.KafkaError`) are raised as they come;
    :meth:`close` is safe to call at any time, more than once."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        partitions: list[int],
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.topic = topic
        self._tps = [TopicPartition(topic, p) for p in partitions]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="none",
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
            fetch_max_bytes=FETCH_BYTES_PER_PARTITION * max(1, len(partitions)),
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            client_id="continust-subscription",
            **security.client_options(),
        )
        self._started = False
        self._closed = False

    async def start(self) -> Bounds:
        """Connect and answer the partitions' bounds (nothing is fetched before :meth:`seek`)."""
        self._started = True
        await self._consumer.start()
        beginning = await self._consumer.beginning_offsets(self._tps)
        end = await self._consumer.end_offsets(self._tps)
        return Bounds(
            {tp.partition: beginning[tp] for tp in self._tps}, {tp.partition: end[tp] for tp in self._tps}
        )

    def seek(self, next_offsets: Mapping[int, int]) -> None:
        """Read each partition from the offset ``next_offsets`` names for it."""
        self._consumer.assign(self._tps)
        for tp in self._tps:
            self._consumer.seek(tp, next_offsets[tp.partition])

    async def fetch(self, timeout_ms: int, max_records: int) -> list[OutputRecord]:
        """The next committed records (at most ``max_records``), in offset order within each
        partition; empty when none came within ``timeout_ms``."""
        batch = await self._consumer.getmany(*self._tps, timeout_ms=timeout_ms, max_records=max_records)
        return [
            OutputRecord(tp.partition, m.offset, m.key, m.value)
            for tp, messages in batch.items()
            for m in messages
        ]

    async def close(self) -> None:
        if self._started and not self._closed:
            self._closed = True
            await self._consumer.stop()

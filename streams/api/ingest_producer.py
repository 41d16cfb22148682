"""The producer that writes ingested records to a source's topic: one aiokafka producer per
worker, idempotent (``enable_idempotence=True``, ``acks="all"``), so a record the broker
acknowledged is on every in-sync replica once and the producer's own retries add no duplicates.

It is created on first use, inside the running event loop (the web server's), and stopped by
:meth:`IngestProducer.close` (on the web app's cleanup). Records are keyed by their key field's
text, so Kafka's default partitioner puts each on its key's partition.

:meth:`IngestProducer.write` answers, per record in order, where it landed (:class:`Placed`) or
why the broker's client refused that one record (:class:`RecordRefused`: ``too_large``, a
record over the producer's ``max_request_size``). When the cluster does not answer (cannot
start, no leader, timeout after :data:`PRODUCE_TIMEOUT_S`) it raises :class:`ProduceFailed`;
records of the batch may then have been written or not, and a client that sends them again may
write some twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.ingest")

#: how long one batch may take to start the producer and be acknowledged (seconds)
PRODUCE_TIMEOUT_S = 15.0


class ProduceFailed(Exception):
    """The cluster did not take the batch (unreachable, no leader, timed out)."""


@dataclass(frozen=True)
class Placed:
    partition: int
    offset: int


@dataclass(frozen=True)
class RecordRefused:
    reason: str
    detail: str


def _observe(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class IngestProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        timeout_s: float = PRODUCE_TIMEOUT_S,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    enable_idempotence=True,
                    acks="all",
                    request_timeout_ms=int(self.timeout_s * 1000),
                    client_id="continust-ingest",
                    **self.security.client_options(),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
                log.info(logfmt("ingest.producer", state="started", bootstrap=self.bootstrap_servers))
            return self._producer

    async def _send_all(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> list[Any]:
        producer = await self._started()
        sent: list[Any] = []
        try:
            for key, value in records:
                try:
                    sent.append(await producer.send(topic, value, key=key))
                except MessageSizeTooLargeError as exc:
                    sent.append(RecordRefused("too_large", f"{len(value)} bytes: {exc}"))
            return [item if isinstance(item, RecordRefused) else await item for item in sent]
        except BaseException:
            # the batch failed: the deliveries still pending end unobserved, without a warning
            for item in sent:
                if isinstance(item, asyncio.Future):
                    item.add_done_callback(_observe)
            raise

    async def write(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> list[Placed | RecordRefused]:
        """Write ``(key, value)`` records to ``topic``; where each landed, in order."""
        try:
            async with asyncio.timeout(self.timeout_s):
                outcomes = await self._send_all(topic, records)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning(logfmt("ingest.produce_failed", topic=topic, records=len(records), error=repr(exc)))
            raise ProduceFailed(f"writing to {topic!r} failed: {exc!r}") from None
        return [
            item if isinstance(item, RecordRefused) else Placed(item.partition, item.offset)
            for item in outcomes
        ]

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()
                log.info(logfmt("ingest.producer", state="stopped"))

"""Writes records in the Kafka transaction of the input partition they derive from (under
``exactly_once``), or through the plain producer (under ``at_least_once``)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP

from agents.transport import transactional_id_for


class Sink:
    def __init__(self, app: faust.App, exactly_once: bool) -> None:
        self.app = app
        self.exactly_once = exactly_once

    async def send(
        self,
        source: TP,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Enqueue one record; it is delivered before the input offsets commit (the transaction
        commit, or the producer flush that precedes an at-least-once commit)."""
        if self.exactly_once:
            group = self.app.assignor.group_for_topic(source.topic)
            tid = transactional_id_for(self.app.conf.id, group, source.partition)
            transactions: Any = self.app.consumer.transactions
            await transactions.send(topic, key, value, partition, None, headers, transactional_id=tid)
        else:
            await self.app.producer.send(topic, key, value, partition, None, headers)

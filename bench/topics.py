"""The topics a benchmark run creates and removes.

Every topic a run creates, directly or through a contender (repartition, changelog and output
topics), has the run's id in its name, so :func:`delete_run_topics` can remove exactly those.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.topic_admin import ensure_topics
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic``; it must not exist yet (every run uses fresh names)."""
    actual = await ensure_topics(bootstrap, {topic: partitions}, security=KafkaSecurity.from_env().check())
    if actual[topic] != partitions:
        raise RuntimeError(f"topic {topic} already exists with {actual[topic]} partitions")


async def delete_run_topics(bootstrap: str, run_id: str) -> list[str]:
    """Delete every topic whose name contains ``run_id``; return their names."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **KafkaSecurity.from_env().check().client_options()
    )
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if run_id in t)
        if names:
            await admin.delete_topics(names)
            log.info(logfmt("bench.topics.deleted", run=run_id, topics=len(names)))
        return names
    finally:
        await admin.close()

"""Topic look-up and creation on the cluster (aiokafka admin client, connecting as ``security``
says: :mod:`streams.kafka_security`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.logfmt import logfmt

log = logging.getLogger("continust.topics")


async def partition_counts(
    bootstrap: str, topics: Iterable[str], security: KafkaSecurity = PLAINTEXT
) -> dict[str, int]:
    """Partition count of each topic that exists; missing topics are left out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await admin.start()
    try:
        wanted = set(topics)
        described = await admin.describe_topics(sorted(wanted))
        return {
            d["topic"]: len(d["partitions"])
            for d in described
            if d.get("error_code", 0) == 0 and d["topic"] in wanted and d["partitions"]
        }
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, int]:
    """Create the topics that do not exist with the given partition counts; return the actual
    partition count of every topic (which may differ for topics that existed before)."""
    existing = await partition_counts(bootstrap, topics, security)
    missing = {name: n for name, n in topics.items() if name not in existing}
    if missing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
        await admin.start()
        try:
            new = [NewTopic(n, p, 1, topic_configs=dict(config or {})) for n, p in missing.items()]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            for name, n in missing.items():
                log.info(logfmt("topic.created", topic=name, partitions=n))
        finally:
            await admin.close()
        await _wait_visible(bootstrap, missing, security)
    return {**existing, **missing}


async def _wait_visible(
    bootstrap: str, topics: Mapping[str, int], security: KafkaSecurity, timeout_s: float = 30.0
) -> None:
    """Creation returns before every broker's metadata shows the topic; wait until it does."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        seen = await partition_counts(bootstrap, topics, security)
        if all(seen.get(name) == n for name, n in topics.items()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(
                f"topics not visible after {timeout_s:.0f}s: {sorted(set(topics) - set(seen))}"
            )
        await asyncio.sleep(0.2)

"""Topic look-up and creation on the cluster (aiokafka admin client, connecting as ``security``
says: :mod:`streams.kafka.kafka_security`).

Replication of the topics the engine creates: a replication factor of -1 asks the broker for
its ``default.replication.factor`` (CreateTopics as KIP-733 has Kafka Streams do it), and a
topic without a ``min.insync.replicas`` config uses the broker's. On a single-node development
broker both are 1; on a production cluster they are whatever the cluster's operators chose."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity
from streams.telemetry.logfmt import logfmt

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


#: the replication factor that asks the broker for its ``default.replication.factor``
BROKER_DEFAULT = -1


def new_topic(name: str, partitions: int, replication_factor: int, config: Mapping[str, str]) -> NewTopic:
    """The creation request of one topic; ``replication_factor`` -1 (:data:`BROKER_DEFAULT`)
    leaves the number of replicas to the broker."""
    if replication_factor == BROKER_DEFAULT:
        # aiokafka takes -1 only beside a replica assignment; an empty one is the broker's choice
        return NewTopic(name, partitions, BROKER_DEFAULT, replica_assignments={}, topic_configs=dict(config))
    return NewTopic(name, partitions, replication_factor, topic_configs=dict(config))


async def broker_replication_factor(bootstrap: str, security: KafkaSecurity = PLAINTEXT) -> int:
    """The ``default.replication.factor`` of the cluster's controller (every broker of a cluster
    normally has the same); 1 when the broker does not say."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        node = str(cluster.get("controller_id") or cluster["brokers"][0]["node_id"])
        wanted = {"default.replication.factor": None}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, node, wanted)])
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[0] == "default.replication.factor" and entry[1]:
                        return int(entry[1])
        return 1
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    replication_factor: int = BROKER_DEFAULT,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, int]:
    """Create the topics that do not exist with the given partition counts, replication factor
    (-1: the broker's default) and topic configs; return the actual partition count of every
    topic (which may differ for topics that existed before; existing topics are left as they
    are). A broker that refuses (e.g. more replicas than brokers) raises its error."""
    existing = await partition_counts(bootstrap, topics, security)
    missing = {name: n for name, n in topics.items() if name not in existing}
    if missing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
        await admin.start()
        try:
            new = [new_topic(n, p, replication_factor, config or {}) for n, p in missing.items()]
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(new)
                _raise_refused(response)
            replicas = "broker_default" if replication_factor == BROKER_DEFAULT else replication_factor
            for name, n in missing.items():
                log.info(logfmt("topic.created", topic=name, partitions=n, replication_factor=replicas))
        finally:
            await admin.close()
        await _wait_visible(bootstrap, missing, security)
    return {**existing, **missing}


def _raise_refused(response: Any) -> None:
    """Raise the first per-topic error of a CreateTopics response other than "already exists"
    (another worker created it first)."""
    for entry in response.topic_errors:
        topic, code, message = entry[0], entry[1], entry[2] if len(entry) > 2 else None
        if code == TopicAlreadyExistsError.errno or code == 0:
            continue
        raise for_code(code)(f"cannot create topic {topic}: {message}")


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

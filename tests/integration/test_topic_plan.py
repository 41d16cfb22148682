"""The topic checks a worker makes before it starts, against the real broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.application import plan_topics
from streams.kafka.topic_admin import ensure_topics, partition_counts
from streams.plan.errors import PipelineError
from streams.plan.pipeline import load_pipeline
from streams.settings import Settings
from tests.integration.conftest import run

#: Kafka's config source of a config set on the topic itself
TOPIC_CONFIG = 1

PIPELINE = """
[app]
id = "{app_id}"

[[source]]
name = "clicks"
topics = ["{web}", "{app}"]
key = "user"
{extra}

[[table]]
name = "per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m" }}
aggregate = {{ n = "count()" }}
output = "{out}"
"""


def plan(
    kafka: str, tmp_path: Path, run_id: str, extra: str, web_partitions: int, **settings: Any
) -> tuple[str, str]:
    app_id, web, app = f"plan-{run_id}", f"web-{run_id}", f"app-{run_id}"
    run(ensure_topics(kafka, {web: web_partitions, app: 3}))
    path = tmp_path / "pipelines.toml"
    path.write_text(PIPELINE.format(app_id=app_id, web=web, app=app, out=f"out-{run_id}", extra=extra))
    pipeline = load_pipeline(path)
    run(plan_topics(pipeline, Settings(bootstrap_servers=kafka, app_id=app_id, **settings)))
    return app_id, web


async def _topic_configs(kafka: str, topic: str) -> dict[str, tuple[str, int]]:
    """Each config of ``topic``: its value and where it comes from (Kafka's config source:
    1 set on the topic, 3/4/5 the broker's)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {entry[0]: (entry[1], entry[3]) for entry in described.resources[0][4]}


async def _replicas(kafka: str, topic: str) -> set[int]:
    """The number of replicas of each partition of ``topic``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {len(p["replicas"]) for p in described["partitions"]}


def test_a_source_partitioned_by_key_needs_topics_of_one_size(kafka, run_id, tmp_path: Path):
    with pytest.raises(PipelineError) as err:
        plan(kafka, tmp_path, run_id, "partitioned_by_key = true", web_partitions=2)
    assert err.value.where == "source 'clicks'"
    assert f"web-{run_id}: 2, app-{run_id}: 3" in str(err.value)


def test_a_source_partitioned_by_key_has_no_repartition_topic(kafka, run_id, tmp_path: Path):
    app_id, _ = plan(kafka, tmp_path, run_id, "partitioned_by_key = true", web_partitions=3)
    assert run(partition_counts(kafka, [f"{app_id}-clicks-repartition", f"out-{run_id}"])) == {
        f"out-{run_id}": 3
    }


def test_a_repartitioned_source_gets_its_repartition_topic(kafka, run_id, tmp_path: Path):
    app_id, _ = plan(kafka, tmp_path, run_id, "", web_partitions=2)
    assert run(partition_counts(kafka, [f"{app_id}-clicks-repartition"])) == {
        f"{app_id}-clicks-repartition": 3
    }


def test_each_table_gets_its_compacted_changelog_before_the_worker_starts(kafka, run_id, tmp_path: Path):
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    app_id, _ = plan(kafka, tmp_path, run_id, "", web_partitions=2)
    changelog = f"{app_id}-per_user-changelog"
    assert run(partition_counts(kafka, [changelog])) == {changelog: 3}

    async def cleanup_policy() -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
        await admin.start()
        try:
            [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, changelog)])
        finally:
            await admin.close()
        entries = {entry[0]: entry[1] for entry in described.resources[0][4]}
        return str(entries["cleanup.policy"])

    assert run(cleanup_policy()) == "compact"
    # by default every internal topic takes the broker's default.replication.factor (1 on the
    # suite's single broker) and no min.insync.replicas of its own (the broker's applies)
    for topic in (changelog, f"{app_id}-clicks-repartition", f"out-{run_id}", f"{app_id}-dead-letters"):
        assert run(_replicas(kafka, topic)) == {1}, topic
        assert run(_topic_configs(kafka, topic))["min.insync.replicas"][1] != TOPIC_CONFIG, topic


def test_internal_topics_take_the_replication_settings(kafka, run_id, tmp_path: Path):
    app_id, _ = plan(
        kafka, tmp_path, run_id, "", web_partitions=2, replication_factor=1, min_insync_replicas=1
    )
    for topic in (f"{app_id}-per_user-changelog", f"{app_id}-clicks-repartition", f"out-{run_id}"):
        assert run(_replicas(kafka, topic)) == {1}, topic
        assert run(_topic_configs(kafka, topic))["min.insync.replicas"] == ("1", TOPIC_CONFIG), topic


def test_more_replicas_than_brokers_is_refused_at_once(kafka, run_id, tmp_path: Path):
    from aiokafka.errors import InvalidReplicationFactorError

    with pytest.raises(InvalidReplicationFactorError, match="repartition"):
        plan(kafka, tmp_path, run_id, "", web_partitions=2, replication_factor=2)

"""The three Python example pipelines (examples/*.py) end to end on the real broker, in one
worker that a fault point SIGKILLs mid-stream: once restarted, its windows, the last output
value of every window and its dead letters equal the broker-free harness's for the same records
(itself checked against plain models in tests/unit/test_examples.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.harness import Input, Result, run_pipeline
from streams.kafka.topic_admin import ensure_topics
from streams.plan.python_front import load_any_pipeline
from tests.integration.broker_io import free_port, read_to_end, settled
from tests.integration.conftest import run, wait_exit, wait_until
from tests.integration.test_harness_vs_worker import letter_facts, scan_windows

pytestmark = pytest.mark.integration

PARTITIONS = 2
EXAMPLES = Path(__file__).parents[2] / "examples"
#: one App holding every example's sources and tables, under this run's names
COMBINED = """
import importlib.util

from streams.plan.python_front import App

app = App("{app_id}", commit_interval="200ms")
for example in ("big_purchases", "account_sessions", "endpoint_latency"):
    spec = importlib.util.spec_from_file_location(f"example_{{example}}", "{examples}/" + example + ".py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for source in module.app.sources:
        topics = [f"{{example}}-{{topic}}-{run_id}" for topic in source["topics"]]
        app.sources.append({{**source, "name": example, "topics": topics, "idle_after": "1s"}})
    for table in module.app.tables:
        app.tables.append({{**table, "source": example, "output": table["output"] + "-{run_id}"}})
"""


def inputs(run_id: str, base_ms: int) -> list[Input]:
    """Records for every example, bad ones included, over six minutes of event time."""
    rng = random.Random(5)
    records = []
    session_clock = base_ms
    for i in range(300):
        ts = base_ms + i * 1_200 - rng.randrange(3_000)
        user = f"u{rng.randrange(12)}"
        amount: Any = rng.choice([3.5, 10.0, 12.25, 40.0, "lots"])
        currency = rng.choice(["EUR", "EUR", "USD"])
        records.append(
            Input(
                f"big_purchases-purchases-{run_id}",
                {"user": user, "ts": ts, "amount": amount, "currency": currency},
                key=user,
            )
        )
        account = f"acct-{rng.randrange(5)}"
        session_clock += rng.choice([20_000, 60_000, 45 * 60_000])  # gaps that end sessions
        payload: dict[str, Any] = {
            "account": {"id": account},
            "ts": session_clock,
            "amount": rng.randrange(1, 90) / 4,
        }
        if i % 37 == 0:
            payload = {"account": {}, "ts": session_clock, "amount": 1.0}  # no key: a dead letter
        records.append(Input(f"account_sessions-purchases-{run_id}", payload, key=account))
        endpoint = rng.choice(["/cart", "/pay", "/search"])
        latency: Any = rng.randrange(2, 800) if i % 41 else "slow"
        records.append(
            Input(
                f"endpoint_latency-requests-{run_id}",
                {"endpoint": endpoint, "ts": ts, "latency_ms": latency, "user": user},
                key=endpoint,
            )
        )
    return records


async def publish(bootstrap: str, records: list[Input]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            key = record.key.encode() if isinstance(record.key, str) else record.key
            await producer.send(record.topic, orjson.dumps(record.value), key=key)
        await producer.flush()
    finally:
        await producer.stop()


def last_values(by_partition: dict[int, list[Any]]) -> dict[tuple[str, int, int], Any]:
    last: dict[tuple[str, int, int], Any] = {}
    for values in by_partition.values():
        for value in values:
            last[(value["key"], value["start"], value["end"])] = value["value"]
    return last


def test_the_examples_survive_a_sigkill_and_equal_the_harness(
    kafka: str, start_worker: Any, tmp_path: Path, run_id: str
) -> None:
    path = tmp_path / f"examples_{run_id}.py"
    path.write_text(COMBINED.format(app_id=f"examples-{run_id}", examples=EXAMPLES, run_id=run_id))
    pipeline = load_any_pipeline(path)
    now_ms = int(time.time() * 1000)
    base_ms = (now_ms // 60_000 - 60 * 24 * 4) * 60_000  # four days ago (the sessions span three)
    records = inputs(run_id, base_ms)
    expected: Result = run_pipeline(pipeline, records, partitions=PARTITIONS, max_batch=11, now_ms=now_ms)
    topics = [topic for source in pipeline.sources for topic in source.topics]
    run(ensure_topics(kafka, dict.fromkeys(topics, PARTITIONS)))
    half = len(records) // 2
    run(publish(kafka, records[:half]))
    port = free_port()
    killed = start_worker(path, port, fault="batch.processed@4")
    assert wait_exit(killed, 180, "the kill after four batches") == -9, killed.log_tail()
    run(publish(kafka, records[half:]))
    worker = start_worker(path, port)
    watched = topics + [f"{pipeline.app.id}-{source.name}-repartition" for source in pipeline.sources]
    wait_until(lambda: settled(kafka, pipeline.app.id, watched, PARTITIONS), 180, "the worker to settle")

    for table in pipeline.tables:
        assert scan_windows(worker, table.name) == expected.windows[table.name], table.name
        assert table.output is not None
        got = {
            p: [orjson.loads(m.value) for m in ms] for p, ms in run(read_to_end(kafka, table.output)).items()
        }
        assert last_values(got) == last_values(expected.outputs[table.output]), table.name
    dead = run(read_to_end(kafka, f"{pipeline.app.id}-dead-letters"))
    worker_letters = sorted(letter_facts(dict(m.headers), m.value) for ms in dead.values() for m in ms)
    assert worker_letters == sorted(letter_facts(d.headers, d.value) for d in expected.dead_letters)
    assert {facts[0] for facts in worker_letters} == {"user_error", "missing_key", "invalid_field"}

"""The broker-free harness (agents/harness.py) is the worker's semantics, not a second copy:
the same Python pipeline (nested key, a chain of filter, map and flat_map, a failing function)
over the same records gives, through the harness and through a worker on the real broker, the
same windows, the same output records (per partition in order, when the source is partitioned
by key; the same last value per window otherwise), the same late events and dead letters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.harness import Input, run_pipeline
from bench.worker_api import metric_total
from streams.kafka.topic_admin import ensure_topics
from streams.plan.dead_letters import DETAIL, REASON, TABLE
from streams.plan.operators import ERROR_MESSAGE_HEADER, ERROR_TYPE_HEADER, OPERATOR_HEADER
from streams.plan.python_front import load_any_pipeline
from tests.integration.broker_io import free_port, read_to_end, settled
from tests.integration.conftest import run, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 2
PIPELINE = """
from streams.plan.python_front import App, tumbling


def big(order):
    return order["amount"] > 10


def with_cents(order):
    if order["amount"] == 13:
        raise ValueError("unlucky amount")
    return {{**order, "cents": order["amount"] * 100}}


def lines(order):
    if order["amount"] == 40 and order["account"]["id"] == "acct-2":  # the sum cannot read the second
        return [{{"cents": 1}}, {{"pennies": 2}}]
    return [{{"cents": order["cents"] // n}} for n in range(1, order["lines"] + 1)]


def account_of(order):
    return order["account"]["id"]


app = App("{app_id}", commit_interval="200ms")
orders = app.source(
    "orders",
    topics=["{topic}"],
    key={key},
    timestamp="ts",
    partitioned_by_key={keyed},
    idle_after="1s",
    late_topic="{late}",
    dead_letter_topic="{dead}",
)
orders.filter(big).map(with_cents).flat_map(lines).table(
    "spend",
    window=tumbling("1m", grace="30s", retention="30d"),
    aggregate={{"n": "count()", "cents": "sum(cents)", "first": "first(cents)"}},
    emit="change",
    output="{out}",
)
"""


def orders(topic: str, base_ms: int, late: bool) -> list[Input]:
    """Accounts on both partitions; amounts some filtered, one failing (13), one not a number;
    event times up to 6 s out of order and all different (``first`` has no tie to break by
    arrival, which differs with the interleaving of a repartitioned source's inputs); with
    ``late``, two far behind, late once the clock has moved. A repartitioned table's clock is the
    minimum over both inputs, so whether such an event is late depends on how far the other
    input was read by then: only a source partitioned by key has them."""
    inputs = []
    for i in range(240):
        account = f"acct-{i % 7}"
        amount: Any = [5, 12, 13, 40, 11, "x"][i % 6] if i % 29 else 25
        ts = base_ms + i * 1_000 - (i % 5) * 1_500
        if late and i in (201, 232):
            ts = base_ms  # minutes behind by now
        value = {"account": {"id": account}, "ts": ts, "amount": amount, "lines": 1 + i % 3}
        inputs.append(Input(topic, value, key=account, partition=None))
    return inputs


async def publish_inputs(
    bootstrap: str, topic: str, inputs: list[Input], partitions: dict[int, int | None]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for index, record in enumerate(inputs):
            key = record.key.encode() if isinstance(record.key, str) else record.key
            await producer.send(topic, orjson.dumps(record.value), key=key, partition=partitions[index])
        await producer.flush()
    finally:
        await producer.stop()


#: what a dead letter says that the harness and the worker must agree on: why, where in the
#: pipeline, and for a user's error which step raised what
LETTER_FACTS = (
    REASON,
    DETAIL,
    TABLE,
    OPERATOR_HEADER,
    ERROR_TYPE_HEADER,
    ERROR_MESSAGE_HEADER,
)


def letter_facts(headers: dict[str, bytes], value: bytes | None) -> tuple[str | bytes | None, ...]:
    """A dead letter's reason, detail, table and user-error headers (empty when absent), then
    its value: the harness's letters and the worker's compare equal on these."""
    return (*(headers.get(name, b"").decode() for name in LETTER_FACTS), value)


def scan_windows(worker: Any, table: str) -> dict[tuple[str, int, int], Any]:
    found: dict[tuple[str, int, int], Any] = {}
    cursor = ""
    while True:
        status, body = worker.get(f"/api/tables/{table}/windows?limit=500{cursor}")
        assert status == 200, body
        for w in body["windows"]:
            found[(w["key"], w["start"], w["end"])] = w["value"]
        if body["next_cursor"] is None:
            return found
        cursor = f"&cursor={body['next_cursor']}"


@pytest.mark.parametrize("keyed", [True, False], ids=["partitioned_by_key", "repartitioned"])
def test_the_harness_gives_what_a_worker_on_the_broker_gives(
    kafka: str, start_worker: Any, tmp_path: Path, run_id: str, keyed: bool
) -> None:
    names = {
        "app_id": f"harness-{run_id}",
        "topic": f"orders-{run_id}",
        "late": f"late-{run_id}",
        "dead": f"dead-{run_id}",
        "out": f"spend-{run_id}",
    }
    path = tmp_path / f"orders_{run_id}.py"
    # the repartitioned source computes its key with a function (key_by); the keyed one reads it
    path.write_text(PIPELINE.format(keyed=keyed, key='"account.id"' if keyed else "account_of", **names))
    pipeline = load_any_pipeline(path)
    base_ms = (int(time.time() * 1000) // 60_000 - 60 * 24) * 60_000  # a day ago, on a minute
    inputs = orders(names["topic"], base_ms, late=keyed)
    # where the worker's records go: by key (the producer's partitioner) or spread by index
    partitions = {i: (None if keyed else i % PARTITIONS) for i in range(len(inputs))}
    harness_inputs = [
        Input(r.topic, r.value, key=r.key, partition=partitions[i]) for i, r in enumerate(inputs)
    ]
    expected = run_pipeline(pipeline, harness_inputs, partitions=PARTITIONS, max_batch=7)

    run(ensure_topics(kafka, {names["topic"]: PARTITIONS}))
    run(publish_inputs(kafka, names["topic"], inputs, partitions))
    worker = start_worker(path, free_port())
    topics = [names["topic"]] + ([] if keyed else [f"{names['app_id']}-orders-repartition"])
    wait_until(lambda: settled(kafka, names["app_id"], topics, PARTITIONS), 120, "the worker to settle")

    assert scan_windows(worker, "spend") == expected.windows["spend"]
    assert pipeline.sources[0].key_by is not None or keyed
    status, catalog = worker.get("/api/tables")
    assert status == 200
    assert [(op["kind"], op["function"].split(":")[1]) for op in catalog["tables"][0]["operators"]] == [
        ("filter", "big"),
        ("map", "with_cents"),
        ("flat_map", "lines"),
    ]
    failed = metric_total(worker.port, "continust_operator_errors_total", 'operator="map(')
    assert failed == sum(
        1 for d in expected.dead_letters if d.headers.get("continust-operator", b"").startswith(b"map(")
    )
    assert failed and failed > 0
    out = run(read_to_end(kafka, names["out"]))
    got = {p: [orjson.loads(m.value) for m in messages] for p, messages in out.items()}
    want = expected.outputs[names["out"]]
    if keyed:  # each output partition follows its input partition, in order
        assert {p: v for p, v in got.items() if v} == {p: v for p, v in want.items() if v}
    else:

        def last_values(by_partition: dict[int, list[Any]]) -> dict[tuple[str, int], Any]:
            last: dict[tuple[str, int], Any] = {}
            for values in by_partition.values():
                for v in values:
                    last[(v["key"], v["start"])] = v["value"]
            return last

        assert last_values(got) == last_values(want)
    late = run(read_to_end(kafka, names["late"]))
    assert sorted(orjson.loads(m.value)["ts"] for ms in late.values() for m in ms) == sorted(
        orjson.loads(letter.value or b"{}")["ts"] for letter in expected.late
    )
    dead = run(read_to_end(kafka, names["dead"]))
    worker_letters = sorted(letter_facts(dict(m.headers), m.value) for ms in dead.values() for m in ms)
    assert worker_letters == sorted(
        letter_facts(letter.headers, letter.value) for letter in expected.dead_letters
    )
    assert {facts[0] for facts in worker_letters} == {"user_error", "invalid_field"}
    assert len(expected.late) == (2 if keyed else 0)

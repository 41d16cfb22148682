"""Backlogs on the real broker: two topics of four partitions each, written before any worker
starts, every partition at most 1 s out of event-time order and grace 10 s. However the
fetches interleave the partitions, with one worker killed in the middle or two workers sharing
them, no event is late and every window's final record equals a reference computed here from
the events alone (:mod:`windows.progress`: the clock is the smallest progress of the inputs).

A quiet partition: a source partition that never receives anything is reported idle after
``idle_after`` and stops holding the windows of the others open.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, read_to_end, settled
from tests.integration.conftest import run, wait_exit, wait_until

PARTITIONS = 4
SIZE, GRACE, GAP = 10_000, 10_000, 3_000
USERS = [f"u{i:02d}" for i in range(40)]
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
session_timeout = "6s"

[[source]]
name = "events"
topics = ["{a}", "{b}"]
key = "user"
timestamp = "ts"
late_topic = "{late}"
idle_after = "1s"
{source_extra}

[[table]]
name = "tumbling"
source = "events"
window = {{ type = "tumbling", size = "10s", grace = "10s", retention = "1h" }}
aggregate = {{ n = "count()", s = "sum(x)", last = "last(x)" }}
emit = "final"
output = "{out}-tumbling"

[[table]]
name = "sessions"
source = "events"
window = {{ type = "session", gap = "3s", grace = "10s", retention = "1h" }}
aggregate = {{ n = "count()", s = "sum(x)" }}
emit = "final"
output = "{out}-sessions"
"""

# (topic, partition, user, ts, x), in the order each partition holds them
Event = tuple[str, int, str, int, int]


def backlog(topics: list[str], t0: int, per_topic: int, keyed: bool, seed: int) -> list[Event]:
    """Each topic spans the same stretch of event time, 25 ms a step; each event goes to the
    partition of its user (``keyed``) or a random one, stamped up to 1 s before its step."""
    rng = random.Random(seed)
    events: list[Event] = []
    for topic in topics:
        for k in range(per_topic):
            user = rng.choice(USERS)
            partition = key_partition(user.encode(), PARTITIONS) if keyed else rng.randrange(PARTITIONS)
            events.append((topic, partition, user, t0 + 25 * k - rng.randint(0, 1_000), rng.randint(-5, 20)))
    return events


async def publish_backlog(bootstrap: str, events: list[Event]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for topic, partition, user, ts, x in events:
            value = orjson.dumps({"user": user, "ts": ts, "x": x})
            await producer.send(topic, value, key=user.encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def reference(
    events: list[Event], topics: list[str], keyed: bool, closed_by: dict[int, int]
) -> dict[str, set]:
    """The final records expected per table: every window whose end + grace is at most the
    clock its keyed-stream partition ends at (``closed_by``), from the events alone. ``last``
    is the value of the latest event; a tie goes to the later arrival, the order the engine
    gives events whatever order it reads the inputs in: offset in the input times the number
    of inputs, plus the input's number (:class:`agents.merge.KeyedEvent`)."""
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    by_user: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # (ts, arrival, x)
    for topic, partition, user, ts, x in events:
        offset = offsets[(topic, partition)]
        offsets[(topic, partition)] += 1
        if keyed:
            arrival = offset * len(topics) + topics.index(topic)
        else:
            arrival = offset * len(topics) * PARTITIONS + topics.index(topic) * PARTITIONS + partition
        by_user[user].append((ts, arrival, x))
    want: dict[str, set[tuple[Any, ...]]] = {"tumbling": set(), "sessions": set()}
    for user, stamped in by_user.items():
        clock = closed_by[key_partition(user.encode(), PARTITIONS)]
        windows: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for event in stamped:
            windows[event[0] // SIZE * SIZE].append(event)
        for start, inside in windows.items():
            if start + SIZE + GRACE <= clock:
                value = (len(inside), sum(x for *_, x in inside), max(inside)[2])
                want["tumbling"].add((user, start, start + SIZE, *value))
        sessions: list[list[int]] = []  # [start, last ts, n, sum]
        for ts, _arrival, x in sorted(stamped):
            if sessions and ts < sessions[-1][1] + GAP:
                sessions[-1][1:] = [ts, sessions[-1][2] + 1, sessions[-1][3] + x]
            else:
                sessions.append([ts, ts, 1, x])
        for start, last, n, total in sessions:
            if last + GAP + GRACE <= clock:
                want["sessions"].add((user, start, last + GAP, n, total))
    return want


def emitted(bootstrap: str, out: str) -> dict[str, list[tuple[Any, ...]]]:
    got: dict[str, list[tuple[Any, ...]]] = {}
    for table in ("tumbling", "sessions"):
        got[table] = []
        for records in run(read_to_end(bootstrap, f"{out}-{table}")).values():
            for r in records:
                v = orjson.loads(r.value)
                assert v["version"] == 1, v
                value = v["value"]
                extra = (value["last"],) if table == "tumbling" else ()
                got[table].append((v["key"], v["start"], v["end"], value["n"], value["s"], *extra))
    return got


def diff(got: dict[str, list[tuple[Any, ...]]], want: dict[str, set[tuple[Any, ...]]]) -> str:
    return "; ".join(
        f"{table}: {sorted(set(got[table]) - want[table])[:5]} unexpected, "
        f"{sorted(want[table] - set(got[table]))[:5]} missing"
        for table in want
    )


def setup(kafka: str, run_id: str, tmp_path: Path, keyed: bool) -> tuple[str, list[str], str, str, Path]:
    app_id, out, late = f"backlog-{run_id}", f"out-{run_id}", f"late-{run_id}"
    topics = [f"a-{run_id}", f"b-{run_id}"]
    run(ensure_topics(kafka, dict.fromkeys(topics, PARTITIONS)))
    pipeline = tmp_path / "pipelines.toml"
    extra = "partitioned_by_key = true" if keyed else ""
    pipeline.write_text(
        PIPELINE.format(app_id=app_id, a=topics[0], b=topics[1], late=late, out=out, source_extra=extra)
    )
    return app_id, topics, out, late, pipeline


@pytest.mark.parametrize("keyed", [False, True], ids=["repartitioned", "partitioned_by_key"])
@pytest.mark.parametrize("workers", ["one-killed-midway", "two"])
def test_a_backlog_over_partitions_and_topics_is_exact(
    kafka, run_id, start_worker, tmp_path: Path, keyed: bool, workers: str
):
    app_id, topics, out, late, pipeline = setup(kafka, run_id, tmp_path, keyed)
    t0 = int(time.time() * 1000) - 3_600_000
    events = backlog(topics, t0, 3_000, keyed, seed=len(workers) + 10 * keyed)
    keyed_topics = topics if keyed else [*topics, f"{app_id}-events-repartition"]

    def wait_settled(workers: list[Any]) -> None:
        wait_until(
            lambda: settled(kafka, app_id, keyed_topics, 2 * PARTITIONS),
            240,
            "the workers to read the whole backlog (and report every input idle)",
            lambda: "\n".join(w.log_tail() for w in workers),
        )

    if workers == "two":  # all of it before any worker starts
        run(publish_backlog(kafka, events))
        started = [start_worker(pipeline, free_port()), start_worker(pipeline, free_port())]
    else:
        # The first half, read to the end by a worker that is then killed; the second half
        # arrives while it is down, and its successor is killed again after three batches of it
        # (at least eight remain: every input partition has records); then a third catches up.
        middle = t0 + 25 * 3_000 // 2
        first_half = [e for e in events if e[3] < middle]
        events = first_half + [e for e in events if e[3] >= middle]  # in publish order
        run(publish_backlog(kafka, first_half))
        port = free_port()
        first = start_worker(pipeline, port)
        wait_settled([first])
        first.proc.kill()
        first.proc.wait(timeout=30)
        run(publish_backlog(kafka, events[len(first_half) :]))
        killed = start_worker(pipeline, port, fault="batch.processed@3")
        assert wait_exit(killed, 180, "the kill after three batches") == -9, killed.log_tail()
        assert killed.fault()["point"] == "batch.processed"
        started = [start_worker(pipeline, port)]
    wait_settled(started)

    if keyed:  # each table partition's clock ends at the largest time of its two partitions
        closed_by = {p: max(ts for _t, q, _u, ts, _x in events if q == p) for p in range(PARTITIONS)}
    else:  # every source partition feeds every table partition
        closed_by = dict.fromkeys(range(PARTITIONS), max(ts for *_, ts, _x in events))
    want = reference(events, topics, keyed, closed_by)
    assert want["tumbling"] and want["sessions"], "the backlog should close windows"

    def all_closed() -> bool:  # the last ones close once every input is idle
        return all(set(got) == want[table] for table, got in emitted(kafka, out).items())

    wait_until(all_closed, 60, "every window to close", lambda: diff(emitted(kafka, out), want))
    got = emitted(kafka, out)
    for table in ("tumbling", "sessions"):
        assert len(got[table]) == len(set(got[table])), f"{table}: a window was emitted twice"
    late_events = run(read_to_end(kafka, late))
    assert sum(len(r) for r in late_events.values()) == 0, "no event is late by its own partition"
    # any worker answers for any key, with the windows of the reference
    for user in USERS[:5]:
        body = windows_of(started[-1], user)
        closed = {
            (user, w["start"], w["end"], w["value"]["n"], w["value"]["s"], w["value"]["last"])
            for w in body["windows"]
        }
        assert closed >= {w for w in want["tumbling"] if w[0] == user}


def windows_of(worker: Any, user: str) -> dict[str, Any]:
    """The worker's HTTP answer for ``user``'s tumbling windows, once it answers 200 (it answers
    503 while the group rebalances)."""

    def answer() -> dict[str, Any] | None:
        status, body = worker.get(f"/api/tables/tumbling/keys/{user}")
        return dict(body) if status == 200 else None

    return dict(wait_until(answer, 60, f"an answer for {user}", worker.log_tail))


QUIET = """
[app]
id = "{app_id}"
commit_interval = "200ms"

[[source]]
name = "pings"
topics = ["{src}"]
key = "user"
timestamp = "ts"
idle_after = "2s"

[[table]]
name = "counts"
source = "pings"
window = {{ type = "tumbling", size = "10s", retention = "1h" }}
aggregate = {{ n = "count()" }}
emit = "final"
output = "{src}-out"
"""


def test_a_partition_that_stays_quiet_stops_holding_the_windows_open(kafka, run_id, start_worker, tmp_path):
    """Two source partitions, events on one only: the other is reported idle once nothing is left
    to read and nothing came for ``idle_after``, so the clock follows the busy partition and its
    windows close; once that one is quiet too, all are idle and the clock stays at its largest
    time."""
    app_id, src = f"quiet-{run_id}", f"pings-{run_id}"
    run(ensure_topics(kafka, {src: 2}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(QUIET.format(app_id=app_id, src=src))
    t0 = (int(time.time() * 1000) - 3_600_000) // 10_000 * 10_000
    busy = 0 if key_partition(b"h1", 2) == 0 else 1
    stamps = [t0 + 1_000 * i for i in range(35)]  # windows [t0, +10s) .. [+30s, +40s)
    run(publish_backlog_to(kafka, src, busy, stamps))
    worker = start_worker(pipeline, free_port())
    repartition = f"{app_id}-pings-repartition"
    wait_until(
        lambda: settled(kafka, app_id, [src, repartition], 2), 120, "both inputs idle", worker.log_tail
    )
    records = [orjson.loads(r.value) for rs in run(read_to_end(kafka, f"{src}-out")).values() for r in rs]
    assert sorted((r["start"], r["value"]["n"]) for r in records) == [
        (t0, 10),
        (t0 + 10_000, 10),
        (t0 + 20_000, 10),
    ], "closed by the busy partition's progress (t0 + 34 s); [t0 + 30 s, t0 + 40 s) stays open"
    log = worker.log.read_text()
    assert f"event=input.idle source=pings input={src}:{1 - busy}" in log
    metrics = urlopen_text(worker.url("/metrics")).splitlines()

    def series(name: str, input_name: str = "") -> list[float]:
        wanted = f'input="{input_name}"' if input_name else ""
        return [float(x.rsplit(" ", 1)[1]) for x in metrics if x.startswith(name + "{") and wanted in x]

    quiet, busy_input = f"{src}:{1 - busy}", f"{src}:{busy}"
    assert series("continust_input_idle", quiet) and set(series("continust_input_idle", quiet)) == {1.0}
    assert set(series("continust_input_progress_ms", busy_input)) == {float(stamps[-1])}
    assert set(series("continust_input_holding", busy_input)) == {0.0}  # all idle: none holds
    lag = series("continust_stream_time_lag_seconds")
    assert lag and min(lag) >= 3_500  # an hour ago, by the wall clock


async def publish_backlog_to(bootstrap: str, topic: str, partition: int, stamps: list[int]) -> None:
    await publish_backlog(bootstrap, [(topic, partition, "h1", ts, 1) for ts in stamps])


def urlopen_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())

"""Live subscriptions on the real broker with real workers: a key's subscription starts with a
snapshot, follows the committed output records, survives the worker that served it stopping
(it resumes on another worker from the last event id) and ends up with exactly the output
topic's records for the key, read with read_committed: in order, no gap, no repeat. Also the
refusals before a stream (409, 400, 503 with Retry-After) and ``continust tail --count``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.api.event_ids import TablePosition
from streams.api.sse import SseEvent, read_events
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, publish, read_to_end
from tests.integration.conftest import Worker, run, wait_exit, wait_until

SIZE = 60_000
#: worker HTTP ports of this module (a range of their own)
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
processing_guarantee = "exactly_once"
session_timeout = "6s"

[[source]]
name = "clicks"
topics = ["{events}"]
key = "user"
timestamp = "ts"
partitioned_by_key = true

[[table]]
name = "counts"
source = "clicks"
window = {{ type = "tumbling", size = "1m", grace = "1h", retention = "1d" }}
aggregate = {{ clicks = "count()" }}
emit = "update"
output = "{out}"

[[table]]
name = "quiet"
source = "clicks"
window = {{ type = "tumbling", size = "1m", grace = "1h", retention = "1d" }}
aggregate = {{ clicks = "count()" }}
"""


class Subscription:
    """A subscription's stream as a client reads it, each read bounded by ``timeout`` seconds."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = urllib.request.urlopen(request, timeout=timeout)
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self._items: Iterator[SseEvent | str] = read_events(line.decode() for line in self.response)

    def next(self) -> SseEvent | str | None:
        """The next event or comment; ``None`` when the stream ended."""
        return next(self._items, None)

    def events(self, count: int, name: str) -> list[SseEvent]:
        """The next ``count`` events, all named ``name`` (heartbeats skipped)."""
        got: list[SseEvent] = []
        while len(got) < count:
            item = self.next()
            assert item is not None, f"the stream ended after {got}"
            if isinstance(item, SseEvent):
                assert item.event == name, f"{item} after {got}"
                got.append(item)
        return got

    def close(self) -> None:
        self.response.close()


def answer(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """Status, JSON body and headers of a request that is refused before any stream."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, None, r.headers
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read()), err.headers


def write_pipeline(tmp_path: Path, run_id: str) -> tuple[Path, str, str]:
    events, out = f"subscribe-in-{run_id}", f"subscribe-out-{run_id}"
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(PIPELINE.format(app_id=f"sub-{run_id}", events=events, out=out))
    return pipeline, events, out


def clicks(kafka: str, topic: str, user: str, window_starts: list[int]) -> None:
    """One click of ``user`` per window start: each makes exactly one output record (a new
    window, version 1), whatever the commits coalesce."""
    run(
        publish(
            kafka,
            [(topic, user.encode(), orjson.dumps({"user": user, "ts": ts + 1})) for ts in window_starts],
        )
    )


def key_records(kafka: str, out: str, key: str) -> list[tuple[int, dict[str, Any]]]:
    """``key``'s committed output records, (offset, JSON) in offset order."""
    return [
        (m.offset, orjson.loads(m.value))
        for records in run(read_to_end(kafka, out)).values()
        for m in records
        if m.key == key.encode()
    ]


def ready(worker: Worker, table: str, key: str) -> bool:
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker exited:\n{worker.log_tail()}")
    try:
        return worker.get(f"/api/tables/{table}/keys/{key}")[0] == 200
    except OSError:
        return False


def owns_partitions(worker: Worker, topic: str) -> bool:
    try:
        _status, body = worker.get("/health")
    except OSError:
        return False
    return any(p.startswith(f"{topic}:") for p in body["active_partitions"])


def test_a_key_subscription_resumes_on_another_worker_without_gap_or_repeat(
    kafka, run_id, start_worker, tmp_path: Path
):
    pipeline, events, out = write_pipeline(tmp_path, run_id)
    run(ensure_topics(kafka, {events: 3}))
    one_subscriber = {"CONTINUST_API_MAX_SUBSCRIBERS": "1"}
    a = start_worker(pipeline, free_port(), env=one_subscriber)
    b = start_worker(pipeline, free_port(), env=one_subscriber)
    logs = lambda: a.log_tail() + "\n" + b.log_tail()  # noqa: E731
    wait_until(
        lambda: all(owns_partitions(w, events) for w in (a, b)), 90, "both workers to own partitions", logs
    )
    wait_until(lambda: ready(a, "counts", "alice") and ready(b, "counts", "alice"), 30, "queries", logs)

    t0 = (int(time.time() * 1000) - 3_000_000) // SIZE * SIZE
    windows = iter(range(t0, t0 + 40 * SIZE, SIZE))
    clicks(kafka, events, "alice", [next(windows) for _ in range(3)])
    wait_until(lambda: len(key_records(kafka, out, "alice")) == 3, 30, "alice's first records", logs)

    # refused before any stream
    status, body, _ = answer(b.url("/api/tables/quiet/subscribe?key=alice"))
    assert (status, body["error"]) == (409, "no_output")
    status, body, _ = answer(b.url("/api/tables/counts/subscribe?key=alice"), {"Last-Event-ID": "1x"})
    assert (status, body["error"]) == (400, "bad_last_event_id")

    # worker A: the snapshot, then records
    first = Subscription(a.url("/api/tables/counts/subscribe?key=alice&heartbeat=1"))
    snapshot = first.events(3, "snapshot")
    assert [orjson.loads(e.data)["key"] for e in snapshot] == ["alice"] * 3
    assert [orjson.loads(e.data)["value"] for e in snapshot] == [{"clicks": 1}] * 3
    assert all(e.id is None for e in snapshot)
    [end] = first.events(1, "snapshot_end")
    assert end.id is not None and orjson.loads(end.data) == {"windows": 3}
    assert all(offset <= int(end.id) for offset, _ in key_records(kafka, out, "alice"))

    status, body, headers = answer(a.url("/api/tables/counts/subscribe?key=bob"))
    assert (status, body["error"]) == (503, "too_many_subscribers") and int(headers["Retry-After"]) > 0

    clicks(kafka, events, "alice", [next(windows) for _ in range(4)])
    clicks(kafka, events, "bob", [t0, t0 + SIZE])
    received = first.events(4, "record")

    # worker A stops mid-stream: it tells the subscriber, then the stream ends
    a.proc.send_signal(signal.SIGTERM)
    tail: list[SseEvent] = []
    while (item := first.next()) is not None:
        if isinstance(item, SseEvent):
            tail.append(item)
    first.close()
    assert [e.event for e in tail] == ["dropped"], tail
    assert orjson.loads(tail[0].data) == {"reason": "worker_stopping", "last_event_id": received[-1].id}
    wait_exit(a, 60, "worker A to stop")

    clicks(kafka, events, "alice", [next(windows) for _ in range(4)])
    second = Subscription(
        b.url("/api/tables/counts/subscribe?key=alice&heartbeat=1"), {"Last-Event-ID": received[-1].id}
    )
    received += second.events(4, "record")
    # nothing else is published: what comes next is a heartbeat, not a repeat
    assert isinstance(second.next(), str)

    topic = [(offset, value) for offset, value in key_records(kafka, out, "alice") if offset > int(end.id)]
    assert len(topic) == 8
    got = [(int(e.id or "-1"), orjson.loads(e.data)) for e in received]
    assert [offset for offset, _ in got] == [offset for offset, _ in topic]
    for (offset, data), (_, value) in zip(got, topic, strict=True):
        assert data == {**value, "partition": data["partition"], "offset": offset}

    # continust tail: resumes from the snapshot's end and prints exactly --count lines
    second.close()
    wait_until(lambda: metric(b, "continust_subscriptions") == 0.0, 30, "B to close the subscription")
    lines = subprocess.run(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "tail",
            "counts",
            "--key",
            "alice",
            "--url",
            b.url(""),
            "--from-id",
            end.id,
            "--count",
            "5",
            "--heartbeat",
            "1",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert [orjson.loads(line) for line in lines] == [
        {"event": "record", "id": e.id, "data": orjson.loads(e.data)} for e in received[:5]
    ]


def metric(worker: Worker, name: str) -> float | None:
    with urllib.request.urlopen(worker.url("/metrics"), timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split(" ")[1])
    return None


SCAN_PATH = "/api/tables/{table}/windows"


def served_paths() -> set[str]:
    """The paths a worker of this code serves (those of its OpenAPI document), from an app
    built in process (no broker needed)."""
    import tempfile

    from agents.application import TopicPlan, build_app
    from streams.plan.pipeline import load_pipeline
    from streams.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        pipeline_file = Path(scratch) / "pipelines.toml"
        pipeline_file.write_text(PIPELINE.format(app_id="paths", events="in", out="out"))
        pipeline = load_pipeline(pipeline_file)
        built = build_app(pipeline, Settings(data_dir=Path(scratch)), TopicPlan({"clicks": 1}, {}, {"in": 1}))
        return {resource.canonical for resource in built.app.web.web_app.router.resources()}


@pytest.mark.skipif(SCAN_PATH not in served_paths(), reason=f"no {SCAN_PATH} route: the snapshot needs it")
def test_a_whole_table_subscription_resumes_from_any_id_without_gap_or_repeat(
    kafka, run_id, start_worker, tmp_path: Path
):
    pipeline, events, out = write_pipeline(tmp_path, run_id)
    run(ensure_topics(kafka, {events: 3}))
    worker = start_worker(pipeline, free_port())
    wait_until(lambda: ready(worker, "counts", "alice"), 90, "the worker", worker.log_tail)
    t0 = (int(time.time() * 1000) - 3_000_000) // SIZE * SIZE
    users = ["alice", "bob", "carol", "dave", "erin"]
    for user in users:
        clicks(kafka, events, user, [t0, t0 + SIZE])
    committed = lambda: sum(len(r) for r in run(read_to_end(kafka, out)).values())  # noqa: E731
    wait_until(lambda: committed() == 2 * len(users), 30, "the first records", worker.log_tail)

    first = Subscription(worker.url("/api/tables/counts/subscribe?heartbeat=1"))
    snapshot = [orjson.loads(e.data) for e in first.events(2 * len(users), "snapshot")]
    assert sorted((w["key"], w["start"]) for w in snapshot) == sorted(
        (user, start) for user in users for start in (t0, t0 + SIZE)
    )
    [end] = first.events(1, "snapshot_end")
    assert end.id is not None
    start = TablePosition.decode(end.id, 3).next_offsets

    for user in users:
        clicks(kafka, events, user, [t0 + 2 * SIZE])
    received = first.events(len(users), "record")
    assert isinstance(first.next(), str)  # a heartbeat: nothing more is coming
    first.close()

    def per_partition(items: list[tuple[int, int, Any]]) -> dict[int, list[tuple[int, Any]]]:
        parts: dict[int, list[tuple[int, Any]]] = {}
        for partition, offset, value in items:
            parts.setdefault(partition, []).append((offset, value))
        return parts

    topic = [
        (p, m.offset, orjson.loads(m.value))
        for p, records in run(read_to_end(kafka, out)).items()
        for m in records
        if m.offset >= start[p]
    ]
    got = [(d["partition"], d["offset"], d) for d in (orjson.loads(e.data) for e in received)]
    assert per_partition([(p, o, {**v, "partition": p, "offset": o}) for p, o, v in topic]) == per_partition(
        got
    )

    # resuming after any event's id sends exactly the records after it in their partitions
    for sent, event in enumerate(received[:-1]):
        assert event.id is not None
        position = TablePosition.decode(event.id, 3).next_offsets
        again = Subscription(
            worker.url("/api/tables/counts/subscribe?heartbeat=1"), {"Last-Event-ID": event.id}
        )
        rest = again.events(len(received) - sent - 1, "record")
        assert isinstance(again.next(), str)  # a heartbeat, not a repeat
        again.close()
        expected = sorted((p, o) for p, o, _ in got if o >= position[p])
        assert (
            sorted((orjson.loads(e.data)["partition"], orjson.loads(e.data)["offset"]) for e in rest)
            == expected
        )

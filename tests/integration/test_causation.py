"""Causation and traces on the real broker, with one real worker: a backlog on two partitions of
a repartitioned source, some events with a ``traceparent`` header (one of them malformed), most
with an id field, one that the source rejects and one that the table rejects.

* every output record's cause headers name the exact input record (topic, partition, offset,
  id, traceparent) of the last event of its window, as a model computed here from the events
  says (``emit = "final"``: the windows close after the backlog, so the cause is what was saved
  with the window; that it survives a restart is shown on the real RocksDB store in
  ``tests/unit/test_causation.py``, a restart here would double this test's time);
* each dead letter names its input record, the source topic's, also for the event rejected by
  the table behind the repartition topic;
* spans for batches, commits and HTTP requests reach an OTLP/HTTP receiver started here (an
  aiohttp server decoding the protobuf requests), a batch span linked to an input's trace and
  the HTTP span a child of the request's own ``traceparent``.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from streams.kafka.topic_admin import ensure_topics
from streams.plan.causation import read_cause
from tests.integration.broker_io import free_port, read_to_end
from tests.integration.conftest import run, wait_until

SIZE = 10_000
T0 = 1_700_000_000_000 // SIZE * SIZE  # aligned to a window
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
session_timeout = "6s"

[[source]]
name = "clicks"
topics = ["{topic}"]
key = "user"
timestamp = "ts"
id = "eid"
dead_letter_topic = "{dead}"

[[table]]
name = "per_user"
source = "clicks"
window = {{ type = "tumbling", size = "10s" }}
aggregate = {{ n = "count()", s = "sum(x)" }}
emit = "final"
output = "{out}"
"""


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf), on its own thread and
    loop, keeping every span it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[Any] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        assert self._ready.wait(10), "the receiver did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def named(self, name: str) -> list[Any]:
        with self._lock:
            return [span for span in self.spans if span.name == name]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def traceparent(n: int) -> str:
    return f"00-{n + 1:032x}-{n + 1:016x}-01"


# (partition, value, headers), in each partition's order; users u0, u2 on partition 0, u1, u3 on 1
def backlog() -> list[tuple[int, dict[str, Any], list[tuple[str, bytes]]]]:
    events: list[tuple[int, dict[str, Any], list[tuple[str, bytes]]]] = []
    for step in range(16):
        for partition in (0, 1):
            n = step * 2 + partition
            user = f"u{partition + 2 * (step % 2)}"
            value: dict[str, Any] = {"user": user, "ts": T0 + step * 1_000, "x": n}
            if n % 5:
                value["eid"] = f"e{n}"  # every fifth has no id
            headers = [("traceparent", traceparent(n).encode())] if n % 3 == 0 else []
            if n == 7:
                headers = [("traceparent", b"00-not-a-trace-id-01")]
            if n == 10:
                value = {"eid": "no-user", "ts": T0 + step * 1_000, "x": n}  # the source rejects it
            if n == 13:
                value["x"] = "thirteen"  # the table rejects it: sum(x) needs a number
            events.append((partition, value, headers))
    for partition in (0, 1):  # moves the clock past every window above
        events.append((partition, {"user": "end", "ts": T0 + 100_000, "x": 0, "eid": "end"}, []))
    return events


async def publish(bootstrap: str, topic: str, events: list[Any]) -> list[tuple[int, int]]:
    """Publish in order; the (partition, offset) each event got."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        placed = []
        for partition, value, headers in events:
            meta = await producer.send_and_wait(
                topic, orjson.dumps(value), partition=partition, headers=headers
            )
            placed.append((meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


def cause_of(topic: str, placed: tuple[int, int], value: dict[str, Any], headers: list[Any]) -> Any:
    valid = [v.decode() for name, v in headers if name == "traceparent" and not v.startswith(b"00-not")]
    return (topic, placed[0], placed[1], value.get("eid"), valid[0] if valid else None)


def test_outputs_and_dead_letters_name_their_input_records_and_spans_reach_the_collector(
    kafka: str, run_id: str, tmp_path: Path, receiver: OtlpReceiver, start_worker: Any
) -> None:
    topic, out, dead = f"clicks-{run_id}", f"per-user-{run_id}", f"dead-{run_id}"
    run(ensure_topics(kafka, {topic: 2, out: 2, dead: 1}))
    events = backlog()
    placed = run(publish(kafka, topic, events))
    # the model: per (user, window), its count and the input record of its last event (each
    # user's events are on one partition, so offset order is the order the window sees them)
    want: dict[tuple[str, int], tuple[int, Any]] = {}
    rejected: dict[str, Any] = {}
    for (_, value, headers), where in zip(events, placed, strict=True):
        cause = cause_of(topic, where, value, headers)
        if "user" not in value or not isinstance(value["x"], int):
            rejected["missing_key" if "user" not in value else "invalid_field"] = cause
            continue
        if value["user"] == "end":
            continue
        start = value["ts"] // SIZE * SIZE
        count = want.get((value["user"], start), (0, None))[0]
        want[(value["user"], start)] = (count + 1, cause)
    assert len(want) == 8 and len(rejected) == 2
    assert any(cause[4] for _, cause in want.values()), "some windows end with a traced event"
    assert any(cause[3] is None for _, cause in want.values()), "some end with an event without id"

    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(PIPELINE.format(app_id=f"cause-{run_id}", topic=topic, dead=dead, out=out))
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    worker = start_worker(pipeline, free_port(), env=env)

    def read(topic: str) -> list[Any]:
        return [r for records in run(read_to_end(kafka, topic)).values() for r in records]

    records = wait_until(
        lambda: (found := read(out)) and len(found) >= len(want) and found,
        60,
        "every window's record",
        worker.log_tail,
    )
    assert len(records) == len(want), "one record per window (emit = final)"
    got = {}
    for record in records:
        value = orjson.loads(record.value)
        got[(value["key"], value["start"])] = (value["value"]["n"], read_cause(record.headers))
    assert got == want

    letters = wait_until(lambda: (found := read(dead)) and len(found) >= 2 and found, 30, "the dead letters")
    by_reason = {dict(r.headers)["continust-reason"].decode(): read_cause(r.headers) for r in letters}
    assert by_reason == rejected
    assert len(letters) == 2

    # the HTTP span is a child of the request's own trace context
    request = urllib.request.Request(worker.url("/ready"), headers={"traceparent": traceparent(99)})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    trace_ids = {bytes.fromhex(traceparent(n)[3:35]) for n in range(40)}
    wait_until(lambda: receiver.named("GET /ready"), 30, "the HTTP request's span", worker.log_tail)
    http = receiver.named("GET /ready")[0]
    assert http.trace_id == bytes.fromhex(traceparent(99)[3:35])
    attributes = {a.key: a.value for a in http.attributes}
    assert attributes["http.route"].string_value == "/ready"
    assert attributes["http.response.status_code"].int_value == 200

    def linked(stage: str) -> list[Any]:
        batches = [s for s in receiver.named("continust.batch") if _stage(s) == stage]
        return [s for s in batches if any(link.trace_id in trace_ids for link in s.links)]

    wait_until(lambda: linked("per_user") and linked("clicks"), 30, "batch spans linked to input traces")
    wait_until(lambda: receiver.named("continust.commit"), 30, "a commit span")


def _stage(span: Any) -> str:
    return next((a.value.string_value for a in span.attributes if a.key == "continust.stage"), "")

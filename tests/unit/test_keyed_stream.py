"""The keyed stream of each kind of source (:mod:`agents.keyed_stream`), on records as aiokafka
gives them: which events a batch holds and which it dead-letters, the input each event came
from, the input record it names as its cause, and the input offsets a batch processed."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.commit_gate import Batch
from agents.keyed_stream import KeyedStream, KeyedTopics, RepartitionedStream, keyed_stream
from agents.merge import (
    EVENT_TIME_HEADER,
    INPUT_TIME_HEADER,
    ORIGIN_HEADER,
    KeyedEvent,
    ProgressReport,
    SourceStage,
    progress_headers,
)
from streams.kafka.partitioning import key_partition
from streams.plan.pipeline import SourceSpec

PARTITIONS = 3
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class RecordingSink:
    added: list[tuple[TP, str, bytes | None, bytes | None, int, list[Any]]] = field(default_factory=list)

    def add(self, source: TP, topic: str, key: Any, value: Any, partition: int, headers: Any = None) -> None:
        self.added.append((source, topic, key, value, partition, headers or []))


def source_stage(
    partitioned_by_key: bool, partitions: int = PARTITIONS, app: Any = None
) -> tuple[SourceStage, RecordingSink]:
    """A source stage of topics ``a`` and ``b`` of ``partitions`` each, its dead letters and
    repartitioned records going to a recording sink; ``app``: what stands for the Faust app."""
    spec = SourceSpec(
        name="events",
        topics=("a", "b"),
        key="user",
        timestamp="ts",
        partitioned_by_key=partitioned_by_key,
        id_field="id",
    )
    sink = RecordingSink()
    app = SimpleNamespace() if app is None else app
    stage = SourceStage(
        app=app,  # type: ignore[arg-type]
        runtime=AppRuntime(app),
        spec=spec,
        sink=sink,  # type: ignore[arg-type]
        repartition="app-events-repartition",
        dead_letters="app-dead-letters",
        max_future_ms=86_400_000,
        partitions=partitions,
        topic_partitions={"a": partitions, "b": partitions},
    )
    return stage, sink


def record(
    topic: str, partition: int, offset: int, value: bytes, key: bytes | None = None, headers: Any = ()
) -> Any:
    return SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1_000,
        key=key,
        value=value,
        headers=list(headers),
    )


def user_on(partition: int, n: int = 0) -> str:
    """The ``n``-th user whose key belongs to ``partition``."""
    found = [u for u in (f"u{i}" for i in range(200)) if key_partition(u.encode(), PARTITIONS) == partition]
    return found[n]


def test_the_stream_of_each_kind_is_picked_by_the_source_spec() -> None:
    assert isinstance(keyed_stream(source_stage(True)[0]), KeyedTopics)
    assert isinstance(keyed_stream(source_stage(False)[0]), RepartitionedStream)
    keyed: KeyedStream = keyed_stream(source_stage(True)[0])
    assert keyed.topics == ("a", "b") and keyed.inputs_per_partition == 2 and keyed.tables_mark_idle
    repartitioned: KeyedStream = keyed_stream(source_stage(False)[0])
    assert repartitioned.topics == ("app-events-repartition",)
    assert repartitioned.inputs_per_partition == 2 * PARTITIONS and not repartitioned.tables_mark_idle


def test_keyed_topics_take_the_records_on_their_keys_partition_and_dead_letter_the_others() -> None:
    stage, sink = source_stage(True)
    stream = keyed_stream(stage)
    here, elsewhere = user_on(1), user_on(2)
    values = [
        orjson.dumps({"user": here, "ts": 500, "id": "e1"}),
        orjson.dumps({"user": elsewhere, "ts": 600, "id": "e2"}),
        b"not json",
        orjson.dumps({"user": here, "ts": 700, "id": "e3"}),
    ]
    records = [
        record("b", 1, 40 + i, v, headers=[("traceparent", TRACEPARENT)]) for i, v in enumerate(values)
    ]
    events = stream.events(Batch(TP("b", 1), 1, records))
    assert [(e.key, e.timestamp_ms, e.source, e.arrival) for e in events if isinstance(e, KeyedEvent)] == [
        (here, 500, 1, 40 * 2 + 1),
        (here, 700, 1, 43 * 2 + 1),
    ]
    reasons = [dict(h)["continust-reason"] for _, topic, *_, h in sink.added if topic == "app-dead-letters"]
    assert reasons == [b"wrong_partition", b"not_json"]
    first = events[0]
    assert isinstance(first, KeyedEvent)
    assert stream.cause_of(1, first) == ("b", 1, 40, "e1", TRACEPARENT.decode())
    assert stream.input_name(1, 0) == "a:1" and stream.input_name(1, 1) == "b:1"
    assert stream.processed(TP("b", 1), {1: 87}, 43) == {"b:1": 43}
    assert stream.processed(TP("b", 1), {}, None) == {}


def test_the_repartition_topic_gives_events_with_their_input_and_progress_reports() -> None:
    stage, sink = source_stage(False)
    stream = keyed_stream(stage)
    inputs = len(stage.inputs)
    source = stage.inputs.index(TP("b", 2))
    user = user_on(0)
    event = record(
        "app-events-repartition",
        0,
        7,
        orjson.dumps({"user": user, "ts": 900, "id": "e9"}),
        key=user.encode(),
        headers=[
            (EVENT_TIME_HEADER, b"900"),
            (ORIGIN_HEADER, f"{source} 31 850".encode()),
            (INPUT_TIME_HEADER, b"1000"),
            ("traceparent", TRACEPARENT),
        ],
    )
    report = record("app-events-repartition", 0, 8, b"", headers=progress_headers(source, 950, True))
    foreign = record("app-events-repartition", 0, 9, b"{}", key=b"k")  # no headers: not ours
    items = stream.events(Batch(TP("app-events-repartition", 0), 1, [event, report, foreign]))
    assert len(items) == 2
    first, second = items
    assert isinstance(first, KeyedEvent) and isinstance(second, ProgressReport)
    assert (first.key, first.timestamp_ms, first.source, first.arrival, first.own) == (
        user,
        900,
        source,
        31 * inputs + source,
        850,
    )
    assert second == ProgressReport(source, 950, True)
    assert [dict(h)["continust-reason"] for *_, h in sink.added] == [b"bad_repartition_record"]
    assert stream.cause_of(0, first) == ("b", 2, 31, "e9", TRACEPARENT.decode())
    assert stream.input_name(0, source) == "b:2"
    assert stream.processed(TP("app-events-repartition", 0), {source: first.arrival}, 9) == {"b:2": 31}

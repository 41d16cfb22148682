"""Quix Streams doing the benchmark job: an Application with RocksDB state and
``processing_guarantee="exactly-once"``, a tumbling 10 s window (grace 5 s) by the event's
``ts`` (timestamp extractor), ``.agg(n=Count(), total=Sum("amount")).current()`` per key, every
window update written to an output topic. Quix's own defaults otherwise (commit interval 5 s).

    python -m bench.jobs.quix_windows --bootstrap HOST:PORT --topic T --partitions P
        --events N --group G --state-dir DIR --output OUT

Announces :mod:`bench.jobs.markers` (``done`` after the N-th input message; N = 0: never) and
runs until SIGTERM, on which Quix commits its last checkpoint and exits. Its results are read
from OUT by the harness.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum
from quixstreams.models import TopicConfig

from bench.jobs.markers import Counter


def event_time(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return int(value["ts"])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.jobs.quix_windows")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--output", required=True)
    args = p.parse_args()

    counter = Counter(args.events)

    def processed(topic: str, partition: int, offset: int) -> None:
        if topic == args.topic:
            counter.add()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        processing_guarantee="exactly-once",
        loglevel="WARNING",
        on_message_processed=processed,
    )
    source = app.topic(args.topic, value_deserializer="json", timestamp_extractor=event_time)
    output = app.topic(
        args.output,
        value_serializer="json",
        config=TopicConfig(num_partitions=args.partitions, replication_factor=1),
    )
    sdf = app.dataframe(source)
    sdf = (
        sdf.tumbling_window(duration_ms=10_000, grace_ms=5_000).agg(n=Count(), total=Sum("amount")).current()
    )
    sdf.to_topic(output)
    app.run()


if __name__ == "__main__":
    main()

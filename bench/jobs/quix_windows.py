"""Quix Streams doing the benchmark job: an Application with RocksDB state and
``processing_guarantee="exactly-once"``, a tumbling 10 s window (grace 5 s) by the event's
``ts`` (timestamp extractor), ``.agg(n=Count(), total=Sum("amount"))`` per key. Quix's own
defaults otherwise (commit interval 5 s). What it emits (``--emit``):

- ``current``: ``.current()``, every window update written to the output topic OUT (one record
  per event);
- ``final``: ``.final(closing_strategy="partition")``, one record per window to OUT when the
  window closes: when the largest ``ts`` seen on its partition reaches ``end + grace``, the rule
  continust uses (Quix's default, ``"key"``, would close a key's windows by that key's own
  events only);
- ``none``: ``.current()`` with no sink: the aggregation and its state only, nothing written to
  a topic. So that its results can be checked, the job keeps the latest value ``.current()``
  gave for each window in a dict (one assignment per event) and writes them to FILE after the
  N-th event; Quix's state cannot be read back for this, since Quix deletes a window from it
  once the window closes.

    python -m bench.jobs.quix_windows --bootstrap HOST:PORT --topic T --partitions P
        --events N --group G --state-dir DIR [--emit current|final] --output OUT
    python -m bench.jobs.quix_windows ... --emit none --results FILE

Announces :mod:`bench.jobs.markers` (``done`` after the N-th input message; N = 0: never) and
runs until SIGTERM, on which Quix commits its last checkpoint and exits. With an output topic
its results are read from OUT by the harness.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum
from quixstreams.models import TopicConfig

from bench.jobs.markers import Counter, write_results
from bench.windowing import Results

EMITS = ("current", "final", "none")


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
    p.add_argument("--emit", choices=EMITS, default="current")
    p.add_argument("--output", help="output topic (--emit current or final)")
    p.add_argument("--results", type=Path, help="results file (--emit none)")
    args = p.parse_args()
    if (args.emit == "none") != (args.output is None) or (args.emit == "none") != (args.results is not None):
        p.error("--emit none takes --results and no --output; current and final take --output")

    counter = Counter(args.events)
    latest: Results = {}

    def processed(topic: str, partition: int, offset: int) -> None:
        done = topic == args.topic and counter.add()
        if done and counter.seen == args.events and args.results is not None:
            write_results(args.results, latest)

    def remember(value: Any, key: Any, timestamp: int, headers: Any) -> None:
        latest[(key.decode(), value["start"], value["end"])] = (value["n"], value["total"])

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
    windows = (
        app.dataframe(source)
        .tumbling_window(duration_ms=10_000, grace_ms=5_000)
        .agg(n=Count(), total=Sum("amount"))
    )
    if args.emit == "none":
        windows.current().update(remember, metadata=True)
    else:
        sdf = windows.final(closing_strategy="partition") if args.emit == "final" else windows.current()
        output = app.topic(
            args.output,
            value_serializer="json",
            config=TopicConfig(num_partitions=args.partitions, replication_factor=1),
        )
        sdf.to_topic(output)
    app.run()


if __name__ == "__main__":
    main()

"""A plain faust-streaming app (no continust code) doing the benchmark job: a windowed Table,
tumbling 10 s by the event's ``ts``, on the RocksDB store (rocksdict), holding ``[count, sum]``
per key per window, updated event by event as the Faust documentation shows.

    python -m bench.jobs.faust_windows --bootstrap HOST:PORT --topic T --partitions P
        --events N --app-id ID --data-dir DIR --results FILE

After the N-th event it writes the table's final state to FILE (see
:mod:`bench.jobs.markers`); Faust's worker stops on SIGTERM.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust
import orjson

from bench.jobs.markers import Counter, announce, write_results
from bench.windowing import Results

WINDOW_S = 10.0


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=str(args.data_dir),
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(
        args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    event_time = [0.0]  # the current event's ts in seconds, for the table's window choice
    windowed: Any = app.Table("windows", default=list, partitions=args.partitions).tumbling(
        WINDOW_S, expires=timedelta(days=1)
    )
    table = windowed.relative_to(lambda event: event_time[0])
    counter = Counter(args.events)

    @app.agent(topic)
    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            value = orjson.loads(event.value)
            event_time[0] = value["ts"] / 1000
            user = value["user"]
            prior = table[user].value()
            if prior:
                table[user] = [prior[0] + 1, prior[1] + value["amount"]]
            else:
                table[user] = [1, value["amount"]]
            if counter.add():
                write_results(args.results, final_state(table.table))
        announce("stream-ended")

    return app


def final_state(table: Any) -> Results:
    """The windowed table's content: keys ``[user, [start_s, end_s]]``, values ``[n, sum]``."""
    results: Results = {}
    for (user, (start_s, _end_s)), (n, total) in table.items():
        start = round(start_s * 1000)
        results[(user, start, start + round(WINDOW_S * 1000))] = (int(n), float(total))
    return results


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.jobs.faust_windows")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--results", type=Path, required=True)
    args = p.parse_args()
    app = build(args)
    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()

"""The ceiling: a raw aiokafka consumer, ``getmany`` batches, orjson and a dict of per-key,
per-10 s-window count and sum. No state store, no commits, no output topic.

    python -m bench.jobs.limit --bootstrap HOST:PORT --topic T --partitions P --events N --results FILE

It reads every partition of ``T`` from the beginning (assigned, no consumer group) up to the
end offsets at start, announcing :mod:`bench.jobs.markers`, writes the aggregates to FILE and
waits for SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.jobs.markers import Counter, write_results
from bench.jobs.waiting import wait_for_sigterm
from bench.windowing import Results

WINDOW_MS = 10_000


async def aggregate(bootstrap: str, topic: str, partitions: int, expected: int) -> Results:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        counter = Counter(expected)
        windows: dict[tuple[str, int], list[float]] = {}
        loads = orjson.loads
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            if batch:
                counter.begin()
            for tp, records in batch.items():
                for record in records:
                    event = loads(record.value)
                    ts = event["ts"]
                    key = (event["user"], ts - ts % WINDOW_MS)
                    slot = windows.get(key)
                    if slot is None:
                        windows[key] = [1, event["amount"]]
                    else:
                        slot[0] += 1
                        slot[1] += event["amount"]
                if records:
                    counter.add(len(records))
                    if records[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return {(user, start, start + WINDOW_MS): (int(n), s) for (user, start), (n, s) in windows.items()}
    finally:
        await consumer.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.jobs.limit")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--results", type=Path, required=True)
    args = p.parse_args()
    results = asyncio.run(aggregate(args.bootstrap, args.topic, args.partitions, args.events))
    write_results(args.results, results)
    wait_for_sigterm()


if __name__ == "__main__":
    main()

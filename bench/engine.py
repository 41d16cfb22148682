"""``python -m bench.engine``: the window engine alone, without a broker: one partition of a
tumbling 10 s count-and-sum table on RocksDB (the committed store the worker uses) behind the
write-back cache, committed every ``--commit-every`` events.

Events come in time order, ``--keys`` keys in random turns, spread over ``--windows-per-key``
windows per key, so a run has ``events / (keys * windows per key)`` events per window. Prints
events/s, CPU µs per event, the writes committed and the peak RSS. Used to separate what a
shape's events per window cost from what its retained windows cost.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from typing import Any

import rocksdict

from agents.table_store import RocksDBPartitions
from streams.telemetry.logfmt import logfmt
from windows.aggregation_calls import parse_aggregation
from windows.partition import PartitionWindows
from windows.spec import TumblingWindows
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore, window_bytes_for

SIZE_MS = 10_000
RETENTION_MS = 30 * 86_400_000


def run(keys: int, windows_per_key: int, events: int, commit_every: int, seed: int = 1) -> dict[str, Any]:
    table = WindowedAggregate(
        window=TumblingWindows(size_ms=SIZE_MS, grace_ms=0, retention_ms=RETENTION_MS),
        aggregations=(parse_aggregation("count()"), parse_aggregation("sum(x)")),
        names=("n", "total"),
        emit="change",
    )
    with tempfile.TemporaryDirectory(prefix="continust-engine-") as directory:
        db = rocksdict.Rdict(f"{directory}/p0", options=rocksdict.Options(raw_mode=True))
        store = WriteBackStore(RocksDBPartitions(db_for=lambda _partition: db), window_bytes_for(2))
        windows = PartitionWindows(table, store, 0)
        span_ms = windows_per_key * SIZE_MS
        rng = random.Random(seed)
        writes = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(events):
            windows.on_event(f"user-{rng.randrange(keys)}", {"x": 1}, i * span_ms // events, i)
            if i % commit_every == commit_every - 1:
                changes = store.changes()
                writes += store.committed(changes, dict.fromkeys(changes, i))
        writes += store.committed(store.changes())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db.close()
    return {
        "keys": keys,
        "windows_per_key": windows_per_key,
        "events": events,
        "events_per_window": round(events / (keys * windows_per_key), 2),
        "events_per_s": round(events / wall),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "writes": writes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--windows-per-key", type=int, default=100)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--commit-every", type=int, default=30_000, help="events per commit (default 30,000)")
    args = p.parse_args(argv)
    print(logfmt("bench.engine", **run(args.keys, args.windows_per_key, args.events, args.commit_every)))


if __name__ == "__main__":
    main()

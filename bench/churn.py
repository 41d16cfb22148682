"""``python -m bench.churn``: exactly-once while the group changes under a steady input, at the
scale of a production incident, checked against a reference.

Two topics of ``--partitions`` partitions; a backlog of ``--backlog`` events, then ``--live-s``
seconds of live input at ``--rate`` events/s, where topic b's event times run 15 s behind topic
a's (grace 10 s) and every input partition is at most 1 s out of order. One tumbling 1-minute
table, ``count()`` and ``sum(amount)``, ``emit = "update"`` to an output topic. Records keyed
at random (the repartitioned path), or by user with ``--keyed`` (``partitioned_by_key``). Each
worker has ``CONTINUST_GROUP_INSTANCE_ID`` unless ``--dynamic``. By wall clock from the start
of the live input: two workers join at +10 s, the first stops by SIGTERM at +30 s, the second
is SIGKILLed at +45 s and restarted at +50 s, the first restarts at +60 s.

Once the group has committed every input record, the run reports, against the reference (every
event counted once in its window; no event is late by construction): the windows whose HTTP
answer differs, the windows whose last output record (``read_committed``) differs or whose
versions are not 1..n, the source records repartitioned more than once, and the late and invalid
events the workers counted. It exits 1 when anything differs. The timeline is the incident's
wall clock, so this is a reproduction to run by hand, not a test: the test suite's version
(``tests/integration/test_group_churn.py``) waits on conditions instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.cli.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.consumption import GroupWatch
from bench.contenders import free_port
from bench.topics import create_topic
from bench.worker_api import metric_total, read_table
from streams.kafka.topic_admin import partition_counts
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")

WINDOW_MS = 60_000
B_BEHIND_MS = 15_000
PIPELINE = """
[app]
id = "{app_id}"

[[source]]
name = "events"
topics = ["{a}", "{b}"]
key = "user"
timestamp = "ts"
{keyed}

[[table]]
name = "totals"
source = "events"
window = {{ type = "tumbling", size = "1m", grace = "10s", retention = "30d" }}
aggregate = {{ n = "count()", total = "sum(amount)" }}
emit = "update"
output = "{output}"
"""

# (seconds after the live input starts, what happens): the incident's group changes
TIMELINE = [(10, "join 1"), (10, "join 2"), (30, "term 0"), (45, "kill 1"), (50, "start 1"), (60, "start 0")]

Window = tuple[str, int]  # (user, window start)


class Workers:
    """The run's worker processes by number, each with its port, data directory and log."""

    def __init__(self, bootstrap: str, pipeline: Path, where: Path, dynamic: bool, run_id: str) -> None:
        self.bootstrap, self.pipeline, self.where = bootstrap, pipeline, where
        self.dynamic, self.run_id = dynamic, run_id
        self.ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, n: int) -> None:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}
        env.pop("CONTINUST_FAULT", None)
        if not self.dynamic:
            env["CONTINUST_GROUP_INSTANCE_ID"] = f"churn-{self.run_id}-{n}"
        log_file = (self.where / f"worker-{n}.log").open("ab")
        argv = worker_argv(self.pipeline, self.ports[n], self.where / f"data-{n}")
        self.procs[n] = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        log.info(logfmt("churn.worker.start", worker=n, port=self.ports[n]))

    def signal(self, n: int, sig: signal.Signals) -> None:
        proc = self.procs.pop(n)
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
        log.info(logfmt("churn.worker.stopped", worker=n, signal=sig.name, code=code))

    def live_ports(self) -> list[int]:
        return [self.ports[n] for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for n in list(self.procs):
            self.signal(n, signal.SIGTERM)


def event(user: str, ts: int, rng: random.Random) -> dict[str, Any]:
    return {"user": user, "ts": ts, "amount": rng.randint(1, 100)}


async def publish(producer: AIOKafkaProducer, topic: str, events: list[dict[str, Any]], keyed: bool) -> None:
    for e in events:
        key = e["user"].encode() if keyed else uuid.uuid4().bytes
        await producer.send(topic, orjson.dumps(e), key=key)


def batch_at(
    now_ms: int, count: int, users: list[str], rng: random.Random
) -> dict[str, list[dict[str, Any]]]:
    """``count`` events at wall-clock ``now_ms``, half to each topic: a's at ``now_ms``, b's 15 s
    behind, each up to 1 s earlier at random (no input partition is more than 1 s out of order)."""
    a = [event(rng.choice(users), now_ms - rng.randint(0, 999), rng) for _ in range(count // 2)]
    b = [
        event(rng.choice(users), now_ms - B_BEHIND_MS - rng.randint(0, 999), rng)
        for _ in range(count - count // 2)
    ]
    return {"a": a, "b": b}


async def run_churn(args: argparse.Namespace, bootstrap: str, where: Path) -> int:
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)
    users = [f"user-{i}" for i in range(args.users)]
    app_id, output = f"churn-{run_id}", f"churn-{run_id}-out"
    topics = {"a": f"churn-{run_id}-a", "b": f"churn-{run_id}-b"}
    for topic in topics.values():
        await create_topic(bootstrap, topic, args.partitions)
    pipeline = where / "pipeline.toml"
    keyed = "partitioned_by_key = true" if args.keyed else ""
    pipeline.write_text(
        PIPELINE.format(app_id=app_id, a=topics["a"], b=topics["b"], keyed=keyed, output=output)
    )
    published: list[dict[str, Any]] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    workers = Workers(bootstrap, pipeline, where, args.dynamic, run_id)
    try:
        start_ms = int(time.time() * 1000) - 600_000  # the backlog: the 10 minutes before now
        step = 600_000 / max(1, args.backlog)
        for i in range(0, args.backlog, 1_000):
            batch = batch_at(start_ms + int(i * step), min(1_000, args.backlog - i), users, rng)
            for name, events in batch.items():
                await publish(producer, topics[name], events, args.keyed)
                published.extend(events)
        await producer.flush()
        workers.start(0)
        log.info(logfmt("churn.backlog", events=args.backlog))
        live_started = time.monotonic()
        plan = list(TIMELINE)
        tick = 0.1
        while (elapsed := time.monotonic() - live_started) < args.live_s:
            while plan and plan[0][0] <= elapsed:
                _, action = plan.pop(0)
                verb, n = action.split()
                if verb in ("join", "start"):
                    workers.start(int(n))
                else:
                    workers.signal(int(n), signal.SIGTERM if verb == "term" else signal.SIGKILL)
            batch = batch_at(int(time.time() * 1000), int(args.rate * tick), users, rng)
            for name, events in batch.items():
                await publish(producer, topics[name], events, args.keyed)
                published.extend(events)
            await producer.flush()
            await asyncio.sleep(tick)  # the input's pace
        log.info(logfmt("churn.live_done", events=len(published)))
        await wait_settled(bootstrap, app_id, [*topics.values(), f"{app_id}-events-repartition"])
        return await compare(args, bootstrap, app_id, output, published, users, workers)
    finally:
        await producer.stop()
        workers.stop_all()


async def wait_settled(bootstrap: str, group: str, topics: list[str]) -> None:
    """Until the group has committed every record of ``topics``."""
    watch = GroupWatch(bootstrap, group)
    await watch.start()
    try:
        while sum([await watch.unread(t) for t in topics]) > 0:
            await asyncio.sleep(1)
    finally:
        await watch.close()


async def read_committed(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of ``topic``, up to its end offsets now."""
    partitions = (await partition_counts(bootstrap, [topic])).get(topic, 0)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    if not tps:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(m for tp, ms in batch.items() for m in ms if m.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def compare(
    args: argparse.Namespace,
    bootstrap: str,
    app_id: str,
    output: str,
    published: list[dict[str, Any]],
    users: list[str],
    workers: Workers,
) -> int:
    want: dict[Window, tuple[int, float]] = {}
    for e in published:
        window = (e["user"], e["ts"] - e["ts"] % WINDOW_MS)
        n, total = want.get(window, (0, 0.0))
        want[window] = (n + 1, total + e["amount"])
    port = workers.live_ports()[0]
    answered = await read_table(port, "totals", users, patience_s=120)
    got = {(user, start): value for (user, start, _end), value in answered.items()}
    http_wrong = sorted(w for w in set(want) | set(got) if want.get(w) != got.get(w))
    versions: dict[Window, list[int]] = defaultdict(list)
    last: dict[Window, tuple[int, float]] = {}
    for record in await read_committed(bootstrap, output):
        value = orjson.loads(record.value)
        window = (value["key"], int(value["start"]))
        versions[window].append(int(value["version"]))
        last[window] = (int(value["value"]["n"]), float(value["value"]["total"]))
    gapped = [w for w, vs in versions.items() if vs != list(range(1, len(vs) + 1))]
    output_wrong = sorted({w for w in want if last.get(w) != want[w]} | set(gapped))
    origins: Counter[bytes] = Counter()
    if not args.keyed:
        for record in await read_committed(bootstrap, f"{app_id}-events-repartition"):
            origin = dict(record.headers or ()).get("continust-origin")
            if origin is not None:
                index, offset, _own = origin.split(b" ")
                origins[index + b" " + offset] += 1
    twice = sum(count - 1 for count in origins.values() if count > 1)
    late = sum(metric_total(p, "continust_late_events_total") or 0 for p in workers.live_ports())
    invalid = sum(metric_total(p, "continust_invalid_events_total") or 0 for p in workers.live_ports())
    counted_twice = sum(
        got.get(w, (0, 0.0))[0] - n for w, (n, _t) in want.items() if got.get(w, (0, 0.0))[0] > n
    )
    print(
        f"churn: {len(published)} events, {len(want)} windows; differing over HTTP: {len(http_wrong)} "
        f"(events counted twice: {counted_twice}); differing in the output topic: {len(output_wrong)}; "
        f"source records repartitioned twice: {twice}; late (live workers): {late:.0f}; "
        f"invalid (live workers): {invalid:.0f}"
    )
    for window in http_wrong[:10]:
        print(f"  {window}: want {want.get(window)}, HTTP {got.get(window)}")
    return 1 if http_wrong or output_wrong or twice else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.churn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1_000, help="live events per second (default 1000)")
    parser.add_argument("--live-s", type=float, default=90.0, help="seconds of live input (default 90)")
    parser.add_argument(
        "--backlog", type=int, default=60_000, help="events before the live input (default 60000)"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of each topic (default 6)")
    parser.add_argument("--users", type=int, default=2_000, help="distinct users (default 2000)")
    parser.add_argument("--keyed", action="store_true", help="records keyed by user: partitioned_by_key")
    parser.add_argument("--dynamic", action="store_true", help="no CONTINUST_GROUP_INSTANCE_ID")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--port", type=int, default=None, help="the broker's port (default: the CLI's, 9092)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # the run's own lines stay readable
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory(prefix="continust-churn-") as where:
            return asyncio.run(run_churn(args, broker.bootstrap, Path(where)))
    finally:
        broker.release()


if __name__ == "__main__":
    sys.exit(main())

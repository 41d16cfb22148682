"""``python -m bench.restart_time``: how long a worker killed with SIGKILL takes, after its
restart, to answer a table query again, with and without static group membership.

One worker reads a backlog (tumbling 10 s count and sum over ``--keys`` keys) until every event
is processed, is killed with SIGKILL, and is started again on the same data directory. The time
is from the restart to the first ``200`` answer of ``GET /api/tables/totals/{key}`` holding the
key's windows. Without ``group.instance.id`` the group waits for the dead member's session
timeout (45 s by default) before it assigns its partitions again; with it, the restarted worker
is the same member and gets them at once. Both then restore the tables from their changelogs
(the store rebuilds after an unclean stop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from agents.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.contenders import free_port
from bench.producing import send_values
from bench.topics import create_topic
from bench.worker_api import metric_total

PARTITIONS = 4
PIPELINE = """
[app]
id = "{app_id}"

[[source]]
name = "events"
topics = ["{topic}"]
key = "user"
timestamp = "ts"

[[table]]
name = "totals"
source = "events"
window = {{ type = "tumbling", size = "10s", retention = "30d" }}
aggregate = {{ n = "count()", total = "sum(amount)" }}
emit = "final"
"""


def progress(event: str, **fields: object) -> None:
    print(" ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]), flush=True)


async def publish(bootstrap: str, topic: str, events: int, keys: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=512 * 1024)
    await producer.start()
    t0 = int(time.time() * 1000) - events * 10
    try:
        values = [
            orjson.dumps({"user": f"user-{i % keys}", "ts": t0 + i * 10, "amount": i % 10})
            for i in range(events)
        ]
        await send_values(producer, topic, PARTITIONS, values)
    finally:
        await producer.stop()


def answers(port: int, key: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tables/totals/{key}", timeout=5) as r:
            return r.status == 200 and bool(json.loads(r.read())["windows"])
    except (OSError, urllib.error.HTTPError, ValueError):
        return False


def wait(predicate: object, timeout_s: float, what: str) -> float:
    """Poll until ``predicate()``; the seconds it took."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def measure(bootstrap: str, events: int, keys: int, static: bool, workdir: Path) -> float:
    run_id = uuid.uuid4().hex[:8]
    app_id, topic = f"restart-{run_id}", f"restart-src-{run_id}"
    asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
    asyncio.run(publish(bootstrap, topic, events, keys))
    pipeline = workdir / f"{app_id}.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic))
    port, data_dir = free_port(), workdir / f"data-{run_id}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    if static:
        env["CONTINUST_GROUP_INSTANCE_ID"] = f"{app_id}-0"
    log = (workdir / f"{app_id}.log").open("ab")
    argv = worker_argv(pipeline, port, data_dir)
    worker = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    took = wait(lambda: (metric_total(port, "continust_events_total") or 0) >= events, 600, "the backlog")
    progress("bench.restart.processed", static=static, events=events, seconds=round(took, 1))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    restarted = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        seconds = wait(lambda: answers(port, "user-0"), 300, "the restarted worker to answer")
    finally:
        restarted.terminate()
        restarted.wait(timeout=60)
    progress("bench.restart.answered", static=static, seconds=round(seconds, 1))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restart_time", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    args = parser.parse_args(argv)
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dynamic = measure(broker.bootstrap, args.events, args.keys, False, Path(tmp))
            static = measure(broker.bootstrap, args.events, args.keys, True, Path(tmp))
    finally:
        broker.release()
    print(
        f"restart to answering after SIGKILL ({args.events:,} events, {args.keys:,} keys): "
        f"without group.instance.id {dynamic:.1f} s, with it {static:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

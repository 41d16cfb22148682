"""``python -m bench.query_load``: what the HTTP API costs under load.

1. **Query latency while processing.** One worker (4 partitions, tumbling 10 s count and sum,
   exactly-once, an output topic) processes events produced at ``--rate`` events/s (default
   20,000, by a separate process, 2,000 keys) while ``--clients`` concurrent clients (default 50,
   another process, each ``--client-rate`` queries a second at most) query it: first none (the
   load alone), then point queries of random keys
   (``GET /api/tables/{table}/keys/{key}``), then scans of up to 100 windows of the keys with
   a random prefix (``GET /api/tables/{table}/windows?limit=100&key_prefix=user-12``, gathered
   from every partition). Reported: p50, p99 and max latency, answers per second, and the
   events per second the worker processed meanwhile.
2. **The throughput cost of live subscribers.** The same worker setup processes a backlog of
   ``--backlog`` events as fast as it can, once with no subscriber and once with
   ``--subscribers`` (default 100) live subscriptions (``GET /api/tables/{table}/subscribe?key=``,
   one key each, read by another process). Reported: events per second processed, both ways,
   and their ratio; and the records the subscribers received.

Printed as markdown tables and written as the section "Query API under load" of ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from agents.cli.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.contenders import free_port
from bench.doc_sections import write_section
from bench.report import markdown_table
from bench.topics import create_topic
from bench.worker_api import metric_total
from streams.kafka.kafka_security import KafkaSecurity

PARTITIONS = 4
KEYS = 2_000
SECTION = "Query API under load"
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
window = {{ type = "tumbling", size = "10s", retention = "1h" }}
aggregate = {{ n = "count()", total = "sum(amount)" }}
output = "{output}"
"""


def progress(event: str, **fields: object) -> None:
    print(" ".join([f"event={event}", *(f"{k}={v}" for k, v in fields.items())]), flush=True)


def _event(i: int, now_ms: int) -> bytes:
    return orjson.dumps({"user": f"user-{i % KEYS}", "ts": now_ms, "amount": i % 10})


async def _produce_paced(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    """``rate`` events/s for ``seconds``: every 50 ms, what is due, one batch per partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        started, sent = time.monotonic(), 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent
            now_ms = int(time.time() * 1000)
            batches = [producer.create_batch() for _ in range(PARTITIONS)]
            deliveries = []
            for i in range(sent, sent + due):
                batch = batches[i % PARTITIONS]
                if batch.append(key=None, value=_event(i, now_ms), timestamp=None) is None:
                    deliveries.append(await producer.send_batch(batch, topic, partition=i % PARTITIONS))
                    batch = batches[i % PARTITIONS] = producer.create_batch()
                    batch.append(key=None, value=_event(i, now_ms), timestamp=None)
            for partition, batch in enumerate(batches):
                if batch.record_count():
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            sent += due
            await asyncio.gather(*deliveries)
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def _produce_backlog(bootstrap: str, topic: str, events: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        futures = [
            await producer.send(topic, _event(i, now_ms), partition=i % PARTITIONS) for i in range(events)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _run_producer(bootstrap: str, topic: str, rate: float, seconds: float) -> None:
    asyncio.run(_produce_paced(bootstrap, topic, rate, seconds))


@dataclass(frozen=True)
class Latency:
    kind: str
    answers: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    events_per_s: float

    @classmethod
    def of(cls, kind: str, samples: list[float], errors: int, seconds: float, events_per_s: float) -> Latency:
        ordered = sorted(samples) or [0.0]

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        return cls(kind, len(samples), errors, seconds, at(0.5), at(0.99), ordered[-1] * 1000, events_per_s)


async def _clients(
    port: int, kind: str, clients: int, seconds: float, per_client_rate: float
) -> tuple[list[float], int]:
    """``clients`` loops asking ``kind`` queries for ``seconds``, each at most
    ``per_client_rate`` a second (0: as fast as answered); their latencies and errors."""
    base = f"http://127.0.0.1:{port}/api/tables/totals"
    samples: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def loop() -> None:
            nonlocal errors
            interval = 1 / per_client_rate if per_client_rate > 0 else 0.0
            next_at = time.monotonic() + rng.random() * interval
            while time.monotonic() < deadline:
                if interval:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                key = f"user-{rng.randrange(KEYS)}"
                url = (
                    f"{base}/keys/{key}"
                    if kind == "point"
                    else f"{base}/windows?limit=100&key_prefix={key[:7]}"
                )
                started = time.monotonic()
                async with session.get(url) as reply:
                    await reply.read()
                    if reply.status == 200:
                        samples.append(time.monotonic() - started)
                    else:
                        errors += 1

        await asyncio.gather(*(loop() for _ in range(clients)))
    return samples, errors


def _start_worker(bootstrap: str, workdir: Path, tag: str) -> tuple[subprocess.Popen[bytes], int, str, str]:
    run_id = f"{tag}-{uuid.uuid4().hex[:8]}"
    app_id, topic, output = f"qload-{run_id}", f"qload-src-{run_id}", f"qload-out-{run_id}"
    asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
    pipeline = workdir / f"{app_id}.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic, output=output))
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    log_path = workdir / f"{app_id}.log"
    worker = subprocess.Popen(
        worker_argv(pipeline, port, workdir / f"data-{run_id}"),
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    # answering, once Faust's recovery of the assigned partitions is complete
    _wait(
        lambda: "Recovery complete" in log_path.read_text(errors="replace") and _ready(port),
        180,
        "the worker",
    )
    return worker, port, topic, output


def _ready(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tables/totals/keys/user-0", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(predicate: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def measure_latency(
    bootstrap: str, workdir: Path, rate: float, clients: int, seconds: float, per_client_rate: float
) -> list[Latency]:
    """The events/s processed under the load alone, then with each kind of query."""
    worker, port, topic, _ = _start_worker(bootstrap, workdir, "lat")
    results = []
    try:
        for kind in ("none", "point", "scan"):
            producer = multiprocessing.get_context("spawn").Process(
                target=_run_producer, args=(bootstrap, topic, rate, seconds + 5)
            )
            producer.start()
            time.sleep(5)  # the load reaches its rate before the clients start measuring
            before = metric_total(port, "continust_events_total") or 0
            if kind == "none":
                time.sleep(seconds)
                samples, errors = list[float](), 0
            else:
                samples, errors = asyncio.run(_clients(port, kind, clients, seconds, per_client_rate))
            after = metric_total(port, "continust_events_total") or 0
            producer.join()
            result = Latency.of(kind, samples, errors, seconds, (after - before) / seconds)
            progress(
                "bench.query_load.latency",
                kind=kind,
                answers=result.answers,
                p50_ms=round(result.p50_ms, 1),
                p99_ms=round(result.p99_ms, 1),
                events_per_s=round(result.events_per_s),
            )
            results.append(result)
            # the worker catches up before the next kind starts
            _wait(lambda: _caught_up(port, topic), 120, "the worker to catch up")
    finally:
        _stop(worker)
    return results


def _quiet(port: int, metric: str) -> bool:
    """Whether ``metric`` did not change over 3 s."""
    first = metric_total(port, metric)
    time.sleep(3)
    return first is not None and first == metric_total(port, metric)


def _caught_up(port: int, topic: str) -> bool:
    time.sleep(1)
    first = metric_total(port, "continust_events_total")
    time.sleep(1)
    return first is not None and first == metric_total(port, "continust_events_total")


async def _subscribers(port: int, count: int, stop: asyncio.Event, received: list[int]) -> None:
    base = f"http://127.0.0.1:{port}/api/tables/totals/subscribe"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    connector = aiohttp.TCPConnector(limit=count + 1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            while not stop.is_set():
                async with session.get(f"{base}?key=user-{i}") as reply:
                    if reply.status == 503:  # ownership moving or the owner restoring: again
                        await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                        continue
                    if reply.status != 200:
                        raise RuntimeError(f"subscribe answered {reply.status}: {await reply.text()}")
                    async for line in reply.content:
                        if line.startswith(b"event: record"):
                            received[i] += 1
                        if stop.is_set():
                            return

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        failed = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, Exception)]
        failed = [r for r in failed if not isinstance(r, asyncio.CancelledError)]
        if failed:
            raise RuntimeError(f"{len(failed)} subscribers failed, the first: {failed[0]!r}")


def _subscriber_process(port: int, count: int, done: Any, out: Any) -> None:
    """``count`` subscribers until ``done`` (a process event) is set; puts what they received."""
    received = [0] * count

    async def run() -> None:
        stop = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        await _subscribers(port, count, stop, received)
        await watcher

    asyncio.run(run())
    out.put(sum(received))


@dataclass(frozen=True)
class SubscriberCost:
    subscribers: int
    events: int
    seconds: float
    received: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def measure_subscribers(bootstrap: str, workdir: Path, events: int, subscribers: int) -> list[SubscriberCost]:
    return [_subscriber_run(bootstrap, workdir, events, count) for count in (0, subscribers)]


def _subscriber_run(bootstrap: str, workdir: Path, events: int, count: int) -> SubscriberCost:
    """The backlog processed with ``count`` live subscribers."""
    worker, port, topic, _ = _start_worker(bootstrap, workdir, f"sub{count}")
    context = multiprocessing.get_context("spawn")
    queue, done = context.Queue(), context.Event()
    process = None

    def processed() -> float:
        return metric_total(port, "continust_events_total") or 0

    try:
        if count:
            process = context.Process(target=_subscriber_process, args=(port, count, done, queue))
            process.start()
            _wait(lambda: (metric_total(port, "continust_subscriptions") or 0) >= count, 120, "subscribers")
        asyncio.run(_produce_backlog(bootstrap, topic, events))
        _wait(lambda: processed() >= 1, 120, "the first event")
        first = time.monotonic()
        _wait(lambda: processed() >= events, 600, "the backlog")
        took = time.monotonic() - first
        received = 0
        if process is not None:
            # the last commits' records reach the subscribers: until they stop arriving
            _wait(lambda: _quiet(port, "continust_subscription_events_total"), 120, "subscribers")
            done.set()
            received = int(queue.get(timeout=60))
            process.join()
        result = SubscriberCost(count, events, took, received)
        progress(
            "bench.query_load.subscribers",
            subscribers=count,
            events_per_s=round(result.events_per_s),
            received=received,
        )
        return result
    finally:
        if process is not None and process.is_alive():
            process.terminate()
        _stop(worker)


def latency_table(results: list[Latency], labels: dict[str, str] | None = None) -> str:
    """The markdown table of latency results, one row per kind (shown as ``labels`` names it)."""
    rows = [
        (
            (labels or {}).get(r.kind, r.kind),
            f"{r.answers:,}",
            f"{r.answers / r.seconds:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.errors:,}",
            f"{r.events_per_s:,.0f}",
        )
        for r in results
    ]
    headers = ("query", "answers", "answers/s", "p50 ms", "p99 ms", "max ms", "errors")
    return markdown_table((*headers, "events/s processed meanwhile"), rows)


def section_body(
    latency: list[Latency],
    cost: list[SubscriberCost],
    command: str,
    date: str,
    rate: float,
    clients: int,
    client_rate: float,
) -> str:
    table = latency_table(latency, {"none": "none (the load alone)"})
    base = cost[0].events_per_s if cost else 0.0
    cost_rows = [
        (
            f"{c.subscribers}",
            f"{c.events:,}",
            f"{c.seconds:.1f}",
            f"{c.events_per_s:,.0f}",
            f"{c.events_per_s / base:.2f}x",
            f"{c.received:,}",
        )
        for c in cost
    ]
    cost_table = markdown_table(
        ("live subscribers", "events", "seconds", "events/s", "vs none", "records the subscribers received"),
        cost_rows,
    )
    return (
        f"Written by `{command}`; the run of {date}. One worker (4 partitions, tumbling 10 s count and sum, "
        f"exactly-once, an output topic, {KEYS:,} keys) processes events produced at {rate:,.0f} events/s by "
        f"another process while {clients} concurrent clients (a third process) query it, "
        + (
            f"each {client_rate:g} queries a second at most"
            if client_rate > 0
            else "each as fast as answered"
        )
        + ": first nothing (the load alone), then point queries of random keys, then scans of up to 100 "
        "windows of the keys with a random prefix, gathered from every partition. Latency is from sending "
        "the request to reading the whole answer; events/s is what the worker processed meanwhile (it "
        "shares one event loop with the HTTP API, so what the queries take is what processing loses).\n\n"
        f"{table}\n\n"
        "The cost of live subscribers: the same worker setup processes a backlog as fast as it can, with no "
        "subscriber and with live subscriptions of one key each (read by another process), connected before "
        "the backlog is produced. Events/s from the first event processed to the last.\n\n"
        f"{cost_table}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_load", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20_000, help="events per second while querying")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--client-rate", type=float, default=10, help="queries per second per client (0: as fast as answered)"
    )
    parser.add_argument("--seconds", type=float, default=30, help="per query kind")
    parser.add_argument("--backlog", type=int, default=300_000, help="events, for the subscriber cost")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            latency = measure_latency(
                broker.bootstrap, work, args.rate, args.clients, args.seconds, args.client_rate
            )
            cost = measure_subscribers(broker.bootstrap, work, args.backlog, args.subscribers)
    finally:
        broker.release()
    command = shlex.join(["python", "-m", "bench.query_load", *(sys.argv[1:] if argv is None else argv)])
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = section_body(latency, cost, command, date, args.rate, args.clients, args.client_rate)
    print(body)
    write_section(args.out, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench.query_scale``: top-N and scan pages on a table of many keys, under load.

One worker (``--partitions`` partitions, default 8; tumbling 1 min ``count()``/``sum(amount)``,
exactly-once) reads a backlog of ``--keys`` keys (default 100,000) with ``--windows`` windows
each (default 3), keyed by user (``partitioned_by_key``), then live input at ``--rate`` events/s
(default 1,000, a separate process) while ``--clients`` concurrent clients (default 16, another
process, each asking again as soon as answered) ask, ``--seconds`` each (default 20):

* ``top``: ``GET /api/tables/totals/top?by=total&n=10`` (the whole table);
* ``top, one window``: the same with ``from``/``to`` naming the backlog's last window;
* ``scan page``: ``GET /api/tables/totals/windows?limit=100&cursor=...``, a page of 100 windows
  from a random key on.

Reported per kind: answers, answers/s, p50, p99 and max latency (sending the request to reading
the whole answer), errors, and the events/s the worker processed meanwhile. Before them, the
first top-N query, which builds every partition's ranked windows, and the worker's resident
memory before and after it; that answer, and a top-N of one window, are checked against the
backlog's before the live input starts. Printed as markdown and written as the section "Top-N and scans at
scale" of ``--out``.
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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from agents.cli.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.contenders import free_port
from bench.doc_sections import write_section
from bench.query_load import Latency, latency_table, progress
from bench.topics import create_topic
from bench.worker_api import metric_total, metric_totals
from streams.api.scan_cursor import ScanCursor
from streams.kafka.kafka_security import KafkaSecurity

SECTION = "Top-N and scans at scale"
WINDOW_MS = 60_000
PIPELINE = """
[app]
id = "{app_id}"

[[source]]
name = "events"
topics = ["{topic}"]
key = "user"
timestamp = "ts"
partitioned_by_key = true

[[table]]
name = "totals"
source = "events"
window = {{ type = "tumbling", size = "1m", grace = "10s", retention = "1d" }}
aggregate = {{ n = "count()", total = "sum(amount)" }}
"""
KINDS = ("top", "top, one window", "scan page")
#: a key and its window's start (epoch ms)
Window = tuple[str, int]


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )


async def _backlog(bootstrap: str, topic: str, keys: int, windows: int, base_ms: int) -> dict[Window, int]:
    """One event per key and window, keyed by user (the default partitioner places them); the
    total of each ``(key, window start)``."""
    producer = _producer(bootstrap)
    await producer.start()
    rng = random.Random(11)
    totals: dict[Window, int] = {}
    try:
        for window in range(windows):
            pending = []
            start = base_ms + window * WINDOW_MS
            for k in range(keys):
                user, amount = f"user-{k}", rng.randrange(1, 1000)
                value = orjson.dumps({"user": user, "ts": start + rng.randrange(WINDOW_MS), "amount": amount})
                pending.append(await producer.send(topic, value, key=user.encode()))
                totals[(user, start)] = amount
            await asyncio.gather(*pending)
            progress("bench.query_scale.backlog", produced=len(totals), of=keys * windows)
    finally:
        await producer.stop()
    return totals


def expected_top(totals: dict[Window, int], n: int, start: int | None = None) -> list[tuple[str, int, int]]:
    """The top ``n`` ``(key, start, total)`` by total of the backlog (of the window at ``start``
    only, when given): each key once with its best window (the earliest of equal ones), ties
    by key."""
    best: dict[str, tuple[int, int]] = {}
    for (key, at), total in sorted(totals.items(), key=lambda item: item[0][1]):
        if start is not None and at != start:
            continue
        if key not in best or total > best[key][1]:
            best[key] = (at, total)
    ranked = sorted(best.items(), key=lambda item: (-item[1][1], item[0]))[:n]
    return [(key, at, total) for key, (at, total) in ranked]


def _top(port: int, query: str) -> list[tuple[str, int, int]]:
    status, body = _get(port, f"/api/tables/totals/top?by=total&n=10{query}")
    if status != 200:
        raise SystemExit(f"a top-N answered {status}: {body[:300]!r}")
    return [(entry["key"], entry["start"], entry["value"]) for entry in orjson.loads(body)["top"]]


async def _live(bootstrap: str, topic: str, keys: int, rate: float, seconds: float) -> None:
    """``rate`` events/s of random users at the current time, for ``seconds``."""
    producer = _producer(bootstrap)
    await producer.start()
    rng = random.Random(13)
    try:
        started, sent = time.monotonic(), 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent
            now_ms = int(time.time() * 1000)
            pending = []
            for _ in range(due):
                user = f"user-{rng.randrange(keys)}"
                value = orjson.dumps({"user": user, "ts": now_ms, "amount": rng.randrange(1, 1000)})
                pending.append(await producer.send(topic, value, key=user.encode()))
            await asyncio.gather(*pending)
            sent += due
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


def _run_live(bootstrap: str, topic: str, keys: int, rate: float, seconds: float) -> None:
    asyncio.run(_live(bootstrap, topic, keys, rate, seconds))


def _path(kind: str, rng: random.Random, keys: int, last_window: int) -> str:
    base = "/api/tables/totals"
    if kind == "top":
        return f"{base}/top?by=total&n=10"
    if kind == "top, one window":
        return f"{base}/top?by=total&n=10&from={last_window}&to={last_window + WINDOW_MS}"
    cursor = ScanCursor(f"user-{rng.randrange(keys)}", 0, 0).encode()
    return f"{base}/windows?limit=100&cursor={cursor}"


async def _clients(
    port: int, kind: str, clients: int, seconds: float, keys: int, last_window: int
) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                url = f"http://127.0.0.1:{port}{_path(kind, rng, keys, last_window)}"
                started = time.monotonic()
                async with session.get(url) as reply:
                    body = await reply.read()
                    if reply.status != 200:
                        errors += 1
                        continue
                    answer = orjson.loads(body)
                    if not (answer.get("top") or answer.get("windows")):
                        errors += 1  # an empty answer would time nothing real
                        continue
                    samples.append(time.monotonic() - started)

        await asyncio.gather(*(loop() for _ in range(clients)))
    return samples, errors


def _client_process(
    port: int, kind: str, clients: int, seconds: float, keys: int, last: int, out: object
) -> None:
    out.put(asyncio.run(_clients(port, kind, clients, seconds, keys, last)))  # type: ignore[attr-defined]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _get(port: int, path: str, timeout_s: float = 120) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


def run(args: argparse.Namespace, bootstrap: str, where: Path) -> tuple[list[Latency], dict[str, float]]:
    run_id = uuid.uuid4().hex[:8]
    app_id, topic = f"qscale-{run_id}", f"qscale-src-{run_id}"
    asyncio.run(create_topic(bootstrap, topic, args.partitions))
    base_ms = (int(time.time() * 1000) // WINDOW_MS - args.windows - 1) * WINDOW_MS
    totals = asyncio.run(_backlog(bootstrap, topic, args.keys, args.windows, base_ms))
    events = len(totals)
    last_window = base_ms + (args.windows - 1) * WINDOW_MS
    pipeline = where / "pipeline.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic))
    port = free_port()
    log_path = where / "worker.log"
    worker = subprocess.Popen(
        worker_argv(pipeline, port, where / "data"),
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    context = multiprocessing.get_context("spawn")
    live = None
    results: list[Latency] = []
    try:
        _wait(lambda: (metric_total(port, "continust_events_total") or 0) >= events, 900, "the backlog")
        progress("bench.query_scale.backlog_processed", events=events)
        before = _rss_bytes(worker.pid)
        started = time.monotonic()
        first = _top(port, "")
        first_ms = (time.monotonic() - started) * 1000
        after = _rss_bytes(worker.pid)
        # the answers are checked against the backlog's before the live input changes them
        if first != expected_top(totals, 10):
            raise SystemExit(f"top-N answered {first}, the backlog's is {expected_top(totals, 10)}")
        one_window = _top(port, f"&from={last_window}&to={last_window + WINDOW_MS}")
        if one_window != expected_top(totals, 10, last_window):
            raise SystemExit(f"top-N of one window answered {one_window}")
        build = {"first_top_ms": first_ms, "rss_before": before, "rss_after": after}
        progress(
            "bench.query_scale.first_top", ms=round(first_ms), rss_mib=round(after / 2**20), checked=True
        )
        live = context.Process(
            target=_run_live,
            args=(bootstrap, topic, args.keys, args.rate, 3 * args.seconds * len(KINDS) + 120),
        )
        live.start()
        time.sleep(5)  # the live input reaches its rate
        gc_before = _full_collections(port)
        for kind in KINDS:
            processed = metric_total(port, "continust_events_total") or 0
            queue = context.Queue()
            clients = context.Process(
                target=_client_process,
                args=(port, kind, args.clients, args.seconds, args.keys, last_window, queue),
            )
            clients.start()
            samples, errors = queue.get(timeout=args.seconds + 300)
            clients.join()
            rate = ((metric_total(port, "continust_events_total") or 0) - processed) / args.seconds
            result = Latency.of(kind, samples, errors, args.seconds, rate)
            progress(
                "bench.query_scale.kind",
                kind=kind.replace(" ", "_").replace(",", ""),
                answers=result.answers,
                p50_ms=round(result.p50_ms, 1),
                p99_ms=round(result.p99_ms, 1),
                errors=errors,
            )
            results.append(result)
        gc_after = _full_collections(port)
        build.update(
            full_gcs=gc_after[0] - gc_before[0],
            full_gc_s=gc_after[1] - gc_before[1],
            long_gcs=gc_after[2] - gc_before[2],
        )
    finally:
        if live is not None:
            live.terminate()
            live.join()
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return results, build


def _full_collections(port: int) -> tuple[float, float, float]:
    """The worker's collections of generation 2 so far: how many, their seconds, and how many
    took 100 ms or more (``continust_gc_pause_seconds``)."""
    where = 'generation="2"'
    totals = metric_totals(
        port,
        [
            ("continust_gc_pause_seconds_count", where),
            ("continust_gc_pause_seconds_sum", where),
            ("continust_gc_pause_seconds_bucket", where + ',le="0.1"'),
        ],
    )
    count, seconds, under = totals or (0.0, 0.0, 0.0)
    return count, seconds, count - under


def section_body(
    results: list[Latency], build: dict[str, float], args: argparse.Namespace, command: str
) -> str:
    table = latency_table(results)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    windows = args.keys * args.windows
    return (
        f"Written by `{command}`; the run of {date}. One worker, {args.partitions} partitions, a tumbling "
        f"1 min `count()`/`sum(amount)` table holding {args.keys:,} keys with {args.windows} windows each "
        f"({windows:,} windows), {args.rate:,.0f} events/s of live input while {args.clients} concurrent "
        "clients ask as fast as they are answered, for "
        f"{args.seconds:g} s per kind: top 10 keys by `total` over the whole table (`top`), over the last "
        "window of the backlog (`top, one window`: `from`/`to`), and a page of 100 windows from a random "
        "key on (`scan page`: `limit=100&cursor=...`). Latency is from sending the request to reading the "
        "whole answer.\n\n"
        f"{table}\n\n"
        f"The first top-N query after the worker started took {build['first_top_ms']:,.0f} ms: it builds "
        f"every partition's ranked windows, one read of the partition each; it and a top-N of one window "
        "equalled the backlog's, checked before the live input started. The worker's resident memory "
        f"was {build['rss_before'] / 2**20:,.0f} MiB before it and {build['rss_after'] / 2**20:,.0f} MiB "
        "after.\n\n"
        f"While the clients asked ({len(results) * args.seconds:g} s), the worker ran "
        f"{build['full_gcs']:,.0f} full collections of Python's cycle collector (generation 2, "
        f"`continust_gc_pause_seconds`), {build['full_gc_s'] * 1000:,.0f} ms in all, "
        f"{build['long_gcs']:,.0f} of them 100 ms or longer: the event loop stands still meanwhile, "
        "and the queries' p99 meets these pauses.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=3, help="windows per key in the backlog")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1_000, help="live events per second while querying")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20, help="per query kind")
    parser.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory(prefix="continust-query-scale-") as tmp:
            results, build = run(args, broker.bootstrap, Path(tmp))
    finally:
        broker.release()
    command = shlex.join(["python", "-m", "bench.query_scale", *(sys.argv[1:] if argv is None else argv)])
    body = section_body(results, build, args, command)
    print(body)
    write_section(args.out, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

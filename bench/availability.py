"""``python -m bench.availability``: point queries through a rolling restart of three workers.

Three workers (static group membership, as the Kubernetes manifests run them; one standby
replica per table partition) process ``--rate`` events/s of live input (a backlog first) on a
tumbling 10 s ``count()``/``sum(amount)`` table of ``--partitions`` partitions, while
``--clients`` concurrent clients ask point queries of random keys, each of a worker that is up
(as a Kubernetes Service sends requests only to ready pods). The workers are restarted one after
the other: SIGTERM, start again, wait until it is ready. Twice: clients without ``stale_ok``,
then with ``stale_ok=true``.

A partition *moved* while the worker that owned it before the step (or after it) is being
restarted; every other partition did not move. Reported per pass: the answers, the share of
non-200 answers for partitions that did not move and for those that moved, the share overall,
and the latency (p50, p99) of the 200 answers. Printed as markdown and written as the section
"Query availability through a rolling restart" of ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from agents.cli.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.contenders import free_port
from bench.doc_sections import write_section
from bench.query_load import _produce_backlog, _run_producer, progress
from bench.report import markdown_table
from bench.topics import create_topic
from streams.kafka.partitioning import key_partition

SECTION = "Query availability through a rolling restart"
KEYS = 2_000
PIPELINE = """
[app]
id = "{app_id}"
table_standby_replicas = 1
session_timeout = "10s"

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
"""


class Workers:
    """The three worker processes, each with its port, data directory, log and instance id."""

    def __init__(self, bootstrap: str, pipeline: Path, where: Path, run_id: str, partitions: int) -> None:
        self.bootstrap, self.pipeline, self.where, self.run_id = bootstrap, pipeline, where, run_id
        self.partitions = partitions
        self.ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        #: the workers a client may ask now: up and ready
        self.serving: set[int] = set()

    def start(self, n: int) -> None:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}
        env["CONTINUST_GROUP_INSTANCE_ID"] = f"avail-{self.run_id}-{n}"
        log_file = (self.where / f"worker-{n}.log").open("ab")
        argv = worker_argv(self.pipeline, self.ports[n], self.where / f"data-{n}")
        self.procs[n] = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)

    def ready(self, n: int) -> bool:
        return _status(self.ports[n], "/ready") == 200

    def stop(self, n: int) -> None:
        self.serving.discard(n)
        proc = self.procs.pop(n)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)

    def stop_all(self) -> None:
        for n in list(self.procs):
            self.stop(n)

    def owners(self) -> dict[int, int]:
        """Table partition -> the worker owning it, as a serving worker's ``/health`` says."""
        for n in sorted(self.serving):
            body = _json(self.ports[n], "/health")
            if body is None:
                continue
            by_url = {f"http://127.0.0.1:{port}": i for i, port in enumerate(self.ports)}
            found: dict[int, int] = {}
            for url, tps in body.get("owners", {}).items():
                for topic, partitions in tps.items():
                    if topic.endswith("-totals-changelog") and url in by_url:
                        found.update(dict.fromkeys(partitions, by_url[url]))
            return found
        return {}


def _status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return None


def _json(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return orjson.loads(reply.read())
    except (OSError, ValueError):
        return None


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Answers:
    """Every answer of a pass: (partition, status, seconds) with the step it came in."""

    records: list[tuple[int, int, float, int]] = field(default_factory=list)
    #: per step, the partitions that moved in it
    moved: dict[int, set[int]] = field(default_factory=dict)
    step: int = -1

    def row(self, label: str) -> list[str]:
        def share(items: list[tuple[int, int, float, int]]) -> str:
            bad = sum(1 for _, status, _, _ in items if status != 200)
            return f"{bad} of {len(items)} ({100 * bad / max(1, len(items)):.2f}%)"

        moved = [r for r in self.records if r[3] >= 0 and r[0] in self.moved.get(r[3], set())]
        kept = [r for r in self.records if not (r[3] >= 0 and r[0] in self.moved.get(r[3], set()))]
        ok = sorted(seconds for _, status, seconds, _ in self.records if status == 200) or [0.0]

        def at(q: float) -> str:
            return f"{ok[min(len(ok) - 1, int(q * len(ok)))] * 1000:.1f}"

        return [
            label,
            str(len(self.records)),
            share(kept),
            share(moved),
            share(self.records),
            at(0.5),
            at(0.99),
        ]


async def _clients(
    workers: Workers, clients: int, stale_ok: bool, answers: Answers, stop: asyncio.Event
) -> None:
    rng = random.Random(11)
    timeout = aiohttp.ClientTimeout(total=30)
    query = "?stale_ok=true" if stale_ok else ""
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def loop() -> None:
            while not stop.is_set():
                serving = sorted(workers.serving)
                if not serving:
                    await asyncio.sleep(0.05)
                    continue
                port = workers.ports[rng.choice(serving)]
                key = f"user-{rng.randrange(KEYS)}"
                partition = key_partition(key.encode(), workers.partitions)
                started = time.monotonic()
                try:
                    async with session.get(
                        f"http://127.0.0.1:{port}/api/tables/totals/keys/{key}{query}"
                    ) as reply:
                        await reply.read()
                        status = reply.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0  # no answer at all
                answers.records.append((partition, status, time.monotonic() - started, answers.step))

        await asyncio.gather(*(loop() for _ in range(clients)))


async def _rolling_restart(workers: Workers, answers: Answers) -> None:
    """Restart each worker in turn while the clients ask; record which partitions moved."""
    loop = asyncio.get_running_loop()
    for n in range(3):
        before = await loop.run_in_executor(None, workers.owners)
        answers.step = n
        await loop.run_in_executor(None, workers.stop, n)
        workers.start(n)
        await loop.run_in_executor(None, _wait, lambda n=n: workers.ready(n), 180, f"worker {n} to be ready")
        workers.serving.add(n)
        await asyncio.sleep(5)  # the clients go on against the whole group before the next step
        after = await loop.run_in_executor(None, workers.owners)
        answers.moved[n] = {p for p, w in before.items() if w == n or after.get(p) != w}
        answers.moved[n] |= {p for p, w in after.items() if w == n}
        progress("availability.step", worker=n, moved=len(answers.moved[n]))
    answers.step = -1


async def _pass(workers: Workers, clients: int, stale_ok: bool) -> Answers:
    answers = Answers()
    stop = asyncio.Event()
    asking = asyncio.create_task(_clients(workers, clients, stale_ok, answers, stop))
    await asyncio.sleep(3)  # steady answers before the first restart
    await _rolling_restart(workers, answers)
    stop.set()
    await asking
    return answers


def run(args: argparse.Namespace, bootstrap: str, where: Path) -> list[list[str]]:
    run_id = uuid.uuid4().hex[:8]
    app_id, topic = f"avail-{run_id}", f"avail-src-{run_id}"
    asyncio.run(create_topic(bootstrap, topic, args.partitions))
    asyncio.run(_produce_backlog(bootstrap, topic, args.backlog))
    pipeline = where / "pipeline.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic))
    workers = Workers(bootstrap, pipeline, where, run_id, args.partitions)
    producer = multiprocessing.get_context("spawn").Process(
        target=_run_producer, args=(bootstrap, topic, args.rate, 3_600)
    )
    rows = []
    try:
        for n in range(3):
            workers.start(n)
        for n in range(3):
            _wait(lambda n=n: workers.ready(n), 240, f"worker {n} to be ready")
            workers.serving.add(n)
        _wait(lambda: set(workers.owners().values()) == {0, 1, 2}, 240, "three workers to own partitions")
        producer.start()
        progress("availability.ready", partitions=args.partitions, rate=args.rate, clients=args.clients)
        for stale_ok in (False, True):
            answers = asyncio.run(_pass(workers, args.clients, stale_ok))
            rows.append(answers.row("`stale_ok=true`" if stale_ok else "default"))
            progress("availability.pass", stale_ok=stale_ok, answers=len(answers.records))
    finally:
        producer.terminate()
        producer.join()
        workers.stop_all()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.availability", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--partitions", type=int, default=12, help="table partitions (default 12)")
    parser.add_argument("--backlog", type=int, default=100_000, help="events before the run (default 100000)")
    parser.add_argument("--rate", type=float, default=1_000, help="live events per second (default 1000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent point-query clients (default 16)")
    parser.add_argument("--port", type=int, default=None, help="the broker's port (default: the CLI's, 9092)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory(prefix="continust-availability-") as where:
            rows = run(args, broker.bootstrap, Path(where))
    finally:
        broker.release()
    headers = [
        "clients",
        "answers",
        "non-200, partitions that did not move",
        "non-200, partitions that moved",
        "non-200 overall",
        "p50 ms",
        "p99 ms",
    ]
    table = markdown_table(headers, rows)
    command = " ".join(["python -m bench.availability", *(argv if argv is not None else sys.argv[1:])])
    body = (
        f"`{command}`: {args.partitions} table partitions, {args.backlog:,} events of backlog, then "
        f"{args.rate:,.0f} events/s while {args.clients} clients ask point queries of random keys "
        "and the three workers (static membership, one standby replica) restart one after the "
        "other (SIGTERM, start, ready).\n\n" + table + "\n"
    )
    print(body)
    write_section(args.out, SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

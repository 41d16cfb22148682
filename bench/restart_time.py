"""``python -m bench.restart_time``: how long a worker killed with SIGKILL takes, after its
restart, to answer a table query again: with and without static group membership, or (with
``--windows``) with static membership against the size of the state.

One worker reads a backlog (tumbling 10 s count and sum, exactly-once, windows kept for 30 days
of event time) until every event is processed, is killed with SIGKILL, and is started again on
the same data directory. The backlog has one event per key and window: ``keys`` keys taking
turns, each with ``windows per key`` consecutive windows. The time is from the restart to the
first ``200`` answer of ``GET /api/tables/totals/keys/user-0`` holding all of that key's windows.
Without ``group.instance.id`` the group waits for the dead member's session timeout (45 s by
default) before it assigns its partitions again; with it, the restarted worker is the same
member and gets them at once. Both then keep their stores (RocksDB holds committed state only,
with its changelog offset, :mod:`agents.table_store`) and restore only the changelog records
committed after it.

``--windows 100000,1000000``: static membership only, one run per total of windows (``keys`` =
windows / ``--windows-per-key``), the worker killed once its group has committed every input
record (so the changelogs hold the whole state). Reported also: the changelog records the
restarted worker read while recovering (from Faust's recovery log: per changelog partition, the
highwater minus the offset reading started at; transaction markers included), Faust's recovery
time from that log, and the data directory's size on disk at the kill and after the restarted
worker stopped. Printed as a markdown table and written as the section "Restart after SIGKILL"
of ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from agents.cli.worker_command import worker_argv
from bench.broker import BenchBroker
from bench.consumption import GroupWatch
from bench.contenders import free_port
from bench.doc_sections import write_section
from bench.process_stats import disk_bytes
from bench.producing import send_values
from bench.report import markdown_table
from bench.topics import create_topic
from bench.worker_api import metric_total
from streams.kafka.kafka_security import KafkaSecurity

PARTITIONS = 4
WINDOW_MS = 10_000
SECTION = "Restart after SIGKILL"
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


def event_times(keys: int, windows_per_key: int, start_ms: int) -> list[tuple[int, int]]:
    """(key index, ts) of every event in production order: the keys take turns, one event per
    key and window, ``windows_per_key`` consecutive windows from ``start_ms`` (window-aligned),
    in event-time order."""
    return [
        (k, start_ms + w * WINDOW_MS + k * WINDOW_MS // keys)
        for w in range(windows_per_key)
        for k in range(keys)
    ]


async def publish(bootstrap: str, topic: str, keys: int, windows_per_key: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        max_batch_size=512 * 1024,
    )
    await producer.start()
    now = int(time.time() * 1000)
    start = now - windows_per_key * WINDOW_MS - 60_000
    start -= start % WINDOW_MS
    try:
        values = [
            orjson.dumps({"user": f"user-{k}", "ts": ts, "amount": i % 10})
            for i, (k, ts) in enumerate(event_times(keys, windows_per_key, start))
        ]
        await send_values(producer, topic, PARTITIONS, values)
    finally:
        await producer.stop()


def answers(port: int, key: str, windows: int) -> bool:
    """Whether the table answers for ``key`` with all of its ``windows``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tables/totals/keys/{key}", timeout=5) as r:
            return r.status == 200 and len(json.loads(r.read())["windows"]) >= windows
    except (OSError, urllib.error.HTTPError, ValueError):
        return False


_ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|$")
_TS = re.compile(r"^ts=(\S+)Z ")


def _log_table(line: str) -> dict[tuple[str, int], int]:
    """The rows (topic, partition) -> number of one of Faust's recovery log tables, from its
    logfmt line (the message's newlines escaped); a ditto mark repeats the topic above."""
    rows: dict[tuple[str, int], int] = {}
    topic = ""
    for cell in line.split("\\n"):
        m = _ROW.match(cell.strip())
        if m is None:
            continue
        topic = topic if m.group(1) == "\u3003" else m.group(1)
        rows[(topic, int(m.group(2)))] = int(m.group(3))
    return rows


def _log_time(line: str) -> float | None:
    m = _TS.match(line)
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp() if m else None


@dataclass(frozen=True)
class Recovery:
    """What a worker's log says of its first recovery of active changelog partitions."""

    records: int
    """Offsets between where reading started and the highwater, over every changelog partition."""
    seconds: float | None
    """From Faust's highwater table to "Recovery complete"."""
    completed_at: float | None
    """When Faust logged "Recovery complete" (epoch seconds)."""
    rounds: int
    """Recoveries started (more than one: a rebalance interrupted it)."""


def recovery_from_log(text: str) -> Recovery | None:
    """The changelog records a worker read while recovering its active tables, from Faust's
    ``Highwater for active changelog partitions`` and ``active offsets at start of reading`` log
    tables (offsets as Faust logs them: the last offset, and the offset before the first to
    read); None when the log has neither."""
    highwaters: dict[tuple[str, int], int] | None = None
    starts: dict[tuple[str, int], int] | None = None
    began = ended = None
    rounds = 0
    for line in text.splitlines():
        if "Highwater for active changelog partitions" in line:
            rounds += 1
            if highwaters is None:
                highwaters, began = _log_table(line), _log_time(line)
        elif "active offsets at start of reading" in line and starts is None:
            starts = _log_table(line)
        elif "Recovery complete" in line and ended is None and began is not None:
            ended = _log_time(line)
    if highwaters is None or starts is None:
        return None
    records = sum(max(0, hw - starts.get(tp, -1)) for tp, hw in highwaters.items())
    seconds = ended - began if began is not None and ended is not None else None
    return Recovery(records, seconds, ended, rounds)


def wait(predicate: object, timeout_s: float, what: str) -> float:
    """Poll until ``predicate()``; the seconds it took."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


async def committed_everything(bootstrap: str, group: str, topics: list[str], timeout_s: float) -> float:
    """Wait until ``group`` has committed every record of ``topics``; the seconds it took."""
    started = time.monotonic()
    watch = GroupWatch(bootstrap, group)
    await watch.start()
    try:
        while True:
            try:
                if all([await watch.unread(topic) == 0 for topic in topics]):
                    return time.monotonic() - started
            except Exception:  # the coordinator moving, a topic not there yet: ask again
                pass
            if time.monotonic() - started > timeout_s:
                raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {group} to commit")
            await asyncio.sleep(0.25)
    finally:
        await watch.close()


@dataclass(frozen=True)
class Restart:
    keys: int
    windows_per_key: int
    static: bool
    processed_s: float
    """Time the first worker took for the backlog."""
    seconds: float
    """From the restart to the first complete answer."""
    recovery: Recovery | None
    restarted_at: float
    """When the worker was started again (epoch seconds)."""
    state_at_kill_bytes: int
    state_after_bytes: int

    @property
    def windows(self) -> int:
        return self.keys * self.windows_per_key

    @property
    def recovered_s(self) -> float | None:
        """From the restart to Faust's "Recovery complete"."""
        if self.recovery is None or self.recovery.completed_at is None:
            return None
        return self.recovery.completed_at - self.restarted_at


def measure(
    bootstrap: str, keys: int, windows_per_key: int, static: bool, workdir: Path, committed: bool = False
) -> Restart:
    """One kill and restart. ``committed``: kill once the worker's group has committed every input
    record (so its changelogs hold the whole state), else as soon as it has read every event."""
    run_id = uuid.uuid4().hex[:8]
    app_id, topic = f"restart-{run_id}", f"restart-src-{run_id}"
    events = keys * windows_per_key
    asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
    asyncio.run(publish(bootstrap, topic, keys, windows_per_key))
    pipeline = workdir / f"{app_id}.toml"
    pipeline.write_text(PIPELINE.format(app_id=app_id, topic=topic))
    port, data_dir = free_port(), workdir / f"data-{run_id}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    if static:
        env["CONTINUST_GROUP_INSTANCE_ID"] = f"{app_id}-0"
    argv = worker_argv(pipeline, port, data_dir)
    first_log, restart_log = workdir / f"{app_id}.log", workdir / f"{app_id}-restarted.log"
    with first_log.open("ab") as log:
        worker = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        took = wait(
            lambda: (metric_total(port, "continust_events_total") or 0) >= events,
            120 + events / 500,
            "the backlog",
        )
        if committed:
            took += asyncio.run(
                committed_everything(bootstrap, app_id, [topic, f"{app_id}-events-repartition"], 300)
            )
    progress("bench.restart.processed", static=static, events=events, seconds=round(took, 1))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    at_kill = disk_bytes(data_dir)
    with restart_log.open("ab") as log:
        restarted_at = time.time()
        restarted = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            seconds = wait(
                lambda: answers(port, "user-0", windows_per_key),
                300 + events / 2_000,
                "the restarted worker to answer",
            )
            # and until Faust logs the end of its recovery
            wait(
                lambda: "Recovery complete" in restart_log.read_text(errors="replace"),
                300 + events / 2_000,
                "the restarted worker to complete its recovery",
            )
        finally:
            restarted.terminate()
            restarted.wait(timeout=120)
    recovery = recovery_from_log(restart_log.read_text(errors="replace"))
    result = Restart(
        keys, windows_per_key, static, took, seconds, recovery, restarted_at, at_kill, disk_bytes(data_dir)
    )
    progress(
        "bench.restart.answered",
        static=static,
        windows=result.windows,
        seconds=round(seconds, 1),
        changelog_records=recovery.records if recovery else "unknown",
        state_mib=round(result.state_at_kill_bytes / 2**20, 1),
    )
    return result


HEADERS = (
    "windows",
    "keys x windows per key",
    "backlog processed and committed in",
    "restart to first complete answer (user-0)",
    "restart to recovery complete",
    "Faust recovery (its log)",
    "changelog records read",
    "state on disk at the kill",
    "state on disk after",
)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def restart_rows(results: list[Restart]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        rec = r.recovery
        rows.append(
            (
                f"{r.windows:,}",
                f"{r.keys:,} x {r.windows_per_key:,}",
                f"{r.processed_s:,.1f} s",
                f"{r.seconds:,.1f} s",
                "-" if r.recovered_s is None else f"{r.recovered_s:,.1f} s",
                "-" if rec is None or rec.seconds is None else f"{rec.seconds:,.1f} s",
                "-"
                if rec is None
                else f"{rec.records:,}" + ("" if rec.rounds <= 1 else f" ({rec.rounds} rounds)"),
                _mib(r.state_at_kill_bytes),
                _mib(r.state_after_bytes),
            )
        )
    return rows


def section_body(results: list[Restart], command: str, date: str) -> str:
    return "\n".join(
        [
            f"Written by `python -m bench.restart_time --windows ...`; the run of {date}. A worker with "
            "static group membership (`CONTINUST_GROUP_INSTANCE_ID` set) reads a backlog of one event "
            'per key and tumbling 10 s window (count and sum, exactly-once, `retention = "30d"` so '
            f"that every window stays in the state, {PARTITIONS} partitions, unkeyed input read through "
            "the source's repartition topic), is killed with SIGKILL once its group has committed every "
            "input record (the changelogs then hold the whole state), and is started again on the "
            "same data directory, whose stores it keeps: RocksDB holds committed state only, with "
            "its changelog offset, so the restart restores only changelog records committed after "
            "it. Restart "
            "to first complete answer: from starting the new process to the first answer of "
            "`GET /api/tables/totals/keys/user-0` holding all of that key's windows (the table answers "
            "503 while its owner is in Faust's recovery). Restart to recovery complete: to the "
            "time of Faust's `Recovery complete` log "
            "line. Faust recovery: from its highwater log line to `Recovery complete`. Changelog "
            "records read: per changelog "
            "partition, the highwater minus the offset reading started at, from Faust's recovery "
            "log (transaction markers included). State on disk: the data directory, right after the "
            "kill and after the restarted worker stopped.",
            "",
            markdown_table(HEADERS, restart_rows(results)),
            "",
            "```sh",
            command,
            "```",
            "",
        ]
    )


def _windows(text: str) -> list[int]:
    values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("comma-separated positive window counts, e.g. 100000,1000000")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restart_time",
        description="Restart after SIGKILL: with and without static membership, or against the state size.",
    )
    parser.add_argument("--events", type=int, default=200_000, help="backlog without --windows")
    parser.add_argument("--keys", type=int, default=1_000, help="keys without --windows")
    parser.add_argument(
        "--windows",
        type=_windows,
        default=None,
        help="static membership only, one run per total of windows, e.g. 100000,1000000",
    )
    parser.add_argument("--windows-per-key", type=int, default=100, help="with --windows (default 100)")
    parser.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="report (with --windows)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="pipelines, data and worker logs (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    broker = BenchBroker.ensure(args.port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.workdir is not None:
                args.workdir.mkdir(parents=True, exist_ok=True)
            work = args.workdir or Path(tmp)
            if args.windows is not None:
                per_key = args.windows_per_key
                results = [
                    measure(broker.bootstrap, max(1, w // per_key), per_key, True, work, committed=True)
                    for w in args.windows
                ]
            else:
                per_key = max(1, args.events // args.keys)
                dynamic = measure(broker.bootstrap, args.keys, per_key, False, work)
                static = measure(broker.bootstrap, args.keys, per_key, True, work)
    finally:
        broker.release()
    if args.windows is None:
        print(
            f"restart to answering after SIGKILL ({args.keys * per_key:,} events, {args.keys:,} keys): "
            f"without group.instance.id {dynamic.seconds:.1f} s, with it {static.seconds:.1f} s"
        )
        return 0
    print(markdown_table(HEADERS, restart_rows(results)))
    command = shlex.join(["python", "-m", "bench.restart_time", *(sys.argv[1:] if argv is None else argv)])
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_section(args.out, SECTION, section_body(results, command, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The runtime around the windows, on real brokers: static group membership lets a killed worker
take its partitions back at once; a broker outage is survived and reported; a broker that never
comes back ends the worker with a clear exit; memory stays bounded on a backlog far larger than
the worker's limits. Every scenario ends with the exactly-once checks of the failure tests."""

from __future__ import annotations

import functools
import signal
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.broker_watch import EXIT_BROKER_LOST
from streams.kafka.local_kafka import LocalKafka
from streams.kafka.topic_admin import ensure_topics
from tests.integration.broker_io import free_port, open_transactions, publish, publish_values, read_to_end
from tests.integration.conftest import run, wait_exit, wait_until, workers_state
from tests.integration.test_exactly_once import (
    FAST_FAILOVER,
    check_keyed_stream_exact,
    events_read,
    last_state_open,
    two_hours_ago,
    wait_consumed,
)
from tests.integration.test_window_types import (
    PARTITIONS,
    TABLES,
    check_against_model,
    make_events,
    own_every_partition,
    records,
    setup,
    start_and_wait,
)

SESSION_TIMEOUT_S = 60


def test_a_static_member_killed_takes_its_partitions_back_before_the_session_timeout(
    kafka, run_id, start_worker, tmp_path: Path
):
    """With ``CONTINUST_GROUP_INSTANCE_ID`` the restarted worker is the same group member: the
    broker hands it the dead process's partitions at once, where a new member would wait for
    the session timeout (60 s here) to evict the dead one. Its transactional producers fence
    the dead one's, so nothing is lost or duplicated. It keeps its stores, which hold every
    committed change, and restores nothing from the changelogs."""
    app_id, src, prefix, pipeline = setup(
        kafka, run_id, tmp_path, "static", f'session_timeout = "{SESSION_TIMEOUT_S}s"'
    )
    repartition = f"{app_id}-events-repartition"
    changelogs = {table: f"{app_id}-{table}-changelog" for table in TABLES}
    events = make_events(two_hours_ago(), 1_200, seed=7)
    run(publish(kafka, records(src, events[:600])))
    port = free_port()
    static = functools.partial(start_worker, env={"CONTINUST_GROUP_INSTANCE_ID": f"worker-{run_id}"})
    worker = start_and_wait(static, pipeline, port, repartition)
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    wait_until(
        lambda: state_applied(kafka, worker, changelogs),
        60,
        "RocksDB to hold every committed changelog record",
        lambda: "\n".join(state_behind(kafka, worker, changelogs)) + "\n" + worker.log_tail(),
    )
    committed = sum(len(m) for topic in changelogs.values() for m in run(read_to_end(kafka, topic)).values())
    assert committed > 0, "the first worker should have committed state"
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(timeout=30)
    run(publish(kafka, records(src, events[600:])))  # a backlog for the restarted worker
    restarted = time.monotonic()
    worker = static(pipeline, port)
    wait_until(
        lambda: own_every_partition((worker,), repartition),
        SESSION_TIMEOUT_S * 0.75,
        f"the restarted static member to own every partition before the {SESSION_TIMEOUT_S}s session timeout",
        worker.log_tail,
    )
    print(f"static member: owns every partition {time.monotonic() - restarted:.1f}s after its restart")
    assert "stores=kept" in last_state_open(worker)
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    restored = metric_sum(worker, "continust_changelog_records_restored_total")
    print(f"static member: restored {restored:.0f} of the {committed} changelog records committed")
    assert restored == 0, f"{restored} changelog records restored: RocksDB held every committed one"
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False)


def state_applied(kafka: str, worker: Any, changelogs: dict[str, str]) -> bool:
    """Whether the worker's RocksDB holds, for every changelog partition, its last record."""
    return not state_behind(kafka, worker, changelogs)


def state_behind(kafka: str, worker: Any, changelogs: dict[str, str]) -> list[str]:
    """The changelog partitions whose last record the worker's RocksDB does not hold."""
    applied = metric_series(worker, "continust_state_changelog_offset")
    behind = []
    for table, topic in changelogs.items():
        for partition, messages in run(read_to_end(kafka, topic)).items():
            held = applied.get(frozenset({("table", table), ("partition", str(partition))}), -1)
            if messages and held < messages[-1].offset:
                behind.append(f"{topic}:{partition} holds {held}, last record {messages[-1].offset}")
    return behind


# --------------------------------------------------------------------------------------------
# Broker outages, on a broker of the test's own (the suite's broker serves the other tests)
# --------------------------------------------------------------------------------------------


def health(worker: Any) -> tuple[int, dict[str, Any]]:
    try:
        return worker.get("/health")
    except OSError:
        return 0, {}


def metric(worker: Any, name: str) -> float | None:
    try:
        with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split(" ")[1])
    return None


def metric_series(worker: Any, family: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of a metric family, by its labels."""
    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
        text = r.read().decode()
    series = {}
    for line in text.splitlines():
        if line.startswith(f"{family}{{"):
            labels, value = line[len(family) + 1 :].rsplit("} ", 1)
            pairs = (part.split("=", 1) for part in labels.split(","))
            series[frozenset((name, quoted.strip('"')) for name, quoted in pairs)] = float(value)
    return series


def metric_sum(worker: Any, family: str) -> float:
    """The sum of every series of a metric family (0 when it has none yet)."""
    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{family} ", f"{family}{{"))
    )


@pytest.mark.beside
def test_a_broker_outage_is_reported_survived_and_a_lost_broker_ends_the_worker(
    own_broker: LocalKafka, run_id, start_worker_on_own, tmp_path: Path
):
    """Two workers read a backlog; the broker stops for 60 s. The patient worker
    (``broker_timeout`` 5 min) stays up, answers ``/health`` with 503 and reports
    ``continust_broker_reachable 0``; the impatient one (10 s) exits with its own code and says
    why. When the broker is back, the first resumes, the second restarts from its last commit,
    and together they finish exactly."""
    bootstrap = own_broker.bootstrap
    app_id, src, prefix, pipeline = setup(bootstrap, run_id, tmp_path, "outage", FAST_FAILOVER)
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 1_200, seed=8)
    patient = functools.partial(start_worker_on_own, env={"CONTINUST_BROKER_TIMEOUT": "5m"})
    impatient = functools.partial(start_worker_on_own, env={"CONTINUST_BROKER_TIMEOUT": "10s"})
    run(publish(bootstrap, records(src, events[:800])))
    stays = start_and_wait(patient, pipeline, free_port(), repartition)
    port = free_port()
    leaves = start_and_wait(impatient, pipeline, port, repartition, others=(stays,))
    read = lambda: events_read(stays) + events_read(leaves)  # noqa: E731
    wait_until(lambda: read() > 0, 120, "the workers to read the backlog", stays.log_tail)

    own_broker.stop()
    wait_until(
        lambda: health(stays)[0] == 503 and health(stays)[1].get("broker") == "unreachable",
        30,
        "/health to report the unreachable broker",
        stays.log_tail,
    )
    assert metric(stays, "continust_broker_reachable") == 0.0
    code = wait_exit(leaves, 45, "the impatient worker to give up on the broker")
    assert code == EXIT_BROKER_LOST, f"exited with {code}\n{workers_state(leaves, lines=120)}"
    assert "event=worker.broker_lost" in leaves.log.read_text()
    # the outage lasts until the patient worker itself has been 60 s without a broker
    wait_until(
        lambda: (metric(stays, "continust_broker_unreachable_seconds") or 0) >= 60,
        120,
        "the worker to report 60 s without a broker",
        stays.log_tail,
    )
    assert stays.proc.poll() is None, f"the patient worker should outlive the outage\n{stays.log_tail()}"
    own_broker.start()
    wait_until(lambda: health(stays)[0] == 200, 60, "/health to recover", stays.log_tail)
    assert metric(stays, "continust_broker_reachable") == 1.0

    restarted = start_and_wait(patient, pipeline, port, repartition, others=(stays,))
    assert "stores=kept" in last_state_open(restarted)
    run(publish(bootstrap, records(src, events[800:])))
    wait_consumed(bootstrap, app_id, [src, repartition], [stays, restarted])
    check_keyed_stream_exact(bootstrap, src, repartition)
    check_against_model(bootstrap, app_id, prefix, stays, count_late=False)


@pytest.mark.beside
def test_a_transaction_open_through_an_outage_commits_when_the_broker_is_back(
    own_broker: LocalKafka, run_id, start_worker_on_own, tmp_path: Path
):
    """A worker holds a commit inside its transaction (its state and outputs written, its
    offsets not yet added) when the broker stops, for longer than a minute: aiokafka's default
    transaction timeout, after which the broker aborts the transaction and fences its producer.
    The worker's transactions outlast its ``broker_timeout``, so when the broker is back the
    commit goes through and the worker stays up; a worker that joins right then takes half the
    partitions, and together they finish exactly."""
    bootstrap = own_broker.bootstrap
    app_id, src, prefix, pipeline = setup(bootstrap, run_id, tmp_path, "txnout", FAST_FAILOVER)
    repartition = f"{app_id}-events-repartition"
    changelogs = [f"{app_id}-{table}-changelog" for table in TABLES]
    events = make_events(two_hours_ago(), 1_200, seed=9)
    patient = functools.partial(start_worker_on_own, env={"CONTINUST_BROKER_TIMEOUT": "5m"})
    holds = functools.partial(
        start_worker_on_own,
        env={"CONTINUST_BROKER_TIMEOUT": "5m", "CONTINUST_FAULT": "commit.in_transaction:hold"},
    )
    stays = start_and_wait(holds, pipeline, free_port(), repartition)
    run(publish(bootstrap, records(src, events[:800])))
    wait_until(
        lambda: hold_state(stays) == (1, False),
        120,
        "the worker to hold a commit in its transaction",
        stays.log_tail,
    )
    # the only worker holds its commit: every open transaction is its own
    wait_until(
        lambda: run(open_transactions(bootstrap, [repartition, *changelogs])),
        60,
        "the held transaction's records to reach the broker",
        stays.log_tail,
    )
    own_broker.stop()
    wait_until(
        lambda: (metric(stays, "continust_broker_unreachable_seconds") or 0) >= 70,
        150,
        "the worker to report 70 s without a broker, past a 60 s transaction timeout",
        stays.log_tail,
    )
    own_broker.start()
    wait_until(lambda: health(stays)[0] == 200, 90, "/health to recover", lambda: workers_state(stays))
    joins = start_and_wait(patient, pipeline, free_port(), repartition, others=(stays,))
    run(publish(bootstrap, records(src, events[800:])))
    wait_consumed(bootstrap, app_id, [src, repartition], [stays, joins])
    assert stays.proc.poll() is None, f"the worker should outlive the outage\n{workers_state(stays)}"
    assert hold_state(stays)[1], "the held commit should have gone on"
    assert "event=transaction.fenced" not in stays.log.read_text()
    check_keyed_stream_exact(bootstrap, src, repartition)
    check_against_model(bootstrap, app_id, prefix, stays, count_late=False)


def hold_state(worker: Any) -> tuple[int, bool] | None:
    """Which hold of the worker's fault plan is the latest (from 1), and whether it ended;
    ``None`` before the first."""
    try:
        marker = orjson.loads(worker.fault_marker.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return marker["held"], marker["released"]


# --------------------------------------------------------------------------------------------
# Bounded memory
# --------------------------------------------------------------------------------------------

MEMORY_PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "10s"
state_cache_mb = 2
fetch_buffer_mb = 2
store_memory_mb = 16

[[source]]
name = "events"
topics = ["{src}"]
key = "user"
timestamp = "ts"

[[table]]
name = "totals"
source = "events"
window = {{ type = "tumbling", size = "1h", retention = "30d" }}
aggregate = {{ n = "count()", s = "sum(x)" }}
emit = "update"
output = "{out}"
"""


def rss_kib(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_memory_stays_bounded_on_a_backlog_far_larger_than_the_limits(
    kafka, run_id, start_worker, tmp_path: Path
):
    """A commit interval of 10 s lets the write-back cache hold every key the worker touches in
    10 s: without a limit the worker's peak RSS grew by 313 MiB on this backlog (50,000 keys,
    100,000 events). With ``state_cache_mb = 2`` it commits early instead, pausing its fetches
    (counted in ``continust_backpressure_pauses_total``): it grew by 71 MiB (measured with the
    close schedule still in memory; it is now the store's time index), the configured limits
    (20 MiB) plus the runtime's own buffers. The bound asserted is 100 MiB. The totals are
    exact."""
    app_id, src, out = f"mem-{run_id}", f"src-mem-{run_id}", f"out-mem-{run_id}"
    run(ensure_topics(kafka, {src: PARTITIONS}))
    pipeline = tmp_path / "memory.toml"
    pipeline.write_text(MEMORY_PIPELINE.format(app_id=app_id, src=src, out=out))
    repartition = f"{app_id}-events-repartition"
    worker = start_and_wait(start_worker, pipeline, free_port(), repartition)
    baseline_kib = rss_kib(worker.proc.pid, "VmRSS")
    t0 = two_hours_ago() // 3_600_000 * 3_600_000
    users = 50_000
    backlog = [
        orjson.dumps({"user": f"user-{i % users}", "ts": t0 + i % 1_000, "x": i % 7})
        for i in range(2 * users)
    ]
    run(publish_values(kafka, src, PARTITIONS, backlog))
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    grown_mib = (rss_kib(worker.proc.pid, "VmHWM") - baseline_kib) / 1024
    pauses = metric(worker, 'continust_backpressure_pauses_total{limit="state_cache"}')
    print(f"memory: baseline {baseline_kib / 1024:.0f} MiB, peak grew {grown_mib:.0f} MiB, pauses {pauses}")
    assert pauses and pauses > 0, "the state cache limit should have paused the worker"
    assert grown_mib < 100, f"peak RSS grew {grown_mib:.0f} MiB over the idle worker's"

    want: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for value in backlog:
        event = orjson.loads(value)
        n, s = want[event["user"]]
        want[event["user"]] = (n + 1, s + event["x"])
    got: dict[str, tuple[int, int]] = {}
    for messages in run(read_to_end(kafka, out)).values():
        for m in messages:
            record = orjson.loads(m.value)
            got[record["key"]] = (record["value"]["n"], record["value"]["s"])
    assert got == dict(want)

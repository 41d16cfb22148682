"""Exactly-once under failure, on the real broker: workers are killed with SIGKILL at named
fault points (:mod:`agents.faults`) and at random moments, join and leave mid-stream, lose their
data directory, and are stopped under load.
Afterwards every output topic, read with read_committed, holds per partition exactly the
emissions of the reference model fed the keyed stream (no record lost, none duplicated, every
version sequence 1..n without a gap), and HTTP answers equal the model's windows.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiokafka.errors as Errors
import orjson
import pytest

from streams.kafka.partitioning import key_partition
from tests.integration.broker_io import (
    consumption,
    free_port,
    publish,
    publish_to,
    read_to_end,
    settled,
    stable_group_offsets,
)
from tests.integration.conftest import run, wait_exit, wait_until
from tests.integration.test_window_types import (
    PARTITIONS,
    check_against_model,
    make_events,
    records,
    setup,
    start_and_wait,
)

FAST_FAILOVER = 'session_timeout = "6s"'


def wait_consumed(kafka: str, app_id: str, topics: list[str], workers: list[Any]) -> None:
    wait_until(
        lambda: settled(kafka, app_id, topics, PARTITIONS),
        180,
        "the workers to commit all their input (and report every input idle)",
        lambda: consumption(kafka, app_id, topics) + "\n" + "\n".join(w.log_tail() for w in workers),
    )


def check_keyed_stream_exact(kafka: str, source: str, repartition: str) -> None:
    """The keyed stream (read_committed) holds every source record exactly once: the source
    stage lost nothing and duplicated nothing. The outputs are checked against a model fed
    this stream, so that check alone cannot see a source record repartitioned twice."""
    sources = run(read_to_end(kafka, source))
    keyed = run(read_to_end(kafka, repartition))
    want = Counter(r.value for records in sources.values() for r in records)
    got = Counter(
        r.value
        for records in keyed.values()
        for r in records
        if "continust-progress" not in dict(r.headers)  # the source partitions' progress reports
    )
    missing, extra = want - got, got - want
    if missing or extra:
        where = sorted(
            (r.partition, r.offset) for records in sources.values() for r in records if r.value in missing
        )
        raise AssertionError(
            f"keyed stream: {sum(missing.values())} source records missing, per source partition "
            f"{offset_ranges(where)}; {sum(extra.values())} repeated: {sorted(extra.items())[:10]}\n"
            + where_the_missing_went(kafka, repartition, set(missing))
        )


def offset_ranges(places: list[tuple[int, int]]) -> dict[int, list[tuple[int, int]]]:
    """``(partition, offset)`` pairs as runs of consecutive offsets per partition."""
    runs: dict[int, list[tuple[int, int]]] = {}
    for partition, offset in places:
        mine = runs.setdefault(partition, [])
        if mine and mine[-1][1] == offset - 1:
            mine[-1] = (mine[-1][0], offset)
        else:
            mine.append((offset, offset))
    return runs


def where_the_missing_went(kafka: str, repartition: str, missing: set[bytes]) -> str:
    """For a failure's message: whether the missing records were written to the keyed stream in
    transactions that did not commit (aborted, or still open: an open one hides every later
    record from read_committed readers), and each partition's last stable and end offsets."""
    written = run(read_to_end(kafka, repartition, "read_uncommitted"))
    found = sorted((p, r.offset) for p, records in written.items() for r in records if r.value in missing)
    committed = run(read_to_end(kafka, repartition))
    ends = {p: (records[-1].offset if records else None) for p, records in committed.items()}
    last = {p: (records[-1].offset if records else None) for p, records in written.items()}
    return (
        f"of those, {len(found)} are in the keyed stream uncommitted, at {offset_ranges(found)}; "
        f"per keyed partition, the last committed record read and the last record written: "
        f"{ {p: (ends[p], last[p]) for p in sorted(last)} }"
    )


def last_state_open(worker: Any) -> str:
    """The last ``state.open`` line of the worker's log (one log per port, appended to)."""
    lines = [line for line in worker.log.read_text().splitlines() if "event=state.open" in line]
    return lines[-1] if lines else ""


def events_read(worker: Any) -> float:
    """The worker process's ``continust_events_total``, over all sources (0 before it serves)."""
    try:
        with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
            lines = r.read().decode().splitlines()
    except OSError:
        return 0.0
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("continust_events_total{"))


def two_hours_ago() -> int:
    return int(time.time() * 1000) - 7_200_000


def committed_offsets(kafka: str, app_id: str, topics: list[str]) -> dict[str, int]:
    """The group's committed offsets, as ``{"topic:partition": offset}``, read stably: a killed
    worker's last transaction may have committed with its markers not yet applied, and a plain
    offset fetch then answers the offsets before it (asked again while the coordinator of a new
    group is not available yet)."""

    def ask() -> tuple[dict[str, int]] | None:
        try:
            return (run(stable_group_offsets(kafka, app_id, topics)),)
        except (Errors.GroupCoordinatorNotAvailableError, Errors.CoordinatorLoadInProgressError):
            return None

    return wait_until(ask, 60, f"the group coordinator of {app_id}")[0]


def kill_at(start_worker: Any, pipeline: Path, port: int, point: str) -> tuple[Any, dict[str, Any]]:
    """Start a worker told to SIGKILL itself at ``point``, and wait until it has: its exit is by
    SIGKILL and its marker names the point."""
    worker = start_worker(pipeline, port, fault=point)
    code = wait_exit(worker, 180, f"the worker to kill itself at {point}")
    fault = worker.fault()
    assert code == -signal.SIGKILL, f"exit {code}, expected the kill at {point}\n{worker.log_tail()}"
    assert fault.get("point") == point, f"the kill should land at {point}: {fault}"
    return worker, fault


# What each kill checks on the broker afterwards, from the group's committed offsets before the
# worker started and after it died, and the marker the worker wrote just before the kill.
def landed_after_a_batch(before: dict[str, int], after: dict[str, int], fault: dict[str, Any]) -> None:
    """Processed and acknowledged, never committed: the batch's first record is not covered."""
    assert after.get(fault["tp"], 0) <= fault["first_offset"], (fault, after)


def landed_in_the_transaction(before: dict[str, int], after: dict[str, int], fault: dict[str, Any]) -> None:
    """Flushed, commit not requested: none of the offsets it was committing took effect."""
    assert fault["offsets"], fault
    for tp, offset in fault["offsets"].items():
        assert after.get(tp, 0) < offset, (tp, fault, after)


def landed_after_the_commit(before: dict[str, int], after: dict[str, int], fault: dict[str, Any]) -> None:
    """The transaction committed: every offset it carried is the group's."""
    assert fault["offsets"], fault
    for tp, offset in fault["offsets"].items():
        assert after.get(tp) == offset, (tp, fault, after)


def landed_in_recovery(before: dict[str, int], after: dict[str, int], fault: dict[str, Any]) -> None:
    """Restoring a changelog, before processing anything: no offset moved."""
    assert fault["changelog"].endswith(tuple(f"-changelog:{p}" for p in range(PARTITIONS))), fault
    assert after == before


NAMED_KILLS = {
    "batch.processed": landed_after_a_batch,
    "commit.in_transaction": landed_in_the_transaction,
    "commit.done": landed_after_the_commit,
    "recovery": landed_in_recovery,
}


# The named points are shared between the two source kinds, so each is covered once a run.
KILLS_BY_SOURCE = {False: ["batch.processed", "commit.in_transaction"], True: ["commit.done", "recovery"]}


@pytest.mark.parametrize("partitioned_by_key", [False, True], ids=["repartitioned", "partitioned_by_key"])
def test_sigkill_at_fault_points_loses_and_duplicates_nothing(
    kafka, run_id, start_worker, tmp_path: Path, partitioned_by_key: bool
):
    """Four chunks of events; before each of the first three the worker dies by SIGKILL: at two
    named fault points of :mod:`agents.faults` (each kill checked to have landed there; the two
    source kinds share the four points between them), then at a random moment (where it lands
    is not asserted). Each chunk is a backlog when its worker starts. A worker killed in
    recovery restores state that a worker killed between a commit and its RocksDB write
    (``state.apply``) left in the changelog only. With
    ``partitioned_by_key`` the tables read the source topic (keyed by ``user``), and one record
    on the wrong partition is a dead letter."""
    extra = "partitioned_by_key = true" if partitioned_by_key else ""
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "kill", FAST_FAILOVER, source_extra=extra)
    keyed = src if partitioned_by_key else f"{app_id}-events-repartition"
    topics = [src] if partitioned_by_key else [src, keyed]
    rng = random.Random(run_id)
    events = make_events(two_hours_ago(), 2_400, seed=3)
    chunks = [events[i : i + 600] for i in range(0, len(events), 600)]
    port = free_port()
    kills = [*KILLS_BY_SOURCE[partitioned_by_key], "random"]
    assert len(chunks) == len(kills) + 1
    assert sorted(k for ks in KILLS_BY_SOURCE.values() for k in ks) == sorted(NAMED_KILLS)
    for n, (chunk, kill) in enumerate(zip(chunks, kills, strict=False)):
        run(publish(kafka, records(src, chunk)))
        if kill == "recovery":
            # killed after a commit carrying state and before RocksDB applied it: the next start
            # must restore that commit's changelog records, and is killed doing so
            before = committed_offsets(kafka, app_id, topics)
            _, fault = kill_at(start_worker, pipeline, port, "state.apply")
            landed_after_the_commit(before, committed_offsets(kafka, app_id, topics), fault)
        elif kill == "random":
            # a kill at a random moment of the backlog
            worker = start_and_wait(start_worker, pipeline, port, keyed)
            target = rng.randint(1, len(chunk))
            reading = worker
            wait_until(
                lambda: events_read(reading) >= target,  # noqa: B023
                120,
                "the worker to read",
                reading.log_tail,
            )
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(timeout=30)
            assert "stores=kept" in last_state_open(worker)
        if kill != "random":
            before = committed_offsets(kafka, app_id, topics)
            worker, fault = kill_at(start_worker, pipeline, port, kill)
            NAMED_KILLS[kill](before, committed_offsets(kafka, app_id, topics), fault)
            if n > 0:  # every later start follows a kill
                assert "stores=kept" in last_state_open(worker)
    run(publish(kafka, records(src, chunks[-1])))
    if partitioned_by_key:
        misplaced = orjson.dumps({"user": "ann", "ts": two_hours_ago(), "x": 1})
        run(publish_to(kafka, src, (key_partition(b"ann", PARTITIONS) + 1) % PARTITIONS, b"ann", misplaced))
    worker = start_and_wait(start_worker, pipeline, port, keyed)
    assert "stores=kept" in last_state_open(worker)
    wait_consumed(kafka, app_id, topics, [worker])
    if not partitioned_by_key:
        check_keyed_stream_exact(kafka, src, keyed)
    check_against_model(kafka, app_id, prefix, worker, count_late=False, keyed=keyed)
    if partitioned_by_key:
        letters = run(read_to_end(kafka, f"{app_id}-dead-letters"))
        assert [(r.value, dict(r.headers)["continust-reason"]) for r in letters[0]] == [
            (misplaced, b"wrong_partition")
        ]


def test_workers_joining_and_leaving_mid_stream(kafka, run_id, start_worker, tmp_path: Path):
    """A third worker joins while the first part is being read, and the first leaves (SIGTERM)
    while the second part is; where in the stream they land is not asserted."""
    app_id, src, prefix, pipeline = setup(
        kafka, run_id, tmp_path, "rebal", FAST_FAILOVER + "\ntable_standby_replicas = 1"
    )
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 1_200, seed=4)
    first = start_and_wait(start_worker, pipeline, free_port(), repartition)
    second = start_and_wait(start_worker, pipeline, free_port(), repartition, others=(first,))
    read = lambda: events_read(first) + events_read(second)  # noqa: E731
    run(publish(kafka, records(src, events[:400])))
    wait_until(lambda: read() > 0, 120, "the workers to read the first part", first.log_tail)
    third = start_and_wait(start_worker, pipeline, free_port(), repartition, others=(first, second))
    before = read()
    run(publish(kafka, records(src, events[400:800])))
    wait_until(lambda: read() > before, 120, "the workers to read the second part", first.log_tail)
    first.proc.terminate()  # leaves the group mid-stream
    assert first.proc.wait(timeout=60) == 0
    run(publish(kafka, records(src, events[800:])))
    wait_consumed(kafka, app_id, [src, repartition], [second, third])
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, second, count_late=False)
    check_against_model(kafka, app_id, prefix, third, count_late=False)


def test_a_worker_that_lost_its_data_directory_rebuilds_it(kafka, run_id, start_worker, tmp_path: Path):
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "disk", FAST_FAILOVER)
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 600, seed=5)
    port = free_port()
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events[:300])))
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    worker.proc.terminate()
    assert worker.proc.wait(timeout=60) == 0
    data_dir = tmp_path / f"data-{port}"
    assert (data_dir / "state-layout").exists()
    shutil.rmtree(data_dir)
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events[300:])))
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False)


def test_sigterm_under_load_exits_cleanly_and_in_time(kafka, run_id, start_worker, tmp_path: Path):
    """A backlog of 2,000 events; the worker SIGTERMs itself right after its first batch, so the
    stop begins while most of the input is still to read (the marker says how much it had
    processed). It stops within 30 s with every write committed, and its successor keeps the
    stores and finishes exactly."""
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "term", FAST_FAILOVER)
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 2_000, seed=6)
    run(publish(kafka, records(src, events)))
    port = free_port()
    worker = start_worker(pipeline, port, fault="batch.processed:term")
    wait_until(worker.fault, 180, "the worker to begin its stop", worker.log_tail)
    stopped_at = time.monotonic()
    assert wait_exit(worker, 30, "the worker to stop") == 0
    assert time.monotonic() - stopped_at < 30
    fault = worker.fault()
    assert fault["signal"] == "term"
    assert fault["records_processed"] < 2 * len(events), "the stop should come under load"
    log = worker.log.read_text()
    assert "event=state.close clean=True" in log, "a clean stop commits every write it made"
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    assert "stores=kept" in last_state_open(worker)
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False)

"""Exactly-once under failure, on the real broker: workers are killed with SIGKILL at random
moments, join and leave mid-stream, lose their data directory, and are stopped under load.
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

import orjson
import pytest

from streams.partitioning import key_partition
from tests.integration.broker_io import (
    consumed_everything,
    consumption,
    free_port,
    publish,
    publish_to,
    read_to_end,
)
from tests.integration.conftest import run, wait_until
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
        lambda: consumed_everything(kafka, app_id, topics),
        180,
        "the workers to commit all their input",
        lambda: consumption(kafka, app_id, topics) + "\n" + "\n".join(w.log_tail() for w in workers),
    )


def check_keyed_stream_exact(kafka: str, source: str, repartition: str) -> None:
    """The keyed stream (read_committed) holds every source record exactly once: the source
    stage lost nothing and duplicated nothing. The outputs are checked against a model fed
    this stream, so that check alone cannot see a source record repartitioned twice."""
    sources = run(read_to_end(kafka, source))
    keyed = run(read_to_end(kafka, repartition))
    want = Counter(r.value for records in sources.values() for r in records)
    got = Counter(r.value for records in keyed.values() for r in records)
    missing, extra = want - got, got - want
    where = sorted(
        (r.partition, r.offset) for records in sources.values() for r in records if r.value in missing
    )
    assert not missing and not extra, (
        f"keyed stream: {sum(missing.values())} source records missing (partition, offset): {where}; "
        f"{sum(extra.values())} repeated: {sorted(extra.items())[:10]}"
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


@pytest.mark.parametrize("partitioned_by_key", [False, True], ids=["repartitioned", "partitioned_by_key"])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    kafka, run_id, start_worker, tmp_path: Path, partitioned_by_key: bool
):
    """Each kill lands while the worker is processing a chunk: after it has read some of the
    chunk and (in most kills) before it has committed all of it. With ``partitioned_by_key``
    the tables read the source topic (keyed by ``user``), in one stage, so the kills come
    sooner; there are three of them, and one record on the wrong partition is a dead letter."""
    extra = "partitioned_by_key = true" if partitioned_by_key else ""
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "kill", FAST_FAILOVER, source_extra=extra)
    repartition = src if partitioned_by_key else f"{app_id}-events-repartition"  # the keyed stream
    topics = [src] if partitioned_by_key else [src, repartition]
    latest_kill_s = 0.1 if partitioned_by_key else 0.3
    rng = random.Random(run_id)
    events = make_events(two_hours_ago(), 2_400 if partitioned_by_key else 3_600, seed=3)
    chunks = [events[i : i + 600] for i in range(0, len(events), 600)]
    port = free_port()
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    mid_stream = 0
    for chunk in chunks[:-1]:
        run(publish(kafka, records(src, chunk)))
        reading = worker
        wait_until(lambda: events_read(reading) > 0, 120, "the worker to read the chunk", reading.log_tail)  # noqa: B023
        time.sleep(rng.uniform(0.0, latest_kill_s))
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=30)
        mid_stream += not consumed_everything(kafka, app_id, topics)
        worker = start_and_wait(start_worker, pipeline, port, repartition)
        assert "stores=rebuilt" in last_state_open(worker)
    kills = len(chunks) - 1
    assert kills >= 3
    assert mid_stream >= kills - 2, f"only {mid_stream} of the kills came before the chunk was committed"
    run(publish(kafka, records(src, chunks[-1])))
    if partitioned_by_key:
        misplaced = orjson.dumps({"user": "ann", "ts": two_hours_ago(), "x": 1})
        run(publish_to(kafka, src, (key_partition(b"ann", PARTITIONS) + 1) % PARTITIONS, b"ann", misplaced))
    wait_consumed(kafka, app_id, topics, [worker])
    if not partitioned_by_key:
        check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False, keyed=repartition)
    if partitioned_by_key:
        letters = run(read_to_end(kafka, f"{app_id}-dead-letters"))
        assert [(r.value, dict(r.headers)["continust-reason"]) for r in letters[0]] == [
            (misplaced, b"wrong_partition")
        ]


def test_workers_joining_and_leaving_mid_stream(kafka, run_id, start_worker, tmp_path: Path):
    app_id, src, prefix, pipeline = setup(
        kafka, run_id, tmp_path, "rebal", FAST_FAILOVER + "\ntable_standby_replicas = 1"
    )
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 1_200, seed=4)
    first = start_and_wait(start_worker, pipeline, free_port(), repartition)
    second = start_and_wait(start_worker, pipeline, free_port(), repartition, others=(first,))
    run(publish(kafka, records(src, events[:400])))
    time.sleep(1.0)
    third = start_and_wait(start_worker, pipeline, free_port(), repartition, others=(first, second))
    run(publish(kafka, records(src, events[400:800])))
    time.sleep(1.0)
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
    assert (data_dir / "clean-stop").exists()
    shutil.rmtree(data_dir)
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events[300:])))
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False)


def test_sigterm_under_load_exits_cleanly_and_in_time(kafka, run_id, start_worker, tmp_path: Path):
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "term", FAST_FAILOVER)
    repartition = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago(), 3_600, seed=6)
    port = free_port()
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events)))
    reading = worker
    wait_until(lambda: events_read(reading) > 0, 120, "the worker to read", reading.log_tail)
    time.sleep(0.2)
    assert not consumed_everything(kafka, app_id, [src, repartition]), "the stop should come under load"
    stopped_at = time.monotonic()
    worker.proc.terminate()
    assert worker.proc.wait(timeout=30) == 0
    assert time.monotonic() - stopped_at < 30
    log = worker.log.read_text()
    assert "event=state.close clean=True" in log, "a clean stop commits every write it made"
    worker = start_and_wait(start_worker, pipeline, port, repartition)
    assert "stores=kept" in last_state_open(worker)
    wait_consumed(kafka, app_id, [src, repartition], [worker])
    check_keyed_stream_exact(kafka, src, repartition)
    check_against_model(kafka, app_id, prefix, worker, count_late=False)

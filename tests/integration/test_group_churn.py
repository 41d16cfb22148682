"""Exactly-once through group changes while records flow, on the real broker.

A producer publishes the source topic at a steady rate from before the first group change to
after the last, never pausing for one, while the group scales out from one worker to three,
one worker leaves by SIGTERM, another is SIGKILLed, both come back, and then all three stop
and one starts again alone, with the backlog the restart left. Every step waits for
a condition (the new assignment owned, events read since), never for a time. Afterwards:

- the keyed stream (read_committed) holds every source record once: no origin twice;
- every table equals the reference model fed that stream, with every window type: over HTTP
  (state), and in the output topics, where ``emit = "final"`` and ``"change"`` tables hold
  exactly the model's records and an ``emit = "update"`` table holds for every window the
  versions 1..n without a gap or repeat, the last carrying the model's final value.

Run for both source kinds, with static (``CONTINUST_GROUP_INSTANCE_ID``) and dynamic
membership, and with standbys on and off, in two runs that cover each choice once. Each test
has a broker of its own and mostly waits for the group, so ``make test`` runs them beside the
other integration tests (marker ``beside``).
"""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.local_kafka import LocalKafka
from streams.kafka.partitioning import key_partition
from tests.integration.broker_io import free_port, read_to_end
from tests.integration.conftest import run, wait_exit, wait_until, workers_state
from tests.integration.test_exactly_once import (
    FAST_FAILOVER,
    check_keyed_stream_exact,
    events_read,
    two_hours_ago,
    wait_consumed,
)
from tests.integration.test_window_types import (
    OUTPUT_TOPIC,
    PARTITIONS,
    QUIET_USER,
    TABLES,
    USERS,
    as_emission,
    make_events,
    own_every_partition,
    references,
    setup,
)
from tests.unit.test_window_properties import ref_value

#: events published per second while the group changes, and in how many sends a second
RATE = 300
TICKS = 10
#: the most events a churn publishes (about 160 s of input)
MAX_EVENTS = 48_000


class SteadyProducer:
    """Publishes ``events`` to ``topic`` at ``RATE`` events a second, in ``TICKS`` sends a
    second, from a thread of its own, until they run out or :meth:`stop` is called. The pace
    is a rate, not a synchronisation: the test waits on conditions of the workers."""

    def __init__(self, bootstrap: str, topic: str, events: list[tuple[str, int, int]]) -> None:
        self.bootstrap, self.topic, self.events = bootstrap, topic, events
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._publish()), daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Stop publishing; returns how many events were sent."""
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the producer should stop"
        if self.error is not None:
            raise self.error
        return self.sent

    async def _publish(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        per_tick = max(1, RATE // TICKS)
        try:
            while self.sent < len(self.events) and not self._stop.is_set():
                chunk = self.events[self.sent : self.sent + per_tick]
                for user, ts, x in chunk:
                    value = orjson.dumps({"user": user, "ts": ts, "x": x})
                    await producer.send(self.topic, value, key=user.encode())
                await producer.flush()
                self.sent += len(chunk)
                # the pace of the input; stop() interrupts it at once
                await asyncio.get_running_loop().run_in_executor(None, self._stop.wait, 1 / TICKS)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            await producer.stop()


@contextmanager
def steady_input(bootstrap: str, topic: str, events: list[tuple[str, int, int]]) -> Iterator[SteadyProducer]:
    producer = SteadyProducer(bootstrap, topic, events)
    producer.start()
    try:
        yield producer
    finally:
        producer.stop()


def flowing(workers: list[Any], what: str) -> None:
    """Wait until ``workers`` together read more events than they had when called."""
    total = lambda: sum(events_read(w) for w in workers)  # noqa: E731
    before = total()
    wait_until(lambda: total() > before, 120, what, lambda: workers_state(*workers))


def owned(workers: list[Any], keyed: str, what: str) -> None:
    wait_until(
        lambda: own_every_partition(tuple(workers), keyed),
        180,
        what,
        lambda: workers_state(*workers),
    )


Emission = tuple[Any, ...]


def outputs_difference(
    got: list[Emission], offsets: list[int], expected: list[Emission], emitted_by: list[int]
) -> str:
    """What separates a partition's output records (at ``offsets`` of the output topic) from the
    model's (each made by the keyed stream's record at ``emitted_by``), in one line: how many
    are missing and extra, the first of each, the keyed offsets that made the missing ones, and
    where the two first part."""
    missing = Counter(map(repr, expected)) - Counter(map(repr, got))
    extra = Counter(map(repr, got)) - Counter(map(repr, expected))
    same = min(len(got), len(expected))
    pairs = enumerate(zip(got[:same], expected[:same], strict=True))
    first = next((i for i, (g, e) in pairs if g != e), same)
    at = f"output offset {offsets[first]}" if first < len(offsets) else "the end of the output"
    left = Counter(missing)
    made_by = []
    for emission, by in zip(expected, emitted_by, strict=True):
        if left[repr(emission)] > 0:
            left[repr(emission)] -= 1
            made_by.append(by)
    return (
        f"{len(got)} records, model {len(expected)}; parting at record {first} ({at}); "
        f"{missing.total()} missing, made by keyed offsets {offset_ranges(made_by)}, "
        f"first {list(missing)[:1]}; "
        f"{extra.total()} extra, first {list(extra)[:2]}"
    )


def offset_ranges(offsets: list[int], most: int = 6) -> str:
    """Sorted ``offsets`` as runs: ``"3-7,12"``, at most ``most`` runs."""
    runs: list[list[int]] = []
    for offset in sorted(set(offsets)):
        if runs and offset <= runs[-1][1] + 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:most])
    return text + (f" and {len(runs) - most} more runs" if len(runs) > most else "")


def check_churned(bootstrap: str, app_id: str, prefix: str, src: str, keyed: str, worker: Any) -> None:
    """Every table against the model fed the keyed stream: final and change outputs exactly,
    update outputs by versions and last values, and every key's windows over HTTP. Every
    difference is gathered before the one assertion, so a failure says whether the state
    differs too (input lost or counted twice) or only the outputs (records lost or repeated)."""
    refs = references(bootstrap, keyed, src, {})
    findings: list[str] = []
    last_version: dict[tuple[str, str, int, int], int] = {}
    for table, topic in OUTPUT_TOPIC.items():
        emit = TABLES[table][1]
        records = run(read_to_end(bootstrap, f"{prefix}-{topic}"))
        got = {p: [as_emission(r) for r in rs] for p, rs in records.items()}
        assert any(refs[(table, p)][1] for p in range(PARTITIONS)), f"the stream should make {table} emit"
        for p in range(PARTITIONS):
            expected = [tuple(e) for e in refs[(table, p)][1]]
            if emit != "update":
                if got.get(p, []) != expected:
                    offsets = [r.offset for r in records.get(p, [])]
                    findings.append(
                        f"table {table} partition {p}: outputs differ from the model: "
                        + outputs_difference(got.get(p, []), offsets, expected, refs[(table, p)][4])
                    )
                for key, start, end, version, *_ in got.get(p, []):
                    last_version[(table, key, start, end)] = version
                continue
            # one record per window and commit: versions 1..n, the last with the model's value
            versions: dict[tuple[str, int, int], list[int]] = {}
            last_value: dict[tuple[str, int, int], Any] = {}
            for key, start, end, version, value, _replaces in got.get(p, []):
                versions.setdefault((key, start, end), []).append(version)
                last_value[(key, start, end)] = value
            first_version: dict[tuple[str, int, int], int] = {}
            model_last: dict[tuple[str, int, int], Any] = {}
            for key, start, end, _version, value, replaces in expected:
                model_last[(key, start, end)] = value
                for r in replaces:  # a merged session continues from the largest version it absorbed
                    first_version[(key, start, end)] = 0
                    model_last.pop((key, *r), None)
            for window, seen in versions.items():
                start_at = seen[0]
                if seen != list(range(start_at, start_at + len(seen))):
                    findings.append(f"table {table} {window}: versions {seen} repeat or skip")
                if start_at != 1 and window not in first_version:
                    findings.append(f"table {table} {window}: starts at {start_at}")
                last_version[(table, *window)] = seen[-1]
            for window, value in model_last.items():
                if last_value.get(window) != value:
                    findings.append(
                        f"table {table} {window}: last output {last_value.get(window)}, model {value}"
                    )
    for table, (_kind, emit, names, *_rest) in TABLES.items():
        for user in [*USERS, QUIET_USER]:
            ref = refs[(table, key_partition(user.encode(), PARTITIONS))][0]
            want = [
                {"start": start, "end": end, "closed": ref.closed(end), "value": ref_value(names, w.events)}
                for (start, end), w in sorted(ref.keys.get(user, {}).items())
            ]
            status, body = worker.get(f"/api/tables/{table}/keys/{user}")
            assert status == 200, body
            windows = [{k: w[k] for k in ("start", "end", "closed", "value")} for w in body["windows"]]
            if windows != want:
                wrong = [w for w in windows if w not in want]
                findings.append(
                    f"table {table} key {user}: state differs from the model in {len(wrong)} of "
                    f"{len(windows)} windows (model {len(want)}), first {wrong[:1]}"
                )
            if emit != "update":
                for w in body["windows"]:
                    if w["version"] != last_version.get((table, user, w["start"], w["end"]), w["version"]):
                        findings.append(f"table {table} key {user} {w['start']}: version {w['version']}")
    where = "; ".join(finding.split(":", 1)[0] for finding in findings[:12])
    assert not findings, f"{len(findings)} differences from the model ({where}):\n" + "\n".join(findings)


CHURN = [
    pytest.param(False, True, True, id="repartitioned-static-standby"),
    pytest.param(True, False, False, id="partitioned_by_key-dynamic"),
]


@pytest.mark.beside
@pytest.mark.parametrize(("partitioned_by_key", "static", "standby"), CHURN)
def test_group_changes_under_steady_input_count_nothing_twice(
    own_broker: LocalKafka,
    run_id: str,
    start_worker_on_own: Any,
    tmp_path: Path,
    partitioned_by_key: bool,
    static: bool,
    standby: bool,
):
    kafka, start_worker = own_broker.bootstrap, start_worker_on_own
    app_extra = FAST_FAILOVER + ("\ntable_standby_replicas = 1" if standby else "")
    source_extra = "partitioned_by_key = true" if partitioned_by_key else ""
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "churn", app_extra, source_extra)
    keyed = src if partitioned_by_key else f"{app_id}-events-repartition"
    topics = [src] if partitioned_by_key else [src, keyed]
    # more than the churn takes, all in the past: about 1.25 s of event time an event
    events = make_events(two_hours_ago() - 86_400_000, MAX_EVENTS, seed=21)
    ports = [free_port() for _ in range(3)]

    def member(n: int) -> Callable[..., Any]:
        if not static:
            return start_worker
        return functools.partial(start_worker, env={"CONTINUST_GROUP_INSTANCE_ID": f"churn-{run_id}-{n}"})

    def start(n: int) -> Any:
        return member(n)(pipeline, ports[n])

    a = start(0)
    owned([a], keyed, "the first worker to own every partition")
    with steady_input(kafka, src, events) as producer:
        flowing([a], "the first worker to read the steady input")
        b, c = start(1), start(2)  # scale out from 1 to 3 while records flow
        owned([a, b, c], keyed, "three workers to share the partitions")
        flowing([a, b, c], "the three workers to read on")
        a.proc.send_signal(signal.SIGTERM)  # a rolling restart's stop
        assert wait_exit(a, 60, "the first worker to stop") == 0
        owned([b, c], keyed, "two workers to own every partition after the SIGTERM")
        flowing([b, c], "the two workers to read on")
        b.proc.send_signal(signal.SIGKILL)  # a node failure
        b.proc.wait(timeout=30)
        owned([c], keyed, "the last worker to own every partition after the SIGKILL")
        flowing([c], "the last worker to read on")
        b = start(1)  # the killed one restarts, then the stopped one
        owned([b, c], keyed, "the restarted worker to take partitions back")
        flowing([b, c], "two workers to read on after the restart")
        a = start(0)
        owned([a, b, c], keyed, "three workers again")
        flowing([a, b, c], "three workers to read on")
        for worker in (a, b, c):  # a full restart while records flow: a backlog builds up ...
            worker.proc.send_signal(signal.SIGTERM)
            assert wait_exit(worker, 60, "every worker to stop") == 0
        a = start(0)  # ... which one worker reads alone, from its own disk
        owned([a], keyed, "one worker to own every partition after the full restart")
        flowing([a], "the restarted worker to read on")
        sent = producer.stop()
    assert sent > RATE, f"only {sent} events were published while the group changed"
    print(f"churn: {sent} events published while the group changed")
    wait_consumed(kafka, app_id, topics, [a])
    try:
        if not partitioned_by_key:
            check_keyed_stream_exact(kafka, src, keyed)
        check_churned(kafka, app_id, prefix, src, keyed, a)
    except AssertionError as exc:
        logs = sorted(tmp_path.glob("worker-*.log"))  # every worker's, restarts appended
        # the finding last too: a report that keeps only the end of the output still shows it
        finding = " | ".join(str(exc).splitlines()[:8])[:2000]
        raise AssertionError(f"{exc}\n{notable_lines(logs)}\n--- finding: {finding}") from None


#: log lines worth reading when the group's result is wrong
NOTABLE = (
    "level=error",
    "level=critical",
    "Revoking",
    "Setting newly assigned",
    "rebalance.",
    "consumer.",
    "seek",
)


def notable_lines(logs: list[Path], most: int = 150) -> str:
    """The lines of each worker log that say what happened to the group and the partitions
    (errors, revocations, assignments, rewinds), at most ``most`` per log."""
    parts = []
    for log in logs:
        lines = [
            line[:400]
            for line in log.read_text(errors="replace").splitlines()
            if any(n in line for n in NOTABLE)
        ]
        parts.append(f"--- {log.name}: {len(lines)} notable lines\n" + "\n".join(lines[-most:]))
    return "\n".join(parts)


# A hold at each step of a commit and of a batch's write path, alternating with the group change
# that releases it: a join while the worker reads alone (the batch points need it to own input),
# a leave while two share the input.
HOLDS = [
    "batch.started",
    "commit.held_back",
    "batch.written",
    "commit.outputs",
    "batch.processed",
    "commit.state",
    "commit.send_buffer",
    "commit.offsets",
    "commit.writes_without_offsets",
    "commit.after",
]


def holds_released(worker: Any) -> list[str]:
    """The points of ``worker``'s holds (:mod:`agents.faults`) a revocation released so far, in
    order; fails the test when the worker exited or a hold ended without a revocation."""
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker exited:\n{worker.log_tail()}")
    fault = worker.fault()
    if fault.get("timed_out_points"):
        raise AssertionError(f"no revocation released the holds at {fault['timed_out_points']}")
    return list(fault.get("released_points", []))


def reached_hold(worker: Any, n: int) -> bool:
    """Whether ``worker`` holds at its ``n``-th hold, or a revocation released it already (one
    group change often makes several rebalances in a row)."""
    fault = worker.fault()
    return fault.get("held") == n or len(holds_released(worker)) >= n


@pytest.mark.beside
def test_a_revocation_at_each_step_of_a_commit_and_a_batch_counts_nothing_twice(
    own_broker: LocalKafka, run_id: str, start_worker_on_own: Any, tmp_path: Path
):
    """The worker stops at each named step of a commit (:class:`agents.commit_order.Step`) and
    of the source stage's write path (batch started, written, acknowledged), with input
    flowing, until a rebalance revokes its partitions (another worker joins or leaves; one
    such change often makes several rebalances, and a later one may release the next hold);
    the revocation, and the assignment after it, arrive while it is at that step. A
    revocation releases every hold, in order; every source record reaches the keyed stream
    once and every table equals the model."""
    kafka, start_worker = own_broker.bootstrap, start_worker_on_own
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "steps", FAST_FAILOVER)
    keyed = f"{app_id}-events-repartition"
    events = make_events(two_hours_ago() - 86_400_000, MAX_EVENTS, seed=22)
    a = start_worker(pipeline, free_port(), fault=";".join(f"{point}:hold" for point in HOLDS))
    owned([a], keyed, "the first worker to own every partition")
    b: Any = None

    def state() -> str:
        return workers_state(*([a] if b is None else [a, b]))

    with steady_input(kafka, src, events) as producer:
        for n, point in enumerate(HOLDS, 1):
            wait_until(lambda: reached_hold(a, n), 120, f"the worker to hold at {point}", state)  # noqa: B023
            if b is None:
                b = start_worker(pipeline, free_port())  # joins: a rebalance (a new member each time)
            else:
                b.proc.send_signal(signal.SIGTERM)  # leaves: a rebalance
                assert wait_exit(b, 60, "the second worker to stop") == 0
                b = None
            wait_until(lambda: len(holds_released(a)) >= n, 120, f"a revocation to release {point}", state)  # noqa: B023
            owned([a] if b is None else [a, b], keyed, "the workers to share the partitions after the change")
        assert holds_released(a) == HOLDS, "a revocation released each hold, in order"
        flowing([a], "the worker to read on after the last hold")
        sent = producer.stop()
    print(f"steps: {sent} events published over {len(HOLDS)} held revocations")
    workers = [a] if b is None else [a, b]
    wait_consumed(kafka, app_id, [src, keyed], workers)
    check_keyed_stream_exact(kafka, src, keyed)
    check_churned(kafka, app_id, prefix, src, keyed, a)

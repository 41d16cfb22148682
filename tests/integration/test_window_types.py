"""Every window type on the real broker, checked against the reference model of the property
tests (:mod:`tests.unit.test_window_properties`), and a table whose chain of user functions
(a filter, then a map: :mod:`tests.integration.window_chain`) runs before its windows.

The model is fed the keyed stream exactly as the worker saw it: the repartition topic read back
with read_committed, partition by partition in offset order. Output topics must then hold,
per partition and in order, exactly the model's emissions (``emit = "update"``: the model's
per-change records coalesced at commits, see :func:`match_commits`); HTTP answers must equal the
model's live windows; late events are counted per table; a key whose windows all passed their
retention is tombstoned in the changelog.
"""

from __future__ import annotations

import copy
import random
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streams.kafka.partitioning import key_partition
from streams.kafka.topic_admin import ensure_topics
from streams.plan.causation import read_cause
from tests.integration import window_chain
from tests.integration.broker_io import (
    consumed_everything,
    consumption,
    free_port,
    publish,
    read_to_end,
    settled,
)
from tests.integration.conftest import run, wait_until
from tests.unit.test_window_properties import Coalesced, Reference, ReferenceInputs, ref_value
from windows.store_layout import parse_index_key, parse_window_key

PARTITIONS = 3
USERS = ["ann", "ben", "cai", "dee", "eli", "fay"]
QUIET_USER = "zed"  # active only at the start: every window of it expires, the key is deleted

PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"
{app_extra}

[[source]]
name = "events"
topics = ["{src}"]
key = "user"
timestamp = "ts"
idle_after = "1s"
{source_extra}

[[table]]
name = "sliding"
source = "events"
window = {{ type = "sliding", size = "60s", slide = "20s", grace = "10s", retention = "2m" }}
aggregate = {{ n = "count()", s = "sum(x)", first = "first(x)", last = "last(x)" }}
emit = "change"
output = "{prefix}-sliding"

[[table]]
name = "sessions"
source = "events"
window = {{ type = "session", gap = "10s", grace = "5s", retention = "2m" }}
aggregate = {{ n = "count()", s = "sum(x)", lo = "min(x)", hi = "max(x)", mean = "avg(x)" }}
emit = "final"
output = "{prefix}-sessions"

[[table]]
name = "sessions_update"
source = "events"
window = {{ type = "session", gap = "10s", grace = "5s", retention = "2m" }}
aggregate = {{ n = "count()", last = "last(x)" }}
emit = "update"
output = "{prefix}-sessions-update"

[[table]]
name = "tumbling"
source = "events"
window = {{ type = "tumbling", size = "60s", grace = "0s", retention = "1m" }}
aggregate = {{ n = "count()", first = "first(x)", last = "last(x)" }}
emit = "final"
output = "{prefix}-tumbling"

[[table]]
name = "chained"
source = "events"
operators = [
    {{ filter = "tests.integration.window_chain:keep" }},
    {{ map = "tests.integration.window_chain:scaled" }},
]
window = {{ type = "tumbling", size = "30s", grace = "5s", retention = "1m" }}
aggregate = {{ n = "count()", s = "sum(x)", last = "last(x)" }}
emit = "final"
output = "{prefix}-chained"
"""

# name -> (kind, emit, aggregate names, grace, retention, size, slide, gap), as in PIPELINE
TABLES: dict[str, tuple[str, str, tuple[str, ...], int, int, int, int, int]] = {
    "sliding": ("sliding", "change", ("n", "s", "first", "last"), 10_000, 120_000, 60_000, 20_000, 0),
    "sessions": ("session", "final", ("n", "s", "lo", "hi", "mean"), 5_000, 120_000, 0, 0, 10_000),
    "sessions_update": ("session", "update", ("n", "last"), 5_000, 120_000, 0, 0, 10_000),
    "tumbling": ("tumbling", "final", ("n", "first", "last"), 0, 60_000, 60_000, 60_000, 0),
    "chained": ("tumbling", "final", ("n", "s", "last"), 5_000, 60_000, 30_000, 30_000, 0),
}
OUTPUT_TOPIC = {
    "sliding": "sliding",
    "sessions": "sessions",
    "sessions_update": "sessions-update",
    "tumbling": "tumbling",
    "chained": "chained",
}
#: a table's user functions, as its operators in PIPELINE: the events it keeps, and what each
#: kept event becomes
CHAINS: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "chained": (window_chain.keep, window_chain.scaled),
}


def make_events(t0: int, count: int, seed: int) -> list[tuple[str, int, int]]:
    """Bursts of activity per user (so sessions open and close), out-of-order timestamps within
    grace, and some far-late ones."""
    rng = random.Random(seed)
    clock, events = t0, []
    for i in range(count):
        clock += rng.randint(0, 2_500)
        if i < 20:
            user = QUIET_USER if i % 2 else rng.choice(USERS)
        else:
            active = (i // 40) % len(USERS)
            user = USERS[(active + rng.randint(0, 1)) % len(USERS)]
        roll = rng.random()
        if roll < 0.08:
            ts = clock - rng.randint(60_000, 200_000)
        elif roll < 0.3:
            ts = clock - rng.randint(0, 20_000)
        else:
            ts = clock
        events.append((user, ts, rng.randint(-5, 20)))
    return events


def records(topic: str, events: list[tuple[str, int, int]]) -> list[tuple[str, bytes | None, bytes]]:
    return [(topic, u.encode(), orjson.dumps({"user": u, "ts": ts, "x": x})) for u, ts, x in events]


# One item of the keyed stream, as a table partition reads it: ("event", key, payload, event
# time, arrival, input, the input's progress before it or "tracked", offset), or ("progress",
# input, progress, idle, offset).
Item = tuple[Any, ...]


def source_progress(bootstrap: str, source_topic: str) -> dict[tuple[int, int], int | None]:
    """Per (input, offset) of the source topic (one topic: input = partition), the input's
    progress before that record: the largest event time of the records before it. Computed
    from the source topic, independently of what the source stage wrote."""
    answer: dict[tuple[int, int], int | None] = {}
    for partition, messages in run(read_to_end(bootstrap, source_topic)).items():
        progress = None
        for m in messages:
            answer[(partition, m.offset)] = progress
            ts = orjson.loads(m.value)["ts"]
            progress = ts if progress is None else max(progress, ts)
    return answer


def keyed_items(bootstrap: str, keyed: str, source_topic: str) -> dict[int, list[Item]]:
    """The keyed stream as the tables see it, per partition, in offset order. ``keyed`` is the
    repartition topic (event time, origin and progress records in headers), or the source topic
    of a source partitioned by key, whose records on another partition than their key's are dead
    letters. A repartitioned record's progress header must be what the source topic says."""
    answer: dict[int, list[Item]] = {}
    repartitioned = keyed != source_topic
    own_before = source_progress(bootstrap, source_topic) if repartitioned else {}
    for partition, messages in run(read_to_end(bootstrap, keyed)).items():
        items = answer[partition] = []
        for m in messages:
            headers = dict(m.headers)
            if "continust-progress" in headers:
                source, progress, idle = headers["continust-progress"].decode().split(" ")
                report = (int(source), None if progress == "-" else int(progress), idle == "1")
                items.append(("progress", *report, m.offset))
                continue
            payload = orjson.loads(m.value)
            if repartitioned:
                source, offset, own = headers["continust-origin"].decode().split(" ")
                expected_own = own_before[(int(source), int(offset))]
                assert (None if own == "-" else int(own)) == expected_own, (m, expected_own)
                ts, arrival = int(headers["continust-ts"]), int(offset) * PARTITIONS + int(source)
                items.append(
                    ("event", m.key.decode(), payload, ts, arrival, int(source), expected_own, m.offset)
                )
            elif key_partition(payload["user"].encode(), PARTITIONS) == partition:
                items.append(
                    ("event", payload["user"], payload, payload["ts"], m.offset, 0, "tracked", m.offset)
                )
    return answer


def references(
    bootstrap: str, keyed: str, source_topic: str, count_from: dict[int, int]
) -> dict[tuple[str, int], tuple[Reference, list[Any], int, list[tuple[str, int, Any]], list[int]]]:
    """Per (table, partition): the model after the keyed stream, its emissions in order, how
    many events at or after offset ``count_from[partition]`` of the keyed stream it found late,
    the events it did not find late, in order, as (key, event time, the source record they
    were read from as a :data:`streams.plan.causation.Cause`), and for each emission the offset
    of the keyed stream's record that made it. A repartitioned partition is fed by every source
    partition."""
    stream = keyed_items(bootstrap, keyed, source_topic)
    inputs = 1 if keyed == source_topic else PARTITIONS
    answer = {}
    for table, (kind, emit, names, grace, retention, size, slide, gap) in TABLES.items():
        for partition, items in stream.items():
            # emit = "update" is checked against the per-change records (match_commits)
            ref = Reference(
                kind, "change" if emit == "update" else emit, names, grace, retention, size, slide, gap
            )
            model = ReferenceInputs(ref, inputs)
            emissions: list[Any] = []
            emitted_by: list[int] = []
            late = 0
            kept: list[tuple[str, int, Any]] = []
            for item in items:
                if item[0] == "progress":
                    reported = model.report(*item[1:4])
                    emissions.extend(reported)
                    emitted_by.extend([item[4]] * len(reported))
                    continue
                _, key, payload, ts, arrival, source, own, offset = item
                if table in CHAINS:
                    keep, transform = CHAINS[table]
                    if not keep(payload):  # dropped: its time still moves its input's progress
                        passed = model.passed(source, ts)
                        emissions.extend(passed)
                        emitted_by.extend([offset] * len(passed))
                        continue
                    payload = transform(payload)
                status, was_late, out = model.event(source, own, key, payload, ts, arrival)
                assert status == "ok"
                late += was_late and offset >= count_from.get(partition, 0)
                emissions.extend(out)
                emitted_by.extend([offset] * len(out))
                if not was_late:  # a repartitioned event's arrival is its source offset * inputs + input
                    read_at = (source, arrival // inputs) if inputs > 1 else (partition, offset)
                    kept.append((key, ts, (source_topic, *read_at, None, None)))
            answer[(table, partition)] = (ref, emissions, late, kept, emitted_by)
    return answer


def match_commits(changes: list[Any], outputs: list[Any]) -> bool:
    """Whether ``outputs`` (``emit = "update"``) are ``changes`` (the model's per-change records)
    coalesced at some sequence of commits, every change committed: the commits are not visible
    in the output, so the cut after each committed group is searched for, longest first."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(changes) + 100))
    try:
        return _match(changes, outputs, 0, 0, Coalesced())
    finally:
        sys.setrecursionlimit(limit)


def _match(changes: list[Any], outputs: list[Any], i: int, o: int, state: Coalesced) -> bool:
    if o == len(outputs):
        return i == len(changes)
    running = copy.deepcopy(state)
    candidates = []
    for j in range(i, len(changes)):
        running.change(changes[j])
        group = copy.deepcopy(running).commit()
        if outputs[o : o + len(group)] == group:
            candidates.append((j + 1, len(group)))
    for j, size in reversed(candidates):
        after = copy.deepcopy(state)
        for change in changes[i:j]:
            after.change(change)
        after.commit()
        if _match(changes, outputs, j, o + size, after):
            return True
    return False


def as_emission(record: Any) -> tuple[Any, ...]:
    value = orjson.loads(record.value)
    assert record.key == value["key"].encode()
    replaces = tuple(tuple(w) for w in value.get("replaces", ()))
    return (value["key"], value["start"], value["end"], value["version"], value["value"], replaces)


def late_counts(worker: Any) -> dict[str, float]:
    counts = {}
    with urllib.request.urlopen(worker.url("/metrics"), timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("continust_late_events_total{"):
                table = line.split('table="', 1)[1].split('"', 1)[0]
                counts[table] = float(line.rsplit(" ", 1)[1])
    return counts


def check_against_model(
    bootstrap: str,
    app_id: str,
    prefix: str,
    worker: Any,
    started_at: dict[int, int] | None = None,
    count_late: bool = True,
    keyed: str | None = None,
    source: str | None = None,
) -> None:
    """``started_at``: the keyed stream's offsets at which the worker process started, since its
    late-event counters start at zero; ``count_late=False`` when they cannot be known (several
    workers, or a killed one). ``keyed``: the keyed stream's topic, when it is not the
    repartition topic (a source partitioned by key)."""
    source = source or f"src-{prefix.removeprefix('out-')}"  # as setup() names them
    refs = references(bootstrap, keyed or f"{app_id}-events-repartition", source, started_at or {})
    emitted: dict[tuple[str, str, int, int], int] = {}  # the last version of each window's records
    for table, topic in OUTPUT_TOPIC.items():
        expected = {p: refs[(table, p)][1] for p in range(PARTITIONS)}
        total = sum(len(e) for e in expected.values())
        assert total > 0, f"the stream should make {table} emit"
        if table == "sessions_update":
            assert any(e[5] for e in expected.values() for e in e), "the stream should merge sessions"
        # every input is committed by now, so is every output: read them to the end offsets
        got: dict[int, list[Any]] = {p: [] for p in range(PARTITIONS)}
        causes: dict[int, list[Any]] = {p: [] for p in range(PARTITIONS)}
        for p, records in run(read_to_end(bootstrap, f"{prefix}-{topic}")).items():
            got[p] = [as_emission(r) for r in records]
            causes[p] = [read_cause(r.headers) for r in records]
        for p in range(PARTITIONS):
            for key, start, end, version, *_ in got[p]:
                emitted[(table, key, start, end)] = version
            if TABLES[table][1] == "update":
                assert match_commits([tuple(e) for e in expected[p]], got[p]), (
                    f"table {table} partition {p}: {got[p]} is not {expected[p]} coalesced at commits"
                )
            else:
                assert got[p] == [tuple(e) for e in expected[p]], f"table {table} partition {p}"
        if TABLES[table][1] == "final":
            windows = [(e[0], e[1], e[2]) for p in range(PARTITIONS) for e in got[p]]
            assert len(windows) == len(set(windows)), f"{table}: a window was emitted twice"
            # a final record names the source record of the last event that changed its window
            # (saved with the window, so across the kills and restarts of the stream): for a
            # tumbling window, the last event in it the model did not find late; a session's is
            # one of its events (an event in the span of a closed session starts a session of
            # its own, so the span alone does not say which was last)
            for p in range(PARTITIONS):
                kept = refs[(table, p)][3]
                for (key, start, end, *_), cause in zip(got[p], causes[p], strict=True):
                    inside = [c for k, ts, c in kept if k == key and start <= ts < end]
                    where = f"{table} {key} [{start}, {end}): cause {cause}"
                    if TABLES[table][0] == "tumbling":
                        assert cause == inside[-1], f"{where}, not {inside[-1]}"
                    else:
                        assert cause in inside, f"{where}, not one of {inside}"

    for table, (_kind, _emit, names, *_rest) in TABLES.items():
        for user in [*USERS, QUIET_USER]:
            ref = refs[(table, key_partition(user.encode(), PARTITIONS))][0]
            want = [
                {
                    "start": start,
                    "end": end,
                    "closed": ref.closed(end),
                    "value": ref_value(names, w.events),
                    # emit = "update": the records emitted, which depends on the commits
                    "version": w.version
                    if TABLES[table][1] != "update"
                    else emitted.get((table, user, start, end), 0),
                }
                for (start, end), w in sorted(ref.keys.get(user, {}).items())
            ]
            status, body = worker.get(f"/api/tables/{table}/keys/{user}")
            assert status == 200
            assert body["windows"] == want, f"table {table} key {user}"

    late = {table: sum(refs[(table, p)][2] for p in range(PARTITIONS)) for table in TABLES}
    if count_late:
        assert all(late.values()), f"the stream should hold late events for every table: {late}"
        assert late_counts(worker) == late


def start_and_wait(
    start_worker: Any, pipeline: Path, port: int, repartition: str, others: tuple[Any, ...] = ()
) -> Any:
    """Start a worker and wait until it and ``others`` together own every partition of the
    keyed stream, each answering HTTP."""
    worker = start_worker(pipeline, port)
    everyone = (worker, *others)
    wait_until(
        lambda: own_every_partition(everyone, repartition),
        180,
        "the workers to own every partition",
        lambda: "\n".join(w.log_tail() for w in everyone),
    )
    return worker


def own_every_partition(workers: tuple[Any, ...], repartition: str) -> bool:
    """Whether ``workers`` together own every partition of the keyed stream, each some."""
    owned: set[str] = set()
    for w in workers:
        if w.proc.poll() is not None:
            raise AssertionError(f"worker exited:\n{w.log_tail()}")
        try:
            mine = w.get("/health")[1]["active_partitions"]
        except OSError:
            return False
        if not any(p.startswith(repartition) for p in mine):
            return False
        owned |= set(mine)
    return {f"{repartition}:{i}" for i in range(PARTITIONS)} <= owned


def setup(
    kafka: str, run_id: str, tmp_path: Path, name: str, app_extra: str = "", source_extra: str = ""
) -> tuple[str, str, str, Path]:
    app_id, src, prefix = f"{name}-{run_id}", f"src-{run_id}", f"out-{run_id}"
    run(ensure_topics(kafka, {src: PARTITIONS}))
    pipeline = tmp_path / "pipelines.toml"
    pipeline.write_text(
        PIPELINE.format(app_id=app_id, src=src, prefix=prefix, app_extra=app_extra, source_extra=source_extra)
    )
    return app_id, src, prefix, pipeline


def test_every_window_type_matches_the_model(kafka, run_id, start_worker, tmp_path: Path):
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "wt")
    repartition = f"{app_id}-events-repartition"
    worker = start_and_wait(start_worker, pipeline, free_port(), repartition)
    t0 = int(time.time() * 1000) - 7_200_000
    run(publish(kafka, records(src, make_events(t0, 400, seed=1))))
    wait_until(
        lambda: settled(kafka, app_id, [src, repartition], PARTITIONS),
        120,
        "the worker to commit all its input",
        lambda: consumption(kafka, app_id, [src, repartition]) + "\n" + worker.log_tail(),
    )
    check_against_model(kafka, app_id, prefix, worker)

    # The quiet key's windows all passed their retention: each window record and each of its
    # index entries ends in a tombstone in the changelog, so compaction forgets them.
    changelog = run(read_to_end(kafka, f"{app_id}-tumbling-changelog"))
    partition = key_partition(QUIET_USER.encode(), PARTITIONS)
    last: dict[bytes, bytes | None] = {}
    windows = set()
    for m in changelog[partition]:
        if m.key.startswith(b"W") and parse_window_key(m.key)[0] == QUIET_USER:
            windows.add(m.key)
            last[m.key] = m.value
        elif m.key.startswith(b"T") and parse_index_key(m.key).key == QUIET_USER:
            last[m.key] = m.value
    assert windows, "expected the quiet key's window records in the changelog"
    assert all(value is None for value in last.values()), "expected a tombstone as each one's last record"


def test_a_restart_mid_stream_continues_exactly(kafka, run_id, start_worker, tmp_path: Path):
    """Stream time, open windows, retention and final emissions continue across a stop and a
    start as if the worker had run through: the model, fed the whole keyed stream, agrees."""
    app_id, src, prefix, pipeline = setup(kafka, run_id, tmp_path, "wr")
    repartition = f"{app_id}-events-repartition"
    port = free_port()
    events = make_events(int(time.time() * 1000) - 7_200_000, 300, seed=2)

    first = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events[:150])))
    wait_until(
        lambda: consumed_everything(kafka, app_id, [src, repartition]),
        120,
        "the first half",
        lambda: consumption(kafka, app_id, [src, repartition]) + "\n" + first.log_tail(),
    )
    first.proc.terminate()
    assert first.proc.wait(timeout=60) == 0
    restart_offsets = {p: m[-1].offset + 1 for p, m in run(read_to_end(kafka, repartition)).items() if m}

    second = start_and_wait(start_worker, pipeline, port, repartition)
    run(publish(kafka, records(src, events[150:])))
    wait_until(
        lambda: settled(kafka, app_id, [src, repartition], PARTITIONS),
        120,
        "the second half",
        second.log_tail,
    )
    check_against_model(kafka, app_id, prefix, second, started_at=restart_offsets)

"""The stage test driver (:mod:`agents.stage_driver`) runs the worker's real stages without a
broker, and through it the exactly-once contract of the stages is checked without one:
whatever the batch sizes, the commits, the crashes (with or without the disk) and the
rebalances, every table ends with the state and the committed output records of one
uninterrupted run, which is itself the reference model's."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.stage_driver import StageDriver
from streams.kafka.partitioning import key_partition
from streams.plan.pipeline import Pipeline, parse_pipeline
from tests.unit.test_window_properties import Reference, ReferenceInputs, ref_value

PARTITIONS = 2
USERS = ["ann", "ben", "cai", "dee"]
TABLES = {
    # name: (window, emit)
    "tumbling": ({"type": "tumbling", "size": "10s", "grace": "2s", "retention": "1h"}, "final"),
    "sliding": (
        {"type": "sliding", "size": "10s", "slide": "5s", "grace": "2s", "retention": "1h"},
        "change",
    ),
    "sessions": ({"type": "session", "gap": "4s", "grace": "2s", "retention": "1h"}, "update"),
}
NAMES = ("n", "s")


def pipeline(partitioned_by_key: bool) -> Pipeline:
    return parse_pipeline(
        {
            "app": {"id": "drv"},
            "source": [
                {
                    "name": "events",
                    "topics": ["src"],
                    "key": "user",
                    "timestamp": "ts",
                    "partitioned_by_key": partitioned_by_key,
                }
            ],
            "table": [
                {
                    "name": name,
                    "source": "events",
                    "window": window,
                    "aggregate": {"n": "count()", "s": "sum(x)"},
                    "emit": emit,
                    "output": f"out-{name}",
                }
                for name, (window, emit) in TABLES.items()
            ],
        }
    )


#: an event: user, event time (ms), amount, and the source partition it goes to when the
#: source is not partitioned by key (the two inputs of a repartitioned table drift apart)
Event = tuple[str, int, int, int]

events_strategy = st.lists(
    st.tuples(
        st.sampled_from(USERS), st.integers(0, 3_000), st.integers(-3, 9), st.booleans(), st.integers(0, 1)
    ),
    min_size=1,
    max_size=60,
).map(
    # event time moves on by up to 3 s an event; some events are 4 s behind it (past grace)
    lambda steps: [
        (user, max(0, clock - (4_000 if behind else 0)), x, partition)
        for (user, _step, x, behind, partition), clock in zip(
            steps, _running([s[1] for s in steps]), strict=True
        )
    ]
)


def _running(steps: list[int]) -> list[int]:
    total, out = 0, []
    for step in steps:
        total += step
        out.append(total)
    return out


def send(driver: StageDriver, events: list[Event], partitioned_by_key: bool) -> None:
    """Each event to the partition of its key (partitioned by key) or to its own."""
    for user, ts, x, partition in events:
        target = key_partition(user.encode(), PARTITIONS) if partitioned_by_key else partition
        value = orjson.dumps({"user": user, "ts": ts, "x": x})
        driver.send("src", target, [(user.encode(), value, [], 0)])


def outputs(driver: StageDriver) -> dict[str, dict[int, list[tuple[Any, ...]]]]:
    """Per table, its committed output records per partition, in order."""
    found: dict[str, dict[int, list[tuple[Any, ...]]]] = {}
    for name in TABLES:
        found[name] = {}
        for partition, records in driver.committed_records(f"out-{name}").items():
            rows = []
            for record in records:
                value = orjson.loads(record.value)
                replaces = tuple(tuple(r) for r in value.get("replaces", ()))
                rows.append(
                    (value["key"], value["start"], value["end"], value["version"], value["value"], replaces)
                )
            found[name][partition] = rows
    return found


def state(driver: StageDriver) -> dict[str, list[tuple[Any, ...]]]:
    """Per table, every window of every partition: key, start, end, aggregation states."""
    return {
        name: [
            (p, key, w.start, w.end, w.states)
            for p in range(PARTITIONS)
            for key, w in driver.table(name).store.scan_windows(p)
        ]
        for name in TABLES
    }


def uninterrupted(events: list[Event], partitioned_by_key: bool) -> StageDriver:
    driver = StageDriver(pipeline(partitioned_by_key), PARTITIONS)
    send(driver, events, partitioned_by_key)
    asyncio.run(driver.run())
    return driver


Step = tuple[str, int]
steps_strategy = st.lists(
    st.tuples(st.sampled_from(["process", "commit", "crash", "lose_disk", "rebalance"]), st.integers(1, 4)),
    max_size=12,
)


def interrupted(
    events: list[Event], partitioned_by_key: bool, max_batch: int, steps: list[Step]
) -> StageDriver:
    """The same events, fetched ``max_batch`` records at a time, through ``steps``: some
    batches processed, a commit, a crash (with or without the disk), a rebalance; then run to
    the end."""
    driver = StageDriver(pipeline(partitioned_by_key), PARTITIONS, max_batch=max_batch)
    send(driver, events, partitioned_by_key)

    async def scenario() -> None:
        for step, n in steps:
            if step == "process":
                await driver.process(max_batches=n)
            elif step == "commit":
                await driver.commit()
            elif step == "rebalance":
                await driver.rebalance()
            else:
                await driver.crash(lose_disk=step == "lose_disk")
        await driver.run()

    asyncio.run(scenario())
    return driver


def last_values(rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], Any] | None:
    """Per window (key, start, end) still standing, the value of its last record; ``None`` when
    a window's versions do not run on by one (a session that absorbs others continues from
    the largest version it absorbed)."""
    live: dict[tuple[Any, ...], Any] = {}
    versions: dict[tuple[Any, ...], int] = {}
    for key, start, end, version, value, replaces in rows:
        window = (key, start, end)
        before = versions.get(window)
        if before is not None and version != before + 1:
            return None
        if before is None and version != 1 and not replaces:
            return None
        for absorbed in replaces:
            live.pop((key, *absorbed), None)
        versions[window], live[window] = version, value
    return live


def same_outputs(got: dict[int, list[Any]], want: dict[int, list[Any]], emit: str, ordered: bool) -> bool:
    """Whether two runs' outputs of one table agree: ``final`` and ``change`` records exactly
    (in order, when the keyed stream's order is the source's), ``update`` records by each
    window's versions and last value (a commit coalesces its changes)."""
    for partition in set(got) | set(want):
        a, b = got.get(partition, []), want.get(partition, [])
        if emit == "update" or (emit == "change" and not ordered):
            # a repartitioned partition interleaves its inputs as they were processed: each
            # window's versions still run on by one and end at the same value
            mine = last_values(a)
            if mine is None or mine != last_values(b):
                return False
        elif ordered:
            if a != b:
                return False
        elif Counter(map(repr, a)) != Counter(map(repr, b)):
            return False
    return True


@settings(max_examples=150, deadline=None)
@given(
    events=events_strategy,
    partitioned_by_key=st.booleans(),
    max_batch=st.integers(1, 7),
    steps=steps_strategy,
)
def test_batches_commits_crashes_and_rebalances_change_no_table(
    events: list[Event], partitioned_by_key: bool, max_batch: int, steps: list[Step]
) -> None:
    want = uninterrupted(events, partitioned_by_key)
    got = interrupted(events, partitioned_by_key, max_batch, steps)
    assert state(got) == state(want)
    mine, theirs = outputs(got), outputs(want)
    for name, (_window, emit) in TABLES.items():
        assert same_outputs(mine[name], theirs[name], emit, ordered=partitioned_by_key), name


def test_an_uninterrupted_run_is_the_reference_model() -> None:
    """Keyed by user, each table partition reads one input in offset order: its windows, their
    values, and its ``final`` and ``change`` records are the reference model's
    (``tests/unit/test_window_properties.py``), late events included."""
    events = [(USERS[i % 3], 1_000 * i - (6_000 if i % 7 == 3 else 0), i % 5, 0) for i in range(40)]
    driver = uninterrupted(events, partitioned_by_key=True)
    produced = outputs(driver)
    for name, (_window, emit) in TABLES.items():
        stage = driver.table(name)
        spec = stage.spec.window
        size = getattr(spec, "size_ms", 0)
        kind = {"TumblingWindows": "tumbling", "SlidingWindows": "sliding"}.get(
            type(spec).__name__, "session"
        )
        for partition in range(PARTITIONS):
            ref = Reference(
                kind,
                "change" if emit == "update" else emit,
                NAMES,
                spec.grace_ms,
                spec.retention_ms,
                size,
                getattr(spec, "slide_ms", size),
                getattr(spec, "gap_ms", 0),
            )
            model = ReferenceInputs(ref, 1)
            expected: list[tuple[Any, ...]] = []
            mine = [
                (u, ts, x) for u, ts, x, _ in events if key_partition(u.encode(), PARTITIONS) == partition
            ]
            for offset, (user, ts, x) in enumerate(mine):
                status, _late, out = model.event(
                    0, "tracked", user, {"user": user, "ts": ts, "x": x}, ts, offset
                )
                assert status == "ok"
                expected.extend(out)
            windows = [
                (key, w.start, w.end, stage.aggregate.value(w))
                for key, w in stage.store.scan_windows(partition)
            ]
            model_windows = [
                (key, start, end, ref_value(NAMES, w.events))
                for key in sorted(ref.keys)
                for (start, end), w in sorted(ref.keys[key].items())
            ]
            assert windows == model_windows, (name, partition)
            if emit != "update":
                assert produced[name].get(partition, []) == expected, (name, partition)
        assert any(produced[name].values()), f"{name} emitted"


class ManualClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms


def one_table(partitioned_by_key: bool, idle_timeout: str | None = None) -> Pipeline:
    table: dict[str, Any] = {
        "name": "counts",
        "source": "events",
        "window": {"type": "tumbling", "size": "10s", "grace": "0s", "retention": "1h"},
        "aggregate": {"n": "count()"},
        "emit": "final",
        "output": "out",
    }
    if idle_timeout is not None:
        table["idle_timeout"] = idle_timeout
    source = {"name": "events", "topics": ["src"], "key": "user", "timestamp": "ts"}
    return parse_pipeline(
        {
            "app": {"id": "drv"},
            "source": [{**source, "partitioned_by_key": partitioned_by_key}],
            "table": [table],
        }
    )


def finals(driver: StageDriver) -> list[tuple[str, int, int]]:
    return sorted(
        (value["key"], value["start"], value["value"]["n"])
        for records in driver.committed_records("out").values()
        for value in (orjson.loads(r.value) for r in records)
    )


def test_a_quiet_input_stops_holding_the_clock_of_a_repartitioned_table() -> None:
    """Every event goes to source partition 0; partition 1 holds every table partition's clock
    until the driver says it is quiet, as the worker does once it has read it all and nothing
    arrived for ``idle_after``."""
    driver = StageDriver(one_table(partitioned_by_key=False), PARTITIONS)
    for ts in (1_000, 2_000, 12_000, 25_000):
        driver.send("src", 0, [(b"ann", orjson.dumps({"user": "ann", "ts": ts}), [], 0)])

    async def scenario() -> tuple[list[Any], list[Any]]:
        await driver.run()
        held = finals(driver)
        driver.quiet("src", 1)
        await driver.run()
        return held, finals(driver)

    held, released = asyncio.run(scenario())
    assert held == [], "partition 1 has reported nothing: stream time has not moved"
    assert released == [("ann", 0, 2), ("ann", 10_000, 1)]


def test_the_idle_timeout_runs_on_the_clock_the_driver_is_handed() -> None:
    clock = ManualClock(1_000_000)
    driver = StageDriver(one_table(partitioned_by_key=True, idle_timeout="30s"), PARTITIONS, clock=clock)
    driver.send(
        "src",
        key_partition(b"ann", PARTITIONS),
        [(b"ann", orjson.dumps({"user": "ann", "ts": 1_000}), [], 0)],
    )

    async def scenario() -> tuple[list[Any], list[Any]]:
        await driver.run()
        clock.ms += 29_000
        await driver.run_timers()
        await driver.commit()
        early = finals(driver)
        clock.ms += 20_000
        await driver.run_timers()
        await driver.commit()
        return early, finals(driver)

    early, late = asyncio.run(scenario())
    assert early == [], "quiet for less than the idle timeout"
    assert late == [("ann", 0, 1)], "stream time followed the clock past the window's end"


def test_after_a_commit_the_ranks_a_top_n_read_take_its_writes_in_the_background() -> None:
    """The next top-N then finds nothing to apply: it does not make every waiting client pay
    for the commit's window writes (agents/windowed.py ``_catch_up_ranks``)."""
    driver = StageDriver(one_table(partitioned_by_key=True), PARTITIONS)
    partition = key_partition(b"ann", PARTITIONS)

    def send(count: int) -> None:
        events = [(b"ann", orjson.dumps({"user": "ann", "ts": 1_000 + i}), [], 0) for i in range(count)]
        driver.send("src", partition, events)

    async def scenario() -> list[tuple[Any, ...]]:
        send(2)
        await driver.run()
        stage = driver.table("counts")
        ranks = stage.ranks.build(partition, stage.committed_store)
        assert stage.ranks.held(partition) is ranks  # a top-N read them
        send(3)
        await driver.run()  # processed and committed: the commit queued its writes
        await stage.ranks_caught_up()  # the background catch-up, a partition at a time
        assert stage.ranks.read_since_last_asked() == []
        return list(ranks.entries("n", True, None, None))

    assert asyncio.run(scenario()) == [(5, "ann", 0, 10_000)]

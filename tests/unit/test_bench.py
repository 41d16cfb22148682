"""The benchmark harness's pure parts: the events it preloads (keyed by user or at random), the
reference aggregation it checks contenders against (every window, or the closed ones), how it
reads contenders' outputs and tables back, what each contender runs, and how it summarizes and
reports runs."""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import orjson

from bench.contenders import CONTENDERS, STATE_RETENTION, Continust, Quix, RunPlan
from bench.doc_sections import keep_sections, replace_section, split_sections
from bench.events import RANDOM_KEYS, USER_KEYS, Event, EventPlan, encode, record_key
from bench.jobs.markers import parse
from bench.latency import LatencyResult, event_latencies
from bench.main import input_topic
from bench.outputs import ContinustOutputs, QuixOutputs
from bench.report import HEADERS, throughput_rows
from bench.restart_time import HEADERS as RESTART_HEADERS
from bench.restart_time import Recovery, Restart, event_times, recovery_from_log, restart_rows
from bench.run import RunResult
from bench.shapes import CONTINUST, QUIX, SHAPES, ShapeRun, scaling_rows, section_body, shape_rows
from bench.shapes import HEADERS as SHAPE_HEADERS
from bench.summary import RowLabels, summarize
from bench.verdict import judge
from bench.windowing import (
    SESSION,
    SLIDING,
    TUMBLING,
    WindowShape,
    closed_only,
    partition_stream_times,
    reference,
    starts,
)
from bench.worker_api import key_windows
from streams.kafka.partitioning import key_partition
from streams.plan.pipeline import parse_pipeline


def test_tumbling_and_sliding_windows_contain_the_event():
    assert starts(TUMBLING, 25_000) == [20_000]
    assert starts(TUMBLING, 20_000) == [20_000]
    assert starts(SLIDING, 65_000) == [60_000, 50_000, 40_000, 30_000, 20_000, 10_000]
    assert starts(SLIDING, 60_000) == [60_000, 50_000, 40_000, 30_000, 20_000, 10_000]
    assert all(s <= 65_000 < s + 60_000 for s in starts(SLIDING, 65_000))


def test_reference_counts_and_sums_per_window():
    events = [Event("a", 1_000, 1.5), Event("a", 9_999, 2.0), Event("a", 10_000, 4.0), Event("b", 5, 1.0)]
    assert reference(TUMBLING, events) == {
        ("a", 0, 10_000): (2, 3.5),
        ("a", 10_000, 20_000): (1, 4.0),
        ("b", 0, 10_000): (1, 1.0),
    }


def test_sessions_are_half_open_and_merge_out_of_order_events():
    gap = SESSION.gap_ms
    events = [
        Event("a", 0, 1.0),
        Event("a", 50_000, 1.0),  # a session of its own, until ...
        Event("a", 25_000, 2.0),  # ... this one arrives out of order and bridges both
        Event("b", 0, 1.0),
        Event("b", gap, 1.0),  # exactly gap apart: separate
    ]
    assert reference(SESSION, events) == {
        ("a", 0, 50_000 + gap): (3, 4.0),
        ("b", 0, gap): (1, 1.0),
        ("b", gap, 2 * gap): (1, 1.0),
    }


def test_events_are_deterministic_and_never_later_than_the_grace():
    plan = EventPlan(count=20_000, keys=50, spacing_ms=7)
    events = list(plan.events(plan.start_ms(1_800_000_000_000)))
    assert events == list(plan.events(plan.start_ms(1_800_000_000_000)))
    assert events[-1].ts < 1_800_000_000_000
    assert {e.user for e in events} == set(plan.users())
    assert any(b.ts < a.ts for a, b in itertools.pairwise(events)), "some out of order"
    stream_time: dict[int, int] = {}
    for e in events:  # per partition, as a continust worker sees them
        p = key_partition(e.user.encode(), 8)
        assert e.ts > stream_time.get(p, e.ts) - plan.grace_ms
        stream_time[p] = max(stream_time.get(p, e.ts), e.ts)
    sessions = reference(SESSION, events)
    assert len(sessions) > len(plan.users()), "users pause for longer than the session gap"


def _record(value: dict, key: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(key=(key or value.get("key", "")).encode(), value=orjson.dumps(value))


def test_continust_outputs_keep_the_latest_version_and_drop_replaced_sessions():
    outputs = ContinustOutputs()
    for value in (
        {"key": "a", "start": 0, "end": 30, "version": 1, "value": {"n": 1, "total": 1.0}},
        {"key": "a", "start": 50, "end": 80, "version": 1, "value": {"n": 1, "total": 2.0}},
        {
            "key": "a",
            "start": 0,
            "end": 80,
            "version": 2,
            "value": {"n": 3, "total": 5.0},
            "replaces": [[0, 30], [50, 80]],
        },
        {"key": "b", "start": 0, "end": 10, "version": 2, "value": {"n": 2, "total": 2.0}},
        {"key": "b", "start": 0, "end": 10, "version": 1, "value": {"n": 1, "total": 1.0}},
    ):
        outputs.add(_record(value))
    assert outputs.results() == {("a", 0, 80): (3, 5.0), ("b", 0, 10): (2, 2.0)}


def test_quix_outputs_keep_the_highest_count():
    outputs = QuixOutputs()
    outputs.add(_record({"start": 0, "end": 10, "n": 2, "total": 3.0}, key="a"))
    outputs.add(_record({"start": 0, "end": 10, "n": 1, "total": 1.0}, key="a"))
    outputs.add(_record({"start": 10, "end": 20, "n": 1, "total": 1.0}, key="a"))
    assert outputs.results() == {("a", 0, 10): (2, 3.0), ("a", 10, 20): (1, 1.0)}
    assert outputs.repeated() == [("a", 0, 10)]


def test_continust_outputs_count_the_records_of_each_window():
    outputs = ContinustOutputs()
    for version in (1, 1):  # the same final record twice: a duplicate, not a newer version
        outputs.add(
            _record({"key": "a", "start": 0, "end": 10, "version": version, "value": {"n": 1, "total": 1}})
        )
    outputs.add(_record({"key": "b", "start": 0, "end": 10, "version": 1, "value": {"n": 1, "total": 1}}))
    assert outputs.repeated() == [("a", 0, 10)]


def test_judge_tolerates_rounding_only():
    expected = {("a", 0, 10): (2, 0.3), ("b", 0, 10): (1, 1.0)}
    assert judge({("a", 0, 10): (2, 0.1 + 0.2), ("b", 0, 10): (1, 1.0)}, expected).ok
    verdict = judge({("a", 0, 10): (3, 0.3), ("c", 0, 10): (1, 1.0)}, expected)
    assert not verdict.ok and len(verdict.problems) == 3


def test_judge_fails_on_problems_seen_while_reading_and_on_an_empty_reference():
    expected = {("a", 0, 10): (1, 1.0)}
    verdict = judge(dict(expected), expected, also=["the worker counted 3 late events"])
    assert not verdict.ok and "FAILED" in verdict.summary() and "3 late events" in verdict.summary()
    assert not judge({}, {}).ok, "a check of nothing must not pass"


def test_random_record_keys_spread_each_user_over_every_partition():
    plan = EventPlan(count=4_000, keys=20)
    events = list(plan.events(plan.start_ms(1_800_000_000_000)))
    rng = random.Random(1)
    keys = [record_key(RANDOM_KEYS, e, rng) for e in events]
    again = random.Random(1)
    assert keys == [record_key(RANDOM_KEYS, e, again) for e in events], "deterministic for a seed"
    assert len(set(keys)) == len(keys)
    partitions_of: dict[str, set[int]] = {}
    for event, key in zip(events, keys, strict=True):
        partitions_of.setdefault(event.user, set()).add(key_partition(key, 4))
    assert all(parts == {0, 1, 2, 3} for parts in partitions_of.values())
    # keyed by user: the record key is the window key, one partition per user
    assert record_key(USER_KEYS, events[0], rng) == events[0].user.encode()
    key, value = encode(events[0], keys[0])
    assert key == keys[0] and orjson.loads(value)["user"] == events[0].user
    assert input_topic("r1", USER_KEYS) != input_topic("r1", RANDOM_KEYS)


def test_closed_only_keeps_the_windows_their_partitions_stream_time_has_closed():
    user_p0 = next(f"u{i}" for i in range(100) if key_partition(f"u{i}".encode(), 2) == 0)
    user_p1 = next(f"u{i}" for i in range(100) if key_partition(f"u{i}".encode(), 2) == 1)
    events = [
        Event(user_p0, 1_000, 1.0),
        Event(user_p0, 15_000, 1.0),  # partition 0 at 15 s: [0, 10 s) closes (end + grace 5 s)
        Event(user_p1, 2_000, 1.0),
        Event(user_p1, 14_999, 1.0),  # partition 1 at 14.999 s: [0, 10 s) still open
    ]
    assert partition_stream_times(events, 2) == {0: 15_000, 1: 14_999}
    assert closed_only(TUMBLING, reference(TUMBLING, events), events, 2) == {(user_p0, 0, 10_000): (1, 1.0)}


def test_latency_percentiles_count_unreadable_events_as_infinitely_late():
    result = LatencyResult("x", rate=10, seconds=1, produced=4, latencies_ms=[10.0, 20.0, 30.0])
    assert result.percentile(0.5) == 20.0
    assert math.isinf(result.percentile(0.99))


def test_a_record_reflects_every_event_of_its_window_up_to_its_count():
    # key a, window 0: events sent at 1.0, 1.1, 1.2, 1.3; records with counts 2 (readable at 2.0)
    # and 4 (readable at 3.0): events 1-2 wait for the first, 3-4 for the second. Key b: its only
    # event has no record yet, so it is left out.
    sent = {("a", 0): [1.0, 1.1, 1.2, 1.3], ("b", 0): [1.0]}
    got = event_latencies({("a", 0, 2): 2.0, ("a", 0, 4): 3.0}, sent)
    assert [round(x) for x in got] == [1000, 900, 1800, 1700]
    # one record per event (Quix): each event waits for its own record
    per_event = event_latencies({("b", 0, 1): 1.5}, sent)
    assert [round(x) for x in per_event] == [500]
    # a later record that became readable earlier than a lower count still reaches back
    assert [round(x) for x in event_latencies({("a", 0, 1): 5.0, ("a", 0, 4): 2.0}, sent)] == [
        1000,
        900,
        800,
        700,
    ]


def test_summary_ratios_and_failed_contenders():
    def run(name: str, rep: int, seconds: float, status: str = "ok") -> RunResult:
        return RunResult(name, rep, status=status, events=1000, seconds=seconds, cpu_seconds=0.5)

    results = [run("limit", 1, 0.1), run("quix", 1, 1.0), run("limit", 2, 0.2), run("quix", 2, 2.0)]
    results += [run("faust", 1, 4.0, status="failed"), run("continust-tumbling", 1, 0.25)]
    results += [run("continust-tumbling-final", 1, 0.5)]
    labels = {
        "limit": RowLabels(WindowShape("tumbling").kind),
        "continust-tumbling": RowLabels("tumbling", "keyed by user", "coalesced", peer="quix"),
        "continust-tumbling-final": RowLabels("tumbling", peer="quix-final"),
    }
    by_name = {s.contender: s for s in summarize(results, labels)}
    assert by_name["limit"].median_eps == 7500 and by_name["limit"].min_eps == 5000
    assert dict(by_name["quix"].ratios) == {"limit": 0.1, "faust": None, "peer": None}
    assert dict(by_name["continust-tumbling"].ratios)["peer"] == 4000 / 750  # quix: median of 1000, 500
    assert dict(by_name["continust-tumbling-final"].ratios)["peer"] is None, "its Quix row did not run"
    assert by_name["faust"].status == "failed" and not by_name["faust"].ratios
    rows = {row[0]: row for row in throughput_rows(list(by_name.values()))}
    assert all(len(row) == len(HEADERS) for row in rows.values())
    peer_column = HEADERS.index("vs its Quix row")
    assert rows["continust-tumbling"][peer_column] == "5.33x (quix)"
    assert rows["continust-tumbling-final"][peer_column] == "- (quix-final)"
    assert rows["limit"][peer_column] == "-"
    assert rows["faust"][HEADERS.index("events/s (median)")] == "FAILED"


def test_markers_are_found_after_terminal_control_codes():
    assert parse(b'\x1b[?25l\x1b[?25h{"bench":"started"}\n') == {"bench": "started"}
    assert parse(b"a log line\n") is None


def _plan(contender: str, tmp_path: Path) -> RunPlan:
    return RunPlan("r1", contender, 1, "127.0.0.1:9", "in", 2, 100, tmp_path, keys=("u1",))


def test_continust_pipelines_are_valid_and_differ_only_where_the_rows_do(tmp_path: Path):
    pipelines = {}
    for name in ("continust-tumbling", "continust-tumbling-state", "continust-tumbling-final"):
        contender = CONTENDERS[name]
        assert isinstance(contender, Continust)
        text = contender.pipeline_toml(_plan(name, tmp_path))
        pipelines[name] = parse_pipeline(tomllib.loads(text)).tables[0]
        assert pipelines[name].window.grace_ms == TUMBLING.grace_ms
    update, state, final = pipelines.values()
    assert update.emit == "update" and update.output and update.window.retention_ms == 0
    assert final.emit == "final" and final.output and final.window.retention_ms == 0
    assert state.output is None, "state only: no output topic"
    assert state.window.retention_ms >= 365 * 86_400_000 and STATE_RETENTION == "365d"
    repartition = CONTENDERS["continust-tumbling-repartition"]
    assert repartition.input_keys == RANDOM_KEYS
    assert all(c.input_keys == USER_KEYS for n, c in CONTENDERS.items() if n != repartition.name)


def test_quix_contenders_emit_as_their_rows_say(tmp_path: Path):
    argvs = {}
    for name in ("quix", "quix-state", "quix-final"):
        contender = CONTENDERS[name]
        assert isinstance(contender, Quix)
        argvs[name] = contender.launch(_plan(name, tmp_path)).argv
    assert argvs["quix"][argvs["quix"].index("--emit") + 1] == "current" and "--output" in argvs["quix"]
    assert argvs["quix-final"][argvs["quix-final"].index("--emit") + 1] == "final"
    state = argvs["quix-state"]
    assert state[state.index("--emit") + 1] == "none" and "--output" not in state and "--results" in state
    assert CONTENDERS["quix-state"].writes_results and not CONTENDERS["quix-final"].writes_results
    assert CONTENDERS["quix-final"].final and CONTENDERS["continust-tumbling-final"].final
    pairs = {c.name: c.peer for c in CONTENDERS.values() if c.peer}
    assert pairs == {
        "continust-tumbling-state": "quix-state",
        "continust-tumbling-final": "quix-final",
        "continust-tumbling": "quix",
        "continust-tumbling-state-chain": "continust-tumbling-state",
        "continust-tumbling-state-custom": "continust-tumbling-state",
    }


def test_the_user_function_rows_run_the_state_only_table_through_a_chain_or_a_users_sum(tmp_path: Path):
    """They differ from continust-tumbling-state only by the chain, or by a user's sum; the
    functions are written next to the pipeline file, as a user's module, and import."""
    from streams.plan.pipeline import load_pipeline

    tables = {}
    for name in (
        "continust-tumbling-state",
        "continust-tumbling-state-chain",
        "continust-tumbling-state-custom",
    ):
        contender = CONTENDERS[name]
        assert isinstance(contender, Continust)
        plan = _plan(name, tmp_path / name)
        plan.workdir.mkdir(parents=True, exist_ok=True)
        contender.launch(plan)
        tables[name] = load_pipeline(plan.workdir / "pipelines.toml").tables[0]
    state, chain, custom = tables.values()
    assert [op.label for op in chain.operators] == [
        "filter(bench_user_functions:keep)",
        "map(bench_user_functions:same)",
    ]
    assert replace(chain, operators=()) == state
    assert custom.aggregations[1].name == "bench_user_functions:Total" and custom.operators == ()
    event = {"user": "u", "ts": 1, "amount": 3}
    assert chain.operators[1].function(event) == event
    total = custom.aggregations[1]
    assert total.result(total.add(total.add(total.initialize(), 3, 0, 0), 4, 0, 1)) == 7


def test_table_answers_become_results():
    body = {
        "table": "bench",
        "key": "u1",
        "windows": [
            {"start": 0, "end": 10, "closed": True, "value": {"n": 2, "total": 3.5}, "version": 0},
            {"start": 10, "end": 20, "closed": False, "value": {"n": 1, "total": 1.0}, "version": 0},
        ],
    }
    assert key_windows(body) == {("u1", 0, 10): (2, 3.5), ("u1", 10, 20): (1, 1.0)}


def test_state_shapes_set_the_events_keys_and_windows_per_key():
    few, many_windows, many_keys = (SHAPES[n] for n in ("few-keys", "many-windows", "many-keys"))

    def sizes(plan: EventPlan) -> tuple[int, int, int]:
        return plan.count, plan.keys, plan.spacing_ms

    assert sizes(few.plan()) == (1_000_000, 1_000, 1)
    assert sizes(many_windows.plan()) == (500_000, 1_000, 10)
    assert sizes(many_keys.plan()) == (500_000, 100_000, 2)
    assert [s.windows_per_key() for s in (few, many_windows, many_keys)] == [100, 500, 5]
    assert all(s.plan().in_turn for s in SHAPES.values())
    assert sizes(few.plan(0.1)) == (100_000, 100, 10)
    assert few.windows_per_key(0.1) == 100, "scaling keeps the windows per key"
    assert many_keys.windows_per_key(0.1) == 5


def test_users_taking_turns_fill_the_windows_of_their_shape():
    plan = SHAPES["many-keys"].plan(0.01)  # 5,000 events, 1,000 keys, 5 events each, 200 s apart
    events = list(plan.events(plan.start_ms(1_800_000_000_000)))
    assert [e.user for e in events[:3]] == ["user-0000", "user-0001", "user-0002"]
    assert {e.user for e in events} == set(plan.users())
    windows = reference(TUMBLING, events)
    assert len(windows) == plan.keys * 5
    few = SHAPES["few-keys"].plan(0.01)  # 10,000 events, 10 keys over 100 windows
    windows = reference(TUMBLING, list(few.events(few.start_ms(1_800_000_000_000))))
    assert 100 * few.keys <= len(windows) <= 101 * few.keys


def test_the_shape_runs_use_the_state_only_pair_with_a_30_day_retention(tmp_path: Path):
    plan = _plan(CONTINUST.name, tmp_path)
    table = parse_pipeline(tomllib.loads(CONTINUST.pipeline_toml(plan))).tables[0]
    assert table.output is None and table.window.retention_ms == 30 * 86_400_000
    assert table.window.size_ms == 10_000 and table.window.grace_ms == 5_000
    assert CONTINUST.partitioned_by_key and CONTINUST.peer == QUIX.name == "quix-state"
    assert QUIX.writes_results and not QUIX.final


def _shape_run(shape: str, quix_s: float, continust_s: float, windows: int, status: str = "ok") -> ShapeRun:
    results = [
        RunResult(QUIX.name, 1, events=1000, seconds=quix_s, peak_rss_bytes=3 * 2**20, state_bytes=2**19),
        RunResult(CONTINUST.name, 1, status=status, events=1000, seconds=continust_s, peak_rss_bytes=2**21),
    ]
    labels = {CONTINUST.name: RowLabels("tumbling 10s", peer=QUIX.name)}
    return ShapeRun(shape, 1000, 10, windows, tuple(summarize(results, labels)))


def test_shape_report_rows_and_scaling_ratios():
    runs = [
        _shape_run("few-keys", 1.0, 0.25, 100),
        _shape_run("many-windows", 2.0, 1.0, 500),
        _shape_run("many-keys", 1.0, 2.0, 50, status="failed"),
    ]
    rows = shape_rows(runs)
    assert all(len(r) == len(SHAPE_HEADERS) for r in rows)
    col = {h: i for i, h in enumerate(SHAPE_HEADERS)}
    quix_few, continust_few = rows[0], rows[1]
    assert continust_few[col["events/s"]] == "4,000" and quix_few[col["events/s"]] == "1,000"
    assert continust_few[col["continust / Quix"]] == "4.00x" and quix_few[col["continust / Quix"]] == "-"
    assert quix_few[col["peak RSS (MiB)"]] == "3.0" and quix_few[col["state on disk (MiB)"]] == "0.5"
    assert continust_few[col["windows (per key)"]] == "100 (10.0)"
    assert rows[5][col["events/s"]] == "FAILED"
    assert scaling_rows(runs) == [
        ("many-windows / few-keys", "0.25x", "0.50x"),
        ("many-keys / few-keys", "-", "1.00x"),
    ]
    body = section_body(runs, "python -m bench.shapes --scale 0.1", "today", 0.1, 1, 8)
    assert "python -m bench.shapes --scale 0.1" in body and "scaled by 0.1" in body
    assert "many-keys, continust-tumbling-state: failed" in body


def test_sections_are_replaced_added_before_reproduce_and_kept_by_the_main_report():
    doc = "# B\n\nintro\n\n## Throughput\n\nt\n\n## Reproduce\n\n```sh\n## not a heading\n```\n"
    added = replace_section(doc, "State shapes", "first")
    assert [t for t, _ in split_sections(added)[1]] == ["Throughput", "State shapes", "Reproduce"]
    replaced = replace_section(added, "State shapes", "second")
    assert "second" in replaced and "first" not in replaced
    assert split_sections(replaced)[1][1] == ("State shapes", "## State shapes\n\nsecond\n\n")
    regenerated = "# B\n\nnew intro\n\n## Throughput\n\nnew\n\n## Reproduce\n\nr\n"
    kept = keep_sections(regenerated, replace_section(replaced, "Restart after SIGKILL", "r"))
    assert [t for t, _ in split_sections(kept)[1]] == [
        "Throughput",
        "State shapes",
        "Restart after SIGKILL",
        "Reproduce",
    ]
    assert "new intro" in kept and "second" in kept and "\nt\n" not in kept
    assert replace_section("# B\n", "X", "x") == "# B\n\n## X\n\nx\n\n"


def test_restart_backlog_has_one_event_per_key_and_window_in_event_time_order():
    times = event_times(keys=4, windows_per_key=3, start_ms=1_000_000)
    assert len(times) == 12 and [k for k, _ in times[:5]] == [0, 1, 2, 3, 0]
    assert all(a[1] < b[1] for a, b in itertools.pairwise(times))
    windows = {(k, ts - ts % 10_000) for k, ts in times}
    assert len(windows) == 12, "each event opens a window of its own"


def _faust_table(title: str, column: str, rows: list[tuple[str, int, int]]) -> str:
    lines = [f"+{title}---+---+---+", f"| topic | partition | {column} |", "+---+---+---+"]
    previous = None
    for topic, partition, value in rows:
        lines.append(f"| {'〃' if topic == previous else topic} | {partition} | {value} |")
        previous = topic
    return "\\n".join([*lines, "+---+---+---+"])


def test_recovery_records_and_time_come_from_fausts_recovery_log():
    highwaters = [("a-changelog", 0, 99), ("a-changelog", 1, 9), ("a-stream-time-changelog", 0, 4)]
    starts = [("a-changelog", 0, -1), ("a-changelog", 1, 4), ("a-stream-time-changelog", 0, -1)]
    prefix = "level=info logger=faust.tables.recovery msg="
    log = "\n".join(
        [
            "ts=2026-11-30T00:00:00.000Z level=info logger=continust.state event=state.open stores=rebuilt",
            f'ts=2026-11-30T00:00:01.000Z {prefix}"[^---Recovery]: Highwater for active changelog partitions:'
            f'\\n{_faust_table("Highwater - Active", "highwater", highwaters)}"',
            f'ts=2026-11-30T00:00:01.500Z {prefix}"[^---Recovery]: active offsets at start of reading:'
            f'\\n{_faust_table("Reading Starts At - Active", "offset", starts)}"',
            f'ts=2026-11-30T00:00:03.250Z {prefix}"[^---Recovery]: Recovery complete"',
        ]
    )
    recovery = recovery_from_log(log)
    assert recovery is not None
    assert recovery.records == 100 + 5 + 5 and recovery.rounds == 1
    assert recovery.seconds is not None and math.isclose(recovery.seconds, 2.25)
    assert recovery.completed_at is not None and recovery.completed_at - recovery.seconds == 1_795_996_801.0
    assert recovery_from_log("no recovery here") is None


def test_restart_report_rows():
    result = Restart(
        keys=1_000,
        windows_per_key=100,
        static=True,
        processed_s=12.34,
        seconds=3.21,
        recovery=Recovery(records=123_456, seconds=2.5, completed_at=1_000_004.0, rounds=2),
        restarted_at=1_000_000.0,
        state_at_kill_bytes=5 * 2**20,
        state_after_bytes=2**20,
    )
    (row,) = restart_rows([result])
    assert len(row) == len(RESTART_HEADERS)
    assert row == (
        "100,000",
        "1,000 x 100",
        "12.3 s",
        "3.2 s",
        "4.0 s",
        "2.5 s",
        "123,456 (2 rounds)",
        "5.0 MiB",
        "1.0 MiB",
    )
    assert restart_rows([replace(result, recovery=None)])[0][4:7] == ("-", "-", "-")


def test_full_collections_come_from_one_scrape_so_long_ones_never_count_below_zero():
    """Each scrape of this server reports one more collection, under 100 ms: read from separate
    scrapes, the bucket would run ahead of the count and the long ones come out as -1."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bench.query_scale import _full_collections

    scrapes = itertools.count(1)

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            n = next(scrapes)
            body = (
                f'continust_gc_pause_seconds_bucket{{generation="2",le="0.1"}} {n}\n'
                f'continust_gc_pause_seconds_bucket{{generation="2",le="+Inf"}} {n + 2}\n'
                f'continust_gc_pause_seconds_count{{generation="2"}} {n + 2}\n'
                f'continust_gc_pause_seconds_sum{{generation="2"}} {0.5 + n * 0.01}\n'
                f'continust_gc_pause_seconds_count{{generation="0"}} 99\n'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        count, seconds, long_ones = _full_collections(server.server_address[1])
    finally:
        server.shutdown()
    assert (count, long_ones) == (3, 2)
    assert math.isclose(seconds, 0.51)

"""The benchmark harness's pure parts: the events it preloads, the reference aggregation it
checks contenders against, how it reads contenders' outputs, and how it summarizes runs."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import orjson

from bench.events import Event, EventPlan
from bench.jobs.markers import parse
from bench.latency import LatencyResult, event_latencies
from bench.outputs import ContinustOutputs, QuixOutputs
from bench.run import RunResult
from bench.summary import summarize
from bench.verdict import judge
from bench.windowing import SESSION, SLIDING, TUMBLING, WindowShape, reference, starts
from streams.partitioning import key_partition


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
    assert outputs.results() == {("a", 0, 10): (2, 3.0)}


def test_judge_tolerates_rounding_only():
    expected = {("a", 0, 10): (2, 0.3), ("b", 0, 10): (1, 1.0)}
    assert judge({("a", 0, 10): (2, 0.1 + 0.2), ("b", 0, 10): (1, 1.0)}, expected).ok
    verdict = judge({("a", 0, 10): (3, 0.3), ("c", 0, 10): (1, 1.0)}, expected)
    assert not verdict.ok and len(verdict.problems) == 3


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
    results += [run("faust", 1, 4.0, status="failed")]
    by_name = {s.contender: s for s in summarize(results, {"limit": WindowShape("tumbling").kind})}
    assert by_name["limit"].median_eps == 7500 and by_name["limit"].min_eps == 5000
    assert dict(by_name["quix"].ratios) == {"limit": 0.1, "quix": 1.0, "faust": None}
    assert by_name["faust"].status == "failed" and not by_name["faust"].ratios


def test_markers_are_found_after_terminal_control_codes():
    assert parse(b'\x1b[?25l\x1b[?25h{"bench":"started"}\n') == {"bench": "started"}
    assert parse(b"a log line\n") is None

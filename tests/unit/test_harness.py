"""The broker-free harness (agents/harness.py) as a user's test would use it: windows, outputs,
late events and dead letters of a pipeline over a list of records."""

from __future__ import annotations

from typing import Any

import pytest

from agents.harness import Input, run_pipeline
from streams.plan.python_front import App, tumbling


def big(purchase: dict[str, Any]) -> bool:
    return purchase["amount"] > 10


def shop(partitioned_by_key: bool) -> App:
    app = App("shop")
    purchases = app.source(
        "purchases", topics=["purchases"], key="user", timestamp="ts", partitioned_by_key=partitioned_by_key
    )
    purchases.filter(big).table(
        "big",
        window=tumbling("1m", grace="10s", retention="1h"),
        aggregate={"n": "count()", "spent": "sum(amount)"},
        emit="final",
        output="big-purchases",
    )
    return app


@pytest.mark.parametrize("partitioned_by_key", [False, True])
def test_a_pipeline_over_a_list_of_records(partitioned_by_key: bool) -> None:
    def purchase(user: str, ts: int, amount: Any) -> Input:
        partition = None if partitioned_by_key else ts // 1000 % 2  # the users on both partitions
        return Input("purchases", {"user": user, "ts": ts, "amount": amount}, key=user, partition=partition)

    result = run_pipeline(
        shop(partitioned_by_key),
        [
            purchase("ann", 1_000, 12),
            purchase("ann", 2_000, 5),  # not big: filtered out
            purchase("ben", 3_000, 30),
            purchase("ann", 61_000, 11),
            purchase("ann", 62_000, "a lot"),  # not a number: a dead letter of the filter
            purchase("ben", 80_000, 20),
            purchase("ann", 81_000, 20),  # moves both partitions past 60 s + 10 s grace
            purchase("ben", 4_000, 50),  # its window is closed by now: late
            Input("purchases", b"not json", key="ann"),
        ],
        partitions=2,
    )
    minute = 60_000
    assert result.windows["big"] == {
        ("ann", 0, minute): {"n": 1, "spent": 12},
        ("ben", 0, minute): {"n": 1, "spent": 30},
        ("ann", minute, 2 * minute): {"n": 2, "spent": 31},
        ("ben", minute, 2 * minute): {"n": 1, "spent": 20},
    }
    finals = sorted((r["key"], r["start"], r["value"]["n"]) for r in result.output_values("big-purchases"))
    assert finals == [("ann", 0, 1), ("ben", 0, 1)]
    assert [(late.table, late.event_time_ms) for late in result.late] == [("big", 4_000)]
    assert sorted((letter.reason, letter.table) for letter in result.dead_letters) == [
        ("not_json", ""),
        ("user_error", "big"),
    ]
    error = next(letter for letter in result.dead_letters if letter.reason == "user_error")
    assert error.headers["continust-error-type"] == b"TypeError"


def test_a_record_for_a_topic_no_source_reads_is_refused() -> None:
    with pytest.raises(ValueError, match="no source reads topic 'purchase'; the pipeline reads purchases"):
        run_pipeline(shop(True), [Input("purchase", {"user": "ann", "ts": 1, "amount": 20})])


def test_the_wall_clock_handed_in_judges_event_times_too_far_ahead() -> None:
    """max_future defaults to 1 h: at now_ms = 10 h, an event at 12 h is a dead letter."""
    hour = 3_600_000
    events = [Input("purchases", {"user": "ann", "ts": t * hour, "amount": 20}, key="ann") for t in (9, 12)]
    result = run_pipeline(shop(True), events, partitions=2, now_ms=10 * hour)
    assert [letter.reason for letter in result.dead_letters] == ["future_timestamp"]
    assert run_pipeline(shop(True), events, partitions=2).dead_letters == []

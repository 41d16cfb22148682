"""The input of ``python -m bench.churn`` (:mod:`bench.churn`): the incident's shape, so that no
event is late by construction and any difference from the reference is the engine's."""

from __future__ import annotations

import random

from bench.churn import B_BEHIND_MS, TIMELINE, batch_at


def test_topic_b_runs_15_s_behind_and_no_input_is_more_than_1_s_out_of_order() -> None:
    rng = random.Random(1)
    users = [f"user-{i}" for i in range(50)]
    batches = [batch_at(1_000_000 + 100 * i, 100, users, rng) for i in range(200)]
    for topic, behind in (("a", 0), ("b", B_BEHIND_MS)):
        stamps = [e["ts"] for batch in batches for e in batch[topic]]
        assert len(stamps) == 200 * 50
        running = stamps[0]
        for ts in stamps:  # whatever partition an event lands on, it is at most 1 s behind any before it
            assert ts > running - 1_000
            running = max(running, ts)
        assert min(stamps) > 1_000_000 - behind - 1_000 and max(stamps) <= 1_000_000 + 100 * 199 - behind


def test_the_timeline_is_the_incidents() -> None:
    assert TIMELINE == [
        (10, "join 1"),
        (10, "join 2"),
        (30, "term 0"),
        (45, "kill 1"),
        (50, "start 1"),
        (60, "start 0"),
    ]

"""The availability bench's report (:mod:`bench.availability`): answers are split by whether
their partition moved in the step they came in."""

from __future__ import annotations

from bench.availability import Answers


def test_answers_split_by_the_partitions_that_moved_in_their_step() -> None:
    answers = Answers(moved={0: {1}, 1: {2}})
    answers.records = [
        (1, 503, 0.010, 0),  # moved in step 0
        (1, 200, 0.020, 1),  # partition 1 did not move in step 1
        (2, 0, 0.030, 1),  # moved in step 1, no answer at all
        (2, 200, 0.040, -1),  # between steps: nothing moves
        (3, 200, 0.050, 0),
    ]
    label, count, kept, moved, overall, p50, p99 = answers.row("default")
    assert (label, count) == ("default", "5")
    assert kept == "0 of 3 (0.00%)"
    assert moved == "2 of 2 (100.00%)"
    assert overall == "2 of 5 (40.00%)"
    assert (p50, p99) == ("40.0", "50.0")  # of the 200 answers only

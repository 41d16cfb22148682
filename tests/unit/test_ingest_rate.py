"""The ingest rate limit: a token bucket of one second's worth per client, on an injected clock."""

from __future__ import annotations

import pytest

from streams.api.ingest_rate import PRUNE_ABOVE, Decision, IngestRateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_one_seconds_worth_through_then_refills_at_the_rate() -> None:
    clock = Clock()
    limit = IngestRateLimit(10, clock)
    assert limit.take("a", 6).allowed and limit.take("a", 4).allowed
    refused = limit.take("a", 1)
    assert refused == Decision(False, pytest.approx(0.1)) and refused.retry_after_s == 1
    clock.now += 0.1
    assert limit.take("a", 1).allowed
    assert not limit.take("a", 1).allowed
    clock.now += 0.5
    assert limit.take("a", 5).allowed and not limit.take("a", 1).allowed


def test_a_refused_batch_takes_nothing() -> None:
    clock = Clock()
    limit = IngestRateLimit(10, clock)
    assert limit.take("a", 8).allowed
    assert limit.take("a", 5) == Decision(False, pytest.approx(0.3))
    assert limit.take("a", 2).allowed


def test_a_batch_larger_than_the_bucket_passes_when_it_is_full_and_counts_against_the_future() -> None:
    clock = Clock()
    limit = IngestRateLimit(10, clock)
    assert limit.take("a", 35).allowed  # the bucket is now at -25
    clock.now += 2.0  # -5
    refused = limit.take("a", 1)
    assert refused == Decision(False, pytest.approx(0.6)) and refused.retry_after_s == 1
    clock.now += 0.5  # 0
    big = limit.take("a", 35)
    # a batch over the bucket waits for a full bucket, not for 35 records' worth
    assert big == Decision(False, pytest.approx(1.0)) and big.retry_after_s == 1
    clock.now += 1.0
    assert limit.take("a", 35).allowed


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = Clock()
    limit = IngestRateLimit(2, clock)
    assert limit.take("a", 2).allowed
    assert limit.take("a", 2).retry_after_s == 1
    limit = IngestRateLimit(0.5, clock)
    assert limit.take("a", 1).allowed
    assert limit.take("a", 1) == Decision(False, pytest.approx(2.0))
    clock.now += 0.1
    assert limit.take("a", 1).retry_after_s == 2


def test_each_client_has_its_own_bucket() -> None:
    clock = Clock()
    limit = IngestRateLimit(10, clock)
    assert limit.take("a", 10).allowed
    assert not limit.take("a", 1).allowed
    assert limit.take("b", 10).allowed


def test_refilled_buckets_are_dropped_when_many_clients_came_and_went() -> None:
    clock = Clock()
    limit = IngestRateLimit(10, clock)
    for client in range(PRUNE_ABOVE):
        assert limit.take(str(client), 1).allowed
    assert limit.take("0", 9).allowed  # client "0" is empty now
    clock.now += 0.1  # the others have refilled; "0" holds one record
    assert limit.take("new", 1).allowed
    assert set(limit._buckets) == {"0", "new"}
    assert not limit.take("0", 2).allowed


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        IngestRateLimit(0)

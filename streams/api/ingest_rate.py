"""How many records a client may ingest per second: one token bucket per client (the API
token's name, or the client's address when the API is open).

A bucket holds at most one second's worth (``rate`` records) and refills at ``rate`` records per
second. A batch of *n* records is let through when the bucket holds *n*, or when it is full: a
batch larger than the bucket then goes through whole and leaves the bucket below zero, counting
against the next second(s). Otherwise the batch is refused, nothing is taken, and the answer
says how long until it would go through (:attr:`Decision.retry_after_s`).

Time comes from an injected clock (seconds, monotonic), so the rule is tested without waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: beyond this many clients, buckets that have refilled (as good as new) are dropped
PRUNE_ABOVE = 1024
#: records a bucket may lack and still count as holding them (clock readings are floats)
SLACK = 1e-9


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: seconds until the same batch would be let through (0 when allowed)
    wait_s: float

    @property
    def retry_after_s(self) -> int:
        """``wait_s`` as the whole seconds of a ``Retry-After`` header: rounded up, at least 1."""
        return max(1, math.ceil(self.wait_s))


@dataclass
class _Bucket:
    level: float
    at: float


class IngestRateLimit:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = rate
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        return min(self.capacity, bucket.level + max(0.0, now - bucket.at) * self.rate)

    def take(self, client: str, records: int) -> Decision:
        """Let ``records`` records of ``client`` through, taking them from its bucket, or refuse
        them and say how long to wait."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[client] = _Bucket(self.capacity, now)
        level = self._refilled(bucket, now)
        bucket.level, bucket.at = level, now
        if level + SLACK >= records or level + SLACK >= self.capacity:
            bucket.level = level - records
            return Decision(True, 0.0)
        needed = min(float(records), self.capacity)
        return Decision(False, (needed - level) / self.rate)

    def _prune(self, now: float) -> None:
        if len(self._buckets) < PRUNE_ABOVE:
            return
        for client in [
            c for c, b in self._buckets.items() if self._refilled(b, now) + SLACK >= self.capacity
        ]:
            del self._buckets[client]

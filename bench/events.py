"""The benchmark's input: N JSON events ``{"user", "ts", "amount"}``, deterministic for a seed.

Contract:

- ``user`` is one of ``keys`` names (``user-0000`` ...). The events are preloaded in two ways
  (:func:`record_key`): keyed by ``user`` (``USER_KEYS``), so Kafka's default partitioner puts
  all events of a user on one partition, for the contenders that read their input as it is
  partitioned; or with a random record key per event (``RANDOM_KEYS``), so the events of one user
  are spread over every partition, for the contender that repartitions by ``user`` (each of its
  table partitions then merges events from all input partitions).
- ``ts`` (epoch ms, event time) advances by ``spacing_ms`` per event from an epoch-aligned start
  in the past, so the run spans ``N * spacing_ms`` of event time (many 10 s windows). A fifth of
  the events are earlier than that clock by 1 ms to ``grace_ms - 1`` ms: out of order, but never
  late for a window with that grace, because every partition's stream time is at most the
  clock of the latest event produced.
- Users are active in alternating halves: during each ``burst_ms`` of event time only the users
  of one parity send events, so each user's activity has gaps longer than a 30 s session gap
  (sessions open and close) while tumbling and sliding windows fill. With ``in_turn`` instead,
  the users take turns (event ``i`` is user ``i mod keys``), so every user sends one event every
  ``keys * spacing_ms`` of event time and the number of windows per user is set by that and by
  the span (the state shapes of :mod:`bench.shapes`).
- ``amount`` is a number with two decimals in [0.5, 500].
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import orjson

USER_KEYS = "user"
"""Input records keyed by the event's ``user`` (the window key)."""
RANDOM_KEYS = "random"
"""Input records with a random key, unrelated to the window key."""


class Event(NamedTuple):
    user: str
    ts: int
    amount: float


@dataclass(frozen=True)
class EventPlan:
    count: int
    keys: int = 1000
    spacing_ms: int = 1
    grace_ms: int = 5_000
    burst_ms: int = 40_000
    seed: int = 5
    in_turn: bool = False

    def start_ms(self, now_ms: int) -> int:
        """An event-time start such that the last event is a minute before ``now_ms`` (events
        must not be ahead of the wall clock), aligned to the minute."""
        start = now_ms - self.count * self.spacing_ms - 60_000
        return start - start % 60_000

    def users(self) -> list[str]:
        return [f"user-{i:04d}" for i in range(self.keys)]

    def events(self, start_ms: int) -> Iterator[Event]:
        """The events in production order."""
        rng = random.Random(self.seed)
        users = self.users()
        halves = [users[0::2], users[1::2] or users]
        for i in range(self.count):
            clock = start_ms + i * self.spacing_ms
            if self.in_turn:
                user = users[i % self.keys]
            else:
                active = halves[((clock - start_ms) // self.burst_ms) % 2]
                user = active[rng.randrange(len(active))]
            ts = clock - rng.randrange(1, self.grace_ms) if rng.random() < 0.2 else clock
            yield Event(user, ts, round(rng.uniform(0.5, 500.0), 2))


def encode(event: Event, key: bytes | None = None) -> tuple[bytes, bytes]:
    """The Kafka record key (``key``, else the event's ``user``) and value of an event."""
    value = orjson.dumps({"user": event.user, "ts": event.ts, "amount": event.amount})
    return (event.user.encode() if key is None else key), value


def record_key(keys: str, event: Event, rng: random.Random) -> bytes:
    """The record key of ``event`` when the input is keyed by ``keys`` (``USER_KEYS`` or
    ``RANDOM_KEYS``; a random key is 16 hex digits drawn from ``rng``)."""
    if keys == USER_KEYS:
        return event.user.encode()
    if keys == RANDOM_KEYS:
        return f"{rng.getrandbits(64):016x}".encode()
    raise ValueError(f"unknown record keys {keys!r}; allowed: {USER_KEYS}, {RANDOM_KEYS}")

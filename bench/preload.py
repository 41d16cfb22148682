"""Preloading an input topic: create it fresh with the run's partition count and produce the
events in order (:mod:`bench.producing`), keyed by ``user`` or by a random key per event
(:func:`bench.events.record_key`), logging progress."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from bench.events import USER_KEYS, Event, record_key
from bench.producing import send_events
from bench.topics import create_topic
from streams.kafka.kafka_security import KafkaSecurity
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")

CHUNK = 20_000
KEY_SEED = 17
"""Seed of the random record keys (the same keys on every run of the same events)."""


async def preload(
    bootstrap: str, topic: str, partitions: int, events: Sequence[Event], keys: str = USER_KEYS
) -> None:
    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity.from_env().check().client_options(),
        acks="all",
        max_batch_size=512 * 1024,
    )
    await producer.start()
    rng = random.Random(KEY_SEED)
    started = last_log = time.monotonic()
    try:
        for first in range(0, len(events), CHUNK):
            chunk = events[first : first + CHUNK]
            await send_events(
                producer, topic, partitions, chunk, [record_key(keys, event, rng) for event in chunk]
            )
            done = min(first + CHUNK, len(events))
            if time.monotonic() - last_log >= 2 or done == len(events):
                last_log = time.monotonic()
                elapsed = last_log - started
                log.info(
                    logfmt(
                        "bench.preload.progress",
                        topic=topic,
                        keys=keys,
                        produced=done,
                        of=len(events),
                        pct=round(100 * done / len(events)),
                        rate=round(done / elapsed) if elapsed else 0,
                    )
                )
    finally:
        await producer.stop()

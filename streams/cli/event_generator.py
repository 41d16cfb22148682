"""A generator of realistic click events for a source: users with skewed activity, pages,
amounts and their currency (mostly EUR), event times at the wall clock with a little network
jitter (some events arrive a few seconds out of order), spread over all of the source's topics.
Records are keyed by the key field. Prints a progress line every two seconds."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer

from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity
from streams.plan.pipeline import SourceSpec
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.generator")

PAGES = ("/", "/search", "/product", "/cart", "/checkout", "/account")
#: the currencies of the amounts, by share of events
CURRENCIES = (("EUR", 0.8), ("USD", 0.15), ("GBP", 0.05))
NAMES = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yolanda",
)


@dataclass(frozen=True)
class GeneratorOptions:
    rate: float = 200.0
    duration_s: float = 0.0
    users: int = 50
    seed: int | None = None


def user_names(count: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"user-{i:04d}" for i in range(count)]


def make_event(rng: random.Random, users: list[str], source: SourceSpec, now_ms: int) -> dict[str, object]:
    # Zipf-like activity: a few users click far more than the rest.
    user = users[min(int(rng.paretovariate(1.2)) - 1, len(users) - 1)]
    jitter = int(rng.expovariate(1 / 400)) if rng.random() < 0.9 else rng.randint(0, 8000)
    event: dict[str, object] = {
        source.key: user,
        "page": rng.choice(PAGES),
        "amount": round(rng.lognormvariate(2.5, 0.8), 2),
        "currency": rng.choices([c for c, _ in CURRENCIES], [share for _, share in CURRENCIES])[0],
    }
    if source.timestamp:
        event[source.timestamp] = now_ms - jitter
    return event


async def generate(
    bootstrap: str, source: SourceSpec, options: GeneratorOptions, security: KafkaSecurity = PLAINTEXT
) -> int:
    """Publish events until ``duration_s`` passes (0: until cancelled); return how many. The
    producer connects as ``security`` says."""
    rng = random.Random(options.seed)
    users = user_names(options.users)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks="all", **security.client_options()
    )
    await producer.start()
    sent = 0
    started = last_report = time.monotonic()
    try:
        while options.duration_s <= 0 or time.monotonic() - started < options.duration_s:
            now_ms = time.time_ns() // 1_000_000
            event = make_event(rng, users, source, now_ms)
            topic = rng.choice(source.topics)
            await producer.send(topic, orjson.dumps(event), key=str(event[source.key]).encode())
            sent += 1
            due = started + sent / options.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - last_report >= 2:
                last_report = time.monotonic()
                elapsed = last_report - started
                log.info(
                    logfmt(
                        "generator.progress",
                        sent=sent,
                        rate=round(sent / elapsed, 1),
                        topics=",".join(source.topics),
                    )
                )
        await producer.flush()
    finally:
        await producer.stop()
    return sent

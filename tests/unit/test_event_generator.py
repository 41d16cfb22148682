import random

import orjson

from streams.cli.event_generator import make_event, user_names
from streams.plan.envelope import decode_event
from streams.plan.pipeline import SourceSpec

SOURCE = SourceSpec(name="clicks", topics=("web-clicks", "app-clicks"), key="user", timestamp="ts")
NOW = 1_700_000_000_000


def test_generated_events_are_valid_for_their_source_and_slightly_out_of_order() -> None:
    rng = random.Random(7)
    users = user_names(50)
    events = [make_event(rng, users, SOURCE, NOW) for _ in range(2000)]
    for event in events:
        envelope = decode_event(
            orjson.dumps(event),
            key_field="user",
            timestamp_field="ts",
            record_timestamp_ms=0,
            now_ms=NOW,
            max_future_ms=0,
        )
        assert envelope.key in users
        assert NOW - 8_000 <= envelope.timestamp_ms <= NOW
        assert isinstance(event["amount"], float) and event["amount"] > 0
    currencies = [e["currency"] for e in events]
    assert set(currencies) == {"EUR", "USD", "GBP"} and currencies.count("EUR") > len(events) / 2
    delays = [NOW - e["ts"] for e in events]
    assert sum(d > 1_000 for d in delays) > 0  # some arrive late, within seconds
    busiest = max(users, key=lambda u: sum(e["user"] == u for e in events))
    assert sum(e["user"] == busiest for e in events) > 2000 / 50 * 3  # skewed activity


def test_user_names_are_distinct() -> None:
    names = user_names(100)
    assert len(set(names)) == 100 and names[0] == "alice"

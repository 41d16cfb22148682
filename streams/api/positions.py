"""Position tokens: where a write landed, so a later query can wait until the table has read it
(read-your-writes).

A token names, per input topic partition and keyed-stream partition (the table partition the
record's key belongs to), the largest offset written there. A table partition has reached a
token's entry once it has processed the input record at that offset: the records of one input
partition reach a table partition in offset order, so ``processed >= offset`` means this
record and every earlier one of that input partition bound for this table partition.

The text form is opaque to clients: URL-safe base64 of a small JSON document, version 1.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

VERSION = 1


class BadToken(ValueError):
    """A position token that is not one this module wrote."""


@dataclass(frozen=True, order=True)
class WrittenAt:
    """One input record's place: its topic, partition and offset, and the keyed-stream
    partition its key belongs to."""

    topic: str
    partition: int
    offset: int
    keyed_partition: int


@dataclass(frozen=True)
class PositionToken:
    source: str
    entries: tuple[WrittenAt, ...]

    @classmethod
    def of(cls, source: str, written: Iterable[WrittenAt]) -> PositionToken:
        """The token of ``written``: per (topic, partition, keyed partition), the largest offset."""
        latest: dict[tuple[str, int, int], int] = {}
        for w in written:
            place = (w.topic, w.partition, w.keyed_partition)
            latest[place] = max(latest.get(place, -1), w.offset)
        entries = tuple(sorted(WrittenAt(t, p, o, k) for (t, p, k), o in latest.items()))
        return cls(source, entries)

    def encode(self) -> str:
        body = {
            "v": VERSION,
            "s": self.source,
            "p": [[e.topic, e.partition, e.offset, e.keyed_partition] for e in self.entries],
        }
        return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PositionToken:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            body = orjson.loads(raw)
            if not isinstance(body, dict) or body.get("v") != VERSION or not isinstance(body.get("s"), str):
                raise ValueError("not a version-1 token")
            entries = []
            for item in body["p"]:
                topic, partition, offset, keyed = item
                if not isinstance(topic, str) or not all(
                    isinstance(n, int) and not isinstance(n, bool) and n >= 0
                    for n in (partition, offset, keyed)
                ):
                    raise ValueError(f"bad entry {item!r}")
                entries.append(WrittenAt(topic, partition, offset, keyed))
        except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
            raise BadToken(f"not a position token ({exc})") from None
        return cls(body["s"], tuple(entries))

"""Event ids of a live subscription: positions in the table's output topic, so any worker can
resume a subscription exactly after the last event a client received.

- One key (:class:`KeyPosition`): its records all land on one output partition (outputs are
  co-partitioned with the keyed stream), so an id is the offset of the record, as decimal
  text. Resuming after id ``n`` reads from offset ``n + 1``. The id ``-1`` is the position
  before the partition's first record.
- The whole table (:class:`TablePosition`): an id names, for every partition of the output
  topic, the offset of the next record to read, so resuming from it is gapless whatever
  partition the next record comes from. Its text is opaque to clients: ``t`` then the offsets
  in partition order, base 36, separated by dots (``t0.1k.2s``).

:func:`KeyPosition.decode` and :func:`TablePosition.decode` raise :class:`BadEventId` for any
text they did not write (or one written for a topic with another number of partitions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TABLE_PREFIX = "t"
_BASE36 = re.compile(r"[0-9a-z]{1,14}")
_DECIMAL = re.compile(r"-1|0|[1-9][0-9]{0,18}")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class BadEventId(ValueError):
    """A ``Last-Event-ID`` that is not an id of this subscription."""


def _base36(number: int) -> str:
    if number == 0:
        return "0"
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits))


@dataclass(frozen=True)
class KeyPosition:
    """The offset of the last record sent on one key's output partition (``-1``: none)."""

    offset: int

    @property
    def next_offset(self) -> int:
        """Where reading resumes."""
        return self.offset + 1

    def encode(self) -> str:
        return str(self.offset)

    @classmethod
    def decode(cls, text: str) -> KeyPosition:
        if not _DECIMAL.fullmatch(text):
            raise BadEventId(
                f"a key subscription's event id is an offset (an integer, -1 or more), got {text!r}"
            )
        return cls(int(text))


@dataclass(frozen=True)
class TablePosition:
    """The next offset to read of every output partition, in partition order."""

    next_offsets: tuple[int, ...]

    @classmethod
    def of(cls, next_offsets: Mapping[int, int]) -> TablePosition:
        """The position of ``{partition: next offset}`` over partitions ``0..n-1``."""
        if sorted(next_offsets) != list(range(len(next_offsets))):
            raise ValueError(f"partitions must be 0..n-1, got {sorted(next_offsets)}")
        return cls(tuple(next_offsets[p] for p in range(len(next_offsets))))

    def advanced(self, partition: int, offset: int) -> TablePosition:
        """The position right after the record at ``offset`` of ``partition``."""
        offsets = list(self.next_offsets)
        offsets[partition] = offset + 1
        return TablePosition(tuple(offsets))

    def encode(self) -> str:
        return TABLE_PREFIX + ".".join(_base36(o) for o in self.next_offsets)

    @classmethod
    def decode(cls, text: str, partitions: int) -> TablePosition:
        """The position ``text`` names, for an output topic of ``partitions`` partitions."""
        if not text.startswith(TABLE_PREFIX):
            raise BadEventId(f"not an event id of a table subscription: {text!r}")
        parts = text[len(TABLE_PREFIX) :].split(".")
        if not all(_BASE36.fullmatch(p) for p in parts):
            raise BadEventId(f"not an event id of a table subscription: {text!r}")
        if len(parts) != partitions:
            raise BadEventId(
                f"event id {text!r} names {len(parts)} partitions; the output topic has {partitions}"
            )
        return cls(tuple(int(p, 36) for p in parts))

"""What one client may hold of a worker with position tokens (:mod:`streams.api.positions`).

A query with ``after`` waits, up to its ``wait``, until the partitions it reads have processed
the token's records. A token is plain data a client can write itself, so two bounds keep a
forged one from holding a worker:

* the owner of a partition checks each entry the partition waits for against the end of its
  input partition (asked of the cluster): an entry at or past the end names a record nobody has
  written, and is answered 400 ``bad_token`` at once (:func:`beyond_end`);
* each client (its token's name, or its address when the API is open) has at most
  ``per_client`` queries with ``after`` in progress at a worker; one more is answered 429
  ``too_many_waits`` with ``Retry-After`` (:class:`WaitSlots`).

Tokens stay unsigned on purpose: a client may merge the tokens of several writes into one, as
``continust produce`` does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from streams.api.positions import WrittenAt

#: what ``Retry-After`` says to a client over its waits (seconds)
RETRY_AFTER_S = 1


def beyond_end(entries: list[WrittenAt], ends: Mapping[str, int]) -> WrittenAt | None:
    """The first entry whose offset is at or past its input partition's end (``ends``: the end
    offset per ``"topic:partition"``, the offset the next record will get); entries of
    partitions ``ends`` does not know are not judged."""
    for entry in entries:
        end = ends.get(f"{entry.topic}:{entry.partition}")
        if end is not None and entry.offset >= end:
            return entry
    return None


@dataclass
class WaitSlots:
    """Queries with ``after`` in progress, per client; at most ``per_client`` each."""

    per_client: int = 16
    _held: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.per_client < 1:
            raise ValueError(f"per_client must be 1 or more, got {self.per_client}")

    @contextmanager
    def hold(self, client: str) -> Iterator[bool]:
        """Take one of ``client``'s slots for the block: yields False (and takes nothing) when
        it holds every one already."""
        held = self._held.get(client, 0)
        if held >= self.per_client:
            yield False
            return
        self._held[client] = held + 1
        try:
            yield True
        finally:
            left = self._held[client] - 1
            if left:
                self._held[client] = left
            else:
                del self._held[client]

    def held(self, client: str) -> int:
        return self._held.get(client, 0)

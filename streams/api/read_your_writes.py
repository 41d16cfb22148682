"""Read-your-writes: which entries of a position token (:mod:`streams.api.positions`) a query must
wait for, and whether a table partition has reached them.

A table partition has reached an entry once its processed offset for the entry's input topic
partition (``"topic:partition"``) is at least the entry's offset; a query waits only for the
entries whose ``keyed_partition`` it reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.api.api_routes import BadQuery
from streams.api.positions import BadToken, PositionToken, WrittenAt


class BadPositionToken(BadQuery):
    """A token that is malformed, or names another source or inputs the source does not have
    (answered 400 ``bad_token``)."""


def read_token(
    text: str | None, source: str, topic_partitions: Mapping[str, int], partitions: int
) -> PositionToken | None:
    """The token of a query's ``after`` parameter (``None`` when absent), checked against the
    table's source: its name, its topics and their partition counts, and the keyed stream's
    ``partitions``."""
    if text is None or text == "":
        return None
    try:
        token = PositionToken.decode(text)
    except BadToken as exc:
        raise BadPositionToken(str(exc)) from None
    if token.source != source:
        raise BadPositionToken(f"the token is for source {token.source!r}; this table reads {source!r}")
    for entry in token.entries:
        count = topic_partitions.get(entry.topic)
        if count is None or entry.partition >= count:
            raise BadPositionToken(f"source {source!r} has no input {entry.topic}:{entry.partition}")
        if entry.keyed_partition >= partitions:
            raise BadPositionToken(f"keyed partition {entry.keyed_partition} of {partitions}")
    return token


def entries_for(token: PositionToken | None, partition: int) -> list[WrittenAt]:
    """The entries a query of table partition ``partition`` waits for."""
    return [] if token is None else [e for e in token.entries if e.keyed_partition == partition]


def reached(entries: list[WrittenAt], processed: Mapping[str, int]) -> bool:
    """Whether processed offsets (per ``"topic:partition"``) reach every entry."""
    return all(processed.get(f"{e.topic}:{e.partition}", -1) >= e.offset for e in entries)

"""One output record of a windowed table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from windows.spec import Window


@dataclass(frozen=True)
class Emission:
    """One output record: the window ``[start, end)`` (epoch ms) of ``key``, its ``version`` (the
    number of records emitted for that window so far, this one included: 1..n without a gap)
    and its value at that moment, and the earlier sessions it replaces (sessions that merged
    into this one and that a consumer has seen a record of); ``cause``: the window's cause when
    the record was counted (:attr:`~windows.keyed_state.WindowState.cause`), not part of the
    record's value."""

    key: str
    start: int
    end: int
    version: int
    value: dict[str, Any]
    replaces: tuple[Window, ...] = ()
    cause: Any = None

    def to_record(self, table: str) -> dict[str, Any]:
        """The JSON form written to the table's output topic; ``replaces`` only when not empty."""
        record: dict[str, Any] = {
            "table": table,
            "key": self.key,
            "start": self.start,
            "end": self.end,
            "version": self.version,
            "value": self.value,
        }
        if self.replaces:
            record["replaces"] = [list(w) for w in self.replaces]
        return record

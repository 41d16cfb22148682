"""Reducing a contender's output topic to its final windows (:data:`bench.windowing.Results`).

Both readers take the records of one output topic in partition offset order, as
:func:`bench.reading.read_topic` delivers them.

- continust (README, "Emission"): each record is ``{"table", "key", "start", "end",
  "version", "value", "replaces"?}``; per window the record with the highest ``version`` is the
  final one, and a session record's ``replaces`` lists earlier sessions of the key that no
  longer exist. A key's records are all on one partition, in order, so dropping the replaced
  windows as they are named is exact.
- Quix Streams (``.agg(...).current()``): each record is ``{"start", "end", "n", "total"}``
  keyed by the key; the count only grows, so per window the record with the highest ``n`` is the
  final one.

Both count the records of every window too (:meth:`repeated`): under final emission each window
must have exactly one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from bench.windowing import Results, Window


class ContinustOutputs:
    def __init__(self, count: str = "n", total: str = "total") -> None:
        self.count, self.total = count, total
        self._latest: dict[Window, tuple[int, int, float]] = {}
        self._records: Counter[Window] = Counter()

    def add(self, record: Any) -> None:
        value = orjson.loads(record.value)
        key = value["key"]
        for start, end in value.get("replaces", ()):
            self._latest.pop((key, start, end), None)
        window = (key, value["start"], value["end"])
        self._records[window] += 1
        version = value["version"]
        prior = self._latest.get(window)
        if prior is None or version > prior[0]:
            agg = value["value"]
            self._latest[window] = (version, int(agg[self.count]), float(agg[self.total]))

    def results(self) -> Results:
        return {w: (n, total) for w, (_v, n, total) in self._latest.items()}

    def repeated(self) -> list[Window]:
        """Windows with more than one record."""
        return [w for w, n in self._records.items() if n > 1]


class QuixOutputs:
    def __init__(self) -> None:
        self._latest: dict[Window, tuple[int, float]] = {}
        self._records: Counter[Window] = Counter()

    def add(self, record: Any) -> None:
        value = orjson.loads(record.value)
        window = (record.key.decode(), int(value["start"]), int(value["end"]))
        self._records[window] += 1
        n = int(value["n"])
        prior = self._latest.get(window)
        if prior is None or n > prior[0]:
            self._latest[window] = (n, float(value["total"]))

    def results(self) -> Results:
        return dict(self._latest)

    def repeated(self) -> list[Window]:
        """Windows with more than one record."""
        return [w for w, n in self._records.items() if n > 1]

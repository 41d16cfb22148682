"""Two aggregations built on sketches: ``percentile(f, q)`` and ``count_distinct(f)``, from
Apache DataSketches (the ``datasketches`` package). Both merge (sessions), and their state is a
sketch serialized as base64 text, saved with the window as any state is.

``percentile(f, q)``: the ``q`` quantile (``0 <= q <= 1``) of the numeric field ``f`` over the
window's events (the smallest value whose rank, the share of the events at or below it, is at
least ``q``), from a KLL sketch of ``k = 200``. Its error is in rank, not in value: the value
answered has a rank within 1.33% of ``q`` with 99% confidence (DataSketches' normalized rank
error for ``k = 200``); ``p95`` is thus a value between the true p93.67 and p96.33. Exact while
the window holds at most 200 events. ``null`` for an empty window.

``count_distinct(f)``: how many distinct values the field ``f`` (a string or a number, taken as
its text; ``1`` and ``"1"`` are one value) takes, from a HyperLogLog sketch of ``lg_k = 12``
(4,096 buckets of 4 bits): a relative standard error of 1.63% (``1.04 / sqrt(4096)``), about
3.3% at 95% confidence; exact while the window has seen only a few hundred distinct values
(the sketch's list and set modes).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import datasketches

from windows.aggregates import InvalidField, Number, numeric_field
from windows.field_path import field_value

KLL_K = 200
HLL_LG_K = 12


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass(frozen=True)
class Percentile:
    """``percentile(field, q)`` (see the module docstring); state: a serialized KLL sketch,
    or ``None`` before the first event."""

    field: str
    q: float
    name: str = "percentile"

    def extract(self, payload: Mapping[str, Any]) -> Number:
        return numeric_field(payload, self.field)

    def initialize(self) -> str | None:
        return None

    def _sketch(self, state: str | None) -> Any:
        if state is None:
            return datasketches.kll_doubles_sketch(KLL_K)
        return datasketches.kll_doubles_sketch.deserialize(_decode(state))

    def add(self, state: str | None, value: Number, timestamp_ms: int, arrival: int) -> str:
        sketch = self._sketch(state)
        sketch.update(float(value))
        return _encode(sketch.serialize())

    def merge(self, a: str | None, b: str | None) -> str | None:
        if a is None or b is None:
            return b if a is None else a
        sketch = self._sketch(a)
        sketch.merge(self._sketch(b))
        return _encode(sketch.serialize())

    def result(self, state: str | None) -> float | None:
        if state is None:
            return None
        return float(self._sketch(state).get_quantile(self.q, True))


@dataclass(frozen=True)
class CountDistinct:
    """``count_distinct(field)`` (see the module docstring); state: a serialized HyperLogLog
    sketch, or ``None`` before the first event."""

    field: str
    name: str = "count_distinct"

    def extract(self, payload: Mapping[str, Any]) -> str:
        try:
            value = field_value(payload, self.field)
        except KeyError:
            raise InvalidField(f"missing field {self.field!r}") from None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidField(f"field {self.field!r} must be a string or a number: {value!r}")
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)

    def initialize(self) -> str | None:
        return None

    def _sketch(self, state: str | None) -> Any:
        if state is None:
            return datasketches.hll_sketch(HLL_LG_K, datasketches.tgt_hll_type.HLL_4)
        return datasketches.hll_sketch.deserialize(_decode(state))

    def add(self, state: str | None, value: str, timestamp_ms: int, arrival: int) -> str:
        sketch = self._sketch(state)
        sketch.update(value)
        return _encode(sketch.serialize_compact())

    def merge(self, a: str | None, b: str | None) -> str | None:
        if a is None or b is None:
            return b if a is None else a
        union = datasketches.hll_union(HLL_LG_K)
        union.update(self._sketch(a))
        union.update(self._sketch(b))
        return _encode(union.get_result(datasketches.tgt_hll_type.HLL_4).serialize_compact())

    def result(self, state: str | None) -> int:
        if state is None:
            return 0
        return round(self._sketch(state).get_estimate())

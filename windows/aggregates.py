"""Aggregations over the events of one window.

Each aggregation has a JSON-serialisable *state* and four pure operations:
``initialize() -> state``, ``add(state, value, timestamp_ms, arrival) -> state``,
``merge(a, b) -> state`` (used when session windows merge) and ``result(state) -> value``.

Fields are read from the event payload by :meth:`Aggregation.extract` (a nested one by a dotted
path: :mod:`windows.field_path`); a missing field, or a
value that is not a number (booleans are not numbers), raises :class:`InvalidField` before any
state changes, so an invalid event never half-updates a window.

``arrival`` orders events that reach one key's windows: any number that grows with arrival
(the engine uses the record's offset in the keyed partition, so it is the same after a restart).
``first(f)`` keeps the value with the smallest timestamp (on a tie, the one that arrived first);
``last(f)`` keeps the value with the largest timestamp (on a tie, the one that arrived last).
Their states carry ``[timestamp_ms, arrival, value]``, so the rule holds when sessions merge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from windows.field_path import field_value

Number = int | float


class InvalidField(ValueError):
    """The event lacks a field an aggregation needs, or the field is not a number."""


class Aggregation(Protocol):
    """The contract every aggregation implements."""

    @property
    def name(self) -> str: ...

    @property
    def field(self) -> str | None: ...

    def extract(self, payload: Mapping[str, Any]) -> Any:
        """The event's value for :meth:`add` (a number for the built-in ones but
        ``count_distinct``); raises :class:`InvalidField`."""
        ...

    def initialize(self) -> Any: ...

    def add(self, state: Any, value: Any, timestamp_ms: int, arrival: int) -> Any: ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def result(self, state: Any) -> Any: ...


def numeric_field(payload: Mapping[str, Any], field: str) -> Number:
    """The payload's ``field`` (nested by a dotted path), which must be a number; raises
    :class:`InvalidField`."""
    try:
        value = field_value(payload, field)
    except KeyError:
        raise InvalidField(f"missing field {field!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidField(f"field {field!r} is not a number: {value!r}")
    return value


@dataclass(frozen=True)
class Count:
    name: str = "count"
    field: str | None = None

    def extract(self, payload: Mapping[str, Any]) -> Number | None:
        return None

    def initialize(self) -> int:
        return 0

    def add(self, state: int, value: Number | None, timestamp_ms: int, arrival: int) -> int:
        return state + 1

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, state: int) -> int:
        return state


@dataclass(frozen=True)
class _FieldAggregation:
    field: str

    def extract(self, payload: Mapping[str, Any]) -> Number:
        return numeric_field(payload, self.field)


@dataclass(frozen=True)
class Sum(_FieldAggregation):
    name: str = "sum"

    def initialize(self) -> Number:
        return 0

    def add(self, state: Number, value: Number, timestamp_ms: int, arrival: int) -> Number:
        return state + value

    def merge(self, a: Number, b: Number) -> Number:
        return a + b

    def result(self, state: Number) -> Number:
        return state


@dataclass(frozen=True)
class Min(_FieldAggregation):
    name: str = "min"

    def initialize(self) -> Number | None:
        return None

    def add(self, state: Number | None, value: Number, timestamp_ms: int, arrival: int) -> Number:
        return value if state is None or value < state else state

    def merge(self, a: Number | None, b: Number | None) -> Number | None:
        if a is None or b is None:
            return b if a is None else a
        return min(a, b)

    def result(self, state: Number | None) -> Number | None:
        return state


@dataclass(frozen=True)
class Max(_FieldAggregation):
    name: str = "max"

    def initialize(self) -> Number | None:
        return None

    def add(self, state: Number | None, value: Number, timestamp_ms: int, arrival: int) -> Number:
        return value if state is None or value > state else state

    def merge(self, a: Number | None, b: Number | None) -> Number | None:
        if a is None or b is None:
            return b if a is None else a
        return max(a, b)

    def result(self, state: Number | None) -> Number | None:
        return state


@dataclass(frozen=True)
class Avg(_FieldAggregation):
    """State ``[sum, count]``; the result of an empty window is ``None``."""

    name: str = "avg"

    def initialize(self) -> list[Number]:
        return [0, 0]

    def add(self, state: list[Number], value: Number, timestamp_ms: int, arrival: int) -> list[Number]:
        return [state[0] + value, state[1] + 1]

    def merge(self, a: list[Number], b: list[Number]) -> list[Number]:
        return [a[0] + b[0], a[1] + b[1]]

    def result(self, state: list[Number]) -> float | None:
        return state[0] / state[1] if state[1] else None


@dataclass(frozen=True)
class First(_FieldAggregation):
    """State ``[timestamp_ms, arrival, value]`` of the earliest event, or ``None``."""

    name: str = "first"

    def initialize(self) -> list[Any] | None:
        return None

    def add(self, state: list[Any] | None, value: Number, timestamp_ms: int, arrival: int) -> list[Any]:
        if state is None or (timestamp_ms, arrival) < (state[0], state[1]):
            return [timestamp_ms, arrival, value]
        return state

    def merge(self, a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
        if a is None or b is None:
            return b if a is None else a
        return b if (b[0], b[1]) < (a[0], a[1]) else a

    def result(self, state: list[Any] | None) -> Any:
        return None if state is None else state[2]


@dataclass(frozen=True)
class Last(_FieldAggregation):
    """State ``[timestamp_ms, arrival, value]`` of the latest event, or ``None``."""

    name: str = "last"

    def initialize(self) -> list[Any] | None:
        return None

    def add(self, state: list[Any] | None, value: Number, timestamp_ms: int, arrival: int) -> list[Any]:
        if state is None or (timestamp_ms, arrival) > (state[0], state[1]):
            return [timestamp_ms, arrival, value]
        return state

    def merge(self, a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
        if a is None or b is None:
            return b if a is None else a
        return a if (a[0], a[1]) > (b[0], b[1]) else b

    def result(self, state: list[Any] | None) -> Any:
        return None if state is None else state[2]


FIELD_AGGREGATIONS: dict[str, Callable[[str], Aggregation]] = {
    "sum": Sum,
    "min": Min,
    "max": Max,
    "avg": Avg,
    "first": First,
    "last": Last,
}

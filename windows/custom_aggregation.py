"""Aggregations users write: :class:`UserAggregation` is the contract, :class:`Custom` adapts one
to :class:`windows.aggregates.Aggregation`, the contract the engine runs.

A user's aggregation has four methods, each pure: ``initialize() -> state``,
``add(state, value) -> state`` (``value``: the event's field as the payload holds it, any JSON
value; ``None`` for an aggregation that names no field), ``merge(a, b) -> state`` (two windows'
states as one: sessions merge, so it is required) and ``result(state) -> value``. The state is
saved with the window as JSON (orjson): numbers, strings, booleans, null, lists and dicts with
string keys.

What the adapter guarantees, whatever the user's code does:

* ``add`` and ``merge`` are handed copies, so a method that changes the state it is given in
  place cannot half-update a window when it later raises;
* a method that raises, or returns a state that is not JSON, raises :class:`AggregationFailed`,
  which the engine turns into a dead letter (reason ``user_error``) before any window of the
  event changes;
* ``result`` never raises: a failure gives ``None`` (and is counted in :attr:`Custom.failures`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Protocol

import orjson

from windows.aggregates import InvalidField
from windows.field_path import field_value


class UserAggregation(Protocol):
    """The methods a user's aggregation has (see the module docstring)."""

    def initialize(self) -> Any: ...

    def add(self, state: Any, value: Any) -> Any: ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def result(self, state: Any) -> Any: ...


class AggregationFailed(Exception):
    """A user's aggregation raised, or gave a state that is not JSON: ``aggregation`` names it,
    ``error_type`` and ``message`` say what went wrong."""

    def __init__(self, aggregation: str, error_type: str, message: str) -> None:
        super().__init__(f"{aggregation} failed: {error_type}: {message}")
        self.aggregation = aggregation
        self.error_type = error_type
        self.message = message


def _json_copy(state: Any) -> Any:
    return orjson.loads(orjson.dumps(state))


@dataclass(frozen=True)
class Custom:
    """A user's aggregation ``user`` reading payload field ``field`` (a dotted path reaches a
    nested one; ``None``: no field), named ``name`` (``module:Class``), as an
    :class:`~windows.aggregates.Aggregation`."""

    user: UserAggregation = dataclass_field(compare=False)
    field: str | None
    name: str
    #: results that failed and were answered ``None``
    failures: list[int] = dataclass_field(default_factory=lambda: [0], compare=False, repr=False)

    def extract(self, payload: Mapping[str, Any]) -> Any:
        if self.field is None:
            return None
        try:
            return field_value(payload, self.field)
        except KeyError:
            raise InvalidField(f"missing field {self.field!r}") from None

    def _call(self, method: str, *args: Any) -> Any:
        try:
            state = getattr(self.user, method)(*args)
            orjson.dumps(state)
        except Exception as exc:
            raise AggregationFailed(f"{self.name}.{method}", type(exc).__name__, str(exc)) from exc
        return state

    def initialize(self) -> Any:
        return self._call("initialize")

    def add(self, state: Any, value: Any, timestamp_ms: int, arrival: int) -> Any:
        return self._call("add", _json_copy(state), value)

    def merge(self, a: Any, b: Any) -> Any:
        return self._call("merge", _json_copy(a), _json_copy(b))

    def result(self, state: Any) -> Any:
        try:
            value = self.user.result(_json_copy(state))
            orjson.dumps(value)
        except Exception:
            self.failures[0] += 1
            return None
        return value

"""Aggregations users write: :class:`UserAggregation` is the contract, :class:`Custom` adapts one
to :class:`windows.aggregates.Aggregation`, the contract the engine runs.

A user's aggregation has four methods, each pure: ``initialize() -> state``,
``add(state, value) -> state`` (``value``: the event's field as the payload holds it, any JSON
value; ``None`` for an aggregation that names no field), ``merge(a, b) -> state`` (two windows'
states as one: sessions merge, so it is required) and ``result(state) -> value``. The state is
saved with the window as JSON (orjson): numbers, strings, booleans, null, lists and dicts with
string keys.

A state that is not JSON (a set, a dataclass, a sketch's bytes) declares its codec: the class
then also has ``encode(state) -> JSON value`` and ``decode(saved) -> state``, both or neither,
with ``decode(encode(s))`` equal to ``s``. The window then saves ``encode(state)``, and every
method is handed ``decode(saved)``: a fresh state, so a codec takes the place of the copies
below.

What the adapter guarantees, whatever the user's code does:

* ``add`` and ``merge`` are handed copies, so a method that changes the state it is given in
  place cannot half-update a window when it later raises;
* a method that raises (``encode`` and ``decode`` included), or gives a state that is not JSON
  (after ``encode``), raises :class:`AggregationFailed`,
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


class StateCodec(Protocol):
    """The methods of a user's aggregation whose state is not JSON (see the module docstring)."""

    def encode(self, state: Any) -> Any: ...

    def decode(self, saved: Any) -> Any: ...


def _json_copy(state: Any) -> Any:
    return orjson.loads(orjson.dumps(state))


def state_codec(user: object, name: str) -> StateCodec | None:
    """``user`` as a :class:`StateCodec` when it declares one, else ``None``; raises
    ``ValueError`` when it has only one of ``encode`` and ``decode``."""
    has = [m for m in ("encode", "decode") if hasattr(type(user), m) and callable(getattr(type(user), m))]
    if not has:
        return None
    if len(has) == 1:
        raise ValueError(
            f"aggregation {name} has {has[0]}() without its pair: a state codec needs encode and decode"
        )
    return user  # type: ignore[return-value]


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
    #: the user's state codec (:func:`state_codec`), or ``None``: states are JSON themselves
    codec: StateCodec | None = dataclass_field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codec", state_codec(self.user, self.name))

    def extract(self, payload: Mapping[str, Any]) -> Any:
        if self.field is None:
            return None
        try:
            return field_value(payload, self.field)
        except KeyError:
            raise InvalidField(f"missing field {self.field!r}") from None

    def _call(self, method: str, saved: tuple[Any, ...] = (), *values: Any) -> Any:
        """``method`` of the user's aggregation on the states ``saved`` holds (decoded, or JSON
        copies), then ``values`` as they are; gives the state to save (encoded, checked to be
        JSON)."""
        step = "decode"
        try:
            codec = self.codec
            states = [_json_copy(s) if codec is None else codec.decode(s) for s in saved]
            step = method
            state = getattr(self.user, method)(*states, *values)
            if codec is not None:
                step = "encode"
                state = codec.encode(state)
            orjson.dumps(state)
        except Exception as exc:
            raise AggregationFailed(f"{self.name}.{step}", type(exc).__name__, str(exc)) from exc
        return state

    def initialize(self) -> Any:
        return self._call("initialize")

    def add(self, state: Any, value: Any, timestamp_ms: int, arrival: int) -> Any:
        return self._call("add", (state,), value)

    def merge(self, a: Any, b: Any) -> Any:
        return self._call("merge", (a, b))

    def result(self, state: Any) -> Any:
        try:
            value = self.user.result(_json_copy(state) if self.codec is None else self.codec.decode(state))
            orjson.dumps(value)
        except Exception:
            self.failures[0] += 1
            return None
        return value

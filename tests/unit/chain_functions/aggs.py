"""User aggregations the tests name as "module:Class" (tests.unit.chain_functions.aggs)."""

from __future__ import annotations

from typing import Any


class Total:
    """sum, written as a user would."""

    def initialize(self) -> int:
        return 0

    def add(self, state: int, value: Any) -> int:
        return state + value

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, state: int) -> int:
        return state


class Picky:
    """Keeps the values seen in a list, changing it in place, and raises on 13 after that:
    an adapter that handed it the window's own state would be left half-updated."""

    def initialize(self) -> dict[str, Any]:
        return {"seen": []}

    def add(self, state: dict[str, Any], value: Any) -> Any:
        state["seen"].append(value)
        if value == 13:
            raise ValueError("unlucky")
        if value == 5 and len(state["seen"]) >= 3:  # fails in one window of an event, not another
            raise ValueError("crowded")
        if value == 7:
            return {"seen": state["seen"], "set": {1, 2}}  # not JSON
        return state

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {"seen": a["seen"] + b["seen"]}

    def result(self, state: dict[str, Any]) -> Any:
        if 99 in state["seen"]:
            raise RuntimeError("cannot say")
        return sorted(state["seen"])


class NoMerge:
    def initialize(self) -> int:
        return 0

    def add(self, state: int, value: Any) -> int:
        return state

    def result(self, state: int) -> int:
        return state


class Distinct:
    """The number of distinct values, kept in a set: not JSON, so it declares its codec."""

    def initialize(self) -> set[Any]:
        return set()

    def add(self, state: set[Any], value: Any) -> set[Any]:
        state.add(value)  # in place: decode hands it a fresh set
        return state

    def merge(self, a: set[Any], b: set[Any]) -> set[Any]:
        return a | b

    def result(self, state: set[Any]) -> int:
        return len(state)

    def encode(self, state: set[Any]) -> list[Any]:
        return sorted(state)

    def decode(self, saved: list[Any]) -> set[Any]:
        return set(saved)


class FragileDistinct(Distinct):
    """Cannot read back a state that holds 13."""

    def decode(self, saved: list[Any]) -> set[Any]:
        if 13 in saved:
            raise ValueError("cannot read 13 back")
        return set(saved)


class EncodeOnly(Total):
    def encode(self, state: int) -> int:
        return state

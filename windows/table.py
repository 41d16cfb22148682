"""What a windowed table computes: its windows, its aggregations with their output names, and
when it emits (``emit``). A frozen spec, validated on construction; the pipeline file is read
into it (:mod:`streams.plan.pipeline`) and the engine runs it (:mod:`windows.partition`).

Emit modes, all driven by the events and the partition's stream time alone:

* ``"update"``: one record per window changed since the last commit, with its latest value;
* ``"change"``: one record per change, as it happens;
* ``"final"``: one record per window, when stream time closes it (>= end + grace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from windows.aggregates import Aggregation
from windows.keyed_state import WindowState, results
from windows.spec import WindowSpec

EMITS = ("update", "change", "final")


@dataclass(frozen=True)
class WindowedAggregate:
    """The windows, the aggregations with their output names (one name each, in order), and
    when results are emitted (one of :data:`EMITS`). Raises ``ValueError`` otherwise."""

    window: WindowSpec
    aggregations: tuple[Aggregation, ...]
    names: tuple[str, ...]
    emit: str = "update"

    def __post_init__(self) -> None:
        if self.emit not in EMITS:
            raise ValueError(f"emit {self.emit!r} is not one of {', '.join(EMITS)}")
        if len(self.aggregations) != len(self.names):
            raise ValueError("every aggregation needs exactly one name")

    def value(self, window: WindowState) -> dict[str, Any]:
        """The window's user-facing value: each aggregation's result under its name."""
        return results(self.aggregations, self.names, window)
